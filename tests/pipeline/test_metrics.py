"""The Prometheus textfile (CONTRACT.md, Monitoring), parsed back with prometheus_client's own parser."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from pipeline.metrics import RunMetrics, last_success_in, write_metrics


def _samples(path: Path) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_every_contract_metric_is_written_with_its_labels(tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "itsm_kpi.prom"
    write_metrics(path, RunMetrics(status="partial", last_success=datetime(2026, 9, 10, 1, 20, tzinfo=UTC),
                                   stage_seconds={"pull": 1.5, "compute": 2.0}, rows_read={"hd": 120, "sn": 30},
                                   rows_rejected={"hd": 3}, rows_written=900, alerts_sent=2, alerts_failed=1))
    got = _samples(path)
    assert got[("itsm_kpi_last_success_timestamp_seconds", ())] == datetime(2026, 9, 10, 1, 20, tzinfo=UTC).timestamp()
    assert got[("itsm_kpi_run_duration_seconds", (("stage", "compute"),))] == 2.0
    assert got[("itsm_kpi_rows_read_total", (("source", "sn"),))] == 30
    assert got[("itsm_kpi_rows_rejected_total", (("source", "hd"),))] == 3
    assert got[("itsm_kpi_rows_rejected_total", (("source", "sn"),))] == 0  # read, none rejected: a 0, not absent
    assert got[("itsm_kpi_rows_written_total", ())] == 900
    assert got[("itsm_kpi_alerts_sent_total", ())] == 2 and got[("itsm_kpi_alerts_failed_total", ())] == 1
    assert got[("itsm_kpi_last_run_status", (("status", "partial"),))] == 1
    assert got[("itsm_kpi_last_run_status", (("status", "success"),))] == 0
    assert not list(path.parent.glob("*.tmp*")) and not list(path.parent.glob(".*"))  # renamed into place


def test_a_later_run_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "itsm_kpi.prom"
    write_metrics(path, RunMetrics(status="success", last_success=None, rows_read={"old": 1}))
    write_metrics(path, RunMetrics(status="failed", last_success=None))
    got = _samples(path)
    assert got[("itsm_kpi_last_run_status", (("status", "failed"),))] == 1
    assert not any(name == "itsm_kpi_rows_read_total" for name, _ in got)


def test_the_last_success_is_read_back_from_the_file_a_run_wrote(tmp_path: Path) -> None:
    """A run that fails before it reaches the ledger keeps the last success the file named."""
    path = tmp_path / "itsm_kpi.prom"
    assert last_success_in(path) is None  # no file yet
    write_metrics(path, RunMetrics(status="failed", last_success=None))
    assert last_success_in(path) is None  # written as 0: no success yet
    at = datetime(2026, 9, 10, 1, 20, 5, tzinfo=UTC)
    write_metrics(path, RunMetrics(status="success", last_success=at))
    assert last_success_in(path) == at


def test_a_configured_source_that_read_nothing_still_has_its_rows_series_at_0(tmp_path: Path) -> None:
    """A night whose only source failed (partial) wrote no rows series at all: "no data" to an alert rule."""
    path = tmp_path / "itsm_kpi.prom"
    write_metrics(path, RunMetrics(status="partial", last_success=None, rows_read={"sn": 30},
                                   sources=("helpdesk", "sn")))
    got = _samples(path)
    assert got[("itsm_kpi_rows_read_total", (("source", "helpdesk"),))] == 0
    assert got[("itsm_kpi_rows_read_total", (("source", "sn"),))] == 30
    assert got[("itsm_kpi_rows_rejected_total", (("source", "helpdesk"),))] == 0
    assert got[("itsm_kpi_rows_rejected_total", (("source", "sn"),))] == 0
