"""The local engine: facts computed in this process, one partition at a time when ``partitions`` > 1.

Memory then follows one partition's tickets and events (plus the small broadcast of maintenance tickets
and the facts gathered so far, one row per ticket), not the whole history's intermediate arrays.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from kpis import compute_facts
from kpis.config import KpiSettings
from kpis.keys import ticket_keys
from kpis.schema import TICKET_FACT_COLUMNS, conform
from pipeline.compute.partition import is_in, named_maintenance, split, with_causes

log = logging.getLogger(__name__)


def partition_facts(part_tickets: pd.DataFrame, part_events: pd.DataFrame, broadcast: pd.DataFrame,
                    settings: KpiSettings, as_of: pd.Timestamp, approvals: pd.DataFrame | None) -> pd.DataFrame:
    """The facts of one partition's tickets, in their order: computed beside the broadcast maintenance
    tickets their incidents name (whose facts are dropped; they belong to their own partition)."""
    read = with_causes(part_tickets, broadcast)
    facts = compute_facts(read, part_events, settings, as_of, approvals)
    if len(read) == len(part_tickets):
        return facts
    own = ticket_keys(part_tickets["source"], part_tickets["ticket_id"])
    return facts[is_in(ticket_keys(facts["source"], facts["ticket_id"]), own)].reset_index(drop=True)


def in_input_order(parts: list[tuple[np.ndarray, pd.DataFrame]], n_tickets: int) -> pd.DataFrame:
    """The partitions' facts (with their tickets' positions in the input) stacked back into the order of the
    input tickets (as ``compute_facts`` gives)."""
    if not parts:
        return conform(pd.DataFrame(), TICKET_FACT_COLUMNS)
    positions = np.concatenate([p for p, _ in parts])
    facts = pd.concat([f for _, f in parts], ignore_index=True)
    parts.clear()  # the partitions' frames go as soon as they are stacked
    if len(facts) != n_tickets:
        raise AssertionError(f"partitions gave {len(facts)} facts rows for {n_tickets} tickets")
    return facts.take(np.argsort(positions, kind="stable")).reset_index(drop=True)


def local_facts(tickets: pd.DataFrame, events: pd.DataFrame, settings: KpiSettings, as_of: pd.Timestamp,
                approvals: pd.DataFrame | None = None, *, partitions: int = 1) -> pd.DataFrame:
    """``compute_facts`` of ``tickets``/``events``, partition by partition when ``partitions`` > 1."""
    if partitions == 1 or not len(tickets):
        return compute_facts(tickets, events, settings, as_of, approvals)
    broadcast = named_maintenance(tickets)
    parts = []
    for part in split(tickets, events, partitions):  # only the positions are kept: each partition's copy goes
        parts.append((part.positions, partition_facts(part.tickets, part.events, broadcast, settings, as_of,
                                                      approvals)))
    log.info("computed the facts of %d tickets in %d partitions (%d maintenance tickets broadcast)",
             len(tickets), len(parts), len(broadcast))
    return in_input_order(parts, len(tickets))
