"""KPIS.md 1.2, 2.2 and 3: per-ticket facts on tiny hand-made tickets.

Unless a test says otherwise the default calendar is 24x7 (business time = calendar time), timestamps are
UTC, and 2026-03-02 is a Monday. Every expected number is worked out in the comment beside it.
"""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import SRC, ev, events, local, row, settings, tickets, ts

from kpis.facts import compute_facts
from kpis.schema import TICKET_FACT_COLUMNS

AS_OF = ts("2026-03-31T00:00Z")

SLA = [
    {"ticket_type": "incident", "priority": "P1", "response": "30m", "resolution": "4h"},
    {"ticket_type": "incident", "priority": "P2", "response": "1h", "resolution": "8h"},
    {"ticket_type": "incident", "response": "2h", "resolution": "1d"},  # any priority
    {"priority": "P1", "response": "15m", "resolution": "2h"},  # any type
]
SATISFACTION = {"满意": 5, "较满意": 4, "一般": 3, "较不满意": 2, "不满意": 1}


def facts_of(tix, evs=None, st=None, as_of=AS_OF) -> pd.DataFrame:
    return compute_facts(tix, evs if evs is not None else events(), st if st is not None else settings(), as_of)


def one(tix, evs=None, st=None, as_of=AS_OF, ticket_id="T1") -> dict:
    return row(facts_of(tix, evs, st, as_of), ticket_id)


def T(ticket_id="T1", opened_at="2026-03-02T10:00Z", status="IN_PROGRESS", **kw) -> dict:
    return {"ticket_id": ticket_id, "opened_at": opened_at, "status": status, **kw}


def statuses(ticket_id: str, *pairs: tuple[str, str]) -> list[dict]:
    return [ev(ticket_id, at, "status", value) for at, value in pairs]


# ---------------------------------------------------------------- population and carried columns


def test_one_row_per_ticket_with_the_schema_columns():
    tix = tickets(T("T1"), T("T2", status="CANCELLED"), T("T3", ticket_type="maintenance",
                                                          planned_end="2026-03-05T00:00Z"),
                  T("T1", source="other"))
    f = facts_of(tix)
    assert list(f.columns) == list(TICKET_FACT_COLUMNS)
    assert len(f) == 4
    assert set(zip(f["source"], f["ticket_id"], strict=True)) == {
        (SRC, "T1"), (SRC, "T2"), (SRC, "T3"), ("other", "T1")}
    assert (f["as_of"] == AS_OF).all()


def test_carried_columns():
    tix = tickets(T("T1", priority="P2", category="network", closed_at="2026-03-03T00:00Z",
                    satisfaction_at="2026-03-04T00:00Z", caused_by="M9", status="CLOSED",
                    resolved_at="2026-03-02T12:00Z"))
    r = one(tix)
    assert r["ticket_type"] == "incident"
    assert r["priority"] == "P2"
    assert r["status"] == "CLOSED"
    assert r["category"] == "network"
    assert r["opened_at"] == ts("2026-03-02T10:00Z")
    assert r["closed_at"] == ts("2026-03-03T00:00Z")
    assert r["satisfaction_at"] == ts("2026-03-04T00:00Z")
    assert r["caused_by"] == "M9"


