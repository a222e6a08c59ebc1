"""Why a ticket's numbers are what they are: its resolution timeline as segments, and what its events decided.

Both are made from the same basis as ``compute_facts`` (``kpis.facts.fact_basis``: the same history, status
segments, SLA policies, pause statuses and calendars), so an explanation can never tell another story than
the facts. They work on whole columns like the rest of ``kpis``; ``itsm-kpi explain`` and the report call them
on a few tickets.

``resolution_segments``: each ticket's resolution interval ``[opened_at, resolved_at)`` (up to ``as_of`` while
unresolved) cut at every status event; each piece carries the status in effect at its start (null before the
first status event), its calendar and business seconds on the resolution policy's calendar (the default
calendar without one), and why it counts or not: ``working`` (counted), ``pause`` (a pause status of the
ticket's policy) or ``reopen gap`` (RESOLVED or CLOSED before a reopen). For a resolved ticket the counted
business seconds add up to ``resolution_business_s``.

``event_roles``: each event of the tickets with the facts it decided (a resolution, a reopen, the response,
a reassignment, the credited engineer or team, the priority that chose a policy, the initial diagnosis, the
final category).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kpis.calendar import epoch_seconds, from_epoch_seconds
from kpis.config import KpiSettings
from kpis.facts import FactBasis, fact_basis, known_events
from kpis.schema import DONE_STATUSES, EVENT_KINDS
from kpis.sla import paused
from kpis.timeline import KindEvents, all_status_segments, history_order, kind_ranks, status_flags
from kpis.vocabulary import MISSING

__all__ = ["EVENT_ROLES", "SEGMENT_COLUMNS", "WHY", "event_roles", "resolution_segments"]

SEGMENT_COLUMNS = ("source", "ticket_id", "status", "start", "end", "calendar_s", "business_s", "counted", "why")
WORKING, PAUSE, REOPEN_GAP = "working", "pause", "reopen gap"
WHY = (WORKING, PAUSE, REOPEN_GAP)
#: What an event can decide, by kind.
EVENT_ROLES = {
    "status": ("first_resolution", "last_resolution", "reopen"),
    "response": ("response",),
    "assignee": ("reassignment", "engineer"),
    "group": ("reassignment", "team"),
    "priority": ("response_priority", "resolution_priority"),
    "category": ("initial_diagnosis", "final_category"),
}


def resolution_segments(tickets: pd.DataFrame, events: pd.DataFrame, settings: KpiSettings, as_of: pd.Timestamp,
                        approvals: pd.DataFrame | None = None) -> pd.DataFrame:
    """The resolution timeline of every ticket as segments (``SEGMENT_COLUMNS``), in time order per ticket."""
    basis = fact_basis(tickets, events, settings, as_of, approvals)
    t, v = basis.ctx.t, basis.ctx.v
    opened = t.time("opened_at")
    stop = np.where(np.isnan(basis.resolved_at), basis.ctx.as_of_s, basis.resolved_at)
    segments = all_status_segments(basis.ctx.h["status"], v)
    policy = basis.policies.resolution
    why = np.where(segments.reopen_gap, REOPEN_GAP,
                   np.where(paused(segments, policy.index, basis.policies.pauses), PAUSE, WORKING))
    first_event = basis.ctx.h["status"].first_at(t.n)
    tix = np.concatenate([np.arange(t.n), segments.tix])
    start = np.concatenate([opened, np.maximum(segments.start, opened[segments.tix])])
    end = np.concatenate([np.where(np.isnan(first_event), stop, np.minimum(first_event, stop)),
                          np.minimum(segments.end, stop[segments.tix])])
    status = np.concatenate([np.full(t.n, MISSING, dtype=segments.status.dtype), segments.status])
    why = np.concatenate([np.full(t.n, WORKING), why])
    keep = end > start  # NaN (no opened_at) and empty pieces out
    order = np.lexsort((start[keep], tix[keep]))  # before the first event comes first: its start is the least
    tix, start, end, status, why = (a[keep][order] for a in (tix, start, end, status, why))
    calendar = policy.calendar.take(tix)
    business = basis.ctx.calendars.cumulative(calendar, end) - basis.ctx.calendars.cumulative(calendar, start)
    return pd.DataFrame({
        "source": t.frame["source"].take(tix).to_numpy(), "ticket_id": t.frame["ticket_id"].take(tix).to_numpy(),
        "status": v.decode(status).to_numpy(), "start": from_epoch_seconds(start).to_numpy(),
        "end": from_epoch_seconds(end).to_numpy(), "calendar_s": (end - start).astype("int64"),
        "business_s": business.astype("int64"), "counted": why == WORKING, "why": why,
    }, columns=list(SEGMENT_COLUMNS))


def event_roles(tickets: pd.DataFrame, events: pd.DataFrame, settings: KpiSettings, as_of: pd.Timestamp,
                approvals: pd.DataFrame | None = None) -> pd.DataFrame:
    """The tickets' events (those of known tickets) in history order, with one bool column per role in
    ``EVENT_ROLES``: which facts each event decided."""
    basis = fact_basis(tickets, events, settings, as_of, approvals)
    known, tix = known_events(basis.ctx.t, events)
    if not len(known):
        return known.assign(**{role: pd.Series(dtype=bool) for roles in EVENT_ROLES.values() for role in roles})
    order = history_order(known, tix, epoch_seconds(known["at"]))
    rows = known.take(order).reset_index(drop=True)
    rank = kind_ranks(rows)
    flags = {role: np.zeros(len(rows), dtype=bool) for roles in EVENT_ROLES.values() for role in roles}
    for r, kind in enumerate(EVENT_KINDS):
        where = np.flatnonzero(rank == r)  # the i-th of them is the i-th event of the kind's KindEvents
        for role, hit in _roles_of(kind, basis).items():
            flags[role][where[hit]] = True
    return rows.assign(**flags)


def _roles_of(kind: str, basis: FactBasis) -> dict[str, np.ndarray]:
    """Positions, within the kind's events, of the events that decided each role."""
    events = basis.ctx.h[kind]
    if kind == "status":
        return _status_roles(events, basis)
    if kind == "response":
        return {"response": _first_per_ticket(events)}
    if kind in ("assignee", "group"):
        credited = _non_empty_at(events, basis.resolved_at)
        return {"reassignment": _changes(events), "engineer" if kind == "assignee" else "team": credited}
    if kind == "priority":
        as_of = basis.ctx.as_of_s
        return {"response_priority": _non_empty_at(events, np.where(np.isnan(basis.response_at), as_of,
                                                                    basis.response_at)),
                "resolution_priority": _non_empty_at(events, np.where(np.isnan(basis.resolved_at), as_of,
                                                                      basis.resolved_at))}
    return _category_roles(events, basis)


