"""The run ledger and the run lock, on a real SQLite file and a real PostgreSQL server.

The lock is tested between real processes: exactly one of several processes racing for it wins, a
waiting process gets it when the holder releases it, and a stale holder is taken over.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import multiprocessing.context
import os
import time
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import create_engine, insert, select, update

from pipeline.store import Replacement, Stores
from pipeline.store import schema as sqlschema
from pipeline.store.errors import LockTimeout, StoreError
from pipeline.store.ledger import Ledger, combine_writes

LOCK = sqlschema.metadata.tables["run_lock"]
AS_OF = pd.Timestamp("2026-03-02T01:15:00+08:00")


@pytest.fixture
def engine(sql_url: str):
    engine = create_engine(sql_url)
    sqlschema.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def ledger(engine) -> Ledger:
    return Ledger(engine, poll_s=0.05)



def processes() -> multiprocessing.context.BaseContext:
    """Fresh processes, forked from a server that has the heavy imports done (much faster than spawn)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["pandas", "pyarrow.dataset", "sqlalchemy", "pipeline.store.stores", "pipeline.store.ledger"])
    return ctx

# -- runs ------------------------------------------------------------------------------------------
def test_a_run_starts_running_and_finishes_with_the_data(tmp_path, sql_url: str) -> None:
    stores = Stores(tmp_path / "store", sql_url)
    stores.prepare()
    ledger = Ledger(stores.engine)
    run_id = ledger.start_run("backfill", date(2026, 1, 1), date(2026, 4, 1), AS_OF)
    assert ledger.run(run_id)["status"] == "running"

    writes = combine_writes(
        ledger.finish_run_writes(run_id, "partial", rows_read=10, rows_rejected=2, rows_written=5,
                                 periods_written=3, error="sn: unreachable", stage_timings={"pull": 1.5}),
        ledger.set_watermark_writes("helpdesk", "2026-03-02T00:00:00Z"),
        ledger.add_files_writes("helpdesk", ["a.csv", "b.csv", "a.csv"], run_id),
        None,
    )
    stores.commit(run_id, [Replacement("rejected_rows", pd.DataFrame({"run_id": [run_id]}), pd.DataFrame())],
                  ledger_writes=writes)

    run = stores.read_sql("pipeline_runs").iloc[0]
    assert (run["status"], run["rows_read"], run["rows_rejected"], run["rows_written"], run["periods_written"]) == (
        "partial", 10, 2, 5, 3)
    assert run["error"] == "sn: unreachable" and json.loads(run["stage_timings"]) == {"pull": 1.5}
    assert run["window_from"] == pd.Timestamp("2026-01-01T00:00:00Z") and run["as_of"] == AS_OF
    assert run["finished_at"] >= run["started_at"] and run["pid"] == os.getpid()
    assert ledger.watermark("helpdesk") == "2026-03-02T00:00:00Z" and ledger.watermark("sn") is None
    assert ledger.seen_files("helpdesk") == {"a.csv", "b.csv"}
    stores.close()


def test_a_summary_object_is_read_when_the_write_runs(ledger: Ledger) -> None:
    class Summary:
        status, rows_read, rows_rejected, rows_written, periods_written = "running", 0, 0, 0, 0
        stage_seconds = {"pull": 0.5}
        failed_sources = {"sn": "timed out"}

    summary = Summary()
    run_id = ledger.start_run("run", None, None, AS_OF, run_id="run-fixed-id")
    write = ledger.finish_run_writes(run_id, summary)
    summary.status, summary.rows_written = "partial", 42
    with ledger.engine.begin() as conn:
        write(conn)

    run = ledger.run("run-fixed-id")
    assert (run["status"], run["rows_written"], run["error"]) == ("partial", 42, "sn: timed out")


