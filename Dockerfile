# itsm-kpi in a container: the wheel is built in one stage and installed, with nothing else from the
# source tree, in a slim runtime stage that runs as a non-root user.
#
#   docker build -t itsm-kpi .
#   docker run --rm itsm-kpi demo --store /tmp/demo            # no config, no server
#   docker run -d --name itsm-kpi \
#       -v /srv/itsm-kpi/itsm-kpi.toml:/etc/itsm-kpi/itsm-kpi.toml:ro \
#       -v /srv/itsm-kpi/secrets:/run/secrets:ro \
#       -e ITSM_KPI_STORE__SQL_URL_FILE=/run/secrets/sql_url \
#       -v itsm-kpi-data:/var/lib/itsm-kpi \
#       itsm-kpi                                                 # = schedule --config /etc/itsm-kpi/itsm-kpi.toml
#
# Config: /etc/itsm-kpi/itsm-kpi.toml (mount it read-only; every command takes --config). Secrets: files under
# /run/secrets named by `<VARIABLE>_FILE` (CONTRACT.md), never baked in. Data: /var/lib/itsm-kpi is the working
# directory and a volume, so a relative `store.path` (and a SQLite URL under it) lands on the volume.
# deploy/kubernetes/ runs the same image as a CronJob; docs/operations.md covers the rest. With the Dask extra
# the same image is a cluster's scheduler and workers (docs/scale-out.md), so driver and workers match:
#   docker run --entrypoint dask itsm-kpi scheduler            /  ... itsm-kpi worker tcp://<scheduler>:8786

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the wheel, exactly as `pip wheel .` makes it from the repository --------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY config/ config/
COPY kpis/ kpis/
COPY connectors/ connectors/
COPY pipeline/ pipeline/
RUN /opt/build/bin/pip wheel --no-deps --wheel-dir /dist . \
    && ls /dist/itsm_kpi-*.whl

# --- runtime: the installed wheel (with PostgreSQL, DuckDB and Dask), a non-root user, nothing else ---------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="itsm-kpi" \
      org.opencontainers.image.description="Nightly IT-service KPIs from ticketing data, to Parquet and SQL" \
      org.opencontainers.image.licenses="Apache-2.0"
# NUMPY_MADVISE_HUGEPAGE=0: numpy would ask for huge pages, and where transparent_hugepage/defrag is "madvise"
# (the common default) a large allocation can then stall in page compaction (docs/operations.md, D93).
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 NUMPY_MADVISE_HUGEPAGE=0 \
    PATH=/opt/itsm-kpi/bin:$PATH
COPY --from=build /dist/ /tmp/dist/
RUN python3 -m venv /opt/itsm-kpi \
    && wheel=$(ls /tmp/dist/itsm_kpi-*.whl) \
    && /opt/itsm-kpi/bin/pip install "${wheel}[postgres,query,dask]" \
    && rm -rf /tmp/dist \
    && itsm-kpi --help >/dev/null
# A fixed numeric uid/gid, so that Kubernetes' runAsNonRoot can check it and a volume can be chowned to it.
RUN groupadd --system --gid 10001 itsm-kpi \
    && useradd --system --uid 10001 --gid itsm-kpi --home-dir /var/lib/itsm-kpi --shell /usr/sbin/nologin itsm-kpi \
    && mkdir -p /var/lib/itsm-kpi /etc/itsm-kpi \
    && chown itsm-kpi:itsm-kpi /var/lib/itsm-kpi
WORKDIR /var/lib/itsm-kpi
VOLUME ["/var/lib/itsm-kpi"]
USER 10001:10001
# No HEALTHCHECK: between nights the scheduler only sleeps, so a live process says little; whether the
# nights succeed is in pipeline_runs (docs/operations.md, "Reading pipeline_runs").
ENTRYPOINT ["itsm-kpi"]
CMD ["schedule", "--config", "/etc/itsm-kpi/itsm-kpi.toml"]
