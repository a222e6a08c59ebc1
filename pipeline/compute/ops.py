"""Time in status and the daily backlog, partition by partition (CONTRACT.md, Compute; DECISIONS.md D91).

Both are per-ticket work until the last step: a ticket's status rows depend on its own history only, and a
day's backlog counts add up over disjoint sets of tickets (the oldest opening is the oldest of the parts').
So each partition computes its tickets' status rows and its own backlog, sharing one history between the
two, and the driver stacks the status rows and combines the backlogs, handed over as numbers
(``kpis.backlog_cells``).
With one partition this is exactly the unpartitioned computation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from kpis.backlog import EVENT_COLUMNS_READ, TICKET_COLUMNS_READ, backlog_cells, backlog_history
from kpis.backlog_cells import BacklogCells, combine_backlogs
from kpis.backlog_scope import BacklogScope
from kpis.calendar import CalendarSet
from kpis.config import KpiSettings
from kpis.keys import key_hits, key_order, run_starts, ticket_columns, ticket_positions
from kpis.schema import TABLE_COLUMNS, concat_frames
from kpis.status_time import CodedHistory, ticket_status_time
from pipeline.compute.partition import TicketPartitions, same_values, split
from pipeline.policies import resolution_calendars, resolution_pauses, ticket_policies

log = logging.getLogger(__name__)

KEY = ["source", "ticket_id"]
#: The facts columns the two tables read (the policy names the calendar and pause statuses; the backlog
#: leaves out-of-scope tickets out and counts overdue ones): only these travel to the partitions.
FACT_COLUMNS = [*KEY, "resolution_policy", "excluded_reason", "resolution_due_at"]


@dataclass(frozen=True)
class OpsRequest:
    """What to compute: status time of the tickets in ``status_keys`` (every ticket when None) and the
    backlog of ``days`` (every day when None; none when empty), only the rows ``backlog_scope`` holds when
    given (a night's, whose ``days`` these are).

    ``history``: the history of every ticket the tables are computed over, in their order, when the facts
    already built it (``pipeline.compute.facts_with_history``); in one piece both tables read it instead of
    sorting the events again. A split drops it: each partition numbers its own tickets."""

    settings: KpiSettings
    as_of: pd.Timestamp
    status_keys: pd.DataFrame | None
    days: np.ndarray | None
    backlog_scope: BacklogScope | None = None
    history: CodedHistory | None = None

    @property
    def wants_backlog(self) -> bool:
        return self.days is None or len(self.days) > 0


@dataclass(frozen=True)
class OpsRows:
    """The computed ``ticket_status_time`` and ``kpi_backlog`` rows (in key order)."""

    status_time: pd.DataFrame
    backlog: pd.DataFrame


@dataclass(frozen=True)
class PartitionOps:
    """One partition's share: its tickets' status rows, and the backlog of its tickets as numbers."""

    status_time: pd.DataFrame
    backlog: BacklogCells


def partition_ops(tickets: pd.DataFrame, events: pd.DataFrame, facts: pd.DataFrame,
                  request: OpsRequest) -> PartitionOps:
    """Both tables for one set of tickets (a partition, or all) with their events and facts."""
    tickets = tickets.reset_index(drop=True)
    settings, as_of = request.settings, request.as_of
    facts = aligned_facts(tickets, facts)
    policies = ticket_policies(tickets, facts)
    history = _shared_history(tickets, events, request)
    # a night's few days read only the tickets that may be open on them, not a history of every ticket
    whole_backlog = request.days is None or request.history is None
    backlog = (_backlog_cells_of(tickets, events, facts, settings, as_of, days=request.days,
                                 history=history if whole_backlog else None, policies=policies,
                                 only=request.backlog_scope)
               if request.wants_backlog else BacklogCells.empty())
    if request.status_keys is not None:
        keep = key_hits(tickets[KEY], request.status_keys)
        tickets, policies = tickets[keep].reset_index(drop=True), policies[keep].reset_index(drop=True)
        events = events[key_hits(events[KEY], request.status_keys)] if len(request.status_keys) else events.iloc[:0]
        history = None  # it numbers every ticket, not these
    status_time = ticket_status_time(tickets, events, CalendarSet(dict(settings.calendars)),
                                     resolution_calendars(policies, settings), as_of, history=history)
    return PartitionOps(status_time, backlog)


def _shared_history(tickets: pd.DataFrame, events: pd.DataFrame, request: OpsRequest) -> CodedHistory | None:
    """The history both tables read: the facts' when handed over, else built here when time in status is of
    every ticket (else None: each table reads the tickets it needs)."""
    if request.history is not None:
        log.debug("time in status and the backlog of %d tickets read the history their facts built", len(tickets))
        return request.history
    return backlog_history(tickets, events) if request.status_keys is None else None


def facts_read(facts: pd.DataFrame) -> pd.DataFrame:
    """The ``FACT_COLUMNS`` of ``facts`` (those it has): all that travels to the partitions."""
    return _columns_read(facts, FACT_COLUMNS)


def aligned_facts(tickets: pd.DataFrame, facts: pd.DataFrame) -> pd.DataFrame:
    """The ``FACT_COLUMNS`` of ``facts``, row for row in ``tickets``' order when every ticket has facts (each
    later lookup of a ticket's facts is then one comparison, not a join); else in their own order."""
    facts = facts_read(facts)
    if in_ticket_order(facts, tickets):
        return facts.reset_index(drop=True)
    row = ticket_positions(facts, tickets)
    return facts.take(row).reset_index(drop=True) if len(row) and (row >= 0).all() else facts


def in_ticket_order(facts: pd.DataFrame, tickets: pd.DataFrame) -> bool:
    """Whether ``facts`` hold ``tickets``' keys row for row, as a full run's facts do (they come in the input
    order): then a ticket's facts are found by position, without a join of 10M keys (~2 s)."""
    return len(facts) == len(tickets) and all(same_values(facts[column], tickets[column]) for column in KEY)


def backlog_of(tickets: pd.DataFrame, events: pd.DataFrame, facts: pd.DataFrame, settings: KpiSettings,
               as_of: pd.Timestamp, *, days: np.ndarray | None = None, history: CodedHistory | None = None,
               policies: pd.Series | None = None, only: BacklogScope | None = None) -> pd.DataFrame:
    """``kpi_backlog`` of a set of tickets, each paused in its resolution policy's statuses (``policies``:
    ``ticket_policies(tickets, facts)`` when already built; ``only``: as ``kpi_backlog``'s)."""
    return _backlog_cells_of(tickets, events, facts, settings, as_of, days=days, history=history,
                             policies=policies, only=only).frame(as_of)


def _backlog_cells_of(tickets: pd.DataFrame, events: pd.DataFrame, facts: pd.DataFrame, settings: KpiSettings,
                      as_of: pd.Timestamp, *, days: np.ndarray | None, history: CodedHistory | None,
                      policies: pd.Series | None, only: BacklogScope | None) -> BacklogCells:
    policies = ticket_policies(tickets, facts) if policies is None else policies
    return backlog_cells(tickets, events, facts, settings, as_of, pauses=resolution_pauses(policies, settings),
                         days=days, history=history, only=only)


def local_ops(tickets: pd.DataFrame, events: pd.DataFrame, facts: pd.DataFrame, request: OpsRequest, *,
              partitions: int = 1) -> OpsRows:
    """Both tables, computed in this process, one partition at a time when ``partitions`` > 1."""
    if partitions == 1 or not len(tickets):
        return combined([partition_ops(tickets, events, facts, request)], request.as_of)
    parts = [partition_ops(*part) for part in ops_partitions(tickets, events, facts, request, partitions)]
    log.info("computed time in status and the backlog of %d tickets in %d partitions", len(tickets), len(parts))
    return combined(parts, request.as_of)


def ops_partitions(tickets: pd.DataFrame, events: pd.DataFrame, facts: pd.DataFrame, request: OpsRequest,
                   partitions: int) -> Iterator[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, OpsRequest]]:
    """Each non-empty partition's tickets, events, facts and request (its own share of ``status_keys``),
    split by the same hash as the facts. Only the columns the two tables read are split (and shipped)."""
    tickets, events = _columns_read(tickets, TICKET_COLUMNS_READ), _columns_read(events, EVENT_COLUMNS_READ)
    facts = facts_read(facts)
    by_ticket = TicketPartitions.of(tickets, partitions)
    # facts of tickets not in ``tickets`` are read by neither table
    fact_rows = by_ticket.rows() if in_ticket_order(facts, tickets) else by_ticket.rows_of(facts)
    keys = request.status_keys
    key_rows = None if keys is None else by_ticket.rows_of(keys)  # the keys are some of ``tickets``'
    for part in split(tickets, events, partitions, by_ticket):
        own_keys = None if keys is None else keys.iloc[key_rows[part.number]].reset_index(drop=True)
        yield (part.tickets, part.events, facts.iloc[fact_rows[part.number]].reset_index(drop=True),
               replace(request, status_keys=own_keys, history=None))