def test_a_failed_run_is_recorded_on_its_own(ledger: Ledger) -> None:
    run_id = ledger.start_run("run", None, None, AS_OF)
    ledger.fail_run(run_id, "StoreError: disk full")
    run = ledger.run(run_id)
    assert run["status"] == "failed" and run["error"] == "StoreError: disk full"
    with pytest.raises(ValueError, match="status"):
        ledger.finish_run_writes(run_id, "running")


def test_watermark_and_files_writes_accumulate(ledger: Ledger) -> None:
    with ledger.engine.begin() as conn:
        ledger.set_watermark_writes("helpdesk", "w1")(conn)
        ledger.add_files_writes("helpdesk", ["a"], "r1")(conn)
    with ledger.engine.begin() as conn:
        combine_writes(ledger.set_watermark_writes("helpdesk", "w2"),
                       ledger.add_files_writes("helpdesk", ["a", "b"], "r2"))(conn)
    assert ledger.watermark("helpdesk") == "w2"
    assert ledger.seen_files("helpdesk") == {"a", "b"} and ledger.seen_files("other") == set()


# -- the lock, in one process ----------------------------------------------------------------------
def test_the_lock_is_exclusive_reentrant_and_released(ledger: Ledger) -> None:
    ledger.acquire_lock("run-a", wait_s=0, stale_after_s=600)
    ledger.acquire_lock("run-a", wait_s=0, stale_after_s=600)  # the holder asking again
    with pytest.raises(LockTimeout) as info:
        ledger.acquire_lock("run-b", wait_s=0.2, stale_after_s=600)
    message = str(info.value)
    assert "\n" not in message and "run-a" in message and str(os.getpid()) in message and "since" in message

    ledger.release_lock("run-b")  # not the holder: nothing happens
    ledger.heartbeat("run-a")
    ledger.release_lock("run-a")
    ledger.acquire_lock("run-b", wait_s=0, stale_after_s=600)


def _set_lock_row(ledger: Ledger, **values: object) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(update(LOCK).where(LOCK.c.name == ledger.lock_name).values(**values))


def test_a_lock_without_a_recent_heartbeat_is_taken_over(ledger: Ledger, caplog) -> None:
    ledger.acquire_lock("run-old", wait_s=0, stale_after_s=600)
    _set_lock_row(ledger, host="another-host", pid=1,
                  heartbeat_at=datetime.now(UTC) - timedelta(seconds=700))

    with caplog.at_level(logging.WARNING, logger="pipeline.store.ledger"):
        ledger.acquire_lock("run-new", wait_s=0, stale_after_s=600)

    assert "took it over from run run-old on another-host" in caplog.text
    with ledger.engine.connect() as conn:
        assert conn.execute(select(LOCK.c.holder)).scalar() == "run-new"
    with pytest.raises(StoreError, match="lost the run lock"):
        ledger.heartbeat("run-old")


def test_a_lock_whose_process_is_gone_on_this_host_is_taken_over_at_once(ledger: Ledger, caplog) -> None:
    gone = processes().Process(target=time.sleep, args=(0,))
    gone.start()
    gone.join()
    now = datetime.now(UTC)
    with ledger.engine.begin() as conn:
        conn.execute(insert(LOCK).values(name=ledger.lock_name, holder="run-dead", host=ledger.host,
                                         pid=gone.pid, acquired_at=now, heartbeat_at=now))

    with caplog.at_level(logging.WARNING, logger="pipeline.store.ledger"):
        ledger.acquire_lock("run-new", wait_s=0, stale_after_s=3600)
    assert f"process {gone.pid} on this host is gone" in caplog.text


def test_a_fresh_lock_of_a_live_process_elsewhere_is_not_taken_over(ledger: Ledger) -> None:
    ledger.acquire_lock("run-a", wait_s=0, stale_after_s=600)
    _set_lock_row(ledger, host="another-host", pid=1)
    with pytest.raises(LockTimeout, match="another-host"):
        ledger.acquire_lock("run-b", wait_s=0.1, stale_after_s=600)


