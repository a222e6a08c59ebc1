"""Alerts and metrics after real runs: the bundled-style July tickets, a real webhook on 127.0.0.1, both stores.

A committed run posts each new breach once (remembered in alerts_sent, in both stores) and counts its posts
in pipeline_runs; a run that fails posts run_failed; a webhook that fails never fails the run; the metrics
file follows every run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import e2e_helpers as h
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipeline.jobs import run_job
from pipeline.periods import dates_window
from pipeline.settings import Settings
from pipeline.store import Stores
from pipeline.store.errors import LockTimeout, StoreError
from pipeline.store.ledger import Ledger

TOKEN = "hook-token-7f3a9c"
AS_OF = pd.Timestamp(h.AS_OF).tz_convert("UTC")
JULY = dates_window(pd.Timestamp("2026-07-01").date(), pd.Timestamp("2026-07-31").date())


class Hook:
    """A webhook that records every JSON body; ``status`` answers with that HTTP status."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.status = 200

    def __call__(self, request: Request) -> Response:
        self.bodies.append(json.loads(request.get_data(as_text=True)))
        return Response("{}", status=self.status, content_type="application/json")

    def kinds(self) -> list[str]:
        return [b["kind"] for b in self.bodies]


@pytest.fixture
def world(tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch):
    return _world(tmp_path, httpserver, monkeypatch, kinds='["breached", "due_soon", "run_failed"]')


def _world(tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, *, kinds: str,
           run: str = "") -> tuple[Settings, Hook, Path]:
    """The July export, a metrics file (``run``: more ``[run]`` keys) and a json alert posting ``kinds``."""
    hook = Hook()
    httpserver.expect_request(f"/hook/{TOKEN}").respond_with_handler(hook)
    monkeypatch.setenv("DESK_HOOK", httpserver.url_for(f"/hook/{TOKEN}"))
    metrics = tmp_path / "metrics" / "itsm_kpi.prom"
    alerts = (f'[run]\nmetrics_file = "{metrics}"\n{run}\n[[alerts]]\nname = "desk"\nurl_env = "DESK_HOOK"\n'
              f'format = "json"\non = {kinds}\n')
    config = h.write_config(tmp_path / "itsm-kpi.toml", tmp_path / "store", h.export_canonical_csv(tmp_path),
                            extra=alerts)
    return Settings.load(config, env={}), hook, metrics


def _sent(settings: Settings) -> pd.DataFrame:
    return h.read_sql(settings.store.sql_url, "alerts_sent")


def _breached_facts(settings: Settings) -> set[tuple[str, str]]:
    facts = h.read_sql(settings.store.sql_url, "ticket_facts")
    return {(t, m) for m in ("response", "resolution")
            for t in facts.loc[facts[f"{m}_sla"] == "breached", "ticket_id"]}


