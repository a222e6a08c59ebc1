"""The Dask engine on a real ``LocalCluster`` (2 single-threaded worker processes): every table identical to
the local engine's, both workers computing; a worker killed mid-run is retried by Dask (same tables), and
past the retries the run fails (exit 1) with both stores as they were."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest
from compute_helpers import (
    AS_OF,
    assert_same_stores,
    export,
    file_settings,
    generated,
    store_tables,
    with_compute,
)
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin, WorkerPlugin
from e2e_helpers import AS_OF as JULY_AS_OF
from e2e_helpers import JULY, cli, export_canonical_csv, write_config

from kpis import compute_facts
from kpis.backlog_scope import BacklogScope
from kpis.config import KpiSettings
from kpis.schema import TABLE_KEYS
from pipeline.cli import demo_settings
from pipeline.compute import ComputeFailed
from pipeline.compute.dask_engine import TASK_PREFIX, DaskFacts, DaskOps
from pipeline.compute.ops import OpsRequest, local_ops
from pipeline.jobs import run_job
from pipeline.periods import dates_window
from pipeline.settings import ComputeSettings

DEMO_AS_OF = pd.Timestamp("2026-07-31T00:00:00Z")


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        yield c


class KillOnFacts(WorkerPlugin):
    """Kills the worker process as it starts a facts task: once (the first to claim ``marker``), or always."""

    def __init__(self, marker: str | None) -> None:
        self.marker = marker

    def transition(self, key, start, finish, **kwargs) -> None:
        if finish != "executing" or not str(key).startswith(TASK_PREFIX):
            return
        if self.marker is not None:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
        os._exit(1)


class PeakFactsTasks(SchedulerPlugin):
    """Counts the facts tasks the scheduler holds unfinished (their arguments with them), and keeps the peak."""

    def __init__(self) -> None:
        self.live: set[str] = set()
        self.peak = 0

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        if not str(key).startswith(TASK_PREFIX):
            return
        if finish in ("waiting", "queued", "no-worker", "processing"):
            self.live.add(key)
        else:  # memory, erred, released, forgotten
            self.live.discard(key)
        self.peak = max(self.peak, len(self.live))


def _demo(root: Path, **compute: object):
    settings = with_compute(demo_settings(root), root, **compute)
    run_job(settings, kind="demo", as_of=DEMO_AS_OF)
    return settings


def test_demo_on_a_cluster_equals_the_local_engine(tmp_path: Path, cluster: LocalCluster, caplog) -> None:
    local = _demo(tmp_path / "local")
    with caplog.at_level(logging.INFO, logger="pipeline.compute.dask_engine"):
        on_dask = _demo(tmp_path / "dask", engine="dask", scheduler=cluster.scheduler_address)
    assert_same_stores(local, on_dask)
    done = [r.getMessage() for r in caplog.records if " partitions computed on " in r.getMessage()]
    # the facts, then time in status and the backlog: partitions 1 is raised to 2 per worker, both compute
    assert [m.split(" of ")[0] for m in done] == ["dask: facts", "dask: time in status and backlog"]
    assert all("computed on 2 workers" in m for m in done), done


def test_generated_set_on_a_local_cluster_of_its_own(tmp_path: Path) -> None:
    """No scheduler: the engine starts a LocalCluster of ``workers`` processes; a first night and a
    backfill with 7 partitions, induced incidents across partitions, reopens, equal the local engine's."""
    tickets, events = generated(2000)
    exports = export(tickets, events, tmp_path)
    stores = []
    for name, compute in (("local", ComputeSettings()), ("dask", ComputeSettings("dask", 7, None, 2))):
        settings = file_settings(tmp_path / name, exports, compute)
        run_job(settings, kind="run", as_of=AS_OF)
        window = dates_window(pd.Timestamp("2025-01-01").date(), pd.Timestamp("2026-01-15").date())
        run_job(settings, kind="backfill", as_of=AS_OF, window=window)
        stores.append(settings)
    assert_same_stores(*stores)


def test_results_come_straight_from_the_workers_of_a_cluster_of_its_own(cluster: LocalCluster) -> None:
    """A LocalCluster the engine starts runs on this machine: the driver gathers results from its workers
    itself (D115). An existing cluster's workers may be out of the driver's reach: Dask's own
    ``distributed.client.direct-to-workers`` decides, by default through the scheduler."""
    with DaskFacts(ComputeSettings("dask", 4, None, 1))._client() as client:
        assert client.direct_to_workers is True
        assert len(client.scheduler_info()["workers"]) == 1
    with DaskFacts(ComputeSettings("dask", 4, cluster.scheduler_address, None))._client() as client:
        assert client.direct_to_workers is None
    with dask.config.set({"distributed.client.direct-to-workers": True}), \
            DaskFacts(ComputeSettings("dask", 4, cluster.scheduler_address, None))._client() as client:
        assert client.direct_to_workers is True


@pytest.fixture
def fragile_cluster() -> Iterator[Client]:
    """A cluster of its own (plugins and restarts must not leak), whose scheduler retries nothing."""
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c, \
            Client(c) as client:
        yield client


