"""The scheduler: real APScheduler triggers firing the real nightly job against real files and stores.

- a CronTrigger firing every second runs the nightly job, which writes both stores;
- two schedulers on one store: the run lock lets one run at a time, the other gives up after
  ``run.lock_wait`` with a LockTimeout naming the holder;
- ``itsm-kpi schedule`` as a real process, sent SIGTERM in the middle of a run, exits 0 with that run
  committed or rolled back (pipeline_runs says success or failed, never running);
- a scheduler started after a missed fire time runs at once (``missed_night``).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from apscheduler.triggers.cron import CronTrigger
from ops_helpers import (
    TZ,
    assert_stores_agree,
    load,
    month_export,
    runs,
    spawn,
    sql_rows,
    wait_for_line,
    write_config,
    write_export,
)
from sqlalchemy import insert

from pipeline.jobs import run_job
from pipeline.schedule import build_scheduler, last_nightly_start, missed_night, nightly_trigger
from pipeline.store import Stores
from pipeline.store import schema as sqlschema
from pipeline.store.errors import LockTimeout
from pipeline.store.ledger import Ledger

MONTH_TICKETS = 99  # month_export(): 100 ticket rows, one with an unknown status


@pytest.fixture
def config(tmp_path: Path, sql_url: str) -> Path:
    write_export(tmp_path / "exports", "2026-07-31", *month_export())
    return write_config(tmp_path, sql_url, sources={"helpdesk": tmp_path / "exports"}, lock_wait="1s")


def _every_second() -> CronTrigger:
    return CronTrigger(second="*", timezone=TZ)


def _wait_for(predicate, timeout: float = 90.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _finished_runs(config: Path) -> pd.DataFrame:
    try:
        found = runs(config)
    except Exception:  # the store does not exist before the first run
        return pd.DataFrame(columns=["status"])
    return found[found["status"] != "running"]


def _start(scheduler) -> threading.Thread:
    thread = threading.Thread(target=scheduler.start, name="test-scheduler", daemon=True)
    thread.start()
    return thread


def _stop(scheduler, thread: threading.Thread) -> None:
    scheduler.shutdown(wait=True)
    thread.join(timeout=60)
    assert not thread.is_alive()


def test_a_cron_trigger_runs_the_nightly_job_into_both_stores(config: Path) -> None:
    scheduler = build_scheduler(load(config), trigger=_every_second())
    thread = _start(scheduler)
    try:
        _wait_for(lambda: len(_finished_runs(config)) >= 1, what="a finished scheduled run")
    finally:
        _stop(scheduler, thread)
    done = runs(config)
    assert set(done["kind"]) == {"run"}
    assert set(done["status"]) == {"success"}  # later fires found no new file and still succeeded
    # later fires found no new file: no KPI period is recomputed (only the clock's rows may move, D84)
    assert done.iloc[0]["rows_written"] > 0 and done.iloc[1:]["periods_written"].eq(0).all()
    assert len(sql_rows(config, "ticket_facts")) == MONTH_TICKETS
    assert_stores_agree(config)
    assert sql_rows(config, "run_lock").empty


def test_a_second_scheduler_is_refused_by_the_run_lock(config: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two schedulers firing at the same second: one runs, the other waits lock_wait (1 s) and gives up."""
    caplog.set_level(logging.ERROR, logger="pipeline.schedule")
    settings = load(config)
    first, second = build_scheduler(settings, trigger=_every_second()), build_scheduler(settings, trigger=_every_second())
    threads = [_start(first), _start(second)]
    try:
        _wait_for(lambda: any("is held by run" in r.getMessage() for r in caplog.records), what="a refused run")
    finally:
        _stop(first, threads[0])
        _stop(second, threads[1])
    refused = [r.getMessage() for r in caplog.records if "is held by run" in r.getMessage()]
    assert refused[0].startswith("scheduled run failed: run lock 'itsm-kpi' is held by run run-")
    assert "waited 1 s" in refused[0]
    done = runs(config)
    assert set(done["status"]) == {"success"} and len(sql_rows(config, "ticket_facts")) == MONTH_TICKETS
    assert_stores_agree(config)


