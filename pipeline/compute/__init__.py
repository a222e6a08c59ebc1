"""Where the per-ticket facts are computed (CONTRACT.md, Compute): ``facts_engine`` returns a function with
``kpis.compute_facts``' signature and result, computed by the ``[compute]`` engine:

- ``local`` (``local.py``): this process; partition by partition when ``partitions`` > 1;
- ``dask`` (``dask_engine.py``): one task per partition on a Dask cluster (imported only then: the local
  engine needs no Dask).

Partitions are a stable hash of ``(source, ticket_id)`` (``partition.py``). The aggregates are computed by
the caller from the gathered facts (one row per ticket), as on one process (DECISIONS.md D80).
``ops_engine`` does the same for time in status and the daily backlog (``ops.py``, D91). A full run's facts
computed here in one piece hand their history on to those two tables (``facts_with_history``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pandas as pd

from kpis.config import KpiSettings
from kpis.errors import ItsmKpiError
from kpis.facts import facts_and_history
from kpis.status_time import CodedHistory
from pipeline.compute.local import local_facts
from pipeline.compute.ops import OpsRequest, OpsRows, local_ops
from pipeline.settings import ComputeSettings

__all__ = ["ComputeFailed", "FactsFunction", "OpsFunction", "facts_engine", "facts_with_history", "ops_engine"]

#: (tickets, events, settings, as_of, approvals) -> ticket_facts, as ``kpis.compute_facts``
FactsFunction = Callable[[pd.DataFrame, pd.DataFrame, KpiSettings, pd.Timestamp, "pd.DataFrame | None"],
                         pd.DataFrame]
#: (tickets, events, facts, request) -> the ``ticket_status_time`` and ``kpi_backlog`` rows, as ``local_ops``
OpsFunction = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame, OpsRequest], OpsRows]


class ComputeFailed(ItsmKpiError):
    """The compute cluster could not be reached or lost a partition's task after its retries; nothing of
    the run was committed (exit 1)."""


def facts_engine(compute: ComputeSettings) -> FactsFunction:
    """The facts function of the ``[compute]`` settings."""
    if compute.engine == "dask":
        from pipeline.compute.dask_engine import DaskFacts  # lazily: Dask is an extra

        return DaskFacts(compute)
    return partial(local_facts, partitions=compute.partitions)


def facts_with_history(compute: ComputeSettings, tickets: pd.DataFrame, events: pd.DataFrame,
                       settings: KpiSettings, as_of: pd.Timestamp,
                       approvals: pd.DataFrame | None) -> tuple[pd.DataFrame, CodedHistory | None]:
    """The facts by the ``[compute]`` engine and, when the local engine computed them in one piece, the
    history they read (else None): ``OpsRequest.history`` of the same tickets and events."""
    if compute.engine == "local" and compute.partitions == 1:
        return facts_and_history(tickets, events, settings, as_of, approvals)
    return facts_engine(compute)(tickets, events, settings, as_of, approvals), None


def ops_engine(compute: ComputeSettings) -> OpsFunction:
    """The time-in-status and backlog function of the ``[compute]`` settings."""
    if compute.engine == "dask":
        from pipeline.compute.dask_engine import DaskOps  # lazily: Dask is an extra

        return DaskOps(compute)
    return partial(local_ops, partitions=compute.partitions)
