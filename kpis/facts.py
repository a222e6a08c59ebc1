"""Per-ticket facts (KPIS.md 3): canonical tickets + events -> ``ticket_facts``.

``compute_facts`` builds a ``TicketFrame`` (the tickets as numpy columns, times as float64 epoch
seconds) and the sorted events once, then fills the fact columns group by group: who, resolution,
response, SLA policy, durations, SLA status, first fix, diagnosis, CSAT, maintenance, induced incidents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kpis.calendar import CalendarSet, epoch_seconds, from_epoch_seconds
from kpis.config import KpiSettings, SlaPolicy
from kpis.csat import csat_scores
from kpis.schema import DONE_STATUSES, KPI_VERSION, TICKET_FACT_COLUMNS, UNASSIGNED, conform
from kpis.timeline import (
    KindEvents,
    StatusHistory,
    changed_between_non_empty,
    events_of,
    paused_business_seconds,
    sort_events,
    status_history,
)

_DONE = np.array(sorted(DONE_STATUSES), dtype=object)
_FIXABLE_TYPES = np.array(["incident", "request"], dtype=object)


class TicketFrame:
    """Tickets as aligned numpy columns: strings as object arrays (None = missing or blank),
    times as float64 epoch seconds (NaN = missing). Each column is converted once."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame.reset_index(drop=True)
        self.n = len(frame)
        self._cache: dict[str, np.ndarray] = {}

    def text(self, column: str) -> np.ndarray:
        if column not in self._cache:
            s = pd.Series(self.frame[column].astype("object"), dtype="str").str.strip()
            self._cache[column] = s.where(s != "").to_numpy(dtype=object, na_value=None)
        return self._cache[column]

    def time(self, column: str) -> np.ndarray:
        key = f"time:{column}"
        if key not in self._cache:
            self._cache[key] = epoch_seconds(self.frame[column])
        return self._cache[key]


@dataclass(frozen=True)
class History:
    """The sorted events of every kind, for one set of tickets."""

    status: StatusHistory
    response: KindEvents
    assignee: KindEvents
    group: KindEvents
    priority: KindEvents
    category: KindEvents


def compute_facts(tickets: pd.DataFrame, events: pd.DataFrame, settings: KpiSettings, as_of: pd.Timestamp) -> pd.DataFrame:
    """Return ``ticket_facts`` (one row per ticket) for canonical ``tickets`` and ``events`` at ``as_of``."""
    t = TicketFrame(tickets)
    history = _history(t, events, settings)
    calendars = CalendarSet(dict(settings.calendars))
    as_of_s = float(pd.Timestamp(as_of).timestamp())
    out: dict[str, object] = {}
    status = np.where(history.status.has_status, history.status.last_status, t.text("status"))
    ticket_type = t.text("ticket_type")
    excluded = _excluded_reason(status, ticket_type, settings)
    priority = np.where(history.priority.has_any(t.n), history.priority.non_empty().last_value(t.n), t.text("priority"))
    out.update(source=t.text("source"), ticket_id=t.text("ticket_id"), ticket_type=ticket_type,
               priority=priority, status=status, excluded_reason=excluded)
    first_res, resolved = _resolution_times(t, history.status, status)
    response_at = _response_at(t, history, first_res, settings)
    out.update(engineer=_credited(history.assignee, t.text("assignee"), resolved),
               team=_credited(history.group, t.text("assignment_group"), resolved),
               first_resolved_at=first_res, resolved_at=resolved, response_at=response_at)
    out.update(_rework(t, history))
    out.update(_durations_and_sla(t, history, calendars, settings, response_at, resolved, as_of_s, excluded))
    out.update(_first_fix(ticket_type, excluded, resolved, out["reopened"], out["reassigned"]))
    category = _final_category(t, history)
    out.update(_diagnosis(t, history, category, response_at, ticket_type, excluded, resolved, out["reopened"]))
    out.update(category=category, **_csat(t, settings))
    out["maintenance_on_time"] = _maintenance_on_time(t, status, ticket_type, excluded, resolved, as_of_s, settings)
    out["induced_incident"] = _induced_incident(t, ticket_type, excluded)
    return _to_frame(t, out, as_of)


def _history(t: TicketFrame, events: pd.DataFrame, settings: KpiSettings) -> History:
    keys = pd.MultiIndex.from_arrays([t.frame["source"].astype("str"), t.frame["ticket_id"].astype("str")])
    ev_keys = pd.MultiIndex.from_arrays([events["source"].astype("str"), events["ticket_id"].astype("str")])
    tix = keys.get_indexer(ev_keys)
    known = tix >= 0  # events of unknown tickets were quarantined upstream; ignore any left
    ev = sort_events(events[known], tix[known], epoch_seconds(events["at"])[known])
    return History(
        status=status_history(events_of(ev, "status"), t.n, settings.pause_statuses),
        response=events_of(ev, "response"),
        assignee=events_of(ev, "assignee"),
        group=events_of(ev, "group"),
        priority=events_of(ev, "priority"),
        category=events_of(ev, "category"),
    )


