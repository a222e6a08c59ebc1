"""kpis.segments: the resolution timeline ``itsm-kpi explain`` shows, and the events that decided the facts.

The hand-worked case: an incident on the office calendar (Asia/Shanghai, 09:00-12:00 and 13:30-18:00 on
weekdays) with 2026-10-01 and 2026-10-02 as holidays, reopened twice, waiting for the customer over the
holidays and the weekend. Then, by property on random tickets: the counted segments add up to
``resolution_business_s``, and a ticket computed alone (with the ticket its caused_by names), as explain
computes it, gives exactly its row of the whole computation.
"""

from __future__ import annotations

import pandas as pd
from helpers import ev, events, row, settings, tickets
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from test_properties import AS_OF, DUE_SETTINGS, ENGINE_SETTINGS, datasets, frames

from kpis.facts import compute_facts
from kpis.segments import event_roles, resolution_segments

TZ = "Asia/Shanghai"
SETTINGS = settings(
    kpi={"default_calendar": "office"},
    calendars={"office": {"holidays": ["2026-10-01", "2026-10-02"]}},
    sla=[{"name": "inc", "ticket_type": "incident", "response": "1h", "resolution": "16h"}],
)


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_localize(TZ).tz_convert("UTC")


STATUSES = [  # Wed 2026-09-30 .. Tue 2026-10-06, local times
    ("2026-09-30 10:00", "NEW"),
    ("2026-09-30 10:30", "IN_PROGRESS"),
    ("2026-09-30 11:00", "RESOLVED"),  # the first resolution
    ("2026-09-30 14:00", "IN_PROGRESS"),  # reopen 1
    ("2026-09-30 16:00", "WAITING_CUSTOMER"),  # over the holidays and the weekend
    ("2026-10-05 10:00", "IN_PROGRESS"),
    ("2026-10-05 11:00", "RESOLVED"),
    ("2026-10-05 14:00", "IN_PROGRESS"),  # reopen 2
    ("2026-10-05 15:30", "RESOLVED"),  # the last resolution: resolved_at
    ("2026-10-06 09:00", "CLOSED"),  # after resolved_at: outside the interval
]
TICKETS = tickets({"ticket_id": "T", "opened_at": at("2026-09-30 10:00"), "status": "CLOSED", "priority": "P3",
                   "assignee": "amy"})
EVENTS = events([ev("T", at(t), "status", s) for t, s in STATUSES])
AS_OF_T = pd.Timestamp("2026-10-31T00:00Z")


def test_a_ticket_reopened_twice_with_a_pause_over_a_holiday() -> None:
    segments = resolution_segments(TICKETS, EVENTS, SETTINGS, AS_OF_T)
    got = [(s, str(a), str(b), c, b_s, why) for s, a, b, c, b_s, why in
           segments[["status", "start", "end", "calendar_s", "business_s", "why"]].itertuples(index=False)]
    hand = [
        # status, local start -> end, calendar s, business s, why
        ("NEW", "2026-09-30 10:00", "2026-09-30 10:30", 1800, 1800, "working"),
        ("IN_PROGRESS", "2026-09-30 10:30", "2026-09-30 11:00", 1800, 1800, "working"),
        # 11:00-12:00 + 13:30-14:00 of working time; RESOLVED before a reopen is never counted
        ("RESOLVED", "2026-09-30 11:00", "2026-09-30 14:00", 10800, 5400, "reopen gap"),
        ("IN_PROGRESS", "2026-09-30 14:00", "2026-09-30 16:00", 7200, 7200, "working"),
        # Wed 16:00 -> Mon 10:00 is 4 d 18 h; working time: Wed 16:00-18:00 and Mon 09:00-10:00 (Thu, Fri
        # holidays, then the weekend) = 2 h + 1 h
        ("WAITING_CUSTOMER", "2026-09-30 16:00", "2026-10-05 10:00", 410400, 10800, "pause"),
        ("IN_PROGRESS", "2026-10-05 10:00", "2026-10-05 11:00", 3600, 3600, "working"),
        ("RESOLVED", "2026-10-05 11:00", "2026-10-05 14:00", 10800, 5400, "reopen gap"),
        ("IN_PROGRESS", "2026-10-05 14:00", "2026-10-05 15:30", 5400, 5400, "working"),
    ]
    assert got == [(s, str(at(a)), str(at(b)), c, b_s, why) for s, a, b, c, b_s, why in hand]
    assert segments["counted"].tolist() == [w == "working" for *_, w in hand]
    # counted: 1800 + 1800 + 7200 + 3600 + 5400 = 19800 s, which is the ticket's resolution time
    facts = row(compute_facts(TICKETS, EVENTS, SETTINGS, AS_OF_T), "T")
    assert facts["resolution_business_s"] == 19800 == segments.loc[segments["counted"], "business_s"].sum()
    assert (facts["reopen_count"], facts["resolution_sla"]) == (2, "met")  # 19800 <= 16 h = 57600


