"""Operations: a killed run, a source down for a night, quarter backfills, and the run ledger.

Real processes (``itsm-kpi`` killed with SIGKILL), real files, real SQLite / PostgreSQL (``sql_url``).
After every mishap the stores must agree with each other and, once the next run is through, equal a
full recomputation on a fresh store (but for ``as_of``).
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest
from ops_helpers import (
    DAY1_AS_OF,
    DAY2_AS_OF,
    DAY3_AS_OF,
    assert_same,
    assert_stores_agree,
    cli,
    load,
    month_export,
    new_tickets,
    runs,
    snapshot,
    spawn,
    sql_rows,
    wait_for_line,
    write_config,
    write_export,
)

from kpis.config import facts_fingerprint

EXIT_SOURCE = 3


@pytest.fixture
def fresh_url(sql_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A second, empty SQL store of the same kind as ``sql_url`` (for the full recomputation)."""
    if sql_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    return request.getfixturevalue("postgres_server").create_database()


def _recomputed(tmp_path: Path, fresh_url: str, sources: dict[str, Path], as_of: pd.Timestamp) -> Path:
    """A fresh store that read every file at once."""
    config = write_config(tmp_path, fresh_url, sources=sources, store=tmp_path / "fresh")
    assert cli("run", "--config", str(config), "--as-of", as_of.isoformat()) == 0
    return config


# --- a killed run -------------------------------------------------------------------------------

def test_a_killed_run_is_taken_over_and_the_stores_stay_intact(tmp_path: Path, sql_url: str, fresh_url: str) -> None:
    """SIGKILL while writing (mid-commit, before or after the SQL commit): the lock stays behind with a
    dead pid; the next run takes it over at once, the stores recover, and the result equals a full
    recomputation. (A kill while computing: the next test.)"""
    exports = tmp_path / "exports"
    write_export(exports, "2026-07-31", *month_export())
    config = write_config(tmp_path, sql_url, sources={"helpdesk": exports}, lock_wait="30s")
    proc = spawn("run", "--config", str(config), "--as-of", DAY1_AS_OF.isoformat())
    try:
        wait_for_line(proc, "stage select done", timeout=120)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    lock = sql_rows(config, "run_lock")
    assert list(lock["pid"]) == [proc.pid]  # left behind by the dead run
    assert_stores_agree(config)  # opening the stores settled any interrupted commit

    assert cli("run", "--config", str(config), "--as-of", DAY1_AS_OF.isoformat()) == 0  # no 30 s wait
    assert sql_rows(config, "run_lock").empty
    assert_stores_agree(config)
    assert_same(snapshot(config), snapshot(_recomputed(tmp_path, fresh_url, {"helpdesk": exports}, DAY1_AS_OF)))
    done = runs(config)
    assert done.iloc[-1]["status"] == "success"


def test_a_killed_runs_row_is_closed_when_its_lock_is_taken_over(tmp_path: Path) -> None:
    """SIGKILL while computing: the next run takes the lock over and records the dead run as failed."""
    exports = tmp_path / "exports"
    write_export(exports, "2026-07-31", *month_export())
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'kpi.sqlite'}", sources={"helpdesk": exports})
    proc = spawn("run", "--config", str(config), "--as-of", DAY1_AS_OF.isoformat())
    try:
        wait_for_line(proc, "stage merge done", timeout=120)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert cli("run", "--config", str(config), "--as-of", DAY1_AS_OF.isoformat()) == 0
    killed = runs(config).iloc[0]
    assert killed["status"] == "failed" and pd.notna(killed["finished_at"]), killed
    assert str(proc.pid) in killed["error"]


# --- a stopped run ------------------------------------------------------------------------------

