"""The run ledger and the run lock, on a real SQLite file and a real PostgreSQL server.

The lock is tested between real processes: exactly one of several processes racing for it wins, a
waiting process gets it when the holder releases it, and a stale holder is taken over. Its fencing
token (the generation in run_lock_generation) rises with every grant, and a holder that was taken over
cannot commit (tests/pipeline/test_lock_fencing.py does the same with whole runs in two processes).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import multiprocessing.context
import os
import re
import time
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import create_engine, delete, insert, select, text, update

from pipeline.store import Replacement, Stores
from pipeline.store import schema as sqlschema
from pipeline.store.errors import LockLost, LockTimeout
from pipeline.store.ledger import Ledger, combine_writes

LOCK = sqlschema.metadata.tables["run_lock"]
GENERATION = sqlschema.metadata.tables["run_lock_generation"]
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
    with pytest.raises(LockLost, match="run run-old lost the run lock to run run-new"):
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


# -- the fencing token ------------------------------------------------------------------------------
def _make_stale(ledger: Ledger, silent_s: float = 700) -> None:
    """The holder has not been heard of for ``silent_s`` (a stalled process: alive, but silent)."""
    _set_lock_row(ledger, heartbeat_at=datetime.now(UTC) - timedelta(seconds=silent_s))


def _grant(ledger: Ledger) -> dict:
    with ledger.engine.connect() as conn:
        return dict(conn.execute(select(GENERATION)).mappings().one())


def test_every_grant_raises_the_generation_which_outlives_the_lock_row(ledger: Ledger) -> None:
    assert ledger.acquire_lock("run-a", wait_s=0, stale_after_s=600) == 1
    assert ledger.acquire_lock("run-a", wait_s=0, stale_after_s=600) == 1  # the holder asking again keeps it
    ledger.release_lock("run-a")
    assert ledger.acquire_lock("run-b", wait_s=0, stale_after_s=600) == 2  # the row was deleted, the count kept
    _make_stale(ledger)
    assert ledger.acquire_lock("run-c", wait_s=0, stale_after_s=600) == 3  # taken over
    grant = _grant(ledger)
    assert (grant["holder"], grant["taken_from"]) == ("run-c", "run-b") and 700 <= grant["taken_after_s"] < 800
    with ledger.engine.begin() as conn:
        conn.execute(delete(LOCK))  # an operator frees a lock by hand (docs/operations.md)
    assert ledger.acquire_lock("run-d", wait_s=0, stale_after_s=600) == 4
    assert ledger.tokens["run-d"] == 4  # remembered for the commit's check
    grant = _grant(ledger)
    assert (grant["generation"], grant["holder"], grant["taken_from"], grant["taken_after_s"]) == (4, "run-d", None, None)


def test_the_fence_lets_the_holder_commit_and_stops_a_run_that_was_taken_over(ledger: Ledger) -> None:
    old = ledger.acquire_lock("run-old", wait_s=0, stale_after_s=600)
    with ledger.engine.begin() as conn:
        ledger.fence_writes("run-old", old)(conn)  # the holder passes
    _make_stale(ledger)
    taker = Ledger(ledger.engine)
    new = taker.acquire_lock("run-new", wait_s=0, stale_after_s=600)
    assert new == old + 1

    with pytest.raises(LockLost) as lost, ledger.engine.begin() as conn:
        ledger.set_watermark_writes("helpdesk", "moved by run-old")(conn)
        ledger.fence_writes("run-old", old)(conn)
    assert ledger.watermark("helpdesk") is None  # the whole transaction rolled back
    assert re.fullmatch(r"run run-old lost the run lock to run run-new \(taken over as stale after 7\d\d s\); "
                        r"nothing of this run was committed", str(lost.value))
    with ledger.engine.begin() as conn:
        taker.fence_writes("run-new", new)(conn)  # the new holder passes
    with pytest.raises(LockLost, match="it held generation 1; run run-new was granted generation 2"), \
            ledger.engine.begin() as conn:
        taker.fence_writes("run-new", old)(conn)  # the right holder with an old token


def test_a_run_that_lost_the_lock_commits_nothing_to_either_store(tmp_path, sql_url: str) -> None:
    stores = Stores(tmp_path / "store", sql_url)
    stores.prepare()
    ledger = Ledger(stores.engine)
    ledger.acquire_lock("run-old", wait_s=0, stale_after_s=600)
    ledger.start_run("run", None, None, AS_OF, run_id="run-old")
    _make_stale(ledger)
    Ledger(stores.engine).acquire_lock("run-new", wait_s=0, stale_after_s=600)

    rejected = Replacement("rejected_rows", pd.DataFrame({"run_id": ["run-old"]}), pd.DataFrame())
    with pytest.raises(LockLost, match="lost the run lock to run run-new"):
        stores.commit("run-old", [rejected], ledger_writes=combine_writes(
            ledger.finish_run_writes("run-old", "success"), ledger.set_watermark_writes("helpdesk", "w")))

    assert stores.read_sql("rejected_rows").empty and stores.read("rejected_rows").empty
    assert stores.read_sql("store_commits").empty and ledger.watermark("helpdesk") is None
    run = ledger.run("run-old")  # closed by the run that took the lock over; never a success
    assert run["status"] == "failed" and run["error"].startswith("abandoned: no heartbeat since")
    root = tmp_path / "store"
    assert not (root / ".journal.json").exists() and not any((root / ".staging").iterdir())
    stores.close()


def test_a_store_from_before_the_fencing_token_gets_its_table_without_an_alter(tmp_path, sql_url: str) -> None:
    stores = Stores(tmp_path / "store", sql_url)
    stores.prepare()
    ledger = Ledger(stores.engine)
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    with stores.engine.begin() as conn:  # the store as an older version left it, a dead run holding the lock
        conn.execute(text("DROP TABLE run_lock_generation"))
        conn.execute(insert(LOCK).values(name=ledger.lock_name, holder="run-before", host="another-host", pid=1,
                                         acquired_at=long_ago, heartbeat_at=long_ago))
    stores.prepare()  # what every run does first: missing tables are created
    assert ledger.acquire_lock("run-after", wait_s=0, stale_after_s=600) == 1
    assert _grant(ledger)["taken_from"] == "run-before"
    stores.close()


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
