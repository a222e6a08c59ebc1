"""The backlog and time in status against a literal, ticket-by-ticket reading of KPIS.md 4.2 and 3.1.

The reference below loops over days and tickets in plain Python, as the spec's sentences read; the engine
must agree with it on random histories (several engineers, priorities, statuses at shared instants,
tickets without events, events before the opening and after as_of, a DST timezone).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from helpers import events, settings, tickets
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kpis.backlog import AGE_COLUMNS, backlog_history, kpi_backlog
from kpis.backlog_scope import BacklogScope
from kpis.calendar import CalendarColumn, CalendarSet
from kpis.facts import compute_facts, facts_and_history
from kpis.status_time import ticket_status_time

TZ = "Europe/Berlin"  # DST starts 2026-03-29: one local day has 23 hours
START = pd.Timestamp("2026-03-25T00:00:00Z")
AS_OF = pd.Timestamp("2026-04-02T09:30:00Z")
STATUSES = ["NEW", "IN_PROGRESS", "WAITING_CUSTOMER", "ON_HOLD", "RESOLVED", "CLOSED", "CANCELLED"]
FINAL = {"RESOLVED", "CLOSED", "CANCELLED"}
PAUSE = {"WAITING_CUSTOMER", "WAITING_THIRD_PARTY"}
PEOPLE = ["ann", "bo", ""]
PRIORITIES = ["P1", "P2", None]

minutes = st.integers(min_value=0, max_value=11 * 24 * 60)


@st.composite
def histories(draw):
    n = draw(st.integers(min_value=1, max_value=6))
    rows, evs = [], []
    for i in range(n):
        opened = START + pd.Timedelta(minutes=draw(minutes))
        status = draw(st.sampled_from(STATUSES))
        end = draw(st.one_of(st.none(), minutes.map(lambda m: START + pd.Timedelta(minutes=m))))
        rows.append({"ticket_id": f"t{i}", "opened_at": opened.isoformat(), "status": status,
                     "ticket_type": draw(st.sampled_from(["incident", "request"])),
                     "priority": draw(st.sampled_from(PRIORITIES)), "assignee": draw(st.sampled_from(PEOPLE)) or None,
                     "resolved_at": end.isoformat() if end is not None and status in ("RESOLVED", "CLOSED") else None})
        for _ in range(draw(st.integers(min_value=0, max_value=6))):
            kind = draw(st.sampled_from(["status", "assignee", "priority"]))
            value = {"status": st.sampled_from(STATUSES), "assignee": st.sampled_from(PEOPLE),
                     "priority": st.sampled_from(["P1", "P2", "P3"])}[kind]
            at = START + pd.Timedelta(minutes=draw(minutes) // 60 * 60)  # hours: shared instants are likely
            evs.append({"source": "helpdesk", "ticket_id": f"t{i}", "at": at, "kind": kind, "value": draw(value),
                        "actor": "", "seq": len(evs)})
    return tickets(*rows), events(*evs)


def _day_ends(first: pd.Timestamp, last: pd.Timestamp) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    tz = ZoneInfo(TZ)
    day, stop = first.tz_convert(TZ).date(), last.tz_convert(TZ).date()
    out = []
    while day <= stop:
        end = datetime.combine(day + timedelta(days=1), datetime.min.time()).replace(tzinfo=tz)
        out.append((pd.Timestamp(day), pd.Timestamp(end).tz_convert("UTC")))
        day += timedelta(days=1)
    return out


def _last_before(evs: list[dict], kind: str, end: pd.Timestamp, non_empty: bool = False) -> str | None:
    """The value of the ticket's last ``kind`` event strictly before ``end`` (ties: event order)."""
    found = None
    for e in sorted(evs, key=lambda e: (e["at"], e["seq"])):
        if e["kind"] == kind and e["at"] < end and (not non_empty or e["value"]):
            found = e["value"]
    return found