def test_a_worker_killed_once_is_retried_with_the_same_tables(tmp_path: Path) -> None:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c, \
            Client(c) as client:
        client.register_plugin(KillOnFacts(str(tmp_path / "killed-once")), name="kill-once")
        on_dask = _demo(tmp_path / "dask", engine="dask", scheduler=c.scheduler_address)
    assert (tmp_path / "killed-once").exists()  # a worker did die mid-run
    assert_same_stores(_demo(tmp_path / "local"), on_dask)


def test_a_worker_killed_past_the_retries_fails_the_run_and_leaves_the_stores(tmp_path: Path,
                                                                              fragile_cluster: Client) -> None:
    store = tmp_path / "store"
    (tmp_path / "data").mkdir()
    config = write_config(tmp_path / "itsm-kpi.toml", store, export_canonical_csv(tmp_path / "data"))
    assert cli("backfill", *JULY, "--config", str(config), "--as-of", JULY_AS_OF).code == 0
    settings = with_compute(demo_settings(store), store)  # only its store is read below
    before = store_tables(settings)
    fragile_cluster.register_plugin(KillOnFacts(None), name="kill-always")
    scheduler = fragile_cluster.scheduler.address
    config.write_text(config.read_text(encoding="utf-8") + f'\n[compute]\nengine = "dask"\nscheduler = "{scheduler}"\n',
                      encoding="utf-8")
    failed = cli("backfill", *JULY, "--config", str(config), "--as-of", JULY_AS_OF)
    assert failed.code == 1, failed.err
    assert "lost a partition's task" in failed.reason_lines()[-1]
    after = store_tables(settings)
    for table in before:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)


def test_an_unreachable_scheduler_fails_the_run_cleanly(tmp_path: Path) -> None:
    with dask.config.set({"distributed.comm.timeouts.connect": "3s"}), \
            pytest.raises(ComputeFailed, match="cannot connect"):
        _demo(tmp_path / "dask", engine="dask", scheduler="tcp://127.0.0.1:9")


def test_a_cluster_holds_at_most_two_partitions_per_worker_at_once(cluster: LocalCluster) -> None:
    """16 partitions on 2 workers: the driver submits the next partition only as one finishes, so the
    scheduler never holds more than 4 partitions' arguments; the facts equal one process's."""
    tickets, events = generated(2000)
    settings, as_of = KpiSettings(), pd.Timestamp(AS_OF)
    with Client(cluster) as client:
        client.register_plugin(PeakFactsTasks(), name="peak-facts")
        facts = DaskFacts(ComputeSettings("dask", 16, cluster.scheduler_address, 2))(tickets, events, settings, as_of)
        peak = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.plugins["peak-facts"].peak)
    assert 2 <= peak <= 4
    pd.testing.assert_frame_equal(facts, compute_facts(tickets, events, settings, as_of))


def test_a_nights_backlog_scope_travels_to_the_workers(cluster: LocalCluster) -> None:
    """A night's request (some tickets' status time, a backlog scope of single cells and one whole recent
    day) computed in 7 partitions on the cluster gives the rows one process gives, and only the held ones."""
    tickets, events = generated(2000)
    settings, as_of = KpiSettings(), pd.Timestamp(AS_OF)
    facts = compute_facts(tickets, events, settings, as_of)
    whole = local_ops(tickets, events, facts, OpsRequest(settings, as_of, None, None)).backlog
    cells = whole.loc[::11, list(TABLE_KEYS["kpi_backlog"])].reset_index(drop=True)
    recent = np.array(["2026-01-15"], dtype="datetime64[D]")
    scope = BacklogScope(np.union1d(cells["day"].to_numpy().astype("datetime64[D]"), recent), recent, cells)
    request = OpsRequest(settings, as_of, tickets.loc[:19, ["source", "ticket_id"]], scope.days, scope)
    expected = local_ops(tickets, events, facts, request)
    got = DaskOps(ComputeSettings("dask", 7, cluster.scheduler_address, 2))(tickets, events, facts, request)
    assert len(whole) > 3 * len(expected.backlog) > 3 * len(cells)
    pd.testing.assert_frame_equal(expected.backlog, whole[scope.holds(whole)].reset_index(drop=True))
    pd.testing.assert_frame_equal(got.backlog, expected.backlog, check_exact=True)
    pd.testing.assert_frame_equal(got.status_time, expected.status_time, check_exact=True)


def test_tasks_carrying_their_partitions_raise_no_large_graph_warning(cluster: LocalCluster) -> None:
    """Each task carries its partition (so that it can rerun elsewhere); distributed warns on a task above
    its threshold, here lowered to 1 kB, that the data should be loaded with Dask: not our operator's advice."""
    tickets, events = generated(300)
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "1kB"}), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        DaskFacts(ComputeSettings("dask", 2, cluster.scheduler_address, 2))(tickets, events, KpiSettings(), pd.Timestamp(AS_OF))
    assert [str(w.message) for w in caught if "large graph" in str(w.message)] == []