def _category_roles(events: KindEvents, basis: FactBasis) -> dict[str, np.ndarray]:
    """The category event that gave the initial diagnosis (the one in effect at the response, else the first;
    none when the ``diagnosed_category`` column holds it) and the one giving the final category."""
    if not len(events):
        return {"initial_diagnosis": np.empty(0, dtype="int64"), "final_category": np.empty(0, dtype="int64")}
    n = basis.ctx.t.n
    at_response = events.index_at(basis.response_at)
    first = np.full(n, -1)
    firsts = _first_per_ticket(events)
    first[events.tix[firsts]] = firsts
    # an event that cleared the category decides too; no response: the first event (D7)
    initial = np.where((at_response < 0) | np.isnan(basis.response_at), first, at_response)
    initial = np.where(basis.ctx.t.code("diagnosed_category") != MISSING, -1, initial)
    return {"initial_diagnosis": initial[initial >= 0], "final_category": _last_per_ticket(events)}


def _status_roles(events: KindEvents, basis: FactBasis) -> dict[str, np.ndarray]:
    """The first and last resolution (while the ticket is resolved now) and every reopen."""
    flags = status_flags(events, basis.ctx.v)
    done = basis.ctx.v.is_one_of(events.last_value(basis.ctx.t.n), sorted(DONE_STATUSES))
    resolutions = np.flatnonzero(flags.is_resolution & done[events.tix])
    return {"first_resolution": resolutions[_first_of_runs(events.tix[resolutions])],
            "last_resolution": resolutions[_last_of_runs(events.tix[resolutions])],
            "reopen": np.flatnonzero(flags.is_reopen)}


def _non_empty_at(events: KindEvents, query_at: np.ndarray) -> np.ndarray:
    """Positions of each ticket's last non-empty event at or before ``query_at`` (NaN: after every event)."""
    non_empty = np.flatnonzero(events.value != MISSING)
    i = events.select(events.value != MISSING).index_at(query_at)
    return non_empty[i[i >= 0]]


def _changes(events: KindEvents) -> np.ndarray:
    """Positions of the non-empty values that differ from the ticket's previous non-empty value."""
    non_empty = np.flatnonzero(events.value != MISSING)
    tix, value = events.tix[non_empty], events.value[non_empty]
    changed = np.concatenate([[False], (tix[1:] == tix[:-1]) & (value[1:] != value[:-1])])
    return non_empty[changed[:len(non_empty)]]


def _first_per_ticket(events: KindEvents) -> np.ndarray:
    return _first_of_runs(events.tix)


def _last_per_ticket(events: KindEvents) -> np.ndarray:
    return _last_of_runs(events.tix)


def _first_of_runs(tix: np.ndarray) -> np.ndarray:
    """Positions starting each run of equal ``tix`` (sorted)."""
    return np.flatnonzero(np.concatenate([[True], tix[1:] != tix[:-1]])) if len(tix) else np.empty(0, dtype="int64")


def _last_of_runs(tix: np.ndarray) -> np.ndarray:
    """Positions ending each run of equal ``tix`` (sorted)."""
    return np.flatnonzero(np.concatenate([tix[1:] != tix[:-1], [True]])) if len(tix) else np.empty(0, dtype="int64")