def test_a_run_waits_lock_wait_then_names_the_holder(config: Path) -> None:
    settings = load(config)
    stores = Stores(settings.store.path, settings.store.sql_url)
    stores.prepare()
    holder = Ledger(stores.engine)
    holder.acquire_lock("run-other-night", wait_s=0, stale_after_s=900)
    as_of = pd.Timestamp("2026-08-01T01:15:00+08:00")
    try:
        started = time.monotonic()
        with pytest.raises(LockTimeout) as refused:
            run_job(settings, kind="run", as_of=as_of)
        waited = time.monotonic() - started
    finally:
        holder.release_lock("run-other-night")
        stores.close()
    assert 1.0 <= waited < 10
    message = str(refused.value)
    assert "run lock 'itsm-kpi' is held by run run-other-night on" in message
    assert f"pid {__import__('os').getpid()}" in message and "waited 1 s" in message
    assert run_job(settings, kind="run", as_of=as_of).status == "success"  # released: the next run goes


def test_sigterm_during_a_run_exits_0_with_the_run_finished_or_rolled_back(config: Path) -> None:
    """A fresh store has never run: ``itsm-kpi schedule`` runs at once; SIGTERM lands in the middle."""
    proc = spawn("schedule", "--config", str(config))
    try:
        wait_for_line(proc, '"stage pull done', timeout=120)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "scheduler stopped" in err
    done = runs(config)
    assert len(done) == 1 and done.iloc[0]["status"] in ("success", "failed"), done
    facts = sql_rows(config, "ticket_facts")
    assert len(facts) == (MONTH_TICKETS if done.iloc[0]["status"] == "success" else 0)
    assert_stores_agree(config)
    assert sql_rows(config, "run_lock").empty


def test_a_store_never_written_has_no_last_nightly_start_and_no_warning(tmp_path: Path, caplog) -> None:
    settings = load(write_config(tmp_path, f"sqlite:///{tmp_path / 'db' / 'kpi.sqlite'}", sources={}))
    caplog.set_level(logging.WARNING)
    assert last_nightly_start(settings) is None
    assert not (tmp_path / "db").exists() and caplog.records == []


def test_the_last_nightly_start_leaves_out_runs_that_were_killed(tmp_path: Path) -> None:
    """A night killed mid-run (its row ``running``, or ``failed`` as abandoned once its lock was taken over) did
    not do its work: a scheduler restarted after it must run at once, not a day later."""
    settings = load(write_config(tmp_path, f"sqlite:///{tmp_path / 'kpi.sqlite'}", sources={}))
    stores = Stores(settings.store.path, settings.store.sql_url)
    stores.prepare()
    runs_table = sqlschema.metadata.tables["pipeline_runs"]

    def record(run_id: str, kind: str, started: str, status: str, error: str | None = None) -> None:
        with stores.engine.begin() as conn:
            conn.execute(insert(runs_table).values(run_id=run_id, kind=kind, status=status, error=error,
                                                   started_at=pd.Timestamp(started).tz_convert("UTC")))

    try:
        record("n1", "run", "2026-08-01T01:15:00+08:00", "success")
        record("b1", "backfill", "2026-08-01T09:00:00+08:00", "success")  # not a nightly run
        record("n2", "run", "2026-08-02T01:15:00+08:00", "failed", "abandoned: process 4242 on this host is gone; "
                                                                    "its lock was taken over")
        record("n3", "run", "2026-08-03T01:15:00+08:00", "running")  # killed; nobody took its lock over yet
        assert last_nightly_start(settings) == datetime.fromisoformat("2026-08-01T01:15:00+08:00")
        record("n4", "run", "2026-08-04T01:15:00+08:00", "failed", "StoreError: disk full")  # failed, but ended
        assert last_nightly_start(settings) == datetime.fromisoformat("2026-08-04T01:15:00+08:00")
    finally:
        stores.close()


@pytest.mark.parametrize(("last_start", "now", "missed"), [
    (None, "2026-08-01T12:00:00+08:00", True),  # never ran: run at once
    ("2026-08-01T01:15:02+08:00", "2026-08-01T23:59:00+08:00", False),  # tonight's run is still to come
    ("2026-08-01T01:15:02+08:00", "2026-08-02T01:16:00+08:00", True),  # 08-02 01:15 went by unrun
    ("2026-07-28T10:00:00+08:00", "2026-08-02T09:00:00+08:00", True),  # host down for days: one run
    ("2026-08-02T01:15:00+08:00", "2026-08-02T09:00:00+08:00", False),  # ran at 01:15 as planned
])
def test_a_scheduler_started_after_a_missed_night_runs_at_once(tmp_path: Path, last_start, now, missed) -> None:
    settings = load(write_config(tmp_path, f"sqlite:///{tmp_path / 'kpi.sqlite'}", sources={}))
    trigger = nightly_trigger(settings)  # "15 1 * * *" in Asia/Shanghai
    last = datetime.fromisoformat(last_start) if last_start else None
    assert missed_night(trigger, last, datetime.fromisoformat(now)) is missed
