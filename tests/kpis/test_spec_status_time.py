"""KPIS.md 3.1 time in status, on hand-worked tickets (times in UTC; an office calendar in UTC)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from helpers import ev, events, settings, tickets, ts

from kpis.calendar import CalendarColumn, CalendarSet
from kpis.status_time import ticket_status_time

OFFICE_UTC = {"timezone": "UTC", "hours": {d: ["09:00-12:00", "13:30-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}}
AS_OF = ts("2026-03-04T12:30:00Z")  # a Wednesday


def _status_time(tix: pd.DataFrame, evs: pd.DataFrame, calendar: str = "office_utc") -> pd.DataFrame:
    s = settings(calendars={"office_utc": OFFICE_UTC})
    column = CalendarColumn(np.zeros(len(tix), dtype="int64"), (calendar,))
    return ticket_status_time(tix, evs, CalendarSet(dict(s.calendars)), column, AS_OF)


def _rows(frame: pd.DataFrame, ticket_id: str) -> dict[str, tuple[int, int, int]]:
    mine = frame[frame["ticket_id"] == ticket_id]
    return {r.status: (r.entries, r.calendar_s, r.business_s) for r in mine.itertuples()}


def test_a_ticket_paused_and_reopened_sums_each_status_over_its_segments() -> None:
    t = tickets({"ticket_id": "A", "opened_at": "2026-03-02T09:00:00Z", "status": "RESOLVED"})
    e = events(ev("A", "2026-03-02T09:00:00Z", "status", "NEW"),
               ev("A", "2026-03-02T10:00:00Z", "status", "IN_PROGRESS"),
               ev("A", "2026-03-02T12:00:00Z", "status", "WAITING_CUSTOMER"),
               ev("A", "2026-03-02T15:00:00Z", "status", "IN_PROGRESS"),
               ev("A", "2026-03-02T17:00:00Z", "status", "RESOLVED"),
               ev("A", "2026-03-03T09:00:00Z", "status", "IN_PROGRESS"),  # reopened on Tuesday
               ev("A", "2026-03-03T11:00:00Z", "status", "RESOLVED"))
    got = _rows(_status_time(t, e), "A")
    # NEW 9-10: 3600 s, all working.
    # IN_PROGRESS 10-12 (7200, working), 15-17 (7200, working), Tue 9-11 (7200, working): 3 entries, 21600 s.
    # WAITING_CUSTOMER 12-15: 10800 s; working only 13:30-15:00 = 5400 s.
    # RESOLVED Mon 17:00 - Tue 09:00 = 57600 s (working 17-18 = 3600); the last RESOLVED is left out.
    assert got == {"NEW": (1, 3600, 3600), "IN_PROGRESS": (3, 21600, 21600),
                   "WAITING_CUSTOMER": (1, 10800, 5400), "RESOLVED": (2, 57600, 3600)}
    # summed, calendar_s is the time from the first status event to the last: 26 h
    assert sum(v[1] for v in got.values()) == 26 * 3600


def test_an_open_ticket_counts_its_last_status_up_to_as_of() -> None:
    t = tickets({"ticket_id": "B", "opened_at": "2026-03-04T08:00:00Z", "status": "IN_PROGRESS"})
    e = events(ev("B", "2026-03-04T08:00:00Z", "status", "NEW"),
               ev("B", "2026-03-04T10:00:00Z", "status", "IN_PROGRESS"))
    # NEW 08:00-10:00 = 7200 s (working 09-10 = 3600); IN_PROGRESS 10:00-12:30 (as_of) = 9000 s (working 10-12 = 7200)
    assert _rows(_status_time(t, e), "B") == {"NEW": (1, 7200, 3600), "IN_PROGRESS": (1, 9000, 7200)}


def test_a_last_status_set_after_as_of_is_left_out_but_entered() -> None:
    t = tickets({"ticket_id": "C", "opened_at": "2026-03-04T08:00:00Z", "status": "IN_PROGRESS"})
    e = events(ev("C", "2026-03-04T08:00:00Z", "status", "NEW"),
               ev("C", "2026-03-04T13:00:00Z", "status", "IN_PROGRESS"))  # after as_of 12:30
    # NEW runs to the next status event (13:00), not to as_of: 5 h; working 09-12 = 10800
    assert _rows(_status_time(t, e), "C") == {"NEW": (1, 18000, 10800), "IN_PROGRESS": (1, 0, 0)}


def test_a_cancelled_ticket_is_included_and_stops_counting() -> None:
    t = tickets({"ticket_id": "D", "opened_at": "2026-03-02T09:00:00Z", "status": "CANCELLED"})
    e = events(ev("D", "2026-03-02T09:00:00Z", "status", "NEW"), ev("D", "2026-03-02T10:00:00Z", "status", "CANCELLED"))
    assert _rows(_status_time(t, e), "D") == {"NEW": (1, 3600, 3600), "CANCELLED": (1, 0, 0)}


def test_tickets_without_status_events_have_no_rows_and_24x7_business_equals_calendar() -> None:
    t = tickets({"ticket_id": "E", "opened_at": "2026-03-02T09:00:00Z", "status": "NEW"},
                {"ticket_id": "F", "opened_at": "2026-03-02T09:00:00Z", "status": "IN_PROGRESS"})
    e = events(ev("E", "2026-03-02T09:00:00Z", "assignee", "alice"),
               ev("F", "2026-03-02T21:00:00Z", "status", "IN_PROGRESS"))
    frame = _status_time(t, e, calendar="24x7")
    assert set(frame["ticket_id"]) == {"F"}
    # 21:00 Monday to 12:30 Wednesday: 39.5 h, on 24x7 business time equals calendar time
    assert _rows(frame, "F") == {"IN_PROGRESS": (1, 142200, 142200)}


def test_no_status_event_at_all_gives_an_empty_table_of_whole_seconds() -> None:
    t = tickets({"ticket_id": "G", "opened_at": "2026-03-02T09:00:00Z", "status": "NEW"})
    frame = _status_time(t, events(ev("G", "2026-03-02T09:05:00Z", "assignee", "alice")))
    assert frame.empty
    assert [str(frame[c].dtype) for c in ("entries", "calendar_s", "business_s")] == ["Int64"] * 3


def test_rows_come_in_key_order_whatever_the_input_order() -> None:
    # ticket ids chosen so that text order differs from input order and from numeric order ("10" < "9")
    t = tickets({"ticket_id": "9", "opened_at": "2026-03-02T09:00:00Z", "status": "IN_PROGRESS"},
                {"ticket_id": "10", "opened_at": "2026-03-02T09:00:00Z", "status": "IN_PROGRESS"},
                {"ticket_id": "Z", "opened_at": "2026-03-02T09:00:00Z", "status": "IN_PROGRESS"},
                {"ticket_id": "a", "opened_at": "2026-03-02T09:00:00Z", "status": "IN_PROGRESS"})
    e = events(*[ev(tid, at, "status", value) for tid in ("9", "10", "Z", "a")
                 for at, value in (("2026-03-02T09:00:00Z", "WAITING_CUSTOMER"), ("2026-03-02T10:00:00Z", "NEW"),
                                   ("2026-03-02T11:00:00Z", "IN_PROGRESS"))])
    forward = _status_time(t, e)
    # by (source, ticket_id, status) text: "10" < "9" < "Z" < "a"; IN_PROGRESS < NEW < WAITING_CUSTOMER
    assert list(zip(forward["ticket_id"], forward["status"], strict=True)) == [
        (tid, status) for tid in ("10", "9", "Z", "a") for status in ("IN_PROGRESS", "NEW", "WAITING_CUSTOMER")]
    backward = _status_time(t.iloc[::-1].reset_index(drop=True), e.iloc[::-1].reset_index(drop=True))
    pd.testing.assert_frame_equal(forward, backward)


def test_every_row_carries_the_runs_as_of_and_kpi_version() -> None:
    t = tickets({"ticket_id": "B", "opened_at": "2026-03-04T08:00:00Z", "status": "IN_PROGRESS"})
    e = events(ev("B", "2026-03-04T08:00:00Z", "status", "NEW"),
               ev("B", "2026-03-04T10:00:00Z", "status", "IN_PROGRESS"))
    frame = _status_time(t, e)
    assert frame["as_of"].tolist() == [pd.Timestamp("2026-03-04T12:30:00Z")] * 2
    assert str(frame["as_of"].dtype) == "datetime64[us, UTC]"
    assert frame["kpi_version"].tolist() == ["v2", "v2"]
