"""The Dask engine on a cluster started as an operator starts one (docs/scale-out.md, *Starting a cluster*):
a ``dask scheduler`` and two ``dask worker`` processes of two threads each, launched by their command-line
tools from a folder outside the project, so that they import only the installed package. ``itsm-kpi run``
with ``[compute] engine = "dask"`` and ``scheduler`` computes on both workers and writes the tables the local
engine writes, cell by cell (issue #23)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from compute_helpers import assert_same_stores, export, generated
from distributed import Client
from e2e_helpers import cli, config_text

from pipeline.config import load_settings

START_TIMEOUT_S = 60


def _dask_tool() -> Path:
    """The ``dask`` command of this environment (the ``dask`` extra installs it beside the interpreter)."""
    tool = Path(sys.executable).with_name("dask")
    assert tool.exists(), f"{tool} missing: install the extra, pip install 'itsm-kpi[dask]'"
    return tool


def _started(args: list[str], folder: Path, log: Path) -> subprocess.Popen:
    """A process of ``dask ARGS`` run in ``folder``, outside the project, without the test's PYTHONPATH."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    with log.open("wb") as out:
        return subprocess.Popen([str(_dask_tool()), *args], cwd=folder, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def _wait_for(path: Path, processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not path.exists():
        assert all(p.poll() is None for p in processes), "the scheduler exited at start-up"
        assert time.monotonic() < deadline, f"no {path.name} after {START_TIMEOUT_S} s"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def scheduler_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The scheduler file of a cluster of two worker processes with two threads each, on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("cluster")
    scheduler_file = folder / "scheduler.json"
    processes = [_started(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                           "--scheduler-file", str(scheduler_file)], folder, folder / "scheduler.log")]
    try:
        _wait_for(scheduler_file, processes)
        processes += [_started(["worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1",
                                "--nthreads", "2", "--no-dashboard", "--name", name,
                                "--local-directory", str(folder / name)], folder, folder / f"{name}.log")
                      for name in ("worker-a", "worker-b")]
        with Client(scheduler_file=str(scheduler_file), timeout=START_TIMEOUT_S) as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT_S)
        yield scheduler_file
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _tasks_run(client: Client) -> dict[str, int]:
    """How many tasks each worker has executed so far, by worker name."""
    counts = client.run(lambda dask_worker: (dask_worker.name, dask_worker.state.executed_count))
    return dict(counts.values())


def test_run_on_a_cluster_of_worker_processes_equals_the_local_engine(tmp_path: Path, scheduler_file: Path) -> None:
    tickets, events = generated(1500)
    exports = export(tickets, events, tmp_path)
    source = {"kind": "parquet", "path": str(exports / "tickets"), "events_path": str(exports / "events"),
              "timezone": "UTC"}
    with Client(scheduler_file=str(scheduler_file)) as client:
        address = client.scheduler.address
        before = _tasks_run(client)
        configs = {}
        for name, compute in (("local", ""), ("dask", f'[compute]\nengine = "dask"\nscheduler = "{address}"\n'
                                                     "partitions = 12\n")):
            configs[name] = tmp_path / f"{name}.toml"
            configs[name].write_text(config_text(tmp_path / name, source, extra=compute), encoding="utf-8")
            result = cli("run", "--config", str(configs[name]), "--as-of", "2026-01-15T00:00:00Z")
            assert result.code == 0, result.err
        after = _tasks_run(client)
    assert sorted(after) == ["worker-a", "worker-b"]
    # 12 partitions of facts, then 12 of time in status and the backlog, shared by the two workers
    assert all(after[name] > before.get(name, 0) for name in after), (before, after)
    assert sum(after.values()) - sum(before.values()) == 24
    assert_same_stores(load_settings(configs["local"]), load_settings(configs["dask"]))
