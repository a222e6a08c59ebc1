"""Per-ticket facts (KPIS.md 3): canonical tickets + events -> ``ticket_facts``.

``compute_facts`` encodes the tickets once (``TicketFrame``: small-domain strings as vocabulary codes,
times as float64 epoch seconds), sorts the events once (``History``), then fills the fact columns group
by group: who, resolution, response, SLA policies (kpis.sla), each metric's durations, due time and SLA
status, first fix, diagnosis, CSAT, maintenance, induced incidents. All of it is numpy over whole columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa

from kpis.calendar import CalendarSet, epoch_seconds, from_epoch_seconds
from kpis.config import KpiSettings
from kpis.csat import csat_scores
from kpis.exemptions import Exemptions, exempt_verdicts, exempted_reason, exemptions
from kpis.keys import positions, ticket_keys, ticket_row_positions
from kpis.schema import (
    DONE_STATUSES,
    EXEMPT,
    HISTORY_SEED,
    TICKET_FACT_COLUMNS,
    UNASSIGNED,
    conform,
    stamp_run,
)
from kpis.sla import (
    MetricPolicy,
    all_pause_statuses,
    excluded_segments,
    metric_policy,
    pause_lookup,
    policy_index,
    policy_names,
    resolution_due_at,
    response_due_at,
    sla_status,
)
from kpis.status_time import CodedHistory
from kpis.timeline import (
    History,
    Segments,
    StatusHistory,
    changed_between_non_empty,
    cumulative_bounds,
    paused_seconds,
    sorted_history,
    status_history,
)
from kpis.vocabulary import MISSING, Vocabulary

FIXABLE_TYPES = ("incident", "request")
_CODED = ("ticket_type", "priority", "status", "assignee", "assignment_group", "category", "diagnosed_category",
          "close_code", "client", "service")
# Fact columns that are often their ticket column unchanged (no event moved them): then they share its texts.
_FROM_TICKET = {"status": "status", "priority": "priority", "category": "category", "client": "client",
                "service": "service", "engineer": "assignee", "team": "assignment_group",
                "initial_diagnosis": "diagnosed_category"}
#: Fact columns that hold a column of their ticket as read: the first eight always, the others (``_FROM_TICKET``)
#: unless an event moved them or their texts were stripped. A caller holding the tickets in the facts' order
#: may take these from the tickets (``pipeline.compute.local``, after stacking partitions).
_AS_READ = ("source", "ticket_id", "ticket_type", "opened_at", "closed_at", "planned_end", "satisfaction_at",
            "caused_by")
TICKET_COLUMN_OF = {**{column: column for column in _AS_READ}, **_FROM_TICKET}
#: The event columns ``compute_facts`` reads (not ``actor``, nor the source's ``event_id``).
EVENT_COLUMNS_READ = ("source", "ticket_id", "at", "kind", "value", "seq")
# Fact columns that usually hold the same codes as another (the priority at response is the current one,
# both metrics match the same policy, an accurate diagnosis is the final category): then they share its texts.
_TWINS = {"response_priority": "priority", "resolution_priority": "priority", "resolution_policy": "response_policy",
          "initial_diagnosis": "category"}
_PRODUCED = (UNASSIGNED, "cancelled", "out_of_scope", EXEMPT, "met", "breached", "in_progress", "negative_response",
             "negative_resolution", "RESOLVED", "CLOSED", "CANCELLED", "incident", "request", "maintenance")


class TicketFrame:
    """The tickets with their small-domain strings as codes and their times as epoch seconds."""

    def __init__(self, frame: pd.DataFrame, vocabulary: Vocabulary) -> None:
        self.frame = frame.reset_index(drop=True)
        self.n = len(frame)
        self.vocabulary = vocabulary
        self._codes: dict[str, np.ndarray] = {}
        self._round_trips: set[str] = set()  # columns that ``decode`` of their codes gives back
        for column in _CODED:
            self.code(column)
        self._times: dict[str, np.ndarray] = {}

    @cached_property
    def keys(self) -> pa.Array:
        """The ``(source, ticket_id)`` key of every ticket (see kpis.keys)."""
        return ticket_keys(self.frame["source"], self.frame["ticket_id"])

    def code(self, column: str) -> np.ndarray:
        """Vocabulary codes of a string column (-1 = missing or blank); other than ``_CODED`` ones on first use."""
        if column not in self._codes:
            self._codes[column], round_trips = self.vocabulary.encode_texts(self.frame[column])
            if round_trips:
                self._round_trips.add(column)
        return self._codes[column]

    def same_column(self, column: str, codes: np.ndarray) -> pd.Series | None:
        """The ticket column ``column`` itself where ``codes`` decode to it (its texts are not copied), else
        None. At 10M tickets each text column decoded is ~130 MB of new memory."""
        if column in self._round_trips and np.array_equal(self._codes[column], codes):
            return self.frame[column]
        return None

    def time(self, column: str) -> np.ndarray:
        """Epoch seconds of a timestamp column (NaN = missing)."""
        if column not in self._times:
            self._times[column] = epoch_seconds(self.frame[column])
        return self._times[column]

    def drop_caches(self) -> None:
        """Free the codes and epoch seconds once every fact is computed."""
        self._codes.clear()
        self._times.clear()

    def is_(self, column: str, *texts: str) -> np.ndarray:
        """Where a coded column holds one of ``texts``."""
        return self.vocabulary.is_one_of(self._codes[column], texts)


@dataclass(frozen=True)
class Context:
    """What every fact group reads: tickets, history, settings, calendars, as_of."""

    t: TicketFrame
    h: History
    status_history: StatusHistory
    settings: KpiSettings
    calendars: CalendarSet
    as_of_s: float
    exemptions: Exemptions

    @property
    def v(self) -> Vocabulary:
        return self.t.vocabulary


@dataclass(frozen=True)
class FactBasis:
    """What the fact groups share once the tickets are read: who, when resolved and answered, which policies.

    The first half of ``compute_facts``; ``kpis.segments`` explains one ticket's numbers from the same basis.
    """

    ctx: Context
    coded: dict[str, np.ndarray]  # status, priority, category, client, service, excluded_reason, engineer, team
    first_resolved_at: np.ndarray
    resolved_at: np.ndarray
    response_at: np.ndarray
    policies: Policies

    @property
    def in_scope(self) -> np.ndarray:
        """Tickets in the KPIs: not excluded (cancelled, out of scope, exempt)."""
        return self.coded["excluded_reason"] == MISSING


def fact_basis(tickets: pd.DataFrame, events: pd.DataFrame, settings: KpiSettings, as_of: pd.Timestamp,
               approvals: pd.DataFrame | None = None) -> FactBasis:
    """Read the tickets and their history once: current values, credited engineer and team, resolution and
    response times, exclusions (an applied ticket exemption included) and each metric's SLA policy."""
    vocabulary = Vocabulary()
    for text in (*HISTORY_SEED, *_PRODUCED):  # the ops tables' texts first: they can share the history (below)
        vocabulary.add(text)
    t = TicketFrame(tickets, vocabulary)
    h = _history(t, events)
    pauses = all_pause_statuses(settings.sla, settings.pause_statuses)
    sh = status_history(h["status"], t.n, pauses, vocabulary)
    ctx = Context(t, h, sh, settings, CalendarSet(dict(settings.calendars)), float(pd.Timestamp(as_of).timestamp()),
                  exemptions(t.n, lambda: t.keys, approvals, as_of))
    coded: dict[str, np.ndarray] = {}
    coded["status"] = np.where(sh.has_status, sh.last_status, t.code("status"))
    coded["priority"] = np.where(h["priority"].has_any(t.n), h["priority"].non_empty().last_value(t.n), t.code("priority"))
    coded["category"] = np.where(h["category"].has_any(t.n), h["category"].last_value(t.n), t.code("category"))
    coded["client"], coded["service"] = t.code("client"), t.code("service")
    coded["excluded_reason"] = exempted_reason(_excluded_reason(ctx, coded["status"]), ctx.exemptions.ticket, vocabulary)
    first_res, resolved = _resolution_times(ctx, coded["status"])
    response_at = _response_at(ctx, first_res)
    coded["engineer"] = _credited(ctx, "assignee", "assignee", resolved)
    coded["team"] = _credited(ctx, "group", "assignment_group", resolved)
    policies = _policies(ctx, response_at, resolved, coded)
    return FactBasis(ctx, coded, first_res, resolved, response_at, policies)


