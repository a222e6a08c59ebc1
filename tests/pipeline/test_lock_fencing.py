"""Lock fencing between two real processes, on SQLite and PostgreSQL with real Parquet.

Run A takes the lock, reads the July export and stalls (a long GC pause, a suspended VM: alive but
silent, its heartbeat as good as stopped). The export is corrected (v2); run B, a real ``itsm-kpi``
process, finds A's lock older than ``run.stale_lock``, takes it over, runs and commits. Then A wakes:

- with no heartbeat in between, A computes and tries to commit: the commit's fence refuses it;
- with a heartbeat that noticed the take-over, A stops at its next stage, before its commit.

Either way A exits 5 with one line naming B, nothing of A's is in either store (both equal what a clean
v2 backfill gives), and ``pipeline_runs`` holds A ``failed`` with that reason and B ``success``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from datetime import date
from pathlib import Path

import e2e_helpers as h
import pandas as pd
import pytest

from pipeline.jobs import run_job
from pipeline.periods import dates_window
from pipeline.settings import Settings

AS_OF = pd.Timestamp(h.AS_OF).tz_convert("UTC")
RAW = ("raw_tickets", "raw_events")
LOST = re.compile(r"itsm-kpi: run (backfill-\S+) lost the run lock to run (backfill-\S+) "
                  r"\(taken over as stale after \d+ s\); nothing of this run was committed")

# Run A: `itsm-kpi backfill ...` through the CLI, with its heartbeat every HEARTBEAT_S seconds, stalling
# once its sources are read (stage "merge": nothing written yet) until the file GO exists.
_RUN_A = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import pipeline.jobs as jobs
    from pipeline.cli import main

    stalled, go, jobs.HEARTBEAT_S = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    run_job = jobs.run_job

    def stage(name):
        print(f"stage {name}", file=sys.stderr, flush=True)
        if name == "merge":
            stalled.touch()
            deadline = time.monotonic() + 600
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.05)

    def fault(point):
        print(f"fault point {point}", file=sys.stderr, flush=True)

    jobs.run_job = lambda settings, **kw: run_job(settings, **{**kw, "progress": stage, "fault": fault})
    sys.exit(main(sys.argv[4:]))
""")


def _setup(tmp_path: Path, sql_url: str) -> tuple[Path, Settings]:
    """The v1 export, a config whose lock is stale after 1 s, and its settings."""
    source = h.export_canonical_csv(tmp_path)
    config = h.write_config(tmp_path / "itsm-kpi.toml", tmp_path / "store", source,
                            extra='[run]\nstale_lock = "1s"\nlock_wait = "5m"\n')
    return config, Settings.load(config, env={"ITSM_KPI_STORE__SQL_URL": sql_url})


def _state(settings: Settings) -> dict[str, list[tuple]]:
    """Every output table (SQL == Parquet asserted) and the Parquet raw layer."""
    store, url = settings.store.path, settings.store.sql_url
    state = h.snapshot(store, url)
    state.update({t: h.parquet_only(store, t) for t in RAW})
    return state


@pytest.fixture(scope="module")
def state_v2(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple]]:
    """What a clean backfill of the v2 export gives: B's result, and nothing else."""
    folder = tmp_path_factory.mktemp("v2")
    config = h.write_config(folder / "itsm-kpi.toml", folder / "store", h.export_canonical_csv(folder, v2=True))
    settings = Settings.load(config, env={})
    run_job(settings, kind="backfill", as_of=AS_OF, window=dates_window(date(2026, 7, 1), date(2026, 7, 31)))
    return _state(settings)


