"""Prometheus text-format metrics for node_exporter's textfile collector (CONTRACT.md, Monitoring).

After every run the file named by ``[run].metrics_file`` is rewritten atomically (prometheus_client writes
a temporary file and renames it), so the collector never reads half a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

RUN_STATUSES = ("success", "partial", "failed")
LAST_SUCCESS = "itsm_kpi_last_success_timestamp_seconds"


@dataclass(frozen=True)
class RunMetrics:
    """What one run reports to monitoring."""

    status: str
    last_success: datetime | None
    stage_seconds: Mapping[str, float] = field(default_factory=dict)
    rows_read: Mapping[str, int] = field(default_factory=dict)  # per source
    rows_rejected: Mapping[str, int] = field(default_factory=dict)  # per source
    rows_written: int = 0
    alerts_sent: int = 0
    alerts_failed: int = 0
    sources: tuple[str, ...] = ()  # every configured source: each gets its rows series, 0 when it read nothing


def write_metrics(path: Path, metrics: RunMetrics) -> None:
    """Rewrite ``path`` with the run's metrics (atomically)."""
    registry = CollectorRegistry()
    _gauge(registry, LAST_SUCCESS, "Unix time the last successful run finished",
           {(): metrics.last_success.timestamp() if metrics.last_success else 0.0})
    _gauge(registry, "itsm_kpi_run_duration_seconds", "Seconds the last run spent per stage",
           {(stage,): float(s) for stage, s in metrics.stage_seconds.items()}, ("stage",))
    _gauge(registry, "itsm_kpi_rows_read_total", "Rows the last run read, per source",
           {(source,): float(n) for source, n in _every_source(metrics.rows_read, metrics.sources).items()},
           ("source",))
    _gauge(registry, "itsm_kpi_rows_rejected_total", "Rows the last run rejected, per source",
           {(source,): float(n) for source, n in
            _every_source(metrics.rows_rejected, [*metrics.sources, *metrics.rows_read]).items()},
           ("source",))
    _gauge(registry, "itsm_kpi_rows_written_total", "Rows the last run wrote", {(): float(metrics.rows_written)})
    _gauge(registry, "itsm_kpi_alerts_sent_total", "Alert messages the last run posted", {(): float(metrics.alerts_sent)})
    _gauge(registry, "itsm_kpi_alerts_failed_total", "Alert messages the last run could not post",
           {(): float(metrics.alerts_failed)})
    _gauge(registry, "itsm_kpi_last_run_status", "1 for the last run's status, 0 for the others",
           {(status,): float(status == metrics.status) for status in RUN_STATUSES}, ("status",))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)


def last_success_in(path: Path) -> datetime | None:
    """The last success an earlier run wrote to the metrics file at ``path`` (None: no file, or none named)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == LAST_SUCCESS and sample.value > 0:
                return datetime.fromtimestamp(sample.value, tz=UTC)
    return None


def _every_source(counts: Mapping[str, int], sources: Iterable[str]) -> dict[str, int]:
    """``counts`` with a 0 for each of ``sources`` it lacks (one that failed, or read nothing): an absent series
    would read as "no data" to an alert rule."""
    return dict.fromkeys(sources, 0) | dict(counts)


def _gauge(registry: CollectorRegistry, name: str, doc: str, values: Mapping[tuple[str, ...], float],
           labels: tuple[str, ...] = ()) -> None:
    gauge = Gauge(name, doc, labels, registry=registry)
    for label_values, value in values.items():
        (gauge.labels(*label_values) if labels else gauge).set(value)