def test_sigterm_stops_a_run_as_ctrl_c_does_rolled_back_recorded_and_its_lock_freed(tmp_path: Path) -> None:
    """``systemctl stop``, ``timeout`` or a deleted pod send SIGTERM to ``itsm-kpi run``. It died where it
    stood: no message, its row ``running`` for ever, its lock left to be taken over. Another connection
    holds SQLite's write lock from the run's start until after the signal, so the run cannot commit first."""
    exports = tmp_path / "exports"
    write_export(exports, "2026-07-31", *month_export())
    database = tmp_path / "kpi.sqlite"
    config = write_config(tmp_path, f"sqlite:///{database}", sources={"helpdesk": exports})
    blocker = sqlite3.connect(database, timeout=60, isolation_level=None)
    proc = spawn("run", "--config", str(config), "--as-of", DAY1_AS_OF.isoformat())
    try:
        wait_for_line(proc, "started (as_of", timeout=120)  # its row and lock are written
        blocker.execute("BEGIN IMMEDIATE")  # the run's staged writes, and so its commit, now wait
        wait_for_line(proc, "stage merge done", timeout=120)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # for the signal to land while the lock is held (it is handled at once)
        blocker.execute("ROLLBACK")
        _, err = proc.communicate(timeout=120)
    finally:
        blocker.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert err.splitlines()[-1] == "itsm-kpi: interrupted by SIGTERM; the stores were left as they were"
    assert "Traceback" not in err
    stopped = runs(config)
    assert list(stopped["status"]) == ["failed"] and list(stopped["error"]) == ["interrupted by SIGTERM"]
    assert pd.notna(stopped.iloc[0]["finished_at"])
    assert sql_rows(config, "run_lock").empty
    assert sql_rows(config, "ticket_facts").empty and sql_rows(config, "source_files").empty  # none read
    assert_stores_agree(config)
    assert cli("run", "--config", str(config), "--as-of", DAY1_AS_OF.isoformat()) == 0  # nothing to take over


# --- a source down for a night ------------------------------------------------------------------

def test_a_source_down_for_a_night_catches_up_the_next(tmp_path: Path, sql_url: str, fresh_url: str) -> None:
    helpdesk, field = tmp_path / "helpdesk", tmp_path / "field"
    write_export(helpdesk, "2026-07-31", *month_export())
    write_export(field, "2026-07-31", *new_tickets("INC0", "2026-07-10", 5))  # ids also used by helpdesk
    sources = {"helpdesk": helpdesk, "field": field}
    config = write_config(tmp_path, sql_url, sources=sources)
    assert cli("run", "--config", str(config), "--as-of", DAY1_AS_OF.isoformat()) == 0
    files_before = sql_rows(config, "source_files")
    field_facts = _facts_of(config, "field")

    # night 2: helpdesk has a new file; field's share is not mounted
    write_export(helpdesk, "2026-08-01", *new_tickets("HLP", "2026-08-01", 4, "王芳"))
    shutil.move(field, tmp_path / "field-unmounted")
    assert cli("run", "--config", str(config), "--as-of", DAY2_AS_OF.isoformat()) == EXIT_SOURCE
    night2 = runs(config).iloc[-1]
    assert night2["status"] == "partial"
    assert night2["error"].startswith("field: source field: path ") and "no file matches it" in night2["error"]
    files = sql_rows(config, "source_files")
    assert _keys(files, "field") == _keys(files_before, "field")  # nothing of field's marked read
    assert len(_keys(files, "helpdesk")) == len(_keys(files_before, "helpdesk")) + 2  # tickets + events file
    assert set(_facts_of(config, "helpdesk")["ticket_id"]) >= {"HLP000", "HLP003"}  # helpdesk went through
    pd.testing.assert_frame_equal(_facts_of(config, "field"), field_facts)  # field's facts as they were
    assert_stores_agree(config)

    # night 3: field is back, with a file it wrote meanwhile
    shutil.move(tmp_path / "field-unmounted", field)
    write_export(field, "2026-08-02", *new_tickets("FLD", "2026-08-02", 3))
    assert cli("run", "--config", str(config), "--as-of", DAY3_AS_OF.isoformat()) == 0
    assert list(runs(config)["status"]) == ["success", "partial", "success"]
    assert_stores_agree(config)
    assert_same(snapshot(config), snapshot(_recomputed(tmp_path, fresh_url, sources, DAY3_AS_OF)))


