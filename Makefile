# itsm-kpi developer commands. `make demo` and `make test` work on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-fast bench lint docs clean

# A pip without --group (older than 25.1, where the upgrade could not run) gets the dev group from
# pyproject.toml through scripts/deps.py, so the fallback cannot drift from it.
$(BIN)/itsm-kpi: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[postgres,query]" --group dev 2>/dev/null || { \
		$(BIN)/python scripts/deps.py group dev > $(VENV)/dev-requirements.txt && \
		$(BIN)/pip install -q -e ".[postgres,query]" -r $(VENV)/dev-requirements.txt; }
	touch $@

install: $(BIN)/itsm-kpi

demo: install  ## run the whole pipeline on the bundled sample data (SQLite + Parquet under ./kpi-store)
	$(BIN)/itsm-kpi demo --store kpi-store

test: install  ## the whole suite: unit, property and integration tests (real SQLite, PostgreSQL, HTTP)
	$(BIN)/python -m pytest -n 2 -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not integration"

bench: install  ## synthetic-data benchmarks (numpy's huge-page hint off, as deployed): engine stages, nightly vs full, the scale-out curve, a store rewritten for 200 nights
	NUMPY_MADVISE_HUGEPAGE=0 $(BIN)/python scripts/bench.py
	NUMPY_MADVISE_HUGEPAGE=0 $(BIN)/python scripts/bench_nightly.py
	NUMPY_MADVISE_HUGEPAGE=0 $(BIN)/python scripts/bench_scale.py
	NUMPY_MADVISE_HUGEPAGE=0 $(BIN)/python scripts/bench_store_nights.py

lint: install
	$(BIN)/ruff check .

docs: install  ## regenerate docs/tables.md, docs/config.md and the shipped config JSON Schema
	$(BIN)/python scripts/gen_tables_doc.py
	$(BIN)/python scripts/gen_config_doc.py

clean:
	rm -rf kpi-store .pytest_cache .hypothesis
