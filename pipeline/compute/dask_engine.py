"""The Dask engine: one task per partition on a Dask cluster (``pip install "itsm-kpi[dask]"``).

``[compute] scheduler`` names an existing cluster (``distributed.Client(address)``); without one a
``LocalCluster`` of ``workers`` single-threaded worker processes is started for the call and closed after,
and the driver gathers results straight from its workers.
Each partition's tickets and events, the broadcast maintenance tickets, the settings and the approvals
are the task's arguments, so the task can be run again elsewhere: when a worker dies mid-run the scheduler
retries its tasks on the others (up to its ``allowed-failures``); past that the call raises
``ComputeFailed`` and the run commits nothing. The gathered facts are stacked back into the input order,
so the caller computes the same tables as with the local engine (DECISIONS.md D80 .. D82). Time in status
and the backlog go the same way (``DaskOps``, D91): each task returns its partition's rows, and the driver
stacks and combines them. At most two tasks per worker thread are in flight, so with more partitions than
that the driver holds a few partitions' arguments, not a second copy of the input (D92).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import pandas as pd
from distributed import Client, Future, LocalCluster, as_completed, get_worker
from distributed.scheduler import KilledWorker

from kpis import compute_facts
from kpis.config import KpiSettings
from pipeline.compute import ComputeFailed
from pipeline.compute.local import PartitionFacts, in_input_order, partition_facts
from pipeline.compute.ops import OpsRequest, OpsRows, PartitionOps, combined, ops_partitions, partition_ops
from pipeline.compute.partition import facts_events, named_maintenance, split
from pipeline.memory import freed_memory_kept
from pipeline.settings import ComputeSettings

log = logging.getLogger(__name__)

TASK_PREFIX = "itsm-kpi-facts"
OPS_TASK_PREFIX = "itsm-kpi-ops"
#: What distributed's nanny puts into every worker's environment by default
#: (``distributed.nanny.pre-spawn-environ``): malloc gives freed memory back early. A task keeps it for
#: the task's own arrays and sets the nanny's threshold back after (D113).
NANNY_MALLOC_TUNING = {"MALLOC_TRIM_THRESHOLD_": "65536"}


def _task(part_tickets: pd.DataFrame, part_events: pd.DataFrame, broadcast: pd.DataFrame, settings: KpiSettings,
          as_of: pd.Timestamp, approvals: pd.DataFrame | None) -> tuple[str, PartitionFacts]:
    """On a worker: one partition's facts, and the worker's address (logged by the driver)."""
    with freed_memory_kept(NANNY_MALLOC_TUNING):  # as the driver's run does (pipeline.memory), for this task
        return get_worker().address, partition_facts(part_tickets, part_events, broadcast, settings, as_of,
                                                     approvals)


class _OnCluster:
    """A Dask client for each call: of ``[compute] scheduler``, or of a LocalCluster started for the call."""

    def __init__(self, compute: ComputeSettings) -> None:
        self.compute = compute

    def partitions(self, client: Client) -> int:
        """``[compute] partitions``, raised to twice the cluster's workers so that every worker computes."""
        workers = len(client.scheduler_info().get("workers", {}))
        return max(self.compute.partitions, 2 * max(workers, 1))

    @contextmanager
    def _client(self) -> Iterator[Client]:
        """A client of the configured scheduler, or of a LocalCluster started (and closed) for this call."""
        if self.compute.scheduler:
            try:
                client = Client(self.compute.scheduler)  # waits distributed.comm.timeouts.connect (30 s)
            except (TimeoutError, OSError) as e:
                raise ComputeFailed(f"compute.scheduler {self.compute.scheduler}: cannot connect ({e}); "
                                    "nothing was written") from e
            with client:
                yield client
            return
        # its workers are on this machine, so results come straight from them, not relayed by the scheduler
        # (D115; an existing cluster follows Dask's own distributed.client.direct-to-workers)
        with LocalCluster(n_workers=self.compute.workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster, direct_to_workers=True) as client:
            yield client