class RunA:
    """Run A as a real process, stalled once it holds the lock and has read its sources; its stderr
    collected line by line as it comes."""

    def __init__(self, tmp_path: Path, config: Path, env: dict[str, str], heartbeat_s: float) -> None:
        self.stalled, self.go = tmp_path / "a-stalled", tmp_path / "a-go"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _RUN_A, str(self.stalled), str(self.go), str(heartbeat_s),
             "backfill", *h.JULY, "--config", str(config), "--as-of", h.AS_OF],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_until(lambda: self.stalled.exists(), "A to stall")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_until(self, condition, what: str, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert self.proc.poll() is None, f"A exited {self.proc.returncode} waiting for {what}: {self.lines[-20:]}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.lines[-20:]}"
            time.sleep(0.05)

    def wake(self) -> int:
        """Let A go on; its exit status once it is done."""
        self.go.touch()
        code = self.proc.wait(timeout=600)
        self._reader.join(30)
        return code


def _take_over_and_wake(tmp_path: Path, sql_url: str, heartbeat_s: float) -> tuple[Settings, list[str]]:
    """A stalls, B takes its lock over and commits v2, A wakes and exits 5; returns A's stderr lines."""
    config, settings = _setup(tmp_path, sql_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITSM_KPI_")}
    env["ITSM_KPI_STORE__SQL_URL"] = sql_url
    a = RunA(tmp_path, config, env, heartbeat_s)
    try:
        h.export_canonical_csv(tmp_path, v2=True)  # A has read v1; B reads the corrected export
        b = h.cli_process("backfill", *h.JULY, "--config", str(config), "--as-of", h.AS_OF, env=env, timeout=600)
        assert b.code == 0, b.err[-3000:]
        assert "took it over from run backfill-" in b.err
        if heartbeat_s < 3600:  # A's heartbeat finds the lock lost while A still stalls
            a.wait_until(lambda: any("stopping so two runs never write at once" in line for line in a.lines),
                         "A's heartbeat to find the lock lost")
    finally:
        code = a.wake()
    assert code == 5, a.lines[-30:]
    return settings, a.lines


def _assert_a_left_nothing(settings: Settings, lines: list[str], state_v2) -> None:
    """A's one-line reason names B; both stores hold B's result only; the ledger says who won."""
    reasons = [line for line in lines if line.startswith("itsm-kpi:")]
    assert len(reasons) == 1 and (match := LOST.fullmatch(reasons[0])), lines[-20:]
    a_id, b_id = match.groups()
    assert _state(settings) == state_v2
    root = settings.store.path
    assert not (root / ".journal.json").exists() and not any((root / ".staging").iterdir())
    runs = {r["run_id"]: r for r in h.run_rows(settings.store.sql_url)}
    assert set(runs) == {a_id, b_id}
    assert runs[b_id]["status"] == "success"
    assert runs[a_id]["status"] == "failed" and runs[a_id]["finished_at"] is not None
    assert runs[a_id]["error"] == "LockLost: " + reasons[0].removeprefix("itsm-kpi: ")
    assert len(h.read_sql(settings.store.sql_url, "run_lock")) == 0
    grant = h.read_sql(settings.store.sql_url, "run_lock_generation").iloc[0]
    assert (grant["generation"], grant["holder"], grant["taken_from"]) == (2, b_id, a_id)


@pytest.mark.integration
def test_a_stalled_run_whose_lock_was_taken_over_cannot_commit(tmp_path: Path, sql_url: str, state_v2) -> None:
    settings, lines = _take_over_and_wake(tmp_path, sql_url, heartbeat_s=3600)  # no heartbeat: A looks dead
    assert "stage write" in lines and "fault point handed_over" in lines  # A went on to its commit...
    assert "fault point parquet_staged" not in lines  # ... which was refused before its journal
    _assert_a_left_nothing(settings, lines, state_v2)


@pytest.mark.integration
def test_a_run_whose_heartbeat_finds_the_lock_lost_stops_before_its_commit(tmp_path: Path, state_v2) -> None:
    settings, lines = _take_over_and_wake(tmp_path, f"sqlite:///{tmp_path / 'kpi.sqlite'}", heartbeat_s=2)
    assert any("stopping so two runs never write at once" in line for line in lines)  # the heartbeat's log
    assert "stage compute" not in lines and "stage write" not in lines  # stopped at the stage after the stall
    _assert_a_left_nothing(settings, lines, state_v2)