def test_current_status_and_category_come_from_events():
    # Events win (1.2): status = last status event, category = last category event, whatever the columns say.
    tix = tickets(T("T1", status="NEW", category="software"))
    evs = events(
        statuses("T1", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T11:00Z", "WAITING_CUSTOMER")),
        ev("T1", "2026-03-02T10:00Z", "category", "hardware"),
        ev("T1", "2026-03-02T10:30Z", "category", "network"),
    )
    r = one(tix, evs)
    assert r["status"] == "WAITING_CUSTOMER"
    assert r["category"] == "network"


def test_current_priority_comes_from_priority_events():
    # 1.2 "Events win ... every field derived from that kind comes from the events; the summary column is used
    # only where the ticket has no events of that kind". The current priority is derived from the priority
    # events: the last one (P2), not the column (P4) - the same rule the facts apply to status and category.
    tix = tickets(T("T1", priority="P4"))
    evs = events(ev("T1", "2026-03-02T10:00Z", "priority", "P3"), ev("T1", "2026-03-02T10:20Z", "priority", "P2"))
    assert one(tix, evs)["priority"] == "P2"


def test_cancelled_ticket_is_in_facts_but_excluded():
    tix = tickets(T("T1", status="CANCELLED"), T("T2"), T("T3", status="IN_PROGRESS"), T("T4", status="CANCELLED"))
    evs = events(
        # T3: the column says IN_PROGRESS, the last status event says CANCELLED -> cancelled
        statuses("T3", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T11:00Z", "CANCELLED")),
        # T4: the column says CANCELLED, but the last status event is IN_PROGRESS -> not excluded
        statuses("T4", ("2026-03-02T10:00Z", "CANCELLED"), ("2026-03-02T11:00Z", "IN_PROGRESS")),
    )
    f = facts_of(tix, evs)
    assert row(f, "T1")["excluded_reason"] == "cancelled"
    assert row(f, "T2")["excluded_reason"] is None
    assert row(f, "T3")["excluded_reason"] == "cancelled"
    assert row(f, "T4")["excluded_reason"] is None


def test_excluded_ticket_keeps_its_durations_but_no_sla():
    # Lead's reading: durations are computed for every ticket; only the SLA status is null when excluded.
    # response 10:00 -> 10:10 = 600; cancelled -> response_sla null even though a P1 policy matches
    tix = tickets(T("T1", status="CANCELLED", priority="P1", first_response_at="2026-03-02T10:10Z"))
    r = one(tix, st=settings(sla=SLA))
    assert r["excluded_reason"] == "cancelled"
    assert r["response_business_s"] == 600
    assert r["response_sla"] is None and r["resolution_sla"] is None


def test_type_outside_scope_is_excluded():
    st = settings(kpi={"ticket_types": ["incident", "request"]})
    f = facts_of(tickets(T("T1"), T("M1", ticket_type="maintenance")), st=st)
    assert row(f, "M1")["excluded_reason"] is not None
    assert row(f, "T1")["excluded_reason"] is None


# ---------------------------------------------------------------- engineer and team


def test_engineer_is_last_non_empty_assignee_at_or_before_resolution():
    # resolved 12:00. assignee: alice 09:00, bob 11:00, '' 11:30 (ignored), carol 13:00 (after) -> bob.
    # group: g1 10:00, g2 12:00 (same instant as the resolution counts: at or before) -> g2.
    tix = tickets(T("T1", status="RESOLVED", assignee="carol", assignment_group="g3"))
    evs = events(
        statuses("T1", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T12:00Z", "RESOLVED")),
        ev("T1", "2026-03-02T09:00Z", "assignee", "alice"),
        ev("T1", "2026-03-02T11:00Z", "assignee", "bob"),
        ev("T1", "2026-03-02T11:30Z", "assignee", ""),
        ev("T1", "2026-03-02T13:00Z", "assignee", "carol"),
        ev("T1", "2026-03-02T10:00Z", "group", "g1"),
        ev("T1", "2026-03-02T12:00Z", "group", "g2"),
        ev("T1", "2026-03-02T13:00Z", "group", "g3"),
    )
    r = one(tix, evs)
    assert r["resolved_at"] == ts("2026-03-02T12:00Z")
    assert r["engineer"] == "bob"
    assert r["team"] == "g2"


def test_engineer_when_unresolved_is_last_of_all_assignee_events():
    tix = tickets(T("T1", assignee="zed"))
    evs = events(ev("T1", "2026-03-02T09:00Z", "assignee", "alice"),
                 ev("T1", "2026-03-05T09:00Z", "assignee", "bob"),
                 ev("T1", "2026-03-06T09:00Z", "assignee", ""))
    assert one(tix, evs)["engineer"] == "bob"


def test_engineer_falls_back_to_the_column_when_no_event_is_early_enough():
    # resolved 12:00 (column, no status events); the only assignee event is after it -> the column 'dave'
    tix = tickets(T("T1", status="RESOLVED", resolved_at="2026-03-02T12:00Z", assignee="dave",
                    assignment_group="desk"))
    evs = events(ev("T1", "2026-03-02T13:00Z", "assignee", "carol"),
                 ev("T1", "2026-03-02T13:00Z", "group", "net"))
    r = one(tix, evs)
    assert r["engineer"] == "dave"
    assert r["team"] == "desk"


def test_resolution_from_column_cuts_the_assignee_events():
    # no status events: resolved_at column 12:00; alice 10:00, bob 13:00 -> alice
    tix = tickets(T("T1", status="RESOLVED", resolved_at="2026-03-02T12:00Z", assignee="bob"))
    evs = events(ev("T1", "2026-03-02T10:00Z", "assignee", "alice"),
                 ev("T1", "2026-03-02T13:00Z", "assignee", "bob"))
    assert one(tix, evs)["engineer"] == "alice"


def test_only_empty_assignee_events_fall_back_to_the_column():
    tix = tickets(T("T1", assignee="erin"))
    evs = events(ev("T1", "2026-03-02T10:00Z", "assignee", ""))
    assert one(tix, evs)["engineer"] == "erin"


def test_unassigned_when_nothing_is_known():
    f = facts_of(tickets(T("T1"), T("T2", assignee="", assignment_group="")))
    for tid in ("T1", "T2"):
        assert row(f, tid)["engineer"] == "unassigned"
        assert row(f, tid)["team"] == "unassigned"


# ---------------------------------------------------------------- event order and tie-breaks


def test_same_timestamp_status_events_are_ordered_by_seq_not_row_order():
    # Two status events at 12:00: IN_PROGRESS (seq 7) then RESOLVED (seq 8) -> resolved at 12:00,
    # even though the rows come in the opposite order.
    tix = tickets(T("T1"))
    evs = events(ev("T1", "2026-03-02T12:00Z", "status", "RESOLVED", seq=8),
                 ev("T1", "2026-03-02T12:00Z", "status", "IN_PROGRESS", seq=7))
    r = one(tix, evs)
    assert r["status"] == "RESOLVED"
    assert r["resolved_at"] == ts("2026-03-02T12:00Z")
    # reversed seq: RESOLVED (seq 7) then IN_PROGRESS (seq 8): current status IN_PROGRESS -> unresolved, reopened
    evs2 = events(ev("T1", "2026-03-02T12:00Z", "status", "RESOLVED", seq=7),
                  ev("T1", "2026-03-02T12:00Z", "status", "IN_PROGRESS", seq=8))
    r2 = one(tix, evs2)
    assert r2["status"] == "IN_PROGRESS"
    assert r2["resolved_at"] is None
    assert r2["reopen_count"] == 1


def test_same_timestamp_assignee_events_last_by_seq():
    tix = tickets(T("T1"))
    evs = events(ev("T1", "2026-03-02T11:00Z", "assignee", "alice", seq=5),
                 ev("T1", "2026-03-02T11:00Z", "assignee", "bob", seq=4))
    assert one(tix, evs)["engineer"] == "alice"


def test_events_of_other_kinds_at_the_resolution_instant_count_as_before_it():
    # Kind order at one timestamp: response, assignee, group, priority, category, status.
    # At 12:00 the source lists the RESOLVED status first (seq 0), then an assignee, a group, a priority and a
    # category change (seq 1..4). By the kind order they all precede the status event, so they are "at or
    # before" the resolution: engineer bob, team g2, resolution priority P1.
    st = settings(sla=SLA)
    tix = tickets(T("T1", priority="P3", assignee="alice", assignment_group="g1"))
    evs = events(
        ev("T1", "2026-03-02T12:00Z", "status", "RESOLVED"),
        ev("T1", "2026-03-02T12:00Z", "assignee", "bob"),
        ev("T1", "2026-03-02T12:00Z", "group", "g2"),
        ev("T1", "2026-03-02T12:00Z", "priority", "P1"),
        ev("T1", "2026-03-02T12:00Z", "category", "network"),
        ev("T1", "2026-03-02T09:00Z", "assignee", "alice"),
    )
    r = one(tix, evs, st)
    assert r["engineer"] == "bob"
    assert r["team"] == "g2"
    assert r["resolution_priority"] == "P1"
    assert r["resolution_target_s"] == 4 * 3600


# ---------------------------------------------------------------- resolutions


def test_resolved_then_reopened_then_resolved_again():
    # 10 IN_PROGRESS, 12 RESOLVED, 14 IN_PROGRESS (reopen), 18 RESOLVED
    tix = tickets(T("T1"))
    evs = events(statuses("T1", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T12:00Z", "RESOLVED"),
                          ("2026-03-02T14:00Z", "IN_PROGRESS"), ("2026-03-02T18:00Z", "RESOLVED")))
    r = one(tix, evs)
    assert r["first_resolved_at"] == ts("2026-03-02T12:00Z")
    assert r["resolved_at"] == ts("2026-03-02T18:00Z")
    assert r["reopen_count"] == 1
    assert r["reopened"] is True


def test_closed_after_resolved_is_not_a_new_resolution():
    # 10 IN_PROGRESS, 12 RESOLVED, 13 CLOSED -> the resolution is 12:00 only
    tix = tickets(T("T1"))
    evs = events(statuses("T1", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T12:00Z", "RESOLVED"),
                          ("2026-03-02T13:00Z", "CLOSED")))
    r = one(tix, evs)
    assert r["first_resolved_at"] == ts("2026-03-02T12:00Z")
    assert r["resolved_at"] == ts("2026-03-02T12:00Z")
    assert r["status"] == "CLOSED"
    assert r["reopen_count"] == 0
    # resolution time 10:00 -> 12:00 = 7200
    assert r["resolution_calendar_s"] == 7200
    assert r["resolution_business_s"] == 7200


def test_closed_after_a_non_resolved_status_is_a_resolution():
    # 10 IN_PROGRESS, 12 CLOSED (straight from work) -> resolved at 12:00
    tix = tickets(T("T1"))
    evs = events(statuses("T1", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T12:00Z", "CLOSED")))
    r = one(tix, evs)
    assert r["first_resolved_at"] == ts("2026-03-02T12:00Z")
    assert r["resolved_at"] == ts("2026-03-02T12:00Z")


def test_closed_reopened_closed_again():
    # 10 IN_PROGRESS, 11 CLOSED (resolution 1), 12 IN_PROGRESS (reopen), 13 CLOSED (resolution 2),
    # 14 CLOSED again (after CLOSED: not a resolution)
    tix = tickets(T("T1"))
    evs = events(statuses("T1", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T11:00Z", "CLOSED"),
                          ("2026-03-02T12:00Z", "IN_PROGRESS"), ("2026-03-02T13:00Z", "CLOSED"),
                          ("2026-03-02T14:00Z", "CLOSED")))
    r = one(tix, evs)
    assert r["first_resolved_at"] == ts("2026-03-02T11:00Z")
    assert r["resolved_at"] == ts("2026-03-02T13:00Z")
    assert r["reopen_count"] == 1


def test_currently_reopened_has_no_resolution():
    # 10 IN_PROGRESS, 12 RESOLVED, 14 IN_PROGRESS: current status is not RESOLVED/CLOSED -> both null
    tix = tickets(T("T1", status="RESOLVED", resolved_at="2026-03-02T12:00Z"))
    evs = events(statuses("T1", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T12:00Z", "RESOLVED"),
                          ("2026-03-02T14:00Z", "IN_PROGRESS")))
    r = one(tix, evs)
    assert r["first_resolved_at"] is None
    assert r["resolved_at"] is None
    assert r["resolution_calendar_s"] is None
    assert r["resolution_business_s"] is None
    assert r["reopen_count"] == 1
    assert r["first_fix"] is None


def test_status_events_win_over_the_resolved_at_column():
    # the column says 15:00, the status events say 12:00 -> 12:00
    tix = tickets(T("T1", status="RESOLVED", resolved_at="2026-03-02T15:00Z"))
    evs = events(statuses("T1", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T12:00Z", "RESOLVED")))
    assert one(tix, evs)["resolved_at"] == ts("2026-03-02T12:00Z")


def test_without_status_events_resolution_comes_from_the_columns():
    tix = tickets(
        # RESOLVED with resolved_at -> resolved_at
        T("A", status="RESOLVED", resolved_at="2026-03-02T12:00Z", closed_at="2026-03-02T13:00Z"),
        # CLOSED without resolved_at -> closed_at
        T("B", status="CLOSED", closed_at="2026-03-02T13:00Z"),
        # IN_PROGRESS with a stale resolved_at -> null
        T("C", status="IN_PROGRESS", resolved_at="2026-03-02T12:00Z"),
        # RESOLVED with neither -> null
        T("D", status="RESOLVED"),
    )
    f = facts_of(tix)
    assert row(f, "A")["first_resolved_at"] == row(f, "A")["resolved_at"] == ts("2026-03-02T12:00Z")
    assert row(f, "B")["first_resolved_at"] == row(f, "B")["resolved_at"] == ts("2026-03-02T13:00Z")
    assert row(f, "C")["resolved_at"] is None and row(f, "C")["first_resolved_at"] is None
    assert row(f, "D")["resolved_at"] is None


def test_reopen_count_without_status_events_is_the_column():
    tix = tickets(T("A", reopen_count=2), T("B", reopen_count=None), T("C", reopen_count=0))
    f = facts_of(tix)
    assert row(f, "A")["reopen_count"] == 2 and row(f, "A")["reopened"] is True
    assert row(f, "B")["reopen_count"] == 0 and row(f, "B")["reopened"] is False
    assert row(f, "C")["reopen_count"] == 0 and row(f, "C")["reopened"] is False


def test_reopen_count_from_events_ignores_resolved_to_closed_and_to_cancelled():
    # RESOLVED -> CLOSED (no), CLOSED -> IN_PROGRESS (1), RESOLVED -> WAITING_CUSTOMER (2),
    # RESOLVED -> CANCELLED (no). The column's 9 is ignored because there are status events.
    tix = tickets(T("T1", reopen_count=9))
    evs = events(statuses("T1", ("2026-03-02T10:00Z", "RESOLVED"), ("2026-03-02T11:00Z", "CLOSED"),
                          ("2026-03-02T12:00Z", "IN_PROGRESS"), ("2026-03-02T13:00Z", "RESOLVED"),
                          ("2026-03-02T14:00Z", "WAITING_CUSTOMER"), ("2026-03-02T15:00Z", "RESOLVED"),
                          ("2026-03-02T16:00Z", "CANCELLED")))
    r = one(tix, evs)
    assert r["reopen_count"] == 2
    assert r["reopened"] is True


# ---------------------------------------------------------------- response_at


def test_response_is_the_earliest_response_event_over_the_column():
    # response events at 10:30 and 10:10 (rows out of order) -> 10:10; the column's 10:05 is ignored
    tix = tickets(T("T1", first_response_at="2026-03-02T10:05Z"))
    evs = events(ev("T1", "2026-03-02T10:30Z", "response"), ev("T1", "2026-03-02T10:10Z", "response"))
    r = one(tix, evs)
    assert r["response_at"] == ts("2026-03-02T10:10Z")
    assert r["response_calendar_s"] == 600
    assert r["response_business_s"] == 600


def test_response_falls_back_to_column_then_first_resolution():
    tix = tickets(
        T("A", first_response_at="2026-03-02T10:05Z"),
        # no response: first_resolved_at (12:00), not resolved_at (18:00)
        T("B"),
        T("C", status="RESOLVED", resolved_at="2026-03-02T11:00Z"),
    )
    evs = events(statuses("B", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T12:00Z", "RESOLVED"),
                          ("2026-03-02T14:00Z", "IN_PROGRESS"), ("2026-03-02T18:00Z", "RESOLVED")))
    f = facts_of(tix, evs)
    assert row(f, "A")["response_at"] == ts("2026-03-02T10:05Z")
    assert row(f, "B")["response_at"] == ts("2026-03-02T12:00Z")
    assert row(f, "B")["response_calendar_s"] == 7200
    assert row(f, "C")["response_at"] == ts("2026-03-02T11:00Z")


def test_resolution_does_not_count_as_response_when_configured_off():
    st = settings(kpi={"resolution_counts_as_response": False})
    tix = tickets(T("C", status="RESOLVED", resolved_at="2026-03-02T11:00Z"))
    r = one(tix, st=st, ticket_id="C")
    assert r["response_at"] is None
    assert r["response_calendar_s"] is None
    assert r["response_business_s"] is None


def test_response_without_any_stop_is_null():
    r = one(tickets(T("T1")))
    assert r["response_at"] is None and r["response_business_s"] is None


# ---------------------------------------------------------------- reassigned


def test_reassigned_from_events():
    tix = tickets(T("A", reassignment_count=3), T("B"), T("C"), T("D"), T("E"))
    evs = events(
        # A: one assignee only (first assignment is not a reassignment); events win over the count 3 -> False
        ev("A", "2026-03-02T10:00Z", "assignee", "alice"),
        # B: alice -> alice (no change) -> False
        ev("B", "2026-03-02T10:00Z", "assignee", "alice"), ev("B", "2026-03-02T11:00Z", "assignee", "alice"),
        # C: alice -> '' -> bob: consecutive non-empty values differ -> True
        ev("C", "2026-03-02T10:00Z", "assignee", "alice"), ev("C", "2026-03-02T11:00Z", "assignee", ""),
        ev("C", "2026-03-02T12:00Z", "assignee", "bob"),
        # D: group g1 -> g2 -> True
        ev("D", "2026-03-02T10:00Z", "group", "g1"), ev("D", "2026-03-02T11:00Z", "group", "g2"),
        # E: '' -> alice (first assignment from nobody) -> False
        ev("E", "2026-03-02T10:00Z", "assignee", ""), ev("E", "2026-03-02T11:00Z", "assignee", "alice"),
    )
    f = facts_of(tix, evs)
    assert row(f, "A")["reassigned"] is False
    assert row(f, "B")["reassigned"] is False
    assert row(f, "C")["reassigned"] is True
    assert row(f, "D")["reassigned"] is True
    assert row(f, "E")["reassigned"] is False


def test_reassigned_without_events_is_the_count():
    f = facts_of(tickets(T("A", reassignment_count=1), T("B", reassignment_count=0), T("C")))
    assert row(f, "A")["reassigned"] is True
    assert row(f, "B")["reassigned"] is False
    assert row(f, "C")["reassigned"] is False


# ---------------------------------------------------------------- SLA policy and durations


def test_policy_is_the_first_match_in_config_order():
    st = settings(sla=SLA)
    tix = tickets(
        T("I1", priority="P1"),  # incident P1: policy 0 (policy 3 matches too, but later) -> 1800 / 14400
        T("I3", priority="P3"),  # incident P3: policy 2 (any priority) -> 7200 / 86400
        T("R1", ticket_type="request", priority="P1"),  # request P1: policy 3 -> 900 / 7200
        T("R2", ticket_type="request", priority="P2"),  # no match -> null
        T("M1", ticket_type="maintenance", priority="P1"),  # maintenance P1: policy 3 (any type) -> 900 / 7200
        T("M2", ticket_type="maintenance", priority="P2"),  # no match -> null
    )
    f = facts_of(tix, st=st)
    expect = {"I1": (1800, 14400), "I3": (7200, 86400), "R1": (900, 7200), "R2": (None, None),
              "M1": (900, 7200), "M2": (None, None)}
    for tid, (resp, reso) in expect.items():
        r = row(f, tid)
        assert (r["response_target_s"], r["resolution_target_s"]) == (resp, reso), tid
    assert row(f, "R2")["response_sla"] is None and row(f, "R2")["resolution_sla"] is None
    assert row(f, "M2")["response_sla"] is None and row(f, "M2")["resolution_sla"] is None


def test_policy_with_star_keys():
    st = settings(sla=[{"ticket_type": "*", "priority": "*", "response": "10m", "resolution": "1h"}])
    f = facts_of(tickets(T("A", priority="P4"), T("B", ticket_type="request", priority="P2")), st=st)
    assert row(f, "A")["response_target_s"] == 600
    assert row(f, "B")["resolution_target_s"] == 3600


def test_ticket_without_priority_matches_only_policies_that_omit_priority():
    # KPIS.md 3: "an omitted condition matches every ticket, also one whose value is empty" (DECISIONS.md D12).
    # Incident without a priority: policies 0 and 1 name P1 / P2 -> no match; policy 2 (incident, any priority)
    # matches -> 7200 / 86400. A request without a priority: only policy 3 (P1) could fit -> no policy.
    st = settings(sla=SLA)
    f = facts_of(tickets(T("T1", priority=None), T("R1", ticket_type="request", priority=None)), st=st)
    r = row(f, "T1")
    assert (r["response_target_s"], r["resolution_target_s"]) == (7200, 86400)
    assert r["response_policy"] == "sla_3" and r["response_priority"] is None
    r = row(f, "R1")
    assert r["response_target_s"] is None and r["resolution_target_s"] is None
    assert r["response_policy"] is None and r["response_sla"] is None and r["resolution_sla"] is None


def test_priority_in_effect_at_each_stop_selects_the_policy():
    # opened 10:00; priority P3 at 10:00, P1 at 11:00; response 10:30; resolved 13:00.
    # response priority = P3 (policy 2: 7200); resolution priority = P1 (policy 0: 14400)
    st = settings(sla=SLA)
    tix = tickets(T("T1", priority="P1"))
    evs = events(ev("T1", "2026-03-02T10:00Z", "priority", "P3"), ev("T1", "2026-03-02T11:00Z", "priority", "P1"),
                 ev("T1", "2026-03-02T10:30Z", "response"),
                 statuses("T1", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T13:00Z", "RESOLVED")))
    r = one(tix, evs, st)
    assert r["response_priority"] == "P3" and r["response_target_s"] == 7200
    assert r["resolution_priority"] == "P1" and r["resolution_target_s"] == 14400
    # response 1800 <= 7200 met; resolution 3 h = 10800 <= 14400 met
    assert r["response_sla"] == "met" and r["resolution_sla"] == "met"


def test_priority_falls_back_to_the_column_when_no_event_is_early_enough():
    # priority column P1; the only priority event (P2) is at 10:45, after the 10:30 response -> response uses
    # the column P1 (1800); the resolution at 13:00 uses P2 (policy 1: 28800)
    st = settings(sla=SLA)
    tix = tickets(T("T1", priority="P1", first_response_at="2026-03-02T10:30Z", status="RESOLVED",
                    resolved_at="2026-03-02T13:00Z"))
    evs = events(ev("T1", "2026-03-02T10:45Z", "priority", "P2"))
    r = one(tix, evs, st)
    assert r["response_priority"] == "P1" and r["response_target_s"] == 1800
    assert r["resolution_priority"] == "P2" and r["resolution_target_s"] == 28800


def test_priority_without_a_stop_is_taken_at_as_of():
    # unresolved, no response; P3 at 10:00, P2 at 11:00, P1 after as_of -> both priorities P2
    st = settings(sla=SLA)
    as_of = ts("2026-03-02T12:00Z")
    tix = tickets(T("T1", priority="P1"))
    evs = events(ev("T1", "2026-03-02T10:00Z", "priority", "P3"), ev("T1", "2026-03-02T11:00Z", "priority", "P2"),
                 ev("T1", "2026-03-02T13:00Z", "priority", "P1"))
    r = one(tix, evs, st, as_of)
    assert r["response_priority"] == "P2" and r["resolution_priority"] == "P2"
    assert r["response_target_s"] == 3600 and r["resolution_target_s"] == 28800
    # elapsed 2 h = 7200 > 3600 (P2 response) -> breached; 7200 <= 28800 -> in_progress
    assert r["response_sla"] == "breached"
    assert r["resolution_sla"] == "in_progress"


def test_durations_use_the_policy_calendar_else_the_default():
    # default calendar = office (Shanghai); policy P1 -> 24x7; P3 incidents -> policy without calendar -> office.
    # Both opened Mon 2026-03-02 11:00 Shanghai, responded 14:00 (3 h of wall time, 1.5 h of office time).
    st = settings(kpi={"default_calendar": "office"}, sla=[
        {"ticket_type": "incident", "priority": "P1", "response": "30m", "resolution": "4h", "calendar": "24x7"},
        {"ticket_type": "incident", "response": "2h", "resolution": "1d"},
    ])
    o, r_ = local("2026-03-02 11:00", "Asia/Shanghai"), local("2026-03-02 14:00", "Asia/Shanghai")
    tix = tickets(T("P1", priority="P1", opened_at=str(o), first_response_at=str(r_)),
                  T("P3", priority="P3", opened_at=str(o), first_response_at=str(r_)),
                  T("NP", ticket_type="request", priority="P3", opened_at=str(o), first_response_at=str(r_)))
    f = facts_of(tix, st=st)
    assert row(f, "P1")["response_calendar_s"] == 10800 and row(f, "P1")["response_business_s"] == 10800
    # office: 11:00-12:00 + 13:30-14:00 = 5400
    assert row(f, "P3")["response_calendar_s"] == 10800 and row(f, "P3")["response_business_s"] == 5400
    # request P3: no policy -> default calendar (office) -> 5400, SLA null
    assert row(f, "NP")["response_business_s"] == 5400 and row(f, "NP")["response_sla"] is None


def test_response_sla_boundaries_and_no_rounding():
    # incident P1: response target 30 min = 1800 s
    st = settings(sla=SLA)
    tix = tickets(
        T("AT", priority="P1", first_response_at="2026-03-02T10:30:00Z"),  # 1800 <= 1800 -> met
        T("OVER", priority="P1", first_response_at="2026-03-02T10:30:01Z"),  # 1801 > 1800 -> breached
        T("ZERO", priority="P1", first_response_at="2026-03-02T10:00:00Z"),  # 0 -> met
    )
    f = facts_of(tix, st=st)
    assert row(f, "AT")["response_sla"] == "met"
    assert row(f, "OVER")["response_sla"] == "breached"
    assert row(f, "OVER")["response_business_s"] == 1801
    assert row(f, "ZERO")["response_sla"] == "met"


def test_sla_without_a_stop_against_as_of():
    # incident P1 opened 10:00, nothing since; response target 1800, resolution 14400
    st = settings(sla=SLA)
    tix = tickets(T("T1", priority="P1"))
    # as_of 10:30:00: elapsed 1800, not above 1800 -> in_progress
    r = one(tix, st=st, as_of=ts("2026-03-02T10:30:00Z"))
    assert r["response_sla"] == "in_progress" and r["resolution_sla"] == "in_progress"
    # as_of 10:30:01: 1801 > 1800 -> breached; resolution 1801 <= 14400 -> in_progress
    r = one(tix, st=st, as_of=ts("2026-03-02T10:30:01Z"))
    assert r["response_sla"] == "breached" and r["resolution_sla"] == "in_progress"
    # as_of 14:00:01: resolution 14401 > 14400 -> breached
    r = one(tix, st=st, as_of=ts("2026-03-02T14:00:01Z"))
    assert r["resolution_sla"] == "breached"


def test_stop_after_as_of_is_taken_as_it_is():
    # response at 10:10 and resolution at 11:00, both after as_of 10:05: met (600 <= 1800, 3600 <= 14400)
    st = settings(sla=SLA)
    tix = tickets(T("T1", priority="P1", first_response_at="2026-03-02T10:10Z", status="RESOLVED",
                    resolved_at="2026-03-02T11:00Z"))
    r = one(tix, st=st, as_of=ts("2026-03-02T10:05Z"))
    assert r["response_sla"] == "met" and r["resolution_sla"] == "met"
    assert r["resolution_business_s"] == 3600


def test_pause_running_until_as_of_is_not_counted():
    # incident P1 (resolution 4 h = 14400). 10:00 IN_PROGRESS, 11:00 WAITING_CUSTOMER, still waiting at as_of
    # 20:00. Elapsed = 10:00-11:00 = 3600 (11:00-20:00 paused) <= 14400 -> in_progress (counting the pause:
    # 36000 -> breached)
    st = settings(sla=SLA)
    tix = tickets(T("T1", priority="P1", first_response_at="2026-03-02T10:05Z"))
    evs = events(statuses("T1", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T11:00Z", "WAITING_CUSTOMER")))
    r = one(tix, evs, st, ts("2026-03-02T20:00Z"))
    assert r["resolution_sla"] == "in_progress"
    # response is never paused: 300 <= 1800 -> met
    assert r["response_sla"] == "met"


def test_reopened_ticket_breach_against_as_of_excludes_time_resolved():
    # 10 IN_PROGRESS, 12 RESOLVED, 14 IN_PROGRESS (reopen), as_of 16:00:01.
    # Elapsed = 10-12 (7200) + 14-16:00:01 (7201) = 14401, the RESOLVED 12-14 taken off.
    # P1 target 14400 -> breached; a P2 ticket (28800) -> in_progress. Without the exclusion 21601 -> breached.
    st = settings(sla=SLA)
    tix = tickets(T("A", priority="P1", first_response_at="2026-03-02T10:01Z"),
                  T("B", priority="P2", first_response_at="2026-03-02T10:01Z"),
                  T("C", priority="P1", first_response_at="2026-03-02T10:01Z"))
    evs = events(*[statuses(t, ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T12:00Z", "RESOLVED"),
                            ("2026-03-02T14:00Z", "IN_PROGRESS")) for t in ("A", "B")],
                 # C: same, but as_of 16:00:00 -> 14400, not above -> in_progress
                 statuses("C", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T12:00Z", "RESOLVED"),
                          ("2026-03-02T14:00Z", "IN_PROGRESS")))
    f = facts_of(tix, evs, st, ts("2026-03-02T16:00:01Z"))
    assert row(f, "A")["resolution_sla"] == "breached"
    f2 = facts_of(tix, evs, st, ts("2026-03-02T16:00:00Z"))
    assert row(f2, "C")["resolution_sla"] == "in_progress"
    # B is P2: 14401 <= 28800 -> in_progress
    assert row(f, "B")["resolution_sla"] == "in_progress"


# ---------------------------------------------------------------- pauses (2.2)


def test_pause_statuses_are_taken_off_resolution_time():
    # 10 IN_PROGRESS, 11 WAITING_CUSTOMER, 12 IN_PROGRESS, 12:30 WAITING_THIRD_PARTY, 13 IN_PROGRESS,
    # 14 RESOLVED. Calendar 4 h = 14400; pauses 3600 + 1800 -> business 9000.
    tix = tickets(T("T1"))
    evs = events(statuses("T1", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T11:00Z", "WAITING_CUSTOMER"),
                          ("2026-03-02T12:00Z", "IN_PROGRESS"), ("2026-03-02T12:30Z", "WAITING_THIRD_PARTY"),
                          ("2026-03-02T13:00Z", "IN_PROGRESS"), ("2026-03-02T14:00Z", "RESOLVED")))
    r = one(tix, evs)
    assert r["resolution_calendar_s"] == 14400
    assert r["resolution_business_s"] == 9000


def test_on_hold_is_not_a_pause_by_default_but_can_be_configured():
    # 10 IN_PROGRESS, 11 ON_HOLD, 12 IN_PROGRESS, 13 RESOLVED: default pauses -> 10800;
    # with pause_statuses = [ON_HOLD] -> 10800 - 3600 = 7200
    tix = tickets(T("T1"))
    evs = events(statuses("T1", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T11:00Z", "ON_HOLD"),
                          ("2026-03-02T12:00Z", "IN_PROGRESS"), ("2026-03-02T13:00Z", "RESOLVED")))
    assert one(tix, evs)["resolution_business_s"] == 10800
    st = settings(kpi={"pause_statuses": ["ON_HOLD"]})
    assert one(tix, evs, st)["resolution_business_s"] == 7200


def test_only_the_part_of_a_pause_inside_the_interval_counts():
    # opened 10:00. WAITING_CUSTOMER from 08:00 (before opening) to 11:00, IN_PROGRESS 11:00, RESOLVED 13:00.
    # Calendar 3 h = 10800; pause inside [10:00, 13:00) = 10:00-11:00 = 3600 -> 7200 (not 10800 - 10800 = 0)
    tix = tickets(T("T1"))
    evs = events(statuses("T1", ("2026-03-02T08:00Z", "WAITING_CUSTOMER"), ("2026-03-02T11:00Z", "IN_PROGRESS"),
                          ("2026-03-02T13:00Z", "RESOLVED")))
    r = one(tix, evs)
    assert r["resolution_calendar_s"] == 10800
    assert r["resolution_business_s"] == 7200


def test_time_resolved_or_closed_before_a_reopen_is_taken_off():
    # 10 IN_PROGRESS, 12 RESOLVED, 13 CLOSED, 14 IN_PROGRESS (reopen), 15 WAITING_CUSTOMER, 16 IN_PROGRESS,
    # 18 RESOLVED, 20 CLOSED. resolved_at 18:00: calendar 8 h = 28800;
    # off: RESOLVED 12-13 (3600) + CLOSED 13-14 (3600) + WAITING 15-16 (3600) = 10800 -> 18000
    tix = tickets(T("T1"))
    evs = events(statuses("T1", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T12:00Z", "RESOLVED"),
                          ("2026-03-02T13:00Z", "CLOSED"), ("2026-03-02T14:00Z", "IN_PROGRESS"),
                          ("2026-03-02T15:00Z", "WAITING_CUSTOMER"), ("2026-03-02T16:00Z", "IN_PROGRESS"),
                          ("2026-03-02T18:00Z", "RESOLVED"), ("2026-03-02T20:00Z", "CLOSED")))
    r = one(tix, evs)
    assert r["first_resolved_at"] == ts("2026-03-02T12:00Z")
    assert r["resolved_at"] == ts("2026-03-02T18:00Z")
    assert r["resolution_calendar_s"] == 28800
    assert r["resolution_business_s"] == 18000
    assert r["reopen_count"] == 1


def test_pause_on_a_business_calendar_counts_business_time_only():
    # office calendar (Shanghai). Opened Mon 2026-03-02 09:00, WAITING_CUSTOMER Mon 11:00 -> Tue 10:00,
    # IN_PROGRESS, RESOLVED Tue 11:00.
    # worked business time: Mon 09-11 (7200) + Tue 10-11 (3600) = 10800
    # (= business of [Mon 09:00, Tue 11:00) 27000 + 7200 = 34200 minus pause business 3600+16200+3600 = 23400)
    st = settings(kpi={"default_calendar": "office"})
    sh = lambda s: str(local(s, "Asia/Shanghai"))  # noqa: E731
    tix = tickets(T("T1", opened_at=sh("2026-03-02 09:00")))
    evs = events(statuses("T1", (sh("2026-03-02 09:00"), "IN_PROGRESS"), (sh("2026-03-02 11:00"), "WAITING_CUSTOMER"),
                          (sh("2026-03-03 10:00"), "IN_PROGRESS"), (sh("2026-03-03 11:00"), "RESOLVED")))
    r = one(tix, evs, st)
    assert r["resolution_calendar_s"] == 26 * 3600
    assert r["resolution_business_s"] == 10800


def test_response_time_is_never_paused():
    # opened 10:00, WAITING_CUSTOMER 10:30-11:30, response event 12:00 -> response 7200 (no pause taken off)
    tix = tickets(T("T1"))
    evs = events(statuses("T1", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T10:30Z", "WAITING_CUSTOMER"),
                          ("2026-03-02T11:30Z", "IN_PROGRESS")),
                 ev("T1", "2026-03-02T12:00Z", "response"))
    r = one(tix, evs)
    assert r["response_business_s"] == 7200


def test_no_status_events_means_no_pauses():
    # resolved via the columns, no status events -> no pauses: 10:00 -> 13:00 = 10800
    tix = tickets(T("T1", status="RESOLVED", resolved_at="2026-03-02T13:00Z"))
    assert one(tix)["resolution_business_s"] == 10800


# ---------------------------------------------------------------- negative durations


def test_negative_durations_are_nulled_and_flagged():
    st = settings(sla=SLA)
    tix = tickets(
        # response 09:00 before opened 10:00 -> negative_response; resolution 12:00 fine (7200, met)
        T("R", priority="P1", first_response_at="2026-03-02T09:00Z", status="RESOLVED",
          resolved_at="2026-03-02T12:00Z"),
        # resolution 09:00 before opened 10:00 -> negative_resolution; response 10:10 fine (600, met)
        T("S", priority="P1", first_response_at="2026-03-02T10:10Z", status="RESOLVED",
          resolved_at="2026-03-02T09:00Z"),
        # both negative -> the first that applies: negative_response
        T("B", priority="P1", first_response_at="2026-03-02T09:00Z", status="RESOLVED",
          resolved_at="2026-03-02T09:30Z"),
        T("OK", priority="P1", first_response_at="2026-03-02T10:10Z"),
    )
    f = facts_of(tix, st=st)
    r = row(f, "R")
    assert r["dq_flag"] == "negative_response"
    assert r["response_calendar_s"] is None and r["response_business_s"] is None and r["response_sla"] is None
    assert r["resolution_calendar_s"] == 7200 and r["resolution_business_s"] == 7200
    assert r["resolution_sla"] == "met"
    s = row(f, "S")
    assert s["dq_flag"] == "negative_resolution"
    assert s["resolution_calendar_s"] is None and s["resolution_business_s"] is None
    assert s["resolution_sla"] is None
    assert s["response_business_s"] == 600 and s["response_sla"] == "met"
    assert row(f, "B")["dq_flag"] == "negative_response"
    assert row(f, "OK")["dq_flag"] is None


# ---------------------------------------------------------------- first fix


def test_first_fix():
    res = {"status": "RESOLVED", "resolved_at": "2026-03-02T12:00Z"}
    tix = tickets(
        T("OK", **res),  # resolved incident, not reopened, not reassigned -> True
        T("REQ", ticket_type="request", **res),  # requests count too -> True
        T("REOPEN", reopen_count=1, **res),  # reopened -> False
        T("MOVED", reassignment_count=2, **res),  # reassigned -> False
        T("OPEN"),  # not resolved -> null
        T("MAINT", ticket_type="maintenance", **res),  # maintenance -> null
        T("CANC", status="CANCELLED", resolved_at="2026-03-02T12:00Z"),  # excluded -> null
    )
    f = facts_of(tix)
    assert row(f, "OK")["first_fix"] is True
    assert row(f, "REQ")["first_fix"] is True
    assert row(f, "REOPEN")["first_fix"] is False
    assert row(f, "MOVED")["first_fix"] is False
    assert row(f, "OPEN")["first_fix"] is None
    assert row(f, "MAINT")["first_fix"] is None
    assert row(f, "CANC")["first_fix"] is None


# ---------------------------------------------------------------- diagnosis


def test_diagnosis_from_the_diagnosed_category_column():
    res = {"status": "RESOLVED", "resolved_at": "2026-03-02T12:00Z"}
    tix = tickets(
        T("SAME", diagnosed_category="network", category="network", **res),  # accurate
        T("DIFF", diagnosed_category="network", category="hardware", **res),  # not accurate
        T("REOP", diagnosed_category="network", category="network", reopen_count=1, **res),  # reopened -> False
        T("NOCAT", diagnosed_category="network", **res),  # no final category -> not assessable
        T("NODIAG", category="network", **res),  # no initial diagnosis -> not assessable
        T("OPEN", diagnosed_category="network", category="network"),  # unresolved -> not assessable
        T("MAINT", ticket_type="maintenance", diagnosed_category="x", category="x", **res),  # maintenance -> no
    )
    f = facts_of(tix)
    assert row(f, "SAME")["initial_diagnosis"] == "network"
    assert (row(f, "SAME")["diagnosis_assessable"], row(f, "SAME")["diagnosis_accurate"]) == (True, True)
    assert (row(f, "DIFF")["diagnosis_assessable"], row(f, "DIFF")["diagnosis_accurate"]) == (True, False)
    assert (row(f, "REOP")["diagnosis_assessable"], row(f, "REOP")["diagnosis_accurate"]) == (True, False)
    for tid in ("NOCAT", "NODIAG", "OPEN", "MAINT"):
        assert row(f, tid)["diagnosis_assessable"] is False, tid
        assert row(f, tid)["diagnosis_accurate"] is None, tid
    assert row(f, "NODIAG")["initial_diagnosis"] is None


def test_diagnosis_from_category_events_at_the_response():
    tix = tickets(T("A", category="zzz"), T("B"), T("C", diagnosed_category="software"), T("D"))
    res = ("2026-03-02T14:00Z", "RESOLVED")
    evs = events(
        # A: software 09:00, response 10:00, hardware 11:00 -> initial software, final hardware (events win over
        # the column 'zzz') -> assessable, not accurate
        ev("A", "2026-03-02T09:00Z", "category", "software"), ev("A", "2026-03-02T10:00Z", "response"),
        ev("A", "2026-03-02T11:00Z", "category", "hardware"), statuses("A", res),
        # B: response 10:00, categories only later: hardware 11:00, network 12:00 -> initial = first category
        # event hardware, final network -> not accurate
        ev("B", "2026-03-02T10:00Z", "response"), ev("B", "2026-03-02T11:00Z", "category", "hardware"),
        ev("B", "2026-03-02T12:00Z", "category", "network"), statuses("B", res),
        # C: diagnosed_category wins over the events: initial software, final software -> accurate
        ev("C", "2026-03-02T10:00Z", "response"), ev("C", "2026-03-02T09:00Z", "category", "hardware"),
        ev("C", "2026-03-02T11:00Z", "category", "software"), statuses("C", res),
        # D: category event at the response instant counts (at or before): network at 10:00 = response 10:00,
        # final network -> accurate
        ev("D", "2026-03-02T09:00Z", "category", "hardware"), ev("D", "2026-03-02T10:00Z", "category", "network"),
        ev("D", "2026-03-02T10:00Z", "response"), statuses("D", res),
    )
    f = facts_of(tix, evs)
    a, b, c, d = (row(f, t) for t in "ABCD")
    assert (a["initial_diagnosis"], a["category"], a["diagnosis_assessable"], a["diagnosis_accurate"]) == (
        "software", "hardware", True, False)
    assert (b["initial_diagnosis"], b["category"], b["diagnosis_accurate"]) == ("hardware", "network", False)
    assert (c["initial_diagnosis"], c["category"], c["diagnosis_accurate"]) == ("software", "software", True)
    assert (d["initial_diagnosis"], d["diagnosis_accurate"]) == ("network", True)


def test_a_category_cleared_before_the_response_leaves_no_initial_diagnosis():
    """KPIS.md 3: the category in effect at response_at is the last category event at or before it; one that
    cleared the category (an empty value) means no diagnosis at that time (D7), not the first event's."""
    tix = tickets(T("A"), T("B"))
    res = ("2026-03-02T14:00Z", "RESOLVED")
    evs = events(
        # A: software 09:05, cleared 09:10, response 09:20, network 10:00 -> no initial diagnosis: not assessable
        ev("A", "2026-03-02T09:05Z", "category", "software"), ev("A", "2026-03-02T09:10Z", "category", None),
        ev("A", "2026-03-02T09:20Z", "response"), ev("A", "2026-03-02T10:00Z", "category", "network"),
        statuses("A", res),
        # B: cleared 10:30, after the response at 10:00 (software in effect then), network 11:00 -> initial software
        ev("B", "2026-03-02T09:00Z", "category", "software"), ev("B", "2026-03-02T10:00Z", "response"),
        ev("B", "2026-03-02T10:30Z", "category", None), ev("B", "2026-03-02T11:00Z", "category", "network"),
        statuses("B", res),
    )
    f = facts_of(tix, evs)
    a, b = row(f, "A"), row(f, "B")
    assert (a["initial_diagnosis"], a["category"], a["diagnosis_assessable"], a["diagnosis_accurate"]) == (
        None, "network", False, None)
    assert (b["initial_diagnosis"], b["category"], b["diagnosis_assessable"], b["diagnosis_accurate"]) == (
        "software", "network", True, False)


def test_without_a_response_the_first_category_event_is_the_initial_diagnosis():
    """D7: with category events but no ``response_at`` (a resolution does not count as a response here), no
    event is "at or before" it, so the first category event is the initial diagnosis. The code read the
    missing time as "after every event" and took the last one: every such ticket came out accurate."""
    tix = tickets(T("A", category="network"))
    evs = events(
        # A: software 05:10, network 08:00, resolved 09:00, no response -> initial software, final network
        ev("A", "2026-03-02T05:10Z", "category", "software"), ev("A", "2026-03-02T08:00Z", "category", "network"),
        statuses("A", ("2026-03-02T09:00Z", "RESOLVED")),
    )
    a = row(facts_of(tix, evs, settings(kpi={"resolution_counts_as_response": False})), "A")
    assert a["response_at"] is None
    assert (a["initial_diagnosis"], a["category"], a["diagnosis_assessable"], a["diagnosis_accurate"]) == (
        "software", "network", True, False)


# ---------------------------------------------------------------- CSAT


@pytest.mark.parametrize(("answer", "score", "satisfied"), [
    ("满意", 5.0, True), ("较满意", 4.0, True), ("一般", 3.0, False), ("较不满意", 2.0, False),
    ("不满意", 1.0, False), ("5", 5.0, True), ("4", 4.0, True), ("3", 3.0, False), ("1", 1.0, False),
    (None, None, None),
])
def test_csat_mapping(answer, score, satisfied):
    st = settings(kpi={"satisfaction_map": SATISFACTION})
    r = one(tickets(T("T1", satisfaction=answer, status="RESOLVED", resolved_at="2026-03-02T12:00Z")), st=st)
    assert r["csat_score"] == score
    assert r["csat_satisfied"] == satisfied


# ---------------------------------------------------------------- maintenance


def test_maintenance_on_time_outcomes():
    # planned_end 2026-03-10 12:00, as_of 2026-03-31 unless stated
    pe = "2026-03-10T12:00Z"
    m = {"ticket_type": "maintenance", "planned_start": "2026-03-10T08:00Z", "planned_end": pe}
    tix = tickets(
        T("ONTIME", status="RESOLVED", actual_end="2026-03-10T11:00Z", resolved_at="2026-03-10T11:30Z", **m),
        T("EXACT", status="CLOSED", actual_end=pe, resolved_at="2026-03-11T00:00Z", **m),  # == planned_end -> True
        T("LATE", status="RESOLVED", actual_end="2026-03-10T12:00:01Z", **m),  # 1 s late -> False
        # no actual_end: resolved_at decides
        T("RES_OK", status="RESOLVED", resolved_at="2026-03-10T10:00Z", **m),
        T("RES_LATE", status="CLOSED", resolved_at="2026-03-10T13:00Z", **m),
        # actual_end wins over resolved_at both ways
        T("ACT_LATE", status="RESOLVED", actual_end="2026-03-10T13:00Z", resolved_at="2026-03-10T10:00Z", **m),
        T("FAILED", status="CLOSED", close_code="rolled_back", actual_end="2026-03-10T11:00Z", **m),
        T("FAILED2", status="RESOLVED", close_code="failed", actual_end="2026-03-10T11:00Z", **m),
        T("OKCODE", status="CLOSED", close_code="successful", actual_end="2026-03-10T11:00Z", **m),
        # CLOSED without resolved_at: resolved_at falls back to closed_at 11:00 -> True
        T("CLOSEDAT", status="CLOSED", closed_at="2026-03-10T11:00Z", **m),
        T("NOEND", status="CLOSED", **m),  # completed with neither end time known -> False
        T("OVERDUE", status="IN_PROGRESS", **m),  # not completed and as_of > planned_end -> False
        T("EXCL", status="CANCELLED", **m),  # excluded -> null
        T("NOPLAN", ticket_type="maintenance", status="RESOLVED", resolved_at="2026-03-10T10:00Z"),  # no plan -> null
        T("INC", status="RESOLVED", resolved_at="2026-03-10T10:00Z", planned_end=pe),  # not maintenance -> null
    )
    f = facts_of(tix)
    expect = {"ONTIME": True, "EXACT": True, "LATE": False, "RES_OK": True, "RES_LATE": False,
              "ACT_LATE": False, "FAILED": False, "FAILED2": False, "OKCODE": True, "CLOSEDAT": True, "NOEND": False,
              "OVERDUE": False, "EXCL": None, "NOPLAN": None, "INC": None}
    got = {tid: row(f, tid)["maintenance_on_time"] for tid in expect}
    assert got == expect


def test_maintenance_not_yet_due_is_null():
    m = {"ticket_type": "maintenance", "planned_end": "2026-03-10T12:00Z"}
    tix = tickets(T("OPEN", status="IN_PROGRESS", **m))
    # as_of before planned_end -> null; as_of == planned_end is not after it -> still null;
    # one second later -> overdue -> False
    assert one(tix, as_of=ts("2026-03-09T00:00Z"), ticket_id="OPEN")["maintenance_on_time"] is None
    assert one(tix, as_of=ts("2026-03-10T12:00Z"), ticket_id="OPEN")["maintenance_on_time"] is None
    assert one(tix, as_of=ts("2026-03-10T12:00:01Z"), ticket_id="OPEN")["maintenance_on_time"] is False


def test_maintenance_completed_before_its_planned_end_is_on_time_even_before_due():
    # Reading: "null while not due" applies to work not completed; completed work is judged at once.
    m = {"ticket_type": "maintenance", "planned_end": "2026-03-10T12:00Z"}
    tix = tickets(T("DONE", status="RESOLVED", actual_end="2026-03-09T12:00Z", **m))
    assert one(tix, as_of=ts("2026-03-09T13:00Z"), ticket_id="DONE")["maintenance_on_time"] is True


def test_maintenance_status_from_events():
    # status column IN_PROGRESS, but the events resolve it at 11:00 (before planned_end 12:00) -> True
    m = {"ticket_type": "maintenance", "planned_end": "2026-03-10T12:00Z"}
    tix = tickets(T("M", status="IN_PROGRESS", opened_at="2026-03-10T08:00Z", **m))
    evs = events(statuses("M", ("2026-03-10T08:00Z", "IN_PROGRESS"), ("2026-03-10T11:00Z", "RESOLVED")))
    assert one(tix, evs, ticket_id="M")["maintenance_on_time"] is True


# ---------------------------------------------------------------- induced incidents


def test_induced_incident():
    tix = tickets(
        T("M1", ticket_type="maintenance", planned_end="2026-03-03T00:00Z", status="RESOLVED",
          resolved_at="2026-03-02T20:00Z"),
        T("M2", ticket_type="maintenance", status="CANCELLED"),  # whatever the maintenance ticket's status
        T("R1", ticket_type="request"),
        T("I1", caused_by="M1"),  # -> True
        T("I2", caused_by="M2"),  # cancelled maintenance still counts -> True
        T("I3", caused_by="R1"),  # names a request -> False
        T("I4", caused_by="NOPE"),  # names nothing -> False
        T("I5", caused_by="M1", status="CANCELLED"),  # excluded incident -> False
        T("Q1", ticket_type="request", caused_by="M1"),  # a request is not an incident -> False
        T("I6"),  # no caused_by -> False
        T("I7", source="other", caused_by="M1"),  # M1 lives in another source -> False
        T("M1", source="other2", ticket_type="incident", caused_by="X"),  # distractor in a third source
    )
    f = facts_of(tix)
    expect = {"I1": True, "I2": True, "I3": False, "I4": False, "I5": False, "Q1": False, "I6": False,
              "M1": False, "R1": False}
    for tid, want in expect.items():
        assert row(f, tid)["induced_incident"] is want, tid
    assert row(f, "I7", source="other")["induced_incident"] is False
    assert f["induced_incident"].notna().all()


def test_engineer_at_the_last_resolution_after_a_reopen():
    # alice works it, resolved 12:00, reopened 14:00, bob takes it over 15:00, resolved again 18:00:
    # resolved_at is the last resolution (18:00), so the engineer is bob
    tix = tickets(T("T1"))
    evs = events(ev("T1", "2026-03-02T10:00Z", "assignee", "alice"), ev("T1", "2026-03-02T15:00Z", "assignee", "bob"),
                 statuses("T1", ("2026-03-02T10:00Z", "IN_PROGRESS"), ("2026-03-02T12:00Z", "RESOLVED"),
                          ("2026-03-02T14:00Z", "IN_PROGRESS"), ("2026-03-02T18:00Z", "RESOLVED")))
    r = one(tix, evs)
    assert r["engineer"] == "bob"
    assert r["reassigned"] is True  # alice -> bob


def test_breach_against_as_of_counts_business_time():
    # office calendar (Shanghai) policy: response 1 h. Opened Fri 2026-03-06 17:00, no response, unresolved.
    # as_of Mon 2026-03-09 08:00: elapsed business = Fri 17:00-18:00 = 3600, not above 3600 -> in_progress
    #   (wall-clock 63 h would say breached)
    # as_of Mon 09:00:01: 3600 + 1 = 3601 > 3600 -> breached
    st = settings(kpi={"default_calendar": "office"},
                  sla=[{"ticket_type": "incident", "response": "1h", "resolution": "1d"}])
    tix = tickets(T("T1", priority="P3", opened_at=str(local("2026-03-06 17:00", "Asia/Shanghai"))))
    r = one(tix, st=st, as_of=local("2026-03-09 08:00", "Asia/Shanghai"))
    assert r["response_sla"] == "in_progress"
    r = one(tix, st=st, as_of=local("2026-03-09 09:00:01", "Asia/Shanghai"))
    assert r["response_sla"] == "breached"
    # resolution target 1 d = 86400 business seconds: 3601 of them -> in_progress
    assert r["resolution_sla"] == "in_progress"


def test_excluded_ticket_has_no_kpi_flags():
    # a cancelled, resolved-looking incident with a diagnosis: diagnosis not assessable (false, not null),
    # accuracy, first fix and SLA null, not induced
    tix = tickets(T("T1", status="CANCELLED", priority="P1", diagnosed_category="net", category="net",
                    resolved_at="2026-03-02T11:00Z", caused_by="M1"),
                  T("M1", ticket_type="maintenance"))
    r = one(tix, st=settings(sla=SLA))
    assert r["diagnosis_assessable"] is False and r["diagnosis_accurate"] is None
    assert r["first_fix"] is None and r["resolution_sla"] is None and r["response_sla"] is None
    assert r["induced_incident"] is False


def test_closed_as_the_first_status_event_is_a_resolution():
    # Reading: with no status before it, the status before CLOSED is "neither RESOLVED nor CLOSED", so a
    # ticket whose only status event is CLOSED at 12:00 was resolved at 12:00 (2 h after opening).
    tix = tickets(T("T1", status="CLOSED"))
    r = one(tix, events(statuses("T1", ("2026-03-02T12:00Z", "CLOSED"))))
    assert r["first_resolved_at"] == r["resolved_at"] == ts("2026-03-02T12:00Z")
    assert r["resolution_business_s"] == 7200


def _text_buffers(column: pd.Series) -> list[int]:
    """The addresses of the data buffers behind a ``str`` column (equal: the same texts, not a copy)."""
    return [chunk.buffers()[2].address for chunk in column.array._pa_array.chunks]


def test_a_fact_text_equal_to_the_tickets_shares_it_and_one_an_event_moved_is_its_own() -> None:
    # A keeps its priority P2; B's priority event sets P1 (KPIS.md 3: the last value of the history), so the
    # priority column is B's own; both statuses and clients are the tickets' own, and shared, not copied
    t = tickets({"ticket_id": "A", "opened_at": "2026-01-05 09:00", "status": "IN_PROGRESS", "priority": "P2",
                 "client": "ACME"},
                {"ticket_id": "B", "opened_at": "2026-01-05 09:00", "status": "NEW", "priority": "P3",
                 "client": "Globex"})
    facts = compute_facts(t, events(ev("B", "2026-01-05 10:00", "priority", "P1")), settings(), ts("2026-01-06"))
    assert facts["priority"].tolist() == ["P2", "P1"] and facts["status"].tolist() == ["IN_PROGRESS", "NEW"]
    assert facts["client"].tolist() == ["ACME", "Globex"]
    assert _text_buffers(facts["status"]) == _text_buffers(t["status"])
    assert _text_buffers(facts["client"]) == _text_buffers(t["client"])
    assert _text_buffers(facts["priority"]) != _text_buffers(t["priority"])


def test_a_ticket_text_with_blanks_around_it_is_stripped_in_the_facts() -> None:
    t = tickets({"ticket_id": "A", "opened_at": "2026-01-05 09:00", "status": "NEW", "client": " ACME "},
                {"ticket_id": "B", "opened_at": "2026-01-05 09:00", "status": "NEW", "client": "  "})
    facts = compute_facts(t, events(), settings(), ts("2026-01-06"))
    assert facts["client"].tolist()[0] == "ACME" and pd.isna(facts["client"].iloc[1])


def test_the_priorities_and_policy_at_each_stop_share_the_texts_they_equal() -> None:
    # A: P2 throughout, so its priority at the response and at the resolution are its priority; with A
    # alone every row agrees and the columns are shared. B's priority moves from P3 to P1 after its
    # response: its response priority is P3, its own column
    a = {"ticket_id": "A", "opened_at": "2026-01-05 09:00", "status": "RESOLVED", "priority": "P2",
         "first_response_at": "2026-01-05 09:10", "resolved_at": "2026-01-05 11:00"}
    b = {**a, "ticket_id": "B", "priority": "P3"}
    alone = compute_facts(tickets(a), events(), settings(), ts("2026-01-06"))
    assert alone["response_priority"].tolist() == alone["resolution_priority"].tolist() == ["P2"]
    assert _text_buffers(alone["response_priority"]) == _text_buffers(alone["priority"])
    assert _text_buffers(alone["resolution_priority"]) == _text_buffers(alone["priority"])
    assert _text_buffers(alone["resolution_policy"]) == _text_buffers(alone["response_policy"])
    both = compute_facts(tickets(a, b), events(ev("B", "2026-01-05 10:00", "priority", "P1")), settings(),
                         ts("2026-01-06"))
    assert both["priority"].tolist() == ["P2", "P1"] and both["response_priority"].tolist() == ["P2", "P3"]
    assert both["resolution_priority"].tolist() == ["P2", "P1"]
    assert _text_buffers(both["response_priority"]) != _text_buffers(both["priority"])


def test_the_initial_diagnosis_shares_the_texts_of_the_diagnosed_category_or_of_the_category_it_equals() -> None:
    a = {"ticket_id": "A", "opened_at": "2026-01-05 09:00", "status": "RESOLVED", "category": "net",
         "first_response_at": "2026-01-05 09:10", "resolved_at": "2026-01-05 11:00"}
    # the diagnosed category given for every ticket: the initial diagnosis is that column (B was misdiagnosed)
    given = tickets({**a, "diagnosed_category": "net"}, {**a, "ticket_id": "B", "category": "db",
                                                         "diagnosed_category": "net"})
    facts = compute_facts(given, events(), settings(), ts("2026-01-06"))
    assert facts["initial_diagnosis"].tolist() == ["net", "net"] and facts["category"].tolist() == ["net", "db"]
    assert _text_buffers(facts["initial_diagnosis"]) == _text_buffers(given["diagnosed_category"])
    # none given: the category at the response (an event at 09:05), which is the final category
    facts = compute_facts(tickets(a), events(ev("A", "2026-01-05 09:05", "category", "net")), settings(),
                          ts("2026-01-06"))
    assert facts["initial_diagnosis"].tolist() == ["net"]
    assert _text_buffers(facts["initial_diagnosis"]) == _text_buffers(facts["category"])
