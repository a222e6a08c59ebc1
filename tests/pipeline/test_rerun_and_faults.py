"""Reruns and failures of a whole run, on SQLite and PostgreSQL with real Parquet.

- the same backfill twice gives the same tables, never duplicates;
- a failure injected at each of ``Stores``' fault points leaves both stores as they were (before the SQL
  commit) or at the new state (after it), and ``pipeline_runs`` records the failed run;
- a process SIGKILLed inside the commit leaves the stores consistent, and the next run takes over its
  stale lock, settles the interrupted commit and succeeds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import e2e_helpers as h
import pandas as pd
import pytest

from pipeline.jobs import run_job
from pipeline.periods import dates_window
from pipeline.settings import Settings
from pipeline.store import FAULT_POINTS, Stores
from pipeline.store.errors import StoreError

AS_OF = pd.Timestamp(h.AS_OF).tz_convert("UTC")
WINDOW = dates_window(date(2026, 7, 1), date(2026, 7, 31))
BEFORE_SQL_COMMIT = ("handed_over", "parquet_staged", "before_sql_commit")
RAW = ("raw_tickets", "raw_events")


def _setup(tmp_path: Path, sql_url: str) -> tuple[Path, Settings]:
    """A source folder with the v1 export, a config, and the settings (SQL URL from the environment)."""
    source = h.export_canonical_csv(tmp_path)
    config = h.write_config(tmp_path / "itsm-kpi.toml", tmp_path / "store", source)
    return config, Settings.load(config, env={"ITSM_KPI_STORE__SQL_URL": sql_url})


def _state(settings: Settings, drop: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Every output table (SQL == Parquet asserted) and the Parquet raw layer."""
    store, url = settings.store.path, settings.store.sql_url
    state = h.snapshot(store, url, drop=drop)
    state.update({t: h.parquet_only(store, t) for t in RAW})
    return state


def _assert_settled(settings: Settings) -> None:
    """No commit in flight: no journal, nothing staged, the run lock free."""
    root = settings.store.path
    assert not (root / ".journal.json").exists()
    staging = root / ".staging"
    assert not staging.exists() or not any(staging.iterdir())
    assert len(h.read_sql(settings.store.sql_url, "run_lock")) == 0


@pytest.fixture(scope="module")
def state_v2(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple]]:
    """What a clean backfill of the v2 export gives (the state after a commit that got through)."""
    folder = tmp_path_factory.mktemp("v2")
    config = h.write_config(folder / "itsm-kpi.toml", folder / "store", h.export_canonical_csv(folder, v2=True))
    settings = Settings.load(config, env={})
    run_job(settings, kind="backfill", as_of=AS_OF, window=WINDOW)
    return _state(settings)


# --- rerun -------------------------------------------------------------------------------------------
def test_the_same_backfill_twice_replaces_rows_and_never_duplicates(tmp_path: Path, sql_url: str) -> None:
    config, settings = _setup(tmp_path, sql_url)
    with (tmp_path / "tickets.csv").open("a", encoding="utf-8") as f:
        f.write("BAD1,incident,P3,Pending,2026-07-02T09:00:00+08:00" + "," * (len(h.TICKET_FIELDS) - 5) + "\n")  # rejected
    env = {"ITSM_KPI_STORE__SQL_URL": sql_url}
    later = "2026-08-01T01:00:00+08:00"  # a Saturday night hour: no business time passes, only as_of moves

    h.backfill(config, sql_url=sql_url)
    first = _state(settings, drop=("as_of", "run_id"))
    h.cli("backfill", *h.JULY, "--config", str(config), "--as-of", later, env=env)
    second = _state(settings, drop=("as_of", "run_id"))

    for table in (*h.OUTPUT_TABLES, "rejected_rows", *RAW):
        assert second[table] == first[table], table
    assert len(first["ticket_facts"]) == 21
    # the rows were replaced (they carry the second as_of), not left alone
    facts = h.table_rows(settings.store.path, sql_url, "ticket_facts")
    assert {h.by_key("ticket_facts", facts, ticket_id=t)["as_of"] for t in ("INC001", "CHG005")} == {
        "2026-07-31T17:00:00+00:00"}
    runs = h.run_rows(sql_url)
    assert [r["status"] for r in runs] == ["success", "success"]
    # the rejected row is recorded once, by the run that read it last
    rejected = h.table_rows(settings.store.path, sql_url, "rejected_rows")
    assert [(r[0], r[5]) for r in rejected] == [(runs[1]["run_id"], "unmapped status 'Pending'")]


