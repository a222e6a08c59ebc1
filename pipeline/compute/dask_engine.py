"""The Dask engine: one task per partition on a Dask cluster (``pip install "itsm-kpi[dask]"``).

``[compute] scheduler`` names an existing cluster (``distributed.Client(address)``); without one a
``LocalCluster`` of ``workers`` single-threaded worker processes is started for the call and closed after.
Each partition's tickets and events, the broadcast maintenance tickets, the settings and the approvals
are the task's arguments, so the task can be run again elsewhere: when a worker dies mid-run the scheduler
retries its tasks on the others (up to its ``allowed-failures``); past that the call raises
``ComputeFailed`` and the run commits nothing. The gathered facts are stacked back into the input order,
so the caller computes the same tables as with the local engine (DECISIONS.md D80 .. D82).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
from distributed import Client, LocalCluster, get_worker
from distributed.scheduler import KilledWorker

from kpis import compute_facts
from kpis.config import KpiSettings
from pipeline.compute import ComputeFailed
from pipeline.compute.local import in_input_order, partition_facts
from pipeline.compute.partition import named_maintenance, split
from pipeline.settings import ComputeSettings

log = logging.getLogger(__name__)

TASK_PREFIX = "itsm-kpi-facts"


def _task(part_tickets: pd.DataFrame, part_events: pd.DataFrame, broadcast: pd.DataFrame, settings: KpiSettings,
          as_of: pd.Timestamp, approvals: pd.DataFrame | None) -> tuple[str, pd.DataFrame]:
    """On a worker: one partition's facts, and the worker's address (logged by the driver)."""
    return get_worker().address, partition_facts(part_tickets, part_events, broadcast, settings, as_of, approvals)


class DaskFacts:
    """``kpis.compute_facts`` computed partition by partition on a Dask cluster."""

    def __init__(self, compute: ComputeSettings) -> None:
        self.compute = compute

    def __call__(self, tickets: pd.DataFrame, events: pd.DataFrame, settings: KpiSettings, as_of: pd.Timestamp,
                 approvals: pd.DataFrame | None = None) -> pd.DataFrame:
        """The facts of ``tickets``/``events`` at ``as_of``, as ``compute_facts`` returns them."""
        if not len(tickets):
            return compute_facts(tickets, events, settings, as_of, approvals)
        with self._client() as client:
            partitions = self.partitions(client)
            broadcast = named_maintenance(tickets)
            run = uuid.uuid4().hex[:12]
            positions, futures = [], []
            for part in split(tickets, events, partitions):  # the driver keeps only the positions
                positions.append(part.positions)
                futures.append(client.submit(_task, part.tickets, part.events, broadcast, settings, as_of, approvals,
                                             key=f"{TASK_PREFIX}-{run}-{part.number}", pure=False))
            results = _gathered(client, futures)
        by_worker = Counter(worker for worker, _ in results)
        log.info("dask: %d partitions of %d tickets computed on %d workers (%s)", len(positions), len(tickets),
                 len(by_worker), ", ".join(f"{w}: {n}" for w, n in sorted(by_worker.items())))
        return in_input_order([(p, facts) for p, (_, facts) in zip(positions, results, strict=True)], len(tickets))

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
        with LocalCluster(n_workers=self.compute.workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            yield client


def _gathered(client: Client, futures: list) -> list[tuple[str, pd.DataFrame]]:
    """The tasks' results; a task lost past the scheduler's retries (or a lost cluster) is ``ComputeFailed``."""
    try:
        return client.gather(futures)
    except KilledWorker as e:
        raise ComputeFailed(f"the Dask cluster lost a partition's task past its retries ({e}); nothing was "
                            "written: check the workers' memory and logs, then run again") from e
    except (TimeoutError, OSError, asyncio.CancelledError) as e:
        raise ComputeFailed(f"the Dask cluster went away during the run ({type(e).__name__}: {e}); "
                            "nothing was written") from e
