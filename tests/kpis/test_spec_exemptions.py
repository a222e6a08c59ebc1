"""KPIS.md 1.4 and 3, Exemptions: approved exemptions applied to the facts, and their counts in KPIS.md 4.

The default calendar is 24x7 in UTC; incidents have one policy: response 30 min (1800 s), resolution 4 h
(14 400 s); requests have none. The run's as_of is 2026-03-31T00:00Z unless a test says otherwise. Every
expected value is worked out in the comment beside it.
"""

from __future__ import annotations

import pandas as pd
from helpers import SRC, kpi_row, kpi_rows, no_events, row, settings, tickets, ts

from kpis import compute_all
from kpis.facts import compute_facts
from kpis.schema import ADJUSTMENT_COLUMNS, conform

AS_OF = ts("2026-03-31T00:00Z")
SETTINGS = settings(sla=[{"name": "inc", "ticket_type": "incident", "response": "30m", "resolution": "4h"}])


def approval(ticket_id: str, scope: str, approved_at: str, reason: str = "客户原因", by: str = "客户经理") -> dict:
    return {"source": SRC, "ticket_id": ticket_id, "scope": scope, "reason": reason, "approved_by": by,
            "approved_at": ts(approved_at), "file": "豁免.xlsx"}


def approvals(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=list(ADJUSTMENT_COLUMNS))
    frame["approved_at"] = pd.to_datetime(frame["approved_at"], utc=True)
    return conform(frame, ADJUSTMENT_COLUMNS)


def T(ticket_id: str, opened: str, *, response: str | None = None, resolved: str | None = None,
      status: str = "RESOLVED", ticket_type: str = "incident") -> dict:
    return {"ticket_id": ticket_id, "ticket_type": ticket_type, "priority": "P2", "status": status,
            "opened_at": opened, "first_response_at": response, "resolved_at": resolved, "assignee": "amy"}


TICKETS = tickets(
    # A: response 20 min (met), resolution 6 h (breached); both exempted on 03-10
    T("A", "2026-03-02T10:00Z", response="2026-03-02T10:20Z", resolved="2026-03-02T16:00Z"),
    # B: resolution 8 h (breached); exempted, but only approved on 04-02, after the as_of
    T("B", "2026-03-03T10:00Z", response="2026-03-03T10:10Z", resolved="2026-03-03T18:00Z"),
    # C: resolution 10 h (breached); the same resolution exemption approved twice
    T("C", "2026-03-04T10:00Z", response="2026-03-04T10:05Z", resolved="2026-03-04T20:00Z"),
    # D: cancelled; a ticket exemption does not make it 'exempt'
    T("D", "2026-03-05T10:00Z", status="CANCELLED"),
    # E: a request, which no policy governs; a response exemption leaves its null verdict null
    T("E", "2026-03-06T10:00Z", response="2026-03-06T11:00Z", resolved="2026-03-06T12:00Z", ticket_type="request"),
    # F: response 50 min (breached); the whole ticket exempted
    T("F", "2026-03-07T10:00Z", response="2026-03-07T10:50Z", resolved="2026-03-07T11:00Z"),
    # G: still open at the as_of, 2 h of its 4 h gone (in_progress); its resolution exempted
    T("G", "2026-03-30T22:00Z", response="2026-03-30T22:10Z", status="IN_PROGRESS"),
)
APPROVALS = approvals(
    approval("A", "response", "2026-03-10T08:00Z"),
    approval("A", "resolution", "2026-03-10T08:00Z", reason="第三方原因"),
    approval("B", "resolution", "2026-04-02T08:00Z"),
    approval("C", "resolution", "2026-03-05T08:00Z"),
    approval("C", "resolution", "2026-03-20T08:00Z", reason="第三方原因", by="张经理"),
    approval("D", "ticket", "2026-03-06T08:00Z"),
    approval("E", "response", "2026-03-07T08:00Z"),
    approval("F", "ticket", "2026-03-08T08:00Z", reason="不可抗力"),
    approval("G", "resolution", "2026-03-30T23:00Z"),
    approval("NOPE", "ticket", "2026-03-01T08:00Z"),  # a ticket the frame does not hold: nothing to apply
)


def facts(as_of=AS_OF, with_approvals=APPROVALS):
    return compute_facts(TICKETS, no_events(), SETTINGS, as_of, with_approvals)


def test_response_and_resolution_exemptions_replace_the_verdict_and_nothing_else():
    f = facts()
    a, plain = row(f, "A"), row(compute_facts(TICKETS, no_events(), SETTINGS, AS_OF), "A")
    assert (plain["response_sla"], plain["resolution_sla"]) == ("met", "breached")  # 1200 <= 1800, 21600 > 14400
    assert (a["response_sla"], a["resolution_sla"]) == ("exempt", "exempt")
    # durations, policies, targets and due times as computed: 1200 s, 21600 s, due 10:30 and 14:00
    assert (a["response_business_s"], a["resolution_business_s"]) == (1200, 21600)
    assert (a["response_policy"], a["resolution_target_s"]) == ("inc", 14400)
    assert (a["response_due_at"], a["resolution_due_at"]) == (ts("2026-03-02T10:30Z"), ts("2026-03-02T14:00Z"))
    assert a["excluded_reason"] is None
    # the rest of the row is the row without approvals
    changed = {k for k in a if a[k] != plain[k]}
    assert changed == {"response_sla", "resolution_sla"}