# --- injected failures -------------------------------------------------------------------------------
class Injected(OSError):
    """A disk or network failure at a fault point."""


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_a_failure_at_each_fault_point_leaves_the_stores_before_or_after(
        point: str, tmp_path: Path, sql_url: str, state_v2) -> None:
    config, settings = _setup(tmp_path, sql_url)
    run_job(settings, kind="backfill", as_of=AS_OF, window=WINDOW)
    before = _state(settings)
    assert before != state_v2  # the v2 input changes the tables, so "as before" is not "as after"
    h.export_canonical_csv(tmp_path, v2=True)
    seen: list[str] = []

    def fault(at: str) -> None:
        seen.append(at)
        if at == point:
            raise Injected(f"injected at {at}")

    with pytest.raises(StoreError, match=f"injected at {point}"):
        run_job(settings, kind="backfill", as_of=AS_OF, window=WINDOW, fault=fault)

    assert seen[-1] == point
    expected = before if point in BEFORE_SQL_COMMIT else state_v2
    assert _state(settings) == expected
    _assert_settled(settings)
    runs = h.run_rows(sql_url)
    assert [r["status"] for r in runs] == ["success", "failed"]
    assert f"injected at {point}" in runs[1]["error"] and runs[1]["finished_at"] is not None


def test_a_ctrl_c_during_a_run_rolls_it_back_and_records_it_failed(tmp_path: Path, sql_url: str) -> None:
    """Ctrl-C (KeyboardInterrupt, not an Exception) once tables were handed to the staging: the run's
    row said ``running`` for ever before, as if it were still going; now it says failed, and why."""
    config, settings = _setup(tmp_path, sql_url)
    run_job(settings, kind="backfill", as_of=AS_OF, window=WINDOW)
    before = _state(settings)
    h.export_canonical_csv(tmp_path, v2=True)

    def ctrl_c(at: str) -> None:
        if at == "handed_over":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(settings, kind="backfill", as_of=AS_OF, window=WINDOW, fault=ctrl_c)

    assert _state(settings) == before
    _assert_settled(settings)
    runs = h.run_rows(sql_url)
    assert [(r["status"], r["error"]) for r in runs] == [("success", None), ("failed", "interrupted by SIGINT")]
    assert runs[1]["finished_at"] is not None


# --- a killed process -------------------------------------------------------------------------------
_CHILD = textwrap.dedent("""
    import os, signal, sys
    from datetime import date
    from pathlib import Path
    import pandas as pd
    from pipeline.jobs import run_job
    from pipeline.periods import dates_window
    from pipeline.settings import Settings

    def fault(point):
        if point == sys.argv[2]:
            os.kill(os.getpid(), signal.SIGKILL)

    settings = Settings.load(Path(sys.argv[1]))
    run_job(settings, kind="backfill", as_of=pd.Timestamp(sys.argv[3]),
            window=dates_window(date(2026, 7, 1), date(2026, 7, 31)), fault=fault)
    print("not killed")
""")