def _reference_backlog(t: pd.DataFrame, e: pd.DataFrame, due: dict[str, pd.Timestamp]) -> dict[tuple, tuple]:
    by_ticket = {tid: [r for r in e.to_dict("records") if r["ticket_id"] == tid] for tid in t["ticket_id"]}
    counts: dict[tuple, list] = {}
    for day, end in _day_ends(t["opened_at"].min(), AS_OF):
        for r in t.to_dict("records"):
            evs = by_ticket[r["ticket_id"]]
            if not r["opened_at"] < end:
                continue
            has_status = any(x["kind"] == "status" for x in evs)
            status = _last_before(evs, "status", end) if has_status else r["status"]
            if has_status:
                is_open = status is None or status not in FINAL
            else:
                res = r["resolved_at"] if pd.notna(r["resolved_at"]) else r["closed_at"]
                is_open = status not in FINAL or (status in ("RESOLVED", "CLOSED") and pd.notna(res) and res >= end)
            if not is_open:
                continue
            engineer = _last_before(evs, "assignee", end, non_empty=True) or r["assignee"] or "unassigned"
            priority = _last_before(evs, "priority", end) or r["priority"] or "(none)"
            key = (day.strftime("%Y-%m-%d"), engineer if isinstance(engineer, str) else "unassigned",
                   r["ticket_type"], priority if isinstance(priority, str) else "(none)")
            age = (end - r["opened_at"]).total_seconds() / 86400
            bucket = sum(age >= edge for edge in (1, 3, 7, 30))
            row = counts.setdefault(key, [0, 0, 0, 0, 0, 0, 0, 0, None])
            row[0] += 1
            row[1 + bucket] += 1
            row[6] += int(r["ticket_id"] in due and due[r["ticket_id"]] < end)
            row[7] += int(status in PAUSE)
            row[8] = r["opened_at"] if row[8] is None else min(row[8], r["opened_at"])
    return {k: tuple(v) for k, v in counts.items()}


def _engine_backlog(frame: pd.DataFrame) -> dict[tuple, tuple]:
    columns = ["open_count", *AGE_COLUMNS, "overdue_count", "paused_count"]
    return {(r["day"].strftime("%Y-%m-%d"), r["engineer"], r["ticket_type"], r["priority"]):
            (*[int(r[c]) for c in columns], r["oldest_opened_at"]) for r in frame.to_dict("records")}


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.data())
def test_backlog_equals_the_literal_reading(history, data) -> None:
    t, e = history
    s = settings(reporting={"timezone": TZ})
    facts = compute_facts(t, e, s, AS_OF)
    due_ids = data.draw(st.lists(st.sampled_from(list(t["ticket_id"])), unique=True))
    due = {tid: START + pd.Timedelta(minutes=data.draw(minutes)) for tid in due_ids}
    facts["resolution_due_at"] = facts["ticket_id"].map(due).astype("datetime64[us, UTC]")
    backlog = kpi_backlog(t, e, facts, s, AS_OF)
    assert _engine_backlog(backlog) == _reference_backlog(t, e, due)
    # a full run builds one history for both ops tables: it must not change either
    shared = backlog_history(t, e)
    pd.testing.assert_frame_equal(kpi_backlog(t, e, facts, s, AS_OF, history=shared), backlog)
    calendars, calendar = CalendarSet(dict(s.calendars)), CalendarColumn(np.zeros(len(t), dtype="int64"), ("24x7",))
    pd.testing.assert_frame_equal(ticket_status_time(t, e, calendars, calendar, AS_OF, history=shared),
                                  ticket_status_time(t, e, calendars, calendar, AS_OF))
    # nor the history the facts built (a full run in one piece hands it on)
    from_facts = facts_and_history(t, e, s, AS_OF)[1]
    pd.testing.assert_frame_equal(kpi_backlog(t, e, facts, s, AS_OF, history=from_facts), backlog)
    pd.testing.assert_frame_equal(ticket_status_time(t, e, calendars, calendar, AS_OF, history=from_facts),
                                  ticket_status_time(t, e, calendars, calendar, AS_OF))


