"""Which tickets a night's backlog days read (kpis/backlog_candidates.py), on hand-made tickets.

The days' ends run from 03-20 00:00 to 03-23 00:00 UTC; a ticket left out must be one the backlog would
not count on any of them (test_backlog_properties checks the backlog of any days against the whole).
"""

from __future__ import annotations

import numpy as np
from helpers import ev, events, tickets

from kpis.backlog_candidates import may_be_open
from kpis.calendar import epoch_seconds

ENDS = epoch_seconds(np.array(["2026-03-20T00:00", "2026-03-21T00:00", "2026-03-23T00:00"], dtype="datetime64[s]"))


def _row(tid: str, opened: str = "2026-03-01T09:00Z", status: str = "CLOSED", **fields: str) -> dict:
    return {"ticket_id": tid, "opened_at": opened, "status": status, **fields}


def test_tickets_closed_for_good_before_the_first_end_or_opened_after_the_last_are_left_out() -> None:
    t = tickets(
        _row("closed"),  # NEW, RESOLVED on 03-02: closed at every end
        _row("open"),  # its last status event (03-02) is IN_PROGRESS
        _row("late_event"),  # closed on 03-02, but reassigned on 03-21: it may count again
        _row("too_new", opened="2026-03-23T00:00Z", status="NEW"),  # opened at the last end: not before it
        _row("row_closed", resolved_at="2026-03-05T00:00Z"),  # no status events: its status column is CLOSED
        _row("row_open", status="IN_PROGRESS"),  # no status events, not closed
        _row("resolved_late", resolved_at="2026-03-20T10:00Z"),  # its resolution lies after the first end
        _row("tie"),  # RESOLVED and IN_PROGRESS at its latest instant: unsure, kept
        _row("null_status"),  # its last status event has no value: open, as the backlog reads it
        _row("closed_late", closed_at="2026-03-21T10:00Z"),  # no resolved_at, closed after the first end
    )
    e = events(
        ev("closed", "2026-03-01T09:00Z", "status", "NEW"), ev("closed", "2026-03-02T09:00Z", "status", "RESOLVED"),
        ev("open", "2026-03-01T09:00Z", "status", "NEW"), ev("open", "2026-03-02T09:00Z", "status", "IN_PROGRESS"),
        ev("late_event", "2026-03-02T09:00Z", "status", "RESOLVED"),
        ev("late_event", "2026-03-21T09:00Z", "assignee", "bo"),
        ev("tie", "2026-03-02T09:00Z", "status", "RESOLVED"), ev("tie", "2026-03-02T09:00Z", "status", "IN_PROGRESS"),
        ev("null_status", "2026-03-02T09:00Z", "status", "RESOLVED"), ev("null_status", "2026-03-03T09:00Z", "status", None),
        ev("unknown", "2026-03-21T09:00Z", "status", "NEW"),  # of no ticket given
    )
    keep, events_kept = may_be_open(t, e, ENDS)
    assert dict(zip(t["ticket_id"], keep.tolist(), strict=True)) == {
        "closed": False, "open": True, "late_event": True, "too_new": False, "row_closed": False,
        "row_open": True, "resolved_late": True, "tie": True, "null_status": True, "closed_late": True}
    assert sorted(set(e.loc[events_kept, "ticket_id"])) == ["late_event", "null_status", "open", "tie"]


def test_no_days_leave_every_ticket_out() -> None:
    keep, events_kept = may_be_open(tickets(_row("open", status="NEW")), events(ev("open", "2026-03-01T09:00Z", "status", "NEW")),
                                    np.empty(0))
    assert not keep.any() and not events_kept.any()