def compute_facts(tickets: pd.DataFrame, events: pd.DataFrame, settings: KpiSettings, as_of: pd.Timestamp,
                  approvals: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return ``ticket_facts`` (one row per ticket) for canonical ``tickets`` and ``events`` at ``as_of``.

    ``approvals``: approved exemptions (``kpis.schema.ADJUSTMENT_COLUMNS``; None: none), applied as KPIS.md 3
    says to the tickets they name when approved at or before ``as_of`` (``kpis.exemptions``).
    """
    return facts_and_history(tickets, events, settings, as_of, approvals)[0]


def facts_and_history(tickets: pd.DataFrame, events: pd.DataFrame, settings: KpiSettings, as_of: pd.Timestamp,
                      approvals: pd.DataFrame | None = None) -> tuple[pd.DataFrame, CodedHistory]:
    """``compute_facts``, and the history it read: the events sorted, split by kind and coded as
    ``kpis.backlog.backlog_history`` codes them, so that time in status and the backlog of the same ``tickets``
    (in the same order) read it instead of sorting the events again (at 1M tickets with 5M events, ~0.7 s)."""
    basis = fact_basis(tickets, events, settings, as_of, approvals)
    ctx, coded, in_scope, resolved, response_at = (basis.ctx, basis.coded, basis.in_scope, basis.resolved_at,
                                                   basis.response_at)
    t, policies = ctx.t, basis.policies
    out: dict[str, object] = {"first_resolved_at": basis.first_resolved_at, "resolved_at": resolved,
                              "response_at": response_at}
    out.update(_rework(ctx))
    opened_cum = _opened_cumulative(ctx, policies)
    for values, codes in (_response_facts(ctx, policies.response, opened_cum[0], response_at, in_scope),
                          _resolution_facts(ctx, policies, opened_cum[1], resolved, in_scope)):
        out.update(values)
        coded.update(codes)
    coded["response_sla"] = exempt_verdicts(coded["response_sla"], ctx.exemptions.response, ctx.v)
    coded["resolution_sla"] = exempt_verdicts(coded["resolution_sla"], ctx.exemptions.resolution, ctx.v)
    coded["dq_flag"] = _dq_flag(ctx, response_at, resolved)
    out.update(_first_fix(ctx, in_scope, resolved, out["reopened"], out["reassigned"]))
    diagnosis, coded["initial_diagnosis"] = _diagnosis(ctx, coded["category"], response_at, in_scope, resolved,
                                                       out["reopened"])
    out.update(diagnosis)
    out.update(_csat(t, ctx.settings))
    out["maintenance_on_time"] = _maintenance_on_time(ctx, coded["status"], in_scope, resolved)
    out["induced_incident"] = _induced_incident(t, in_scope)
    return _to_frame(t, out, coded, as_of), CodedHistory(ctx.h, t.vocabulary)


def _history(t: TicketFrame, events: pd.DataFrame) -> History:
    events, tix = known_events(t, events)
    return sorted_history(events, tix, epoch_seconds(events["at"]), t.vocabulary)


def known_events(t: TicketFrame, events: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The events of ``t``'s tickets, and each one's ticket number (``tix``)."""
    if not len(events):
        return events, np.empty(0, dtype="int64")
    tix = ticket_row_positions(t.keys, events["source"], events["ticket_id"])
    known = tix >= 0  # events of unknown tickets were quarantined upstream; ignore any left
    events = events[known] if not known.all() else events
    return events, tix[known].astype("int64")


def _excluded_reason(ctx: Context, status: np.ndarray) -> np.ndarray:
    v = ctx.v
    out_of_scope = ~ctx.t.is_("ticket_type", *ctx.settings.ticket_types)
    reason = np.where(out_of_scope, v.code("out_of_scope"), MISSING)
    return np.where(status == v.code("CANCELLED"), v.code("cancelled"), reason)


def _resolution_times(ctx: Context, status: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """first_resolved_at / resolved_at: from status events, else the columns (resolved_at, else closed_at)."""
    t, sh = ctx.t, ctx.status_history
    column = t.time("resolved_at")
    column = np.where(np.isnan(column), t.time("closed_at"), column)
    column = np.where(ctx.v.is_one_of(status, sorted(DONE_STATUSES)), column, np.nan)
    first = np.where(sh.has_status, sh.first_resolved_at, column)
    last = np.where(sh.has_status, sh.last_resolved_at, column)
    return first, last


def _response_at(ctx: Context, first_resolved: np.ndarray) -> np.ndarray:
    response = ctx.h["response"].first_at(ctx.t.n)
    response = np.where(np.isnan(response), ctx.t.time("first_response_at"), response)
    if ctx.settings.resolution_counts_as_response:
        response = np.where(np.isnan(response), first_resolved, response)
    return response


def _credited(ctx: Context, kind: str, column: str, resolved_at: np.ndarray) -> np.ndarray:
    """Last non-empty event value at or before resolution (all events if unresolved), else column, else unassigned."""
    who = ctx.h[kind].non_empty().value_at(resolved_at)
    who = np.where(who == MISSING, ctx.t.code(column), who)
    return np.where(who == MISSING, ctx.v.code(UNASSIGNED), who)


def _rework(ctx: Context) -> dict[str, np.ndarray]:
    t, h, sh = ctx.t, ctx.h, ctx.status_history
    column_reopens = t.frame["reopen_count"].fillna(0).to_numpy(dtype="int64")
    reopen_count = np.where(sh.has_status, sh.reopen_count, column_reopens)
    has_who_events = h["assignee"].has_any(t.n) | h["group"].has_any(t.n)
    changed = changed_between_non_empty(h["assignee"], t.n) | changed_between_non_empty(h["group"], t.n)
    column_reassigned = t.frame["reassignment_count"].fillna(0).to_numpy(dtype="int64") > 0
    return {
        "reopen_count": reopen_count,
        "reopened": reopen_count > 0,
        "reassigned": np.where(has_who_events, changed, column_reassigned),
    }


@dataclass(frozen=True)
class Policies:
    """The policies governing each ticket's response and resolution, and what resolution time leaves out."""

    response: MetricPolicy
    resolution: MetricPolicy
    excluded: Segments  # the segments taken off each ticket's resolution time (its policy's pauses, reopen gaps)
    pauses: np.ndarray  # [policy position, status code] -> does it pause resolution time (kpis.sla.pause_lookup)


def _policies(ctx: Context, response_at: np.ndarray, resolved_at: np.ndarray, coded: dict[str, np.ndarray]) -> Policies:
    """Each metric's policy: the first whose conditions match, with the priority in effect at its stop."""
    t, settings, v = ctx.t, ctx.settings, ctx.v
    values = {"ticket_type": t.code("ticket_type"), "client": t.code("client"), "service": t.code("service"),
              "category": coded["category"], "team": coded["team"]}
    if any("source" in p.conditions for p in settings.sla):
        values["source"] = t.code("source")
    metrics = []
    for stop_at, target in ((response_at, "response_s"), (resolved_at, "resolution_s")):
        priority = _priority_at(ctx, stop_at)
        index = policy_index(settings.sla, {**values, "priority": priority}, v)
        metrics.append(metric_policy(settings.sla, index, priority, target, settings.default_calendar))
    pauses = pause_lookup(settings.sla, settings.pause_statuses, v)
    excluded = excluded_segments(ctx.status_history.segments, metrics[1].index, pauses)
    return Policies(response=metrics[0], resolution=metrics[1], excluded=excluded, pauses=pauses)


def _priority_at(ctx: Context, stop_at: np.ndarray) -> np.ndarray:
    """The last priority event at or before the stop (as_of without one), else the ticket's priority."""
    query = np.where(np.isnan(stop_at), ctx.as_of_s, stop_at)
    priority = ctx.h["priority"].non_empty().value_at(query)
    return np.where(priority == MISSING, ctx.t.code("priority"), priority)


def _opened_cumulative(ctx: Context, policies: Policies) -> tuple[np.ndarray, np.ndarray]:
    """opened_at's cumulative business time on the response's and on the resolution's calendars (looked up
    once when every ticket's two calendars are the same)."""
    response, resolution = policies.response.calendar, policies.resolution.calendar
    opened = ctx.t.time("opened_at")
    on_response = ctx.calendars.cumulative(response, opened)
    if response.names == resolution.names and np.array_equal(response.codes, resolution.codes):
        return on_response, on_response
    return on_response, ctx.calendars.cumulative(resolution, opened)


def _response_facts(ctx: Context, policy: MetricPolicy, opened_cum: np.ndarray, response_at: np.ndarray,
                    in_scope: np.ndarray) -> tuple[dict, dict]:
    """Response durations, target, due time and verdict (never paused)."""
    calendars, opened = ctx.calendars, ctx.t.time("opened_at")
    calendar_s = response_at - opened
    business_s = calendars.cumulative(policy.calendar, response_at) - opened_cum
    negative = calendar_s < 0
    elapsed_at_as_of = np.where(np.isnan(response_at),
                                calendars.cumulative_at(policy.calendar, ctx.as_of_s) - opened_cum, np.nan)
    values = {
        "response_target_s": policy.target_s,
        "response_calendar_s": np.where(negative, np.nan, calendar_s),
        "response_business_s": np.where(negative, np.nan, business_s),
        "response_due_at": response_due_at(opened, opened_cum, policy, in_scope, calendars),
    }
    codes = {"response_priority": policy.priority, "response_policy": policy_names(ctx.settings.sla, policy.index, ctx.v),
             "response_sla": sla_status(ctx.v, response_at, business_s, elapsed_at_as_of, policy.target_s,
                                        in_scope & ~negative)}
    return values, codes


def _resolution_facts(ctx: Context, policies: Policies, opened_cum: np.ndarray, resolved_at: np.ndarray,
                      in_scope: np.ndarray) -> tuple[dict, dict]:
    """Resolution durations (pauses and reopen gaps taken off), target, due time and verdict."""
    calendars, opened, policy = ctx.calendars, ctx.t.time("opened_at"), policies.resolution
    calendar_s = resolved_at - opened
    unresolved = np.isnan(resolved_at)
    stop_cum = calendars.cumulative(policy.calendar, np.where(unresolved, ctx.as_of_s, resolved_at))
    excluded = cumulative_bounds(policies.excluded, policy.calendar, calendars)
    elapsed = stop_cum - opened_cum - paused_seconds(excluded, opened_cum, stop_cum)  # until as_of if unresolved
    business_s, elapsed_at_as_of = np.where(unresolved, np.nan, elapsed), np.where(unresolved, elapsed, np.nan)
    negative = calendar_s < 0
    values = {
        "resolution_target_s": policy.target_s,
        "resolution_calendar_s": np.where(negative, np.nan, calendar_s),
        "resolution_business_s": np.where(negative, np.nan, business_s),
        "resolution_due_at": resolution_due_at(opened, opened_cum, policy, excluded, in_scope, calendars),
    }
    codes = {"resolution_priority": policy.priority,
             "resolution_policy": policy_names(ctx.settings.sla, policy.index, ctx.v),
             "resolution_sla": sla_status(ctx.v, resolved_at, business_s, elapsed_at_as_of, policy.target_s,
                                          in_scope & ~negative)}
    return values, codes


def _dq_flag(ctx: Context, response_at: np.ndarray, resolved_at: np.ndarray) -> np.ndarray:
    """negative_response or negative_resolution: the first metric whose stop is before opened_at."""
    opened, v = ctx.t.time("opened_at"), ctx.v
    return np.where(response_at < opened, v.code("negative_response"),
                    np.where(resolved_at < opened, v.code("negative_resolution"), MISSING))


def _first_fix(ctx: Context, in_scope, resolved_at, reopened, reassigned) -> dict[str, pd.arrays.BooleanArray]:
    eligible = ctx.t.is_("ticket_type", *FIXABLE_TYPES) & in_scope & ~np.isnan(resolved_at)
    return {"first_fix": _nullable_bool(~reopened & ~reassigned, eligible)}


def _diagnosis(ctx: Context, category, response_at, in_scope, resolved_at, reopened):
    events = ctx.h["category"]
    # the last category event at or before the response, even one that cleared the category (D7: then no
    # diagnosis); the first category event when none is that early, or when there is no response (D7; a NaN
    # time reads as after every event)
    at_response = events.index_at(response_at)
    no_event_that_early = ((at_response < 0) | np.isnan(response_at)) & events.has_any(ctx.t.n)
    from_events = np.where(no_event_that_early, events.first_value(ctx.t.n), events.value_at(response_at))
    initial = ctx.t.code("diagnosed_category")
    initial = np.where(initial == MISSING, from_events, initial)
    assessable = (ctx.t.is_("ticket_type", *FIXABLE_TYPES) & in_scope & ~np.isnan(resolved_at)
                  & (initial != MISSING) & (category != MISSING))
    accurate = (category == initial) & ~reopened
    facts = {"diagnosis_assessable": assessable, "diagnosis_accurate": _nullable_bool(accurate, assessable)}
    return facts, initial


def _csat(t: TicketFrame, settings: KpiSettings) -> dict[str, object]:
    score = csat_scores(t.frame["satisfaction"], settings.satisfaction_map)
    return {"csat_score": score, "csat_satisfied": score >= 4}


def _maintenance_on_time(ctx: Context, status, in_scope, resolved_at) -> pd.arrays.BooleanArray:
    t = ctx.t
    planned_end = t.time("planned_end")
    end = t.time("actual_end")
    end = np.where(np.isnan(end), resolved_at, end)
    completed = ctx.v.is_one_of(status, sorted(DONE_STATUSES))
    failed = t.is_("close_code", *sorted(ctx.settings.failed_close_codes))
    on_time = ~failed & ~np.isnan(end) & (end <= planned_end)
    due = completed | (ctx.as_of_s > planned_end)
    applies = t.is_("ticket_type", "maintenance") & ~np.isnan(planned_end) & in_scope & due
    return _nullable_bool(completed & on_time, applies)


def _induced_incident(t: TicketFrame, in_scope: np.ndarray) -> np.ndarray:
    """In-scope incidents whose ``caused_by`` names a maintenance ticket of the same source."""
    candidate = t.is_("ticket_type", "incident") & in_scope & t.frame["caused_by"].notna().to_numpy()
    induced = np.zeros(t.n, dtype=bool)
    if candidate.any():
        maintenance = t.frame[t.is_("ticket_type", "maintenance")]
        maintenance_keys = ticket_keys(maintenance["source"], maintenance["ticket_id"])
        causes = t.frame[candidate]
        induced[candidate] = positions(maintenance_keys, ticket_keys(causes["source"], causes["caused_by"])) >= 0
    return induced


def _nullable_bool(values: np.ndarray, known: np.ndarray) -> pd.arrays.BooleanArray:
    return pd.arrays.BooleanArray(np.asarray(values, dtype=bool) & known, ~known)


def _nullable_int(seconds: np.ndarray) -> pd.arrays.IntegerArray:
    missing = np.isnan(seconds)
    return pd.arrays.IntegerArray(np.where(missing, 0, seconds).astype("int64"), missing)


def _text_columns(t: TicketFrame, coded: dict[str, np.ndarray]) -> dict[str, pd.Series]:
    """The coded fact columns as text; ``coded`` is emptied, each array as soon as nothing reads it again, so
    that peak memory stays near the result's. A column whose codes equal its ticket column's shares that
    column's texts; one whose codes equal its twin's (``_TWINS``, made before it) shares the twin's."""
    frame = {name: same for name, column in _FROM_TICKET.items()
             if name in coded and (same := t.same_column(column, coded[name])) is not None}
    t.drop_caches()
    twins = set(_TWINS.values())
    for name in list(coded):
        codes = coded[name] if name in twins else coded.pop(name)
        twin = _TWINS.get(name)
        if name in frame:
            continue
        if twin in frame and np.array_equal(coded[twin], codes):
            frame[name] = frame[twin]
        else:
            frame[name] = t.vocabulary.decode(codes)
    coded.clear()
    return frame


def _to_frame(t: TicketFrame, out: dict[str, object], coded: dict[str, np.ndarray], as_of: pd.Timestamp) -> pd.DataFrame:
    frame = _text_columns(t, coded)
    for name in ("first_resolved_at", "resolved_at", "response_at", "response_due_at", "resolution_due_at"):
        frame[name] = from_epoch_seconds(out.pop(name))
    for name in [c for c in out if c.endswith("_s")]:
        frame[name] = _nullable_int(out.pop(name))
    frame.update(out)
    for column in _AS_READ:
        frame[column] = t.frame[column]
    return conform(stamp_run(pd.DataFrame(frame, copy=False), as_of), TICKET_FACT_COLUMNS)