def test_the_events_that_decided_resolution_and_reopens() -> None:
    roles = event_roles(TICKETS, EVENTS, SETTINGS, AS_OF_T)
    when = {role: [str(t) for t in roles.loc[roles[role], "at"]]
            for role in ("first_resolution", "last_resolution", "reopen")}
    assert when == {"first_resolution": [str(at("2026-09-30 11:00"))],
                    "last_resolution": [str(at("2026-10-05 15:30"))],
                    "reopen": [str(at("2026-09-30 14:00")), str(at("2026-10-05 14:00"))]}


def test_the_category_event_that_gave_the_initial_diagnosis_without_a_response() -> None:
    """D7: no response, so the first category event (software 05:10) is the initial diagnosis; the last
    (network 08:00) gives the final category."""
    tix = tickets({"ticket_id": "A", "ticket_type": "incident", "opened_at": "2026-03-02T05:00Z",
                   "status": "RESOLVED", "resolved_at": "2026-03-02T09:00Z", "category": "network"})
    evs = events(ev("A", "2026-03-02T05:10Z", "category", "software"),
                 ev("A", "2026-03-02T08:00Z", "category", "network"))
    roles = event_roles(tix, evs, settings(kpi={"resolution_counts_as_response": False}),
                        pd.Timestamp("2026-03-03T00:00Z"))
    assert {role: list(roles.loc[roles[role], "value"]) for role in ("initial_diagnosis", "final_category")} == {
        "initial_diagnosis": ["software"], "final_category": ["network"]}


def test_an_open_ticket_runs_to_the_as_of_and_a_ticket_without_status_events_is_one_piece() -> None:
    t = tickets({"ticket_id": "O", "opened_at": at("2026-10-05 09:00"), "status": "IN_PROGRESS"},
                {"ticket_id": "P", "opened_at": at("2026-10-05 09:00"), "status": "RESOLVED",
                 "resolved_at": at("2026-10-05 10:00")})
    e = events(ev("O", at("2026-10-05 09:30"), "status", "IN_PROGRESS"))
    seg = resolution_segments(t, e, SETTINGS, at("2026-10-05 11:00"))
    o = seg[seg["ticket_id"] == "O"]
    # before the first status event: no status; then IN_PROGRESS up to the as_of (11:00): 30 min + 90 min
    assert o["status"].isna().tolist() == [True, False]
    assert o["business_s"].tolist() == [1800, 5400] and o["counted"].all()
    p = seg[seg["ticket_id"] == "P"]
    # no status events: the whole [09:00, 10:00) is one piece without a status, counted
    assert len(p) == 1 and pd.isna(p["status"].iloc[0]) and int(p["business_s"].iloc[0]) == 3600


# ---------------------------------------------------------------- by property, on random tickets

@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(datasets())
def test_counted_segments_add_up_to_the_resolution_time(data) -> None:
    for settings_ in (ENGINE_SETTINGS, DUE_SETTINGS):
        t, e = frames(*data)
        facts = compute_facts(t, e, settings_, AS_OF)
        segments = resolution_segments(t, e, settings_, AS_OF)
        counted = segments[segments["counted"]].groupby(["source", "ticket_id"])["business_s"].sum()
        for r in facts[facts["resolution_business_s"].notna()].to_dict("records"):
            assert counted.get((r["source"], r["ticket_id"]), 0) == r["resolution_business_s"], r["ticket_id"]


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(datasets())
def test_one_ticket_computed_alone_gives_its_row(data) -> None:
    """What explain computes (the ticket, and the ticket its caused_by names) equals the full computation's row."""
    t, e = frames(*data)
    whole = compute_facts(t, e, DUE_SETTINGS, AS_OF)
    for r in t.to_dict("records"):
        mine = (t["source"] == r["source"]) & (t["ticket_id"].isin([r["ticket_id"], r["caused_by"]]))
        alone = compute_facts(t[mine], e[(e["source"] == r["source"]) & e["ticket_id"].isin(t.loc[mine, "ticket_id"])],
                              DUE_SETTINGS, AS_OF)
        got = alone[alone["ticket_id"] == r["ticket_id"]].reset_index(drop=True)
        want = whole[(whole["source"] == r["source"]) & (whole["ticket_id"] == r["ticket_id"])].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_exact=True, obj=r["ticket_id"])