def _columns_read(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The columns ``names`` of ``frame`` that it has (a selection: nothing is copied)."""
    return frame[[name for name in names if name in frame.columns]]


def combined(parts: list[PartitionOps], as_of: pd.Timestamp) -> OpsRows:
    """The partitions' rows as one computation gives them: status rows stacked in key order (a ticket's
    rows all come from its own partition), the backlogs added up (one partition's: as they are)."""
    backlog = combine_backlogs([p.backlog for p in parts]).frame(as_of)
    if len(parts) == 1:
        return OpsRows(parts.pop().status_time, backlog)
    status_time = concat_frames([p.status_time for p in parts], TABLE_COLUMNS["ticket_status_time"])
    parts.clear()
    return OpsRows(status_time.take(tickets_in_key_order(status_time)).reset_index(drop=True), backlog)


def tickets_in_key_order(rows: pd.DataFrame) -> np.ndarray:
    """The order that sorts ``rows`` by ``(source, ticket_id)`` when each ticket's rows are together and
    already in the order wanted within it (a partition's status rows, by status): only the tickets are
    sorted, each one's rows follow it as they are (3M status rows are ~1M tickets)."""
    columns = ticket_columns(rows["source"], rows["ticket_id"])
    starts = run_starts(columns)
    if not len(starts):
        return starts
    by_key = key_order([column.take(starts) for column in columns])
    sizes = np.diff(np.append(starts, len(rows)))[by_key]
    placed_at = np.cumsum(sizes) - sizes  # where each ticket's rows start in the sorted order
    return np.repeat(starts[by_key] - placed_at, sizes) + np.arange(len(rows))