def _facts_of(config: Path, source: str) -> pd.DataFrame:
    facts = sql_rows(config, "ticket_facts")
    return facts[facts["source"] == source].reset_index(drop=True)


def _keys(files: pd.DataFrame, source: str) -> set[str]:
    return set(files.loc[files["source"] == source, "file_key"])


# --- backfills ----------------------------------------------------------------------------------

@pytest.fixture
def nightly_store(tmp_path: Path, sql_url: str) -> Path:
    """A store whose nightly run has loaded the July export."""
    exports = tmp_path / "exports"
    write_export(exports, "2026-07-31", *month_export())
    config = write_config(tmp_path, sql_url, sources={"helpdesk": exports})
    assert cli("run", "--config", str(config), "--as-of", DAY1_AS_OF.isoformat()) == 0
    return config


def test_a_quarter_backfill_twice_changes_nothing_and_leaves_watermarks(nightly_store: Path) -> None:
    config = nightly_store
    nightly = snapshot(config)
    ledger_before = {t: sql_rows(config, t) for t in ("source_state", "source_files")}
    as_of = DAY2_AS_OF.isoformat()
    assert cli("backfill", "--quarter", "2026Q3", "--config", str(config), "--as-of", as_of) == 0
    once = snapshot(config, drop=())
    assert cli("backfill", "--quarter", "2026Q3", "--config", str(config), "--as-of", as_of) == 0
    assert_same(snapshot(config, drop=()), once)
    # the quarter holds every ticket: the same numbers, but for what the clock moves between the night's
    # as_of (DAY1) and the backfill's (DAY2, a day later; DECISIONS.md D84)
    clock = ("ticket_status_time", "kpi_backlog")
    after = snapshot(config)
    assert_same({k: v for k, v in after.items() if k[1] not in clock}, {k: v for k, v in nightly.items() if k[1] not in clock})
    for store in ("sql", "parquet"):
        status = after[(store, "ticket_status_time")].merge(nightly[(store, "ticket_status_time")], how="outer",
                                                            on=["source", "ticket_id", "status"], suffixes=("", "_night"))
        grown = status["calendar_s"] - status["calendar_s_night"]
        # the same rows; the open tickets' current status (INC0003, INC0004) is one day (86400 s) longer
        assert status["calendar_s_night"].notna().all() and set(grown) == {0, 86_400}
        assert set(status.loc[grown > 0, "ticket_id"]) == {"INC0003", "INC0004"}
        backlog, night = after[(store, "kpi_backlog")], nightly[(store, "kpi_backlog")]
        # every day up to the night's (08-01) as it was; the backfill adds 08-02
        assert_same({0: backlog[backlog["day"] <= night["day"].max()].reset_index(drop=True)}, {0: night})
        assert set(backlog.loc[backlog["day"] > night["day"].max(), "day"]) == {pd.Timestamp("2026-08-02")}
    for table, before in ledger_before.items():
        pd.testing.assert_frame_equal(sql_rows(config, table), before)
    done = runs(config)
    assert list(done["kind"]) == ["run", "backfill", "backfill"] and set(done["status"]) == {"success"}
    assert_stores_agree(config)