@hsettings(max_examples=30, deadline=None)
@given(histories(), st.lists(st.integers(min_value=-3, max_value=12), max_size=6))
def test_backlog_of_some_days_equals_those_days_of_the_whole(history, offsets) -> None:
    """Any days, in any order, also days with gaps between them (a night's scope), before the first opening
    or after as_of's date (none of those has rows)."""
    t, e = history
    s = settings(reporting={"timezone": TZ})
    facts = compute_facts(t, e, s, AS_OF)
    whole = kpi_backlog(t, e, facts, s, AS_OF)
    days = np.datetime64("2026-03-25") + np.array(offsets, dtype="timedelta64[D]")
    some = kpi_backlog(t, e, facts, s, AS_OF, days=days)
    expected = whole[whole["day"].isin(pd.to_datetime(days.astype(str)))].reset_index(drop=True)
    pd.testing.assert_frame_equal(some, expected)


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.data())
def test_backlog_of_a_scope_equals_the_rows_it_holds_of_the_whole(history, data) -> None:
    """A night's scope (recent days, and cells of other days, some of which no ticket is open in or lying
    outside the history) gives exactly the rows of the whole backlog that ``BacklogScope.holds`` keeps."""
    t, e = history
    s = settings(reporting={"timezone": TZ})
    facts = compute_facts(t, e, s, AS_OF)
    whole = kpi_backlog(t, e, facts, s, AS_OF)
    day = st.integers(min_value=-2, max_value=11).map(lambda d: np.datetime64("2026-03-25") + np.timedelta64(d, "D"))
    cells = data.draw(st.lists(st.tuples(day, st.sampled_from(["ann", "bo", "unassigned"]),
                                         st.sampled_from(["incident", "request"]),
                                         st.sampled_from(["P1", "P2", "P3", "(none)"])), max_size=8))
    cells = pd.DataFrame(cells, columns=["day", "engineer", "ticket_type", "priority"]).astype({"day": "datetime64[s]"})
    recent = np.array(data.draw(st.lists(day, max_size=3)), dtype="datetime64[D]")
    scope = BacklogScope(np.union1d(cells["day"].to_numpy().astype("datetime64[D]"), recent), recent, cells)
    expected = whole[scope.holds(whole)].reset_index(drop=True)
    pd.testing.assert_frame_equal(kpi_backlog(t, e, facts, s, AS_OF, only=scope), expected)


@hsettings(max_examples=30, deadline=None)
@given(histories())
def test_status_time_adds_up_to_the_status_span(history) -> None:
    t, e = history
    s = settings(calendars={"office": {"timezone": TZ, "hours": {"mon": ["09:00-17:00"], "sat": ["10:00-12:00"]}}})
    calendar = CalendarColumn(np.zeros(len(t), dtype="int64"), ("office",))
    frame = ticket_status_time(t, e, CalendarSet(dict(s.calendars)), calendar, AS_OF)
    assert (frame["business_s"] <= frame["calendar_s"]).all()
    status = e[e["kind"] == "status"].sort_values(["at", "seq"])
    for tid, evs in status.groupby("ticket_id"):
        last = evs.iloc[-1]
        runs_on = last["value"] not in FINAL and last["at"] < AS_OF
        span_end = AS_OF if runs_on else last["at"]
        mine = frame[frame["ticket_id"] == tid]
        assert mine["calendar_s"].sum() == (span_end - evs["at"].min()).total_seconds()
        assert mine["entries"].sum() == len(evs)


@hsettings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_counting_one_day_at_a_time_changes_nothing(history) -> None:
    """The day grids are counted a run of days at a time (memory); runs of one day give the literal reading
    too, and the same frame, in the same order, as one run."""
    import kpis.backlog as backlog_module

    t, e = history
    s = settings(reporting={"timezone": TZ})
    facts = compute_facts(t, e, s, AS_OF)
    facts["resolution_due_at"] = pd.Series(pd.NaT, index=facts.index, dtype="datetime64[us, UTC]")
    kept = backlog_module.CELLS_PER_CHUNK
    backlog_module.CELLS_PER_CHUNK = 1
    try:
        blocks = kpi_backlog(t, e, facts, s, AS_OF)
    finally:
        backlog_module.CELLS_PER_CHUNK = kept
    assert _engine_backlog(blocks) == _reference_backlog(t, e, {})
    pd.testing.assert_frame_equal(blocks, kpi_backlog(t, e, facts, s, AS_OF))