def _kill_inside_the_commit(point: str, tmp_path: Path, sql_url: str, state_v2) -> None:
    config, settings = _setup(tmp_path, sql_url)
    run_job(settings, kind="backfill", as_of=AS_OF, window=WINDOW)
    before = _state(settings)
    h.export_canonical_csv(tmp_path, v2=True)

    env = {k: v for k, v in os.environ.items() if not k.startswith("ITSM_KPI_")}
    env["ITSM_KPI_STORE__SQL_URL"] = sql_url
    child = subprocess.run([sys.executable, "-c", _CHILD, str(config), point, h.AS_OF], env=env,
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert len(h.read_sql(sql_url, "run_lock")) == 1  # the dead run still holds the lock
    runs = h.run_rows(sql_url)
    assert len(runs) == 2
    killed_id = runs[1]["run_id"]
    # its ledger row committed with its data, or not at all
    assert runs[1]["status"] == ("running" if point in BEFORE_SQL_COMMIT else "success")

    # what a reader sees before anyone recovers: SQL before or after the commit, never half of it
    sql_expected = before if point in BEFORE_SQL_COMMIT else state_v2
    for table in h.OUTPUT_TABLES:
        assert h.rows(h.read_sql(sql_url, table), table) == sql_expected[table], table
    # opening the stores settles the Parquet side to match SQL (rolled back, or the swap finished)
    Stores(settings.store.path, sql_url).prepare()
    assert _state(settings) == sql_expected

    # the next run takes over the stale lock and succeeds
    result = h.cli("backfill", *h.JULY, "--config", str(config), "--as-of", h.AS_OF,
                   env={"ITSM_KPI_STORE__SQL_URL": sql_url})
    assert result.code == 0, result.err
    assert "took it over" in result.err
    assert _state(settings) == state_v2
    _assert_settled(settings)
    runs = {r["run_id"]: r for r in h.run_rows(sql_url)}
    assert len(runs) == 3
    # a killed run that had committed is a success; one that had not is closed as failed by the taker
    killed = runs[killed_id]
    if point in BEFORE_SQL_COMMIT:
        assert killed["status"] == "failed" and killed["finished_at"] is not None
        assert "abandoned" in killed["error"] and "gone" in killed["error"]
    else:
        assert killed["status"] == "success"


@pytest.mark.parametrize(("point", "backend"), [
    ("before_sql_commit", "sqlite"),
    pytest.param("before_sql_commit", "postgresql", marks=[pytest.mark.postgres, pytest.mark.integration]),
    ("after_sql_commit", "sqlite"),
    ("parquet_staged", "sqlite"),  # before the journal: only the Parquet side has anything to clean up
    ("handed_over", "sqlite"),  # tables staged while the run computes, no commit begun
])
def test_a_run_killed_inside_the_commit_is_settled_and_the_next_run_succeeds(
        point: str, backend: str, request: pytest.FixtureRequest, tmp_path: Path, state_v2) -> None:
    """A kill after the SQL commit on PostgreSQL is covered by the injected after_sql_commit failure: the
    database has committed either way, and recovery is the Parquet side's, the same for both backends."""
    sql_url = (f"sqlite:///{tmp_path / 'kpi.sqlite'}" if backend == "sqlite"
               else request.getfixturevalue("postgres_url"))
    _kill_inside_the_commit(point, tmp_path, sql_url, state_v2)


@pytest.mark.parametrize("command", ["query", "report", "explain"])
def test_a_reader_finishes_the_parquet_swap_of_a_run_killed_after_its_sql_commit(
        command: str, tmp_path: Path, state_v2) -> None:
    """Killed between its SQL commit and its Parquet swap, a run left SQL at the new state and Parquet at
    the old one until the next run; a reader over Parquet saw the old. docs/operations.md says "any command
    that opens the stores finishes the Parquet swap": the readers now do, before they read."""
    sql_url = f"sqlite:///{tmp_path / 'kpi.sqlite'}"
    config, settings = _setup(tmp_path, sql_url)
    run_job(settings, kind="backfill", as_of=AS_OF, window=WINDOW)
    h.export_canonical_csv(tmp_path, v2=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITSM_KPI_")}
    child = subprocess.run([sys.executable, "-c", _CHILD, str(config), "after_sql_commit", h.AS_OF],
                           env={**env, "ITSM_KPI_STORE__SQL_URL": sql_url}, capture_output=True, timeout=120)
    assert child.returncode == -signal.SIGKILL
    journal = settings.store.path / ".journal.json"
    assert journal.exists()
    stale = h.parquet_only(settings.store.path, "ticket_facts")
    assert stale != state_v2["ticket_facts"]  # what a reader over Parquet read

    args = {"query": ["query", "--engine", "parquet", "SELECT COUNT(*) FROM ticket_facts"],
            "report": ["report", "--period", "2026-07", "--out", str(tmp_path / "r.html")],
            "explain": ["explain", "INC001"]}[command]
    result = h.cli(*args, "--config", str(config), env={"ITSM_KPI_STORE__SQL_URL": sql_url})
    assert result.code == 0, result.err
    assert not journal.exists()
    assert _state(settings) == state_v2  # Parquet as SQL: the killed run's commit


# --- a long SQLite transaction ------------------------------------------------------------------------
def test_a_run_reads_its_recorded_state_before_its_staged_writes_can_lock_sqlite(tmp_path: Path,
                                                                                 monkeypatch) -> None:
    """The staged SQL writes run in one transaction until the commit; once SQLite spills its pages to the
    file that transaction locks the database, and a ledger read on another connection waits for it (at 1M
    tickets the first run died with "database is locked" after 60 s). A page cache of a few pages spills
    at once and a 1 s wait fails fast: the run must not read the ledger after its first staged write."""
    from pipeline.store import sql

    monkeypatch.setattr(sql, "_SQLITE_CACHE_KIB", 1)
    monkeypatch.setattr(sql, "_SQLITE_BUSY_TIMEOUT_S", 1)
    _, settings = _setup(tmp_path, f"sqlite:///{tmp_path / 'store' / 'kpi.sqlite'}")
    first = run_job(settings, kind="run", as_of=AS_OF)
    night = run_job(settings, kind="run", as_of=AS_OF + pd.Timedelta(days=1))
    assert (first.status, night.status) == ("success", "success")