def test_a_backfill_makes_the_next_nightly_run_recompute_every_fact(nightly_store: Path) -> None:
    """A backfill writes the facts of its window only, so the stored facts no longer say which settings
    and which as_of they were computed at; a nightly run records both again (DECISIONS.md D97)."""
    config = nightly_store
    fingerprint = facts_fingerprint(load(config).kpi)
    assert _recorded(config, "facts_fingerprint") == fingerprint
    assert pd.Timestamp(_recorded(config, "facts_as_of")) == DAY1_AS_OF
    assert cli("backfill", "--quarter", "2026Q3", "--config", str(config), "--as-of", DAY2_AS_OF.isoformat()) == 0
    assert _recorded(config, "facts_fingerprint") is None and _recorded(config, "facts_as_of") is None
    assert cli("run", "--config", str(config), "--as-of", DAY2_AS_OF.isoformat()) == 0
    assert _recorded(config, "facts_fingerprint") == fingerprint
    assert pd.Timestamp(_recorded(config, "facts_as_of")) == DAY2_AS_OF


def _recorded(config: Path, name: str) -> str | None:
    state = sql_rows(config, "store_state").set_index("name")["value"]
    return state.get(name)


def test_a_backfill_records_its_window_in_utc(nightly_store: Path) -> None:
    assert cli("backfill", "--quarter", "2026Q3", "--config", str(nightly_store)) == 0
    backfill = runs(nightly_store).iloc[-1]
    assert backfill["window_from"] == pd.Timestamp("2026-06-30T16:00:00Z")  # 07-01 00:00 in Shanghai
    assert backfill["window_to"] == pd.Timestamp("2026-09-30T16:00:00Z")  # 10-01 00:00, excluded


def test_reruns_never_duplicate_rejected_rows(nightly_store: Path) -> None:
    """CONTRACT: a rerun of the same window with the same input replaces rows, never duplicates them."""
    config = nightly_store
    for _ in range(2):
        assert cli("backfill", "--quarter", "2026Q3", "--config", str(config), "--as-of", DAY2_AS_OF.isoformat()) == 0
    rejected = sql_rows(config, "rejected_rows")
    per_row = rejected.groupby(["source", "ticket_id", "row_kind", "reason"]).size()
    assert per_row.to_dict() == {("helpdesk", "INC0999", "ticket", "unmapped status 'ON_HOLD?'"): 1}


# --- the run ledger -----------------------------------------------------------------------------

def test_every_run_leaves_a_pipeline_runs_row(tmp_path: Path, sql_url: str) -> None:
    """success, partial and failed runs each leave one row with its end, counts and reason."""
    good, missing = tmp_path / "good", tmp_path / "missing"
    write_export(good, "2026-08-01", *new_tickets("OK", "2026-08-01", 3))
    config = write_config(tmp_path, sql_url, sources={"good": good})
    assert cli("run", "--config", str(config), "--as-of", DAY2_AS_OF.isoformat()) == 0
    partial = write_config(tmp_path, sql_url, sources={"good": good, "missing": missing}, store=tmp_path / "store")
    assert cli("run", "--config", str(partial), "--as-of", DAY2_AS_OF.isoformat()) == EXIT_SOURCE
    # a file with naive timestamps and no source timezone: a config error found mid-run
    naive = tmp_path / "naive"
    tickets, events = new_tickets("NV", "2026-08-01", 2)
    write_export(naive, "2026-08-01", [{**t, "opened_at": t["opened_at"][:19]} for t in tickets], events)
    broken = write_config(tmp_path, sql_url, sources={"naive": naive}, store=tmp_path / "store")
    broken.write_text(broken.read_text().replace('timezone = "Asia/Shanghai"\n\n[[scorecard]]',
                                                 "\n[[scorecard]]"))
    assert cli("run", "--config", str(broken), "--as-of", DAY2_AS_OF.isoformat()) == 2
    done = runs(config)
    assert list(done["status"]) == ["success", "partial", "failed"]
    assert done["finished_at"].notna().all() and (done["pid"] == os.getpid()).all()
    assert done.iloc[1]["error"].startswith("missing: ")
    assert "timezone" in done.iloc[2]["error"]
    assert done.iloc[0]["rows_written"] > 0 and done.iloc[2]["rows_written"] == 0
    assert sql_rows(config, "run_lock").empty
    assert_stores_agree(config)
