"""The local engine: facts computed in this process, one partition at a time when ``partitions`` > 1.

Memory then follows one partition's tickets and events (plus the small broadcast of maintenance tickets
and the facts gathered so far, one row per ticket), not the whole history's intermediate arrays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kpis import compute_facts
from kpis.config import KpiSettings
from kpis.facts import TICKET_COLUMN_OF
from kpis.keys import ticket_keys
from kpis.schema import TICKET_FACT_COLUMNS, conform
from pipeline.compute.partition import is_in, named_maintenance, same_values, split, with_causes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionFacts:
    """One partition's facts without the columns that equal its tickets' own (``from_tickets``, names of
    ``TICKET_COLUMN_OF``): the driver takes those from the input tickets, already in their order, instead of
    stacking and reordering copies (at 10M tickets most of the reordering's time; and less for a Dask worker
    to send back)."""

    facts: pd.DataFrame
    from_tickets: frozenset[str]


def partition_facts(part_tickets: pd.DataFrame, part_events: pd.DataFrame, broadcast: pd.DataFrame,
                    settings: KpiSettings, as_of: pd.Timestamp, approvals: pd.DataFrame | None) -> PartitionFacts:
    """The facts of one partition's tickets, in their order: computed beside the broadcast maintenance
    tickets their incidents name (whose facts are dropped; they belong to their own partition)."""
    read = with_causes(part_tickets, broadcast)
    facts = compute_facts(read, part_events, settings, as_of, approvals)
    if len(read) != len(part_tickets):
        own = ticket_keys(part_tickets["source"], part_tickets["ticket_id"])
        facts = facts[is_in(ticket_keys(facts["source"], facts["ticket_id"]), own)].reset_index(drop=True)
    same = frozenset(column for column, ticket_column in TICKET_COLUMN_OF.items()
                     if ticket_column in part_tickets and same_values(facts[column], part_tickets[ticket_column]))
    return PartitionFacts(facts.drop(columns=list(same)), same)


def in_input_order(parts: list[tuple[np.ndarray, PartitionFacts]], tickets: pd.DataFrame) -> pd.DataFrame:
    """The partitions' facts (with their tickets' positions in the input) stacked back into the order of the
    input ``tickets`` (as ``compute_facts`` gives). A column every partition left to the tickets is the
    input's own column; one that only some left is taken from the input for those partitions."""
    if not parts:
        return conform(pd.DataFrame(), TICKET_FACT_COLUMNS)
    common = frozenset.intersection(*(part.from_tickets for _, part in parts))
    positions = np.concatenate([p for p, _ in parts])
    frames = [_with_ticket_columns(part.facts, tickets, p, part.from_tickets - common) for p, part in parts]
    parts.clear()  # the partitions' frames go as soon as they are stacked
    facts = pd.concat(frames, ignore_index=True)
    del frames
    if len(facts) != len(tickets):
        raise AssertionError(f"partitions gave {len(facts)} facts rows for {len(tickets)} tickets")
    facts = facts.take(np.argsort(positions, kind="stable")).reset_index(drop=True)
    for column in common:
        facts[column] = tickets[TICKET_COLUMN_OF[column]].array  # by position: the facts are in input order
    return conform(facts, TICKET_FACT_COLUMNS)


def _with_ticket_columns(facts: pd.DataFrame, tickets: pd.DataFrame, positions: np.ndarray,
                         columns: frozenset[str]) -> pd.DataFrame:
    """``facts`` with ``columns`` put back from the input ``tickets`` at ``positions``."""
    if not columns:
        return facts
    return facts.assign(**{column: tickets[TICKET_COLUMN_OF[column]].take(positions).array for column in columns})


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
    return in_input_order(parts, tickets)