# -- the lock, between processes -------------------------------------------------------------------
def _contend(sql_url: str, run_id: str, barrier, wait_s: float, hold_s: float, results) -> None:
    """In a child process: race for the lock once all are ready, hold it ``hold_s``, report what happened."""
    engine = create_engine(sql_url)
    ledger = Ledger(engine, poll_s=0.05)
    barrier.wait(timeout=120)
    try:
        ledger.acquire_lock(run_id, wait_s=wait_s, stale_after_s=600)
    except LockTimeout:
        results.put((run_id, "timeout", time.time(), time.time()))
        return
    got = time.time()
    time.sleep(hold_s)
    released = time.time()
    ledger.release_lock(run_id)
    results.put((run_id, "won", got, released))
    engine.dispose()


def _race(sql_url: str, runs: list[tuple[str, float, float]]) -> list[tuple]:
    """Start one process per (run_id, wait_s, hold_s), all trying at the same moment."""
    ctx = processes()
    results, barrier = ctx.Queue(), ctx.Barrier(len(runs))
    procs = [ctx.Process(target=_contend, args=(sql_url, run_id, barrier, wait_s, hold_s, results))
             for run_id, wait_s, hold_s in runs]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    return outcomes


def test_exactly_one_of_several_processes_gets_the_lock(engine, sql_url: str) -> None:
    outcomes = _race(sql_url, [(f"run-{i}", 0.3, 2.0) for i in range(4)])
    assert sorted(kind for _, kind, _, _ in outcomes) == ["timeout", "timeout", "timeout", "won"]


def test_a_waiting_process_gets_the_lock_when_the_holder_releases_it(engine, sql_url: str) -> None:
    outcomes = _race(sql_url, [("run-a", 20.0, 1.0), ("run-b", 20.0, 1.0)])
    assert [kind for _, kind, _, _ in outcomes] == ["won", "won"]
    (_, _, got_first, released_first), (_, _, got_second, _) = sorted(outcomes, key=lambda o: o[2])
    assert got_second >= released_first  # never both at once


# -- columns added to pipeline_runs after a release ------------------------------------------------------
def test_a_store_made_before_the_new_run_columns_gets_them_and_records_them(tmp_path, sql_url: str) -> None:
    """pipeline_runs of an older version (no rows_superseded, conflicts_settled, reporting_timezone,
    config_hash): ``prepare`` adds the columns, keeps the old rows, and a run records them."""
    engine = create_engine(sql_url)
    old = ", ".join(f'"{c}" TEXT' for c in sqlschema.PIPELINE_RUNS_COLUMNS if c not in sqlschema.ADDED_COLUMNS["pipeline_runs"])
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE TABLE pipeline_runs ({old}, PRIMARY KEY ("run_id"))')
        conn.exec_driver_sql("INSERT INTO pipeline_runs (run_id, kind, status) VALUES ('old-run', 'run', 'success')")
    engine.dispose()

    stores = Stores(tmp_path / "store", sql_url)
    stores.prepare()
    ledger = Ledger(stores.engine)
    run_id = ledger.start_run("run", None, None, AS_OF, reporting_timezone="Asia/Shanghai", config_hash="c0ffee")
    summary = type("Summary", (), dict(status="success", rows_read=9, rows_rejected=1, rows_superseded=6,
                                       conflicts_settled=2, rows_written=3, periods_written=1, stage_seconds={}))()
    stores.commit(run_id, [], ledger_writes=ledger.finish_run_writes(run_id, summary))

    run = ledger.run(run_id)
    assert (run["reporting_timezone"], run["config_hash"], run["rows_superseded"], run["conflicts_settled"]) == (
        "Asia/Shanghai", "c0ffee", 6, 2)
    assert ledger.run("old-run")["status"] == "success"
    parquet = stores.read("pipeline_runs").set_index("run_id")
    assert parquet.loc[run_id, "rows_superseded"] == 6 and pd.isna(parquet.loc["old-run", "config_hash"])
    stores.close()