class DaskFacts(_OnCluster):
    """``kpis.compute_facts`` computed partition by partition on a Dask cluster."""

    def __call__(self, tickets: pd.DataFrame, events: pd.DataFrame, settings: KpiSettings, as_of: pd.Timestamp,
                 approvals: pd.DataFrame | None = None) -> pd.DataFrame:
        """The facts of ``tickets``/``events`` at ``as_of``, as ``compute_facts`` returns them."""
        if not len(tickets):
            return compute_facts(tickets, events, settings, as_of, approvals)
        with self._client() as client:
            partitions, broadcast, positions = self.partitions(client), named_maintenance(tickets), []

            def arguments() -> Iterator[tuple[int, tuple]]:
                for part in split(tickets, facts_events(events), partitions):  # the driver keeps only the positions
                    positions.append(part.positions)
                    yield part.number, (part.tickets, part.events, broadcast, settings, as_of, approvals)

            results = _run(client, _task, arguments(), TASK_PREFIX)
        _log_workers("facts", len(positions), len(tickets), results)
        return in_input_order([(p, facts) for p, (_, facts) in zip(positions, results, strict=True)], tickets)


def _ops_task(part_tickets: pd.DataFrame, part_events: pd.DataFrame, part_facts: pd.DataFrame,
              request: OpsRequest) -> tuple[str, PartitionOps]:
    """On a worker: one partition's time in status and backlog, and the worker's address."""
    with freed_memory_kept(NANNY_MALLOC_TUNING):
        return get_worker().address, partition_ops(part_tickets, part_events, part_facts, request)


class DaskOps(_OnCluster):
    """Time in status and the daily backlog computed partition by partition on a Dask cluster."""

    def __call__(self, tickets: pd.DataFrame, events: pd.DataFrame, facts: pd.DataFrame,
                 request: OpsRequest) -> OpsRows:
        """Both tables' rows, as ``pipeline.compute.ops.local_ops`` returns them."""
        if not len(tickets):
            return combined([partition_ops(tickets, events, facts, request)], request.as_of)
        with self._client() as client:
            parts = ops_partitions(tickets, events, facts, request, self.partitions(client))
            results = _run(client, _ops_task, enumerate(parts), OPS_TASK_PREFIX)
        _log_workers("time in status and backlog", len(results), len(tickets), results)
        return combined([rows for _, rows in results], request.as_of)


def _run(client: Client, task: Callable, arguments: Iterable[tuple[int, tuple]], prefix: str) -> list:
    """``task(*args)`` for each ``(partition number, args)``, results in partition order.

    At most two tasks per worker thread are submitted at once, and the next partition is split off only
    when one finishes: with more partitions than that, the driver (and a LocalCluster's scheduler, in the
    driver's process) holds only those partitions' arguments. Each task carries its arguments, so Dask can
    rerun it elsewhere."""
    window = 2 * max(sum(w.get("nthreads", 1) for w in client.scheduler_info().get("workers", {}).values()), 1)
    run, numbers, results = uuid.uuid4().hex[:12], {}, {}
    in_flight = as_completed(loop=client.loop)  # on a failure the client closes, and the scheduler drops the rest
    with _partitions_in_tasks():
        for number, args in arguments:
            future = client.submit(task, *args, key=f"{prefix}-{run}-{number}", pure=False)
            numbers[future.key] = number
            in_flight.add(future)
            while in_flight.count() >= window:
                _collect(next(in_flight), numbers, results)
    for future in in_flight:
        _collect(future, numbers, results)
    return [results[number] for number in sorted(results)]


@contextmanager
def _partitions_in_tasks() -> Iterator[None]:
    """Without distributed's warning on a task above 10 MB ("Sending large graph ... Consider loading the data
    with Dask directly"): carrying its partition is what lets a task rerun elsewhere, and the advice would
    only reach the operator's terminal."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
        yield


def _log_workers(what: str, partitions: int, tickets: int, results: list[tuple[str, object]]) -> None:
    by_worker = Counter(worker for worker, _ in results)
    log.info("dask: %s of %d tickets in %d partitions computed on %d workers (%s)", what, tickets, partitions,
             len(by_worker), ", ".join(f"{w}: {n}" for w, n in sorted(by_worker.items())))


def _collect(future: Future, numbers: dict[str, int], results: dict[int, object]) -> None:
    """Keep a finished task's result under its partition number; a task lost past the scheduler's retries
    (or a lost cluster) is ``ComputeFailed``."""
    try:
        results[numbers[future.key]] = future.result()
    except KilledWorker as e:
        raise ComputeFailed(f"the Dask cluster lost a partition's task past its retries ({e}); nothing was "
                            "written: check the workers' memory and logs, then run again") from e
    except (TimeoutError, OSError, asyncio.CancelledError) as e:
        raise ComputeFailed(f"the Dask cluster went away during the run ({type(e).__name__}: {e}); "
                            "nothing was written") from e
    finally:
        future.release()