def _metric(path: Path, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    raise AssertionError(f"{name} {labels} not in {path}")


def test_each_breach_is_posted_once_and_remembered_in_both_stores(world) -> None:
    settings, hook, metrics = world
    run_job(settings, kind="backfill", as_of=AS_OF, window=JULY)
    breached = _breached_facts(settings)
    assert breached, "the July tickets hold breaches (see e2e_helpers)"
    (body,) = [b for b in hook.bodies if b["kind"] == "breached"]
    assert {(i["ticket_id"], i["metric"]) for i in body["items"]} == breached
    sent = _sent(settings)
    assert set(zip(sent["ticket_id"], sent["metric"], strict=True)) == breached
    assert len(h.read_pyarrow(settings.store.path, "alerts_sent")) == len(sent)  # Parquet too
    run = h.run_rows(settings.store.sql_url)[-1]
    assert (run["alerts_sent"], run["alerts_failed"]) == (len(hook.bodies), 0)
    assert _metric(metrics, "itsm_kpi_last_run_status", status="success") == 1
    assert _metric(metrics, "itsm_kpi_alerts_sent_total") == len(hook.bodies)

    posted_before = len(hook.bodies)
    run_job(settings, kind="backfill", as_of=AS_OF, window=JULY)  # the same breaches: nothing new to post
    assert "breached" not in hook.kinds()[posted_before:]
    assert len(_sent(settings)) == len(sent)


def test_a_failing_webhook_is_counted_and_the_run_still_succeeds(world) -> None:
    settings, hook, metrics = world
    hook.status = 400  # a client error is not retried
    summary = run_job(settings, kind="backfill", as_of=AS_OF, window=JULY)
    assert summary.status == "success"
    run = h.run_rows(settings.store.sql_url)[-1]
    assert run["alerts_sent"] == 0 and run["alerts_failed"] >= 1
    assert _sent(settings).empty  # nothing went through, so the breaches are posted again next time
    assert TOKEN not in str(run["error"])


def test_a_failed_run_posts_run_failed_and_marks_the_metrics(world) -> None:
    settings, hook, metrics = world

    def fail(point: str) -> None:
        if point == "before_sql_commit":
            raise StoreError("disk full (injected)")

    with pytest.raises(StoreError):
        run_job(settings, kind="backfill", as_of=AS_OF, window=JULY, fault=fail)
    assert hook.kinds() == ["run_failed"]
    assert "disk full" in hook.bodies[0]["items"][0]["reason"]
    assert _metric(metrics, "itsm_kpi_last_run_status", status="failed") == 1
    assert _metric(metrics, "itsm_kpi_last_success_timestamp_seconds") == 0


def test_a_partial_run_posts_run_failed_naming_the_source_besides_its_tickets(
        tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = Hook()
    httpserver.expect_request(f"/hook/{TOKEN}").respond_with_handler(hook)
    monkeypatch.setenv("DESK_HOOK", httpserver.url_for(f"/hook/{TOKEN}"))
    extra = (f'[[sources]]\nname = "gone"\nkind = "csv"\npath = "{tmp_path / "nowhere" / "*.csv"}"\n\n'
             '[[alerts]]\nname = "desk"\nurl_env = "DESK_HOOK"\nformat = "json"\non = ["breached", "run_failed"]\n')
    config = h.write_config(tmp_path / "itsm-kpi.toml", tmp_path / "store", h.export_canonical_csv(tmp_path),
                            extra=extra)
    summary = run_job(Settings.load(config, env={}), kind="backfill", as_of=AS_OF, window=JULY)
    assert summary.status == "partial"
    assert hook.kinds() == ["breached", "run_failed"]  # the other source's data went through, and was alerted on
    (item,) = hook.bodies[1]["items"]
    assert item["status"] == "partial" and item["reason"].startswith("gone: ")
    assert item["run_id"] == summary.run_id


def test_a_run_refused_before_it_is_recorded_still_posts_run_failed_and_marks_the_metrics(
        tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another run holds the lock past ``lock_wait`` (so too a store that cannot be opened): this run never
    gets a ledger row. The metrics file kept saying the last night's ``success`` to node_exporter."""
    settings, hook, metrics = _world(tmp_path, httpserver, monkeypatch, kinds='["run_failed"]',
                                     run='lock_wait = "1s"\n')
    run_job(settings, kind="backfill", as_of=AS_OF, window=JULY)
    succeeded_at = _metric(metrics, "itsm_kpi_last_success_timestamp_seconds")
    assert succeeded_at > 0 and hook.bodies == []

    stores = Stores(settings.store.path, settings.store.sql_url)
    Ledger(stores.engine).acquire_lock("run-other-night", wait_s=0, stale_after_s=900)
    try:
        with pytest.raises(LockTimeout):
            run_job(settings, kind="backfill", as_of=AS_OF, window=JULY)
    finally:
        stores.close()

    assert _metric(metrics, "itsm_kpi_last_run_status", status="failed") == 1
    assert _metric(metrics, "itsm_kpi_last_run_status", status="success") == 0
    assert _metric(metrics, "itsm_kpi_last_success_timestamp_seconds") == succeeded_at  # that run's, kept
    (body,) = hook.bodies
    (item,) = body["items"]
    assert body["kind"] == "run_failed" and item["status"] == "failed"
    assert item["reason"].startswith("LockTimeout: run lock 'itsm-kpi' is held by run run-other-night")
    assert [r["status"] for r in h.run_rows(settings.store.sql_url)] == ["success"]  # no row of its own


def test_a_run_whose_start_the_store_refuses_posts_run_failed_and_marks_the_metrics(
        tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock is taken but the store refuses the run's own ``running`` row (a real SQLite trigger stands for
    a full disk): the run is as unrecorded as one refused before its lock, and is reported the same way."""
    settings, hook, metrics = _world(tmp_path, httpserver, monkeypatch, kinds='["run_failed"]')
    run_job(settings, kind="backfill", as_of=AS_OF, window=JULY)
    succeeded_at = _metric(metrics, "itsm_kpi_last_success_timestamp_seconds")
    stores = Stores(settings.store.path, settings.store.sql_url)
    with stores.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TRIGGER refuse_runs BEFORE INSERT ON pipeline_runs "
                             "BEGIN SELECT RAISE(ABORT, 'database or disk is full (injected)'); END")
    stores.close()

    with pytest.raises(StoreError, match="cannot record the run start"):
        run_job(settings, kind="backfill", as_of=AS_OF, window=JULY)

    assert _metric(metrics, "itsm_kpi_last_run_status", status="failed") == 1
    assert _metric(metrics, "itsm_kpi_last_success_timestamp_seconds") == succeeded_at
    (body,) = hook.bodies
    assert body["kind"] == "run_failed"
    assert body["items"][0]["reason"] == ("StoreError: cannot record the run start in the SQL store: "
                                          "database or disk is full (injected)")
    assert [r["status"] for r in h.run_rows(settings.store.sql_url)] == ["success"]
    stores = Stores(settings.store.path, settings.store.sql_url)
    try:  # and the lock it took was released: the next run may take it at once
        Ledger(stores.engine).acquire_lock("run-next-night", wait_s=0, stale_after_s=900)
    finally:
        stores.close()


def test_a_metrics_file_that_cannot_be_written_is_one_log_line_and_the_run_succeeds(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "not-a-dir").write_text("a file where the metrics folder should be")
    extra = f'[run]\nmetrics_file = "{tmp_path / "not-a-dir" / "itsm_kpi.prom"}"\n'
    config = h.write_config(tmp_path / "itsm-kpi.toml", tmp_path / "store", h.export_canonical_csv(tmp_path),
                            extra=extra)
    caplog.set_level(logging.ERROR, logger="pipeline.notify")
    assert run_job(Settings.load(config, env={}), kind="backfill", as_of=AS_OF, window=JULY).status == "success"
    (record,) = [r for r in caplog.records if r.name == "pipeline.notify"]
    assert record.exc_info is None  # a line, not a traceback
    assert record.getMessage().startswith(f"could not write the metrics file {tmp_path / 'not-a-dir' / 'itsm_kpi.prom'}: ")
    assert record.getMessage().endswith("(check [run].metrics_file)")