def test_an_exemption_approved_after_the_as_of_is_not_applied():
    # B's approval is dated 04-02: at the 03-31 as_of it is not known yet; a run on 04-05 applies it
    assert row(facts(), "B")["resolution_sla"] == "breached"  # 8 h > 4 h
    assert row(facts(as_of=ts("2026-04-05T00:00Z")), "B")["resolution_sla"] == "exempt"
    # and exactly at approved_at it applies (approved_at <= as_of)
    assert row(facts(as_of=ts("2026-04-02T08:00Z")), "B")["resolution_sla"] == "exempt"


def test_the_same_approval_twice_applies_once():
    f = facts()
    assert row(f, "C")["resolution_sla"] == "exempt"
    # amy's March incidents resolved: A, B, C (F is exempt as a whole, G is open): A and C exempt once each
    out = compute_all(TICKETS, no_events(), SETTINGS, AS_OF, APPROVALS)
    month = kpi_row(out.kpi_engineer, grain="month", period_start="2026-03-01", engineer="amy", ticket_type="incident")
    assert month["resolution_sla_exempt"] == 2  # not 3: C's two approvals are one exemption
    assert (month["resolution_sla_met"], month["resolution_sla_breached"]) == (0, 1)  # only B
    assert month["resolution_sla_rate"] == 0.0  # 0 / (0 + 1): the exempt ones are in neither part
    assert month["resolved_count"] == 3


def test_a_ticket_exemption_leaves_a_cancelled_ticket_cancelled():
    f = facts()
    assert row(f, "D")["excluded_reason"] == "cancelled"
    assert row(f, "F")["excluded_reason"] == "exempt"  # the same kind of approval on a live ticket


def test_a_response_exemption_on_a_ticket_without_policy_stays_null():
    f = facts()
    e = row(f, "E")
    assert e["response_policy"] is None and e["response_sla"] is None
    assert e["excluded_reason"] is None
    assert row(f, "A")["response_sla"] == "exempt"  # the same kind of approval on a ticket with a policy


def test_a_ticket_exemption_takes_the_ticket_out_of_every_kpi():
    f = row(facts(), "F")
    assert f["excluded_reason"] == "exempt"
    # as every excluded ticket: no verdict, no due time, no first fix, no diagnosis; durations stay (D4)
    assert (f["response_sla"], f["resolution_sla"], f["response_due_at"], f["first_fix"]) == (None, None, None, None)
    assert f["diagnosis_assessable"] is False
    assert (f["response_business_s"], f["resolution_business_s"]) == (3000, 3600)  # 50 min, 1 h
    out = compute_all(TICKETS, no_events(), SETTINGS, AS_OF, APPROVALS)
    march = kpi_row(out.kpi_engineer, grain="month", period_start="2026-03-01", engineer="amy", ticket_type="incident")
    # opened in March: A, B, C, G (D cancelled, F exempt)
    assert march["opened_count"] == 4
    # response verdicts: A exempt; B (10 min), C (5 min), G (10 min) met; F not counted at all
    assert (march["response_sla_met"], march["response_sla_breached"], march["response_sla_exempt"]) == (3, 0, 1)
    assert march["response_sla_rate"] == 1.0
    assert kpi_rows(out.kpi_engineer, grain="day", period_start="2026-03-07").empty  # F was the day's only ticket


def test_an_open_ticket_in_progress_becomes_exempt():
    assert row(facts(with_approvals=None), "G")["resolution_sla"] == "in_progress"  # 2 h of 4 h
    assert row(facts(), "G")["resolution_sla"] == "exempt"


def test_exempt_counts_follow_their_anchors():
    """response_sla_exempt at opened_at, resolution_sla_exempt at resolved_at (KPIS.md 4)."""
    t = tickets(T("H", "2026-03-31T20:00Z", response="2026-03-31T20:45Z", resolved="2026-04-01T03:00Z"))
    # response 45 min (breached), resolution 7 h (breached); both exempted
    a = approvals(approval("H", "response", "2026-04-01T05:00Z"), approval("H", "resolution", "2026-04-01T05:00Z"))
    out = compute_all(t, no_events(), SETTINGS, ts("2026-04-02T00:00Z"), a)
    march = kpi_row(out.kpi_engineer, grain="month", period_start="2026-03-01", engineer="amy")
    april = kpi_row(out.kpi_engineer, grain="month", period_start="2026-04-01", engineer="amy")
    assert (march["response_sla_exempt"], march["resolution_sla_exempt"]) == (1, 0)
    assert (april["response_sla_exempt"], april["resolution_sla_exempt"]) == (0, 1)
    assert pd.isna(march["response_sla_rate"]) and pd.isna(april["resolution_sla_rate"])  # 0 / 0
