"""KPIS.md 4.2 the daily backlog, on hand-worked tickets in Asia/Shanghai (UTC+8, no DST)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import ev, events, local, settings, tickets

import kpis.backlog as backlog_module
from kpis.backlog import PauseSets, backlog_cells, kpi_backlog
from kpis.backlog_cells import combine_backlogs
from kpis.backlog_scope import BacklogScope
from kpis.facts import compute_facts

TZ = "Asia/Shanghai"
AS_OF = local("2026-03-06 12:00", TZ)
COUNTS = ["open_count", "age_lt_1d", "age_1_3d", "age_3_7d", "age_7_30d", "age_ge_30d", "overdue_count",
          "paused_count"]


def _l(text: str) -> str:
    return local(text, TZ).isoformat()


def _world() -> tuple[pd.DataFrame, pd.DataFrame]:
    t = tickets(
        # T1: worked, reassigned, paused, resolved on 03-05
        {"ticket_id": "T1", "opened_at": _l("2026-03-02 10:00"), "status": "RESOLVED", "priority": "P2"},
        # T2: no events, still in progress, no priority
        {"ticket_id": "T2", "ticket_type": "request", "opened_at": _l("2026-03-04 23:30"), "status": "IN_PROGRESS",
         "assignee": "carol"},
        # T3: no events, resolved exactly at the end of 03-04
        {"ticket_id": "T3", "opened_at": _l("2026-03-03 12:00"), "status": "RESOLVED", "priority": "P1",
         "assignee": "dave", "resolved_at": _l("2026-03-05 00:00")},
        # T4: maintenance, out of scope here
        {"ticket_id": "T4", "ticket_type": "maintenance", "opened_at": _l("2026-03-02 08:00"), "status": "NEW",
         "assignee": "zed"},
        # T5: cancelled on 03-03 (counts until then)
        {"ticket_id": "T5", "opened_at": _l("2026-03-02 12:00"), "status": "CANCELLED", "priority": "P4",
         "assignee": "erin"},
        # T6: priority raised by an event; nobody assigned
        {"ticket_id": "T7", "opened_at": _l("2026-03-03 09:00"), "status": "IN_PROGRESS", "priority": "P3"},
    )
    e = events(
        ev("T1", _l("2026-03-02 10:00"), "status", "NEW"), ev("T1", _l("2026-03-02 10:00"), "assignee", "alice"),
        ev("T1", _l("2026-03-03 09:00"), "status", "IN_PROGRESS"), ev("T1", _l("2026-03-03 15:00"), "assignee", "bob"),
        ev("T1", _l("2026-03-04 11:00"), "status", "WAITING_CUSTOMER"),
        ev("T1", _l("2026-03-05 16:00"), "status", "RESOLVED"),
        ev("T5", _l("2026-03-02 12:00"), "status", "NEW"), ev("T5", _l("2026-03-03 08:00"), "status", "CANCELLED"),
        ev("T7", _l("2026-03-03 10:00"), "priority", "P1"),
    )
    return t, e


def _backlog(days: np.ndarray | None = None, only: BacklogScope | None = None) -> pd.DataFrame:
    t, e = _world()
    s = settings(reporting={"timezone": TZ}, kpi={"default_calendar": "24x7", "ticket_types": ["incident", "request"]})
    facts = compute_facts(t, e, s, AS_OF)
    due = {"T1": local("2026-03-04 12:00", TZ)}  # T1's resolution is due at noon on 03-04
    facts["resolution_due_at"] = facts["ticket_id"].map(due).astype("datetime64[us, UTC]")
    return kpi_backlog(t, e, facts, s, AS_OF, days=days, only=only)


def _table(frame: pd.DataFrame) -> dict[tuple, tuple]:
    return {(r.day.strftime("%m-%d"), r.engineer, r.ticket_type, r.priority): tuple(getattr(r, c) for c in COUNTS)
            for r in frame.itertuples()}


#      open  <1d  1-3d  3-7d  7-30d  >=30d  overdue  paused
EXPECTED = {
    # end of 03-02 (03-03 00:00): T1 NEW with alice, 14 h old; T5 NEW with erin, 12 h old
    ("03-02", "alice", "incident", "P2"): (1, 1, 0, 0, 0, 0, 0, 0),
    ("03-02", "erin", "incident", "P4"): (1, 1, 0, 0, 0, 0, 0, 0),
    # end of 03-03: T1 with bob (15:00), 38 h; T3 12 h; T7 15 h at P1 (event at 10:00); T5 cancelled at 08:00
    ("03-03", "bob", "incident", "P2"): (1, 0, 1, 0, 0, 0, 0, 0),
    ("03-03", "dave", "incident", "P1"): (1, 1, 0, 0, 0, 0, 0, 0),
    ("03-03", "unassigned", "incident", "P1"): (1, 1, 0, 0, 0, 0, 0, 0),
    # end of 03-04: T1 waiting on the customer (paused), due at noon (overdue), 62 h; T2 30 min; T3 resolved at
    # exactly this day's end (resolved_at >= E: still open), 36 h; T7 39 h
    ("03-04", "bob", "incident", "P2"): (1, 0, 1, 0, 0, 0, 1, 1),
    ("03-04", "carol", "request", "(none)"): (1, 1, 0, 0, 0, 0, 0, 0),
    ("03-04", "dave", "incident", "P1"): (1, 0, 1, 0, 0, 0, 0, 0),
    ("03-04", "unassigned", "incident", "P1"): (1, 0, 1, 0, 0, 0, 0, 0),
    # end of 03-05: T1 resolved at 16:00; T2 24.5 h (1 day or more); T7 63 h
    ("03-05", "carol", "request", "(none)"): (1, 0, 1, 0, 0, 0, 0, 0),
    ("03-05", "unassigned", "incident", "P1"): (1, 0, 1, 0, 0, 0, 0, 0),
    # end of 03-06 (the day of as_of): T2 48.5 h; T7 87 h
    ("03-06", "carol", "request", "(none)"): (1, 0, 1, 0, 0, 0, 0, 0),
    ("03-06", "unassigned", "incident", "P1"): (1, 0, 0, 1, 0, 0, 0, 0),
}


def test_backlog_days_are_reconstructed_from_the_history() -> None:
    assert _table(_backlog()) == EXPECTED


@pytest.mark.parametrize("cells_per_chunk", [1 << 22, 1])
def test_rows_come_in_key_order_whatever_order_the_values_were_seen_in(cells_per_chunk, monkeypatch) -> None:
    """Rows are ordered by (day, engineer, ticket type, priority) as texts, also when the days are counted a
    day at a time. The values are coded in the order they are read: "unassigned" first (seeded), then carol
    and dave (ticket columns), then bob (an event); the text order differs."""
    monkeypatch.setattr(backlog_module, "CELLS_PER_CHUNK", cells_per_chunk)
    frame = _backlog()
    keys = [(r.day.strftime("%m-%d"), r.engineer) for r in frame.itertuples()]
    assert keys == [("03-02", "alice"), ("03-02", "erin"),
                    ("03-03", "bob"), ("03-03", "dave"), ("03-03", "unassigned"),
                    ("03-04", "bob"), ("03-04", "carol"), ("03-04", "dave"), ("03-04", "unassigned"),
                    ("03-05", "carol"), ("03-05", "unassigned"),
                    ("03-06", "carol"), ("03-06", "unassigned")]


def test_oldest_opened_and_as_of_are_carried() -> None:
    frame = _backlog()
    row = frame[(frame["day"] == pd.Timestamp("2026-03-04")) & (frame["engineer"] == "bob")].iloc[0]
    assert row["oldest_opened_at"] == local("2026-03-02 10:00", TZ)
    assert (frame["as_of"] == AS_OF).all()


def test_a_subset_of_days_gives_exactly_those_days_rows() -> None:
    wanted = np.array(["2026-03-03", "2026-03-05"], dtype="datetime64[D]")
    assert _table(_backlog(days=wanted)) == {k: v for k, v in EXPECTED.items() if k[0] in ("03-03", "03-05")}


@pytest.mark.parametrize("cells_per_chunk", [1 << 22, 1])
def test_a_nights_scope_gives_only_the_rows_it_holds(cells_per_chunk, monkeypatch) -> None:
    """Every row of the recent day 03-06; of 03-03 only bob's cell (dave's and the unassigned P1 cell are
    counted on that day but not asked for); zed's cell on 03-04 holds no open ticket (no row); carol's cell
    on 03-05 is asked for with a missing priority, which matches nothing (her row's priority is "(none)")."""
    monkeypatch.setattr(backlog_module, "CELLS_PER_CHUNK", cells_per_chunk)
    cells = pd.DataFrame({"day": pd.to_datetime(["2026-03-03", "2026-03-04", "2026-03-05"]).astype("datetime64[s]"),
                          "engineer": ["bob", "zed", "carol"], "ticket_type": ["incident", "incident", "request"],
                          "priority": ["P2", "P2", None]})
    recent = np.array(["2026-03-06"], dtype="datetime64[D]")
    days = np.array(["2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06"], dtype="datetime64[D]")
    frame = _backlog(only=BacklogScope(days, recent, cells))
    #                                             open  <1d  1-3d  3-7d  7-30d  >=30d  overdue  paused
    assert _table(frame) == {("03-03", "bob", "incident", "P2"): (1, 0, 1, 0, 0, 0, 0, 0),
                             ("03-06", "carol", "request", "(none)"): (1, 0, 1, 0, 0, 0, 0, 0),
                             ("03-06", "unassigned", "incident", "P1"): (1, 0, 0, 1, 0, 0, 0, 0)}
    assert [(r.day.strftime("%m-%d"), r.engineer) for r in frame.itertuples()] == [
        ("03-03", "bob"), ("03-06", "carol"), ("03-06", "unassigned")]


def test_a_policy_pause_set_decides_paused() -> None:
    t, e = _world()
    s = settings(reporting={"timezone": TZ}, kpi={"ticket_types": ["incident", "request"]})
    facts = compute_facts(t, e, s, AS_OF)
    # T1 (row 0) pauses only in ON_HOLD under its policy: waiting on the customer is not a pause for it
    pauses = PauseSets((("WAITING_CUSTOMER", "WAITING_THIRD_PARTY"), ("ON_HOLD",)), np.array([1, 0, 0, 0, 0, 0]))
    frame = kpi_backlog(t, e, facts, s, AS_OF, pauses=pauses)
    assert frame["paused_count"].sum() == 0


def test_the_backlog_of_all_tickets_is_the_combination_of_any_split() -> None:
    t, e = _world()
    s = settings(reporting={"timezone": TZ}, kpi={"default_calendar": "24x7", "ticket_types": ["incident", "request"]})
    facts = compute_facts(t, e, s, AS_OF)
    facts["resolution_due_at"] = facts["ticket_id"].map({"T1": local("2026-03-04 12:00", TZ)}).astype(
        "datetime64[us, UTC]")
    whole = kpi_backlog(t, e, facts, s, AS_OF)
    assert _table(whole) == EXPECTED
    for first in (["T1", "T3"], ["T2", "T5", "T7"], ["T1", "T2", "T3", "T4", "T5", "T7"]):
        parts = [backlog_cells(t[mask].reset_index(drop=True), e, facts, s, AS_OF)
                 for mask in (t["ticket_id"].isin(first), ~t["ticket_id"].isin(first))]
        pd.testing.assert_frame_equal(combine_backlogs(parts).frame(AS_OF), whole, check_exact=True)
        pd.testing.assert_frame_equal(combine_backlogs(parts[::-1]).frame(AS_OF), whole, check_exact=True)


def test_an_age_of_exactly_a_bucket_edge_at_a_days_end_is_in_the_older_bucket() -> None:
    """At the end of 03-02 (03-03 00:00): A is exactly 1 day old (1 day or more), B one second less (under a
    day), D exactly 3 days (3 days or more), E one second less (1-3 days). C opened half a second after A: its
    timestamp is truncated to the whole second (KPIS.md), so it too is exactly 1 day old."""
    rows = [{"ticket_id": "A", "opened_at": _l("2026-03-02 00:00:00"), "assignee": "amy"},
            {"ticket_id": "B", "opened_at": _l("2026-03-02 00:00:01"), "assignee": "ben"},
            {"ticket_id": "C", "opened_at": _l("2026-03-02 00:00:00.5"), "assignee": "cat"},
            {"ticket_id": "D", "opened_at": _l("2026-02-28 00:00:00"), "assignee": "dan"},
            {"ticket_id": "E", "opened_at": _l("2026-02-28 00:00:01"), "assignee": "eve"}]
    t = tickets(*[{**row, "status": "IN_PROGRESS", "priority": "P3"} for row in rows])
    s = settings(reporting={"timezone": TZ}, kpi={"default_calendar": "24x7", "ticket_types": ["incident"]})
    e = events()
    day = np.array(["2026-03-02"], dtype="datetime64[D]")
    frame = kpi_backlog(t, e, compute_facts(t, e, s, AS_OF), s, AS_OF, days=day)
    #                                         open  <1d  1-3d  3-7d  7-30d  >=30d  overdue  paused
    assert _table(frame) == {("03-02", "amy", "incident", "P3"): (1, 0, 1, 0, 0, 0, 0, 0),
                             ("03-02", "ben", "incident", "P3"): (1, 1, 0, 0, 0, 0, 0, 0),
                             ("03-02", "cat", "incident", "P3"): (1, 0, 1, 0, 0, 0, 0, 0),
                             ("03-02", "dan", "incident", "P3"): (1, 0, 0, 1, 0, 0, 0, 0),
                             ("03-02", "eve", "incident", "P3"): (1, 0, 1, 0, 0, 0, 0, 0)}