def _excluded_reason(status: np.ndarray, ticket_type: np.ndarray, settings: KpiSettings) -> np.ndarray:
    out_of_scope = ~np.isin(ticket_type, np.array(settings.ticket_types, dtype=object))
    return np.where(status == "CANCELLED", "cancelled", np.where(out_of_scope, "out_of_scope", None))


def _resolution_times(t: TicketFrame, sh: StatusHistory, status: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """first_resolved_at / resolved_at: from status events, else the columns (resolved_at, else closed_at)."""
    column = t.time("resolved_at")
    column = np.where(np.isnan(column), t.time("closed_at"), column)
    column = np.where(np.isin(status, _DONE), column, np.nan)
    first = np.where(sh.has_status, sh.first_resolved_at, column)
    last = np.where(sh.has_status, sh.last_resolved_at, column)
    return first, last


def _response_at(t: TicketFrame, h: History, first_resolved: np.ndarray, settings: KpiSettings) -> np.ndarray:
    response = h.response.first_at(t.n)
    response = np.where(np.isnan(response), t.time("first_response_at"), response)
    if settings.resolution_counts_as_response:
        response = np.where(np.isnan(response), first_resolved, response)
    return response


def _credited(events: KindEvents, column: np.ndarray, resolved_at: np.ndarray) -> np.ndarray:
    """Last non-empty event value at or before resolution (all events if unresolved), else column, else unassigned."""
    who = events.non_empty().value_at(resolved_at)
    who = np.where(pd.isna(who), column, who)
    return np.where(pd.isna(who), UNASSIGNED, who)


def _rework(t: TicketFrame, h: History) -> dict[str, np.ndarray]:
    column_reopens = t.frame["reopen_count"].fillna(0).to_numpy(dtype="int64")
    reopen_count = np.where(h.status.has_status, h.status.reopen_count, column_reopens)
    has_who_events = h.assignee.has_any(t.n) | h.group.has_any(t.n)
    changed = changed_between_non_empty(h.assignee, t.n) | changed_between_non_empty(h.group, t.n)
    column_reassigned = t.frame["reassignment_count"].fillna(0).to_numpy(dtype="int64") > 0
    return {
        "reopen_count": reopen_count,
        "reopened": reopen_count > 0,
        "reassigned": np.where(has_who_events, changed, column_reassigned),
    }


def _policy_index(ticket_type: np.ndarray, priority: np.ndarray, policies: tuple[SlaPolicy, ...]) -> np.ndarray:
    """Index of the first matching SLA policy per ticket, -1 when none (a ticket without priority has none)."""
    index = np.full(len(ticket_type), -1)
    for i in range(len(policies) - 1, -1, -1):  # walk backwards so the first match is written last
        p = policies[i]
        match = pd.notna(priority)
        if p.ticket_type is not None:
            match &= ticket_type == p.ticket_type
        if p.priority is not None:
            match &= priority == p.priority
        index[match] = i
    return index


@dataclass(frozen=True)
class _Policy:
    priority: np.ndarray
    target_s: np.ndarray  # NaN when no policy or no target
    calendar: np.ndarray  # calendar name per ticket


def _policy_at(t: TicketFrame, h: History, stop_at: np.ndarray, as_of_s: float, settings: KpiSettings,
               target: str) -> _Policy:
    """The SLA policy selected by the priority in effect at the metric's stop (as_of without a stop)."""
    query = np.where(np.isnan(stop_at), as_of_s, stop_at)
    priority = h.priority.non_empty().value_at(query)
    priority = np.where(pd.isna(priority), t.text("priority"), priority)
    index = _policy_index(t.text("ticket_type"), priority, settings.sla)
    targets = np.array([np.nan if getattr(p, target) is None else getattr(p, target) for p in settings.sla] + [np.nan])
    names = np.array([p.calendar or settings.default_calendar for p in settings.sla] + [settings.default_calendar],
                     dtype=object)
    return _Policy(priority=priority, target_s=targets[index], calendar=names[index])


def _durations_and_sla(t, h, calendars, settings, response_at, resolved_at, as_of_s, excluded) -> dict[str, np.ndarray]:
    opened = t.time("opened_at")
    rp = _policy_at(t, h, response_at, as_of_s, settings, "response_s")
    sp = _policy_at(t, h, resolved_at, as_of_s, settings, "resolution_s")
    response_cal = response_at - opened
    response_bus = calendars.business_seconds(rp.calendar, opened, response_at)
    paused_to_resolution = paused_business_seconds(h.status.segments, opened, resolved_at, sp.calendar, calendars)
    resolution_cal = resolved_at - opened
    resolution_bus = calendars.business_seconds(sp.calendar, opened, resolved_at) - paused_to_resolution
    negative_response, negative_resolution = response_cal < 0, resolution_cal < 0
    as_of = np.full(t.n, as_of_s)
    elapsed_response = calendars.business_seconds(rp.calendar, opened, as_of)
    elapsed_resolution = (calendars.business_seconds(sp.calendar, opened, as_of)
                          - paused_business_seconds(h.status.segments, opened, as_of, sp.calendar, calendars))
    in_scope = pd.isna(excluded)
    return {
        "response_priority": rp.priority,
        "resolution_priority": sp.priority,
        "response_target_s": rp.target_s,
        "resolution_target_s": sp.target_s,
        "response_calendar_s": np.where(negative_response, np.nan, response_cal),
        "response_business_s": np.where(negative_response, np.nan, response_bus),
        "resolution_calendar_s": np.where(negative_resolution, np.nan, resolution_cal),
        "resolution_business_s": np.where(negative_resolution, np.nan, resolution_bus),
        "dq_flag": np.where(negative_response, "negative_response",
                            np.where(negative_resolution, "negative_resolution", None)),
        "response_sla": _sla_status(response_at, response_bus, elapsed_response, rp.target_s,
                                    in_scope & ~negative_response),
        "resolution_sla": _sla_status(resolved_at, resolution_bus, elapsed_resolution, sp.target_s,
                                      in_scope & ~negative_resolution),
    }


def _sla_status(stop_at, elapsed_at_stop, elapsed_at_as_of, target_s, eligible) -> np.ndarray:
    """met / breached / in_progress; None where not eligible or without a target. Never rounds."""
    stopped = ~np.isnan(stop_at)
    status = np.where(
        stopped,
        np.where(elapsed_at_stop <= target_s, "met", "breached"),
        np.where(elapsed_at_as_of > target_s, "breached", "in_progress"),
    ).astype(object)
    return np.where(eligible & ~np.isnan(target_s), status, None)


def _first_fix(ticket_type, excluded, resolved_at, reopened, reassigned) -> dict[str, np.ndarray]:
    eligible = np.isin(ticket_type, _FIXABLE_TYPES) & pd.isna(excluded) & ~np.isnan(resolved_at)
    return {"first_fix": np.where(eligible, ~reopened & ~reassigned, None)}


def _final_category(t: TicketFrame, h: History) -> np.ndarray:
    """The last category event (events win, even when it is empty), else the category column."""
    return np.where(h.category.has_any(t.n), h.category.last_value(t.n), t.text("category"))


def _diagnosis(t, h, category, response_at, ticket_type, excluded, resolved_at, reopened) -> dict[str, np.ndarray]:
    at_response = h.category.value_at(response_at)
    no_event_that_early = pd.isna(at_response) & h.category.has_any(t.n)
    from_events = np.where(no_event_that_early, h.category.first_value(t.n), at_response)
    initial = t.text("diagnosed_category")
    initial = np.where(pd.isna(initial), from_events, initial)
    assessable = (np.isin(ticket_type, _FIXABLE_TYPES) & pd.isna(excluded) & ~np.isnan(resolved_at)
                  & pd.notna(initial) & pd.notna(category))
    accurate = (category == initial) & ~reopened
    return {
        "initial_diagnosis": initial,
        "diagnosis_assessable": assessable,
        "diagnosis_accurate": np.where(assessable, accurate, None),
    }


def _csat(t: TicketFrame, settings: KpiSettings) -> dict[str, object]:
    score = csat_scores(t.frame["satisfaction"], settings.satisfaction_map)
    return {"csat_score": score.to_numpy(dtype="float64", na_value=np.nan),
            "csat_satisfied": (score >= 4).to_numpy(dtype=object, na_value=None)}


def _maintenance_on_time(t, status, ticket_type, excluded, resolved_at, as_of_s, settings) -> np.ndarray:
    planned_end = t.time("planned_end")
    end = t.time("actual_end")
    end = np.where(np.isnan(end), resolved_at, end)
    completed = np.isin(status, _DONE)
    failed = np.isin(t.text("close_code"), np.array(sorted(settings.failed_close_codes), dtype=object))
    on_time = ~failed & ~np.isnan(end) & (end <= planned_end)
    due = completed | (as_of_s > planned_end)
    applies = (ticket_type == "maintenance") & ~np.isnan(planned_end) & pd.isna(excluded) & due
    return np.where(applies, completed & on_time, None)


def _induced_incident(t: TicketFrame, ticket_type: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    maintenance = t.frame.loc[ticket_type == "maintenance", ["source", "ticket_id"]]
    known = pd.MultiIndex.from_frame(maintenance.astype("str"))
    cause = pd.MultiIndex.from_arrays([t.frame["source"].astype("str"), t.frame["caused_by"].astype("str")])
    names_maintenance = cause.isin(known) & pd.notna(t.text("caused_by"))
    return (ticket_type == "incident") & pd.isna(excluded) & names_maintenance


def _to_frame(t: TicketFrame, out: dict[str, object], as_of: pd.Timestamp) -> pd.DataFrame:
    times = {name: from_epoch_seconds(out[name]) for name in ("first_resolved_at", "resolved_at", "response_at")}
    frame = pd.DataFrame({**out, **times})
    for column in ("opened_at", "closed_at", "planned_end", "satisfaction_at", "caused_by"):
        frame[column] = t.frame[column].to_numpy()
    frame["caused_by"] = t.text("caused_by")
    frame["as_of"] = pd.Timestamp(as_of).tz_convert("UTC")
    frame["kpi_version"] = KPI_VERSION
    return conform(frame, TICKET_FACT_COLUMNS)
