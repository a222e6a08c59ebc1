"""pipeline/jobs.py: the run lock's heartbeat on a real SQLite file held by another writer."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

import pytest
from sqlalchemy import create_engine, select

from pipeline import jobs
from pipeline.store import schema as sqlschema
from pipeline.store.ledger import Ledger

LOCK = sqlschema.metadata.tables["run_lock"]


def test_a_heartbeat_blocked_by_a_long_write_logs_one_line_and_beats_again_once_it_ends(
        tmp_path, monkeypatch, caplog) -> None:
    path = tmp_path / "kpi.sqlite"
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})
    sqlschema.create_all(engine)
    ledger = Ledger(engine)
    ledger.acquire_lock("run-a", wait_s=1, stale_after_s=600)
    monkeypatch.setattr(jobs, "HEARTBEAT_S", 0.05)
    reader = create_engine(f"sqlite:///{path}", connect_args={"timeout": 5})  # waits out the beats' writes
    granted_beat = _heartbeat(reader)
    writer = sqlite3.connect(path)
    writer.execute("BEGIN EXCLUSIVE")  # what a run's staged SQL transaction holds on SQLite once it spills
    lost = threading.Event()
    caplog.set_level(logging.WARNING, logger="pipeline.jobs")

    stop = jobs._start_heartbeat(ledger, "run-a", lost)
    try:
        assert _within(10, lambda: any(r.name == "pipeline.jobs" for r in caplog.records))
        writer.rollback()
        assert _within(10, lambda: _heartbeat(reader) > granted_beat)  # beating again
    finally:
        stop()

    warnings = [r for r in caplog.records if r.name == "pipeline.jobs"]
    assert all(r.exc_info is None for r in warnings)  # a line each, no traceback
    assert "lock heartbeat not recorded, retrying in 0 s: cannot update the run lock heartbeat in the SQL store: " \
           "database is locked" in warnings[0].getMessage()
    assert not lost.is_set()
    writer.close()
    reader.dispose()
    engine.dispose()


def test_the_heartbeat_stops_the_run_when_its_lock_was_taken_over(tmp_path, monkeypatch) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'kpi.sqlite'}")
    sqlschema.create_all(engine)
    ledger = Ledger(engine)
    ledger.acquire_lock("run-a", wait_s=1, stale_after_s=600)
    monkeypatch.setattr(jobs, "HEARTBEAT_S", 0.05)
    lost = threading.Event()
    ledger.release_lock("run-a")
    ledger.acquire_lock("run-b", wait_s=1, stale_after_s=600)

    stop = jobs._start_heartbeat(ledger, "run-a", lost)
    try:
        assert lost.wait(2)
    finally:
        stop()
    engine.dispose()


def _heartbeat(engine):
    with engine.connect() as conn:
        return conn.execute(select(LOCK.c.heartbeat_at)).scalar_one()


def _within(seconds: float, condition) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass (the beats run on their own thread)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture(autouse=True)
def _no_leaked_threads():
    yield
    assert not [t for t in threading.enumerate() if t.name == "itsm-kpi-heartbeat" and t.is_alive()]
