"""KPIS.md 2.3 and 4: per-engineer and per-team aggregates on tiny hand-made tickets.

Reporting timezone Asia/Shanghai (UTC+8) unless stated; the default calendar is 24x7, so business minutes are
wall-clock minutes. Tickets are opened at 02:00Z = 10:00 Shanghai so UTC and local dates agree unless a test
is about the difference.
"""

from __future__ import annotations

import math

import pandas as pd
from helpers import approx_eq, kpi_row, kpi_rows, settings, tickets, ts
from helpers import events as make_events

from kpis.aggregate import aggregate
from kpis.facts import compute_facts
from kpis.schema import KPI_ENGINEER_COLUMNS, KPI_TEAM_COLUMNS

SH = "Asia/Shanghai"
P1 = [{"ticket_type": "incident", "priority": "P1", "response": "30m", "resolution": "4h"}]


def st(**kw):
    kw.setdefault("reporting", {})
    kw["reporting"] = {"timezone": SH, "min_sample": 3, **kw["reporting"]}
    kw.setdefault("sla", P1)
    return settings(**kw)


def run(tix, as_of="2026-04-15T00:00Z", s=None, evs=None):
    s = s if s is not None else st()
    facts = compute_facts(tix, evs if evs is not None else make_events(), s, ts(as_of))
    return aggregate(facts, s, by="engineer"), aggregate(facts, s, by="team")


def minutes_after(start: str, minutes: float) -> str:
    return str(ts(start) + pd.Timedelta(minutes=minutes))


def I(tid, opened="2026-03-10T02:00Z", engineer="bob", team="desk", **kw):  # noqa: E743
    return {"ticket_id": tid, "opened_at": opened, "status": kw.pop("status", "IN_PROGRESS"),
            "assignee": engineer, "assignment_group": team, "priority": kw.pop("priority", "P1"), **kw}


def is_null(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


# ---------------------------------------------------------------- shape


def test_columns_and_grains():
    eng, team = run(tickets(I("A")))
    assert list(eng.columns) == list(KPI_ENGINEER_COLUMNS)
    assert list(team.columns) == list(KPI_TEAM_COLUMNS)
    # one opened ticket -> one row per grain
    assert sorted(eng["grain"]) == ["day", "month", "quarter", "week"]
    eng2, _ = run(tickets(I("A")), s=st(reporting={"grains": ["month", "week"]}))
    assert sorted(eng2["grain"]) == ["month", "week"]


# ---------------------------------------------------------------- periods (2.3)


def test_periods_are_local_dates_in_the_reporting_timezone():
    tix = tickets(
        # 2026-03-31T15:30Z = Tue 2026-03-31 23:30 Shanghai -> March, Q1, week of Mon 2026-03-30
        I("X", opened="2026-03-31T15:30Z"),
        # 2026-03-31T17:00Z = Wed 2026-04-01 01:00 Shanghai -> April, Q2, same week (Mon 2026-03-30)
        I("Y", opened="2026-03-31T17:00Z"),
        # 2026-04-05T15:00Z = Sun 2026-04-05 23:00 -> week of 2026-03-30
        I("Z", opened="2026-04-05T15:00Z"),
        # 2026-04-05T16:30Z = Mon 2026-04-06 00:30 -> week of 2026-04-06
        I("W", opened="2026-04-05T16:30Z"),
    )
    eng, _ = run(tix)
    oc = {(r.grain, str(r.period_start.date())): r.opened_count
          for r in eng[(eng.engineer == "bob") & (eng.ticket_type == "incident")].itertuples()}
    assert oc[("day", "2026-03-31")] == 1  # X
    assert oc[("day", "2026-04-01")] == 1  # Y
    assert oc[("day", "2026-04-05")] == 1  # Z
    assert oc[("day", "2026-04-06")] == 1  # W
    assert oc[("week", "2026-03-30")] == 3  # X, Y, Z
    assert oc[("week", "2026-04-06")] == 1  # W
    assert oc[("month", "2026-03-01")] == 1  # X
    assert oc[("month", "2026-04-01")] == 3  # Y, Z, W
    assert oc[("quarter", "2026-01-01")] == 1  # X
    assert oc[("quarter", "2026-04-01")] == 3  # Y, Z, W
    assert len(oc) == 10
    assert eng["period_start"].dtype == "datetime64[s]"


def test_reporting_timezone_defaults_to_the_default_calendars():
    # no reporting.timezone; default calendar 'office' is Asia/Shanghai: 2026-03-31T17:00Z -> April
    s = settings(kpi={"default_calendar": "office"}, reporting={"grains": ["month"]})
    eng, _ = run(tickets(I("Y", opened="2026-03-31T17:00Z")), s=s)
    assert list(eng["period_start"]) == [pd.Timestamp("2026-04-01")]


# ---------------------------------------------------------------- percentiles


def test_response_mean_median_p90_are_continuous_percentiles():
    # responses 10, 20, 30, 40 min -> mean 25; median (20+30)/2 = 25;
    # P90: position 0.9 x (4-1) = 2.7 -> 30 + 0.7 x (40-30) = 37
    tix = tickets(*[I(f"R{m}", first_response_at=minutes_after("2026-03-10T02:00Z", m)) for m in (40, 10, 30, 20)])
    eng, _ = run(tix, s=st(reporting={"grains": ["month"]}))
    r = kpi_row(eng, grain="month", period_start="2026-03-01", engineer="bob", ticket_type="incident")
    assert r["opened_count"] == 4
    assert r["response_n"] == 4
    assert approx_eq(r["response_mean_min"], 25.0)
    assert approx_eq(r["response_median_min"], 25.0)
    assert approx_eq(r["response_p90_min"], 37.0)
    # P1 response target 30 min: 10, 20, 30 (<= 30) met, 40 breached -> 3 / 4 = 0.75
    assert (r["response_sla_met"], r["response_sla_breached"]) == (3, 1)
    assert approx_eq(r["response_sla_rate"], 0.75)
    # nothing resolved: every rate over resolved_count is null, counts are 0
    assert r["resolved_count"] == 0 and r["resolution_n"] == 0
    for k in ("resolution_mean_min", "resolution_median_min", "resolution_p90_min", "resolution_sla_rate",
              "first_fix_rate", "reopen_rate", "accuracy_rate", "csat_rate", "maintenance_on_time_rate"):
        assert is_null(r[k]), k
    assert r["low_sample"] is True  # 0 + 0 < 3


def test_mean_is_exact_seconds_over_n_in_any_ticket_order():
    # responses 1 .. 10 s: 55 s / 10 = 5.5 s = 0.091666... min, the same float whatever the row order
    # (a sum of per-row minutes, 1/60 + 2/60 + ..., rounds differently forwards and backwards)
    def mean(seconds):
        tix = tickets(*[I(f"T{s}", first_response_at=str(ts("2026-03-10T02:00Z") + pd.Timedelta(seconds=s)))
                        for s in seconds])
        eng, _ = run(tix, s=st(reporting={"grains": ["month"]}))
        return kpi_row(eng, grain="month", period_start="2026-03-01", engineer="bob",
                       ticket_type="incident")["response_mean_min"]

    forwards, backwards = mean(range(1, 11)), mean(range(10, 0, -1))
    assert forwards == backwards == 55 / 10 / 60


def test_resolution_percentiles_with_an_outlier_and_unrounded_minutes():
    # resolutions 1.5, 2, 3, 4, 100 min -> mean 110.5 / 5 = 22.1; median 3;
    # P90: position 0.9 x 4 = 3.6 -> 4 + 0.6 x (100 - 4) = 61.6
    mins = (3, 100, 1.5, 4, 2)
    tix = tickets(*[I(f"S{i}", status="RESOLVED", first_response_at="2026-03-10T02:01Z",
                      resolved_at=minutes_after("2026-03-10T02:00Z", m)) for i, m in enumerate(mins)])
    eng, _ = run(tix, s=st(reporting={"grains": ["month"]}))
    r = kpi_row(eng, grain="month", period_start="2026-03-01", engineer="bob", ticket_type="incident")
    assert r["resolved_count"] == 5 and r["resolution_n"] == 5
    assert approx_eq(r["resolution_mean_min"], 22.1)
    assert approx_eq(r["resolution_median_min"], 3.0)
    assert approx_eq(r["resolution_p90_min"], 61.6)
    assert r["low_sample"] is False  # 5 + 0 >= 3


# ---------------------------------------------------------------- a month of one engineer, by hand


def _bobs_month():
    o = "2026-03-10T02:00Z"
    return tickets(
        # I1: response 10 min, resolved after 60 min, first fix, diagnosis accurate, CSAT 5 answered in March
        I("I1", first_response_at=minutes_after(o, 10), status="RESOLVED", resolved_at=minutes_after(o, 60),
          diagnosed_category="net", category="net", satisfaction="5", satisfaction_at="2026-03-11T02:00Z"),
        # I2: response 20, resolved after 300 (> 240: breached), reopened once, diagnosis wrong, CSAT 2 (no
        # satisfaction_at: anchored on resolved_at, March)
        I("I2", first_response_at=minutes_after(o, 20), status="RESOLVED", resolved_at=minutes_after(o, 300),
          reopen_count=1, diagnosed_category="net", category="hw", satisfaction="2"),
        # I3: no response -> the resolution (120 min) counts as response (> 30: breached); reassigned;
        # no diagnosis; CSAT 4 answered in April
        I("I3", status="CLOSED", resolved_at=minutes_after(o, 120), reassignment_count=1,
          satisfaction="4", satisfaction_at="2026-04-01T02:00Z"),
        # I4: open, no response; by as_of (April) both SLAs breached; CSAT 5 but no anchor -> not counted
        I("I4", satisfaction="5"),
        # C1: cancelled -> in no KPI
        I("C1", status="CANCELLED", first_response_at=minutes_after(o, 5), satisfaction="5",
          satisfaction_at="2026-03-11T02:00Z"),
    )


def test_month_of_one_engineer():
    eng, _ = run(_bobs_month(), s=st(reporting={"grains": ["month"]}))
    r = kpi_row(eng, grain="month", period_start="2026-03-01", engineer="bob", ticket_type="incident")
    assert r["opened_count"] == 4  # I1..I4, not C1
    # responses 10, 20, 120 -> mean 50, median 20, P90 pos 1.8 -> 20 + 0.8 x 100 = 100
    assert r["response_n"] == 3
    assert approx_eq(r["response_mean_min"], 50.0)
    assert approx_eq(r["response_median_min"], 20.0)
    assert approx_eq(r["response_p90_min"], 100.0)
    # response SLA (30 min): I1 met, I2 met, I3 breached (120), I4 breached (no stop, as_of far past) -> 2/4
    assert (r["response_sla_met"], r["response_sla_breached"]) == (2, 2)
    assert approx_eq(r["response_sla_rate"], 0.5)
    # resolved: I1, I2, I3 -> 3; resolution 60, 300, 120 -> mean 160, median 120, P90 1.8 -> 120 + 0.8 x 180 = 264
    assert r["resolved_count"] == 3 and r["resolution_n"] == 3
    assert approx_eq(r["resolution_mean_min"], 160.0)
    assert approx_eq(r["resolution_median_min"], 120.0)
    assert approx_eq(r["resolution_p90_min"], 264.0)
    # resolution SLA (240 min): I1 met, I3 met, I2 breached; I4 has no resolved_at -> no period -> 2 / 3
    assert (r["resolution_sla_met"], r["resolution_sla_breached"]) == (2, 1)
    assert approx_eq(r["resolution_sla_rate"], 2 / 3)
    # first fix: I1 only -> 1 / 3; reopened: I2 -> 1 / 3
    assert r["first_fix_count"] == 1 and approx_eq(r["first_fix_rate"], 1 / 3)
    assert r["reopened_count"] == 1 and approx_eq(r["reopen_rate"], 1 / 3)
    # accuracy: assessable I1 (right), I2 (wrong) -> 1 / 2
    assert (r["accuracy_assessable"], r["accuracy_correct"]) == (2, 1)
    assert approx_eq(r["accuracy_rate"], 0.5)
    # CSAT in March: I1 (5, satisfaction_at March), I2 (2, resolved_at March) -> 1 / 2; I3 is in April;
    # I4 has no anchor; C1 is excluded
    assert (r["csat_answered"], r["csat_satisfied"]) == (2, 1)
    assert approx_eq(r["csat_rate"], 0.5)
    assert r["maintenance_due"] == 0 and is_null(r["maintenance_on_time_rate"])
    assert r["induced_incidents"] == 0
    assert r["low_sample"] is False  # 3 + 0 = 3, not < 3
    # April: only I3's CSAT answer -> a row with csat only
    a = kpi_row(eng, grain="month", period_start="2026-04-01", engineer="bob", ticket_type="incident")
    assert (a["opened_count"], a["resolved_count"], a["csat_answered"], a["csat_satisfied"]) == (0, 0, 1, 1)
    assert approx_eq(a["csat_rate"], 1.0)
    assert a["response_n"] == 0 and is_null(a["response_mean_min"]) and is_null(a["first_fix_rate"])
    assert a["low_sample"] is True
    assert len(eng) == 2


def test_team_table_mirrors_the_engineer_table():
    # every ticket of bob is in team 'desk': the team rows equal the engineer rows with team for engineer
    eng, team = run(_bobs_month())
    eng = eng.rename(columns={"engineer": "team"}).assign(team="desk")
    keys = ["grain", "period_start", "team", "ticket_type"]
    pd.testing.assert_frame_equal(eng.sort_values(keys).reset_index(drop=True),
                                  team.sort_values(keys).reset_index(drop=True), check_like=True)


def test_team_counts_span_engineers():
    tix = tickets(I("A", engineer="bob"), I("B", engineer="amy"), I("C", engineer="amy", team="net"))
    eng, team = run(tix, s=st(reporting={"grains": ["month"]}))
    assert kpi_row(team, team="desk", ticket_type="incident")["opened_count"] == 2  # A, B
    assert kpi_row(team, team="net", ticket_type="incident")["opened_count"] == 1  # C
    assert kpi_row(eng, engineer="amy", ticket_type="incident")["opened_count"] == 2  # B, C


def test_rows_per_ticket_type_and_low_sample_default():
    # min_sample default 10: bob resolved 1 incident and 1 request -> both rows low_sample
    s = settings(reporting={"timezone": SH, "grains": ["month"]})
    tix = tickets(I("A", status="RESOLVED", resolved_at="2026-03-10T03:00Z"),
                  I("B", ticket_type="request", status="RESOLVED", resolved_at="2026-03-10T04:00Z"))
    eng, _ = run(tix, s=s)
    inc = kpi_row(eng, engineer="bob", ticket_type="incident")
    req = kpi_row(eng, engineer="bob", ticket_type="request")
    assert inc["resolved_count"] == 1 and req["resolved_count"] == 1
    # request resolved after 120 min (no policy for requests: SLA counts 0, rate null)
    assert approx_eq(req["resolution_mean_min"], 120.0)
    assert (req["resolution_sla_met"], req["resolution_sla_breached"]) == (0, 0)
    assert is_null(req["resolution_sla_rate"])
    assert inc["low_sample"] is True and req["low_sample"] is True


# ---------------------------------------------------------------- row emission and exclusion


def test_opened_and_resolved_in_different_periods():
    # opened 2026-03-30 10:00 Shanghai, resolved 2026-04-02 10:00 (3 days = 4320 min)
    tix = tickets(I("A", opened="2026-03-30T02:00Z", status="RESOLVED", resolved_at="2026-04-02T02:00Z",
                    first_response_at="2026-03-30T02:10Z"))
    eng, _ = run(tix, s=st(reporting={"grains": ["month"]}))
    m = kpi_row(eng, period_start="2026-03-01", engineer="bob", ticket_type="incident")
    a = kpi_row(eng, period_start="2026-04-01", engineer="bob", ticket_type="incident")
    assert (m["opened_count"], m["response_n"], m["resolved_count"], m["resolution_n"]) == (1, 1, 0, 0)
    assert (a["opened_count"], a["response_n"], a["resolved_count"], a["resolution_n"]) == (0, 0, 1, 1)
    assert approx_eq(a["resolution_mean_min"], 4320.0)
    # first fix anchored on resolved_at: April
    assert m["first_fix_count"] == 0 and a["first_fix_count"] == 1


def test_excluded_tickets_count_nowhere():
    # ghost has only a cancelled ticket: no row at all; bob's cancelled ticket is not in his opened_count
    tix = tickets(I("G", engineer="ghost", status="CANCELLED", first_response_at="2026-03-10T02:10Z"),
                  I("B1"), I("B2", status="CANCELLED", resolved_at="2026-03-10T03:00Z"))
    eng, team = run(tix, s=st(reporting={"grains": ["month"]}))
    assert kpi_rows(eng, engineer="ghost").empty
    assert kpi_row(eng, engineer="bob", ticket_type="incident")["opened_count"] == 1
    assert kpi_row(team, team="desk", ticket_type="incident")["opened_count"] == 1


def test_negative_resolution_drops_out_of_the_resolution_kpi_only():
    # resolved_at 01:00Z is before opened_at 02:00Z: resolution time null; the response (10 min) still counts
    tix = tickets(I("N", status="RESOLVED", first_response_at="2026-03-10T02:10Z", resolved_at="2026-03-10T01:00Z"))
    eng, _ = run(tix, s=st(reporting={"grains": ["month"]}))
    r = kpi_row(eng, engineer="bob", ticket_type="incident")
    assert r["response_n"] == 1 and approx_eq(r["response_mean_min"], 10.0)
    assert r["response_sla_met"] == 1
    assert r["resolution_n"] == 0 and is_null(r["resolution_mean_min"])
    assert r["resolution_sla_met"] == 0 and r["resolution_sla_breached"] == 0


def test_maintenance_and_induced_incidents():
    # carol's maintenance: M1 done on time (due March), M2 overdue (due March), M3 due in May (not due at
    # as_of 2026-04-15), M4 due March but resolved in April (late).
    # dave's incident I9 (opened April 2) was caused by M1 -> counted for carol, April, maintenance row.
    m = {"ticket_type": "maintenance", "engineer": "carol", "team": "ops", "priority": None}
    tix = tickets(
        I("M1", opened="2026-03-01T02:00Z", planned_end="2026-03-15T02:00Z", status="RESOLVED",
          actual_end="2026-03-15T01:00Z", resolved_at="2026-03-15T03:00Z", **m),
        # M2 opened in February: its opened_count is February's, its due count March's (anchor planned_end)
        I("M2", opened="2026-02-20T02:00Z", planned_end="2026-03-20T02:00Z", **m),
        I("M3", opened="2026-03-01T02:00Z", planned_end="2026-05-01T02:00Z", **m),
        I("M4", opened="2026-03-01T02:00Z", planned_end="2026-03-25T02:00Z", status="RESOLVED",
          resolved_at="2026-04-03T02:00Z", **m),
        I("I9", opened="2026-04-02T02:00Z", engineer="dave", team="desk", caused_by="M1"),
    )
    eng, team = run(tix, s=st(reporting={"grains": ["month"]}))
    mar = kpi_row(eng, period_start="2026-03-01", engineer="carol", ticket_type="maintenance")
    # opened M1, M3, M4 = 3 (M2 in February); due M1, M2, M4 = 3 (M3 not due); on time M1 -> 1/3
    assert mar["opened_count"] == 3
    feb = kpi_row(eng, period_start="2026-02-01", engineer="carol", ticket_type="maintenance")
    assert (feb["opened_count"], feb["maintenance_due"]) == (1, 0)
    assert (mar["maintenance_due"], mar["maintenance_on_time"]) == (3, 1)
    assert approx_eq(mar["maintenance_on_time_rate"], 1 / 3)
    # maintenance is not in resolved_count (incidents and requests only)
    assert mar["resolved_count"] == 0
    assert mar["low_sample"] is False  # 0 + 3 >= 3
    apr = kpi_row(eng, period_start="2026-04-01", engineer="carol", ticket_type="maintenance")
    assert apr["induced_incidents"] == 1
    assert (apr["opened_count"], apr["maintenance_due"], apr["resolved_count"]) == (0, 0, 0)
    assert apr["low_sample"] is True
    # dave's own incident row does not carry the induced incident
    d = kpi_row(eng, period_start="2026-04-01", engineer="dave", ticket_type="incident")
    assert d["opened_count"] == 1 and d["induced_incidents"] == 0
    # carol has no incident rows; the team table credits team 'ops'
    assert kpi_rows(eng, engineer="carol", ticket_type="incident").empty
    assert kpi_row(team, period_start="2026-04-01", team="ops", ticket_type="maintenance")["induced_incidents"] == 1
    assert kpi_row(team, period_start="2026-04-01", team="desk", ticket_type="incident")["induced_incidents"] == 0


def test_no_row_without_one_of_the_five_counts():
    # A maintenance ticket opened and due in March, resolved (late) in April: in April its resolution time
    # exists but opened_count, resolved_count (maintenance is not counted), csat_answered, maintenance_due and
    # induced_incidents are all 0 -> no April row.
    m = {"ticket_type": "maintenance", "engineer": "carol", "priority": None}
    tix = tickets(I("M4", opened="2026-03-01T02:00Z", planned_end="2026-03-25T02:00Z", status="RESOLVED",
                    resolved_at="2026-04-03T02:00Z", **m))
    eng, team = run(tix, s=st(reporting={"grains": ["month"]}))
    assert list(eng["period_start"]) == [pd.Timestamp("2026-03-01")]
    assert list(team["period_start"]) == [pd.Timestamp("2026-03-01")]


def test_csat_counts_every_ticket_type():
    # a request answered 4 in March, a maintenance answered 3 in March -> separate rows, each 1 answered
    tix = tickets(I("R", ticket_type="request", satisfaction="4", satisfaction_at="2026-03-12T02:00Z"),
                  I("M", ticket_type="maintenance", satisfaction="3", satisfaction_at="2026-03-12T02:00Z"))
    eng, _ = run(tix, s=st(reporting={"grains": ["month"]}))
    r = kpi_row(eng, engineer="bob", ticket_type="request")
    m = kpi_row(eng, engineer="bob", ticket_type="maintenance")
    assert (r["csat_answered"], r["csat_satisfied"]) == (1, 1)
    assert (m["csat_answered"], m["csat_satisfied"]) == (1, 0)
    assert approx_eq(m["csat_rate"], 0.0)


def test_as_of_and_version_on_every_row():
    eng, team = run(_bobs_month(), as_of="2026-04-15T00:00Z")
    for t in (eng, team):
        assert (t["as_of"] == ts("2026-04-15T00:00Z")).all()
        assert t["kpi_version"].notna().all()


# ---------------------------------------------------------------- approved exemptions (counted, left out of rates)


def test_exempt_slas_are_counted_and_left_out_of_the_rates():
    # Nothing in kpis produces "exempt" yet (a later step applies approved exemptions to the facts), so the
    # facts are edited here as that step will: a response or resolution verdict becomes "exempt".
    # March, bob, 24x7, P1 (response 30 min, resolution 4 h):
    #   I1 response 10 min met, resolved after 60 min met
    #   I2 response 40 min (breached) -> exempt; resolved after 300 min (breached) -> exempt
    #   I3 response 50 min breached; open
    #   M1 maintenance resolved after 60 min (no policy for maintenance): its resolution verdict set to exempt
    tix = tickets(
        I("I1", first_response_at=minutes_after("2026-03-10T02:00Z", 10), status="RESOLVED",
          resolved_at=minutes_after("2026-03-10T02:00Z", 60)),
        I("I2", first_response_at=minutes_after("2026-03-10T02:00Z", 40), status="RESOLVED",
          resolved_at=minutes_after("2026-03-10T02:00Z", 300)),
        I("I3", first_response_at=minutes_after("2026-03-10T02:00Z", 50)),
        I("M1", ticket_type="maintenance", status="RESOLVED", resolved_at=minutes_after("2026-03-10T02:00Z", 60)),
    )
    s = st(reporting={"grains": ["month"]})
    facts = compute_facts(tix, make_events(), s, ts("2026-04-15T00:00Z"))
    facts.loc[facts["ticket_id"] == "I2", "response_sla"] = "exempt"
    facts.loc[facts["ticket_id"].isin(["I2", "M1"]), "resolution_sla"] = "exempt"
    eng = aggregate(facts, s, by="engineer")
    inc = kpi_row(eng, grain="month", period_start="2026-03-01", engineer="bob", ticket_type="incident")
    # response: I1 met, I3 breached, I2 exempt -> rate 1 / (1 + 1) = 0.5 (I2 is in neither)
    assert (inc["response_sla_met"], inc["response_sla_breached"], inc["response_sla_exempt"]) == (1, 1, 1)
    assert approx_eq(inc["response_sla_rate"], 0.5)
    # resolution: I1 met, I2 exempt -> rate 1 / 1
    assert (inc["resolution_sla_met"], inc["resolution_sla_breached"], inc["resolution_sla_exempt"]) == (1, 0, 1)
    assert approx_eq(inc["resolution_sla_rate"], 1.0)
    # the maintenance ticket is resolved but is neither an incident nor a request: not counted as exempt
    m = kpi_row(eng, grain="month", period_start="2026-03-01", engineer="bob", ticket_type="maintenance")
    assert (m["response_sla_exempt"], m["resolution_sla_exempt"]) == (0, 0)


def test_only_some_groups_gives_their_rows_and_every_group_the_whole_table():
    """``only`` (a night's touched groups): bob's March month alone gives exactly his two March rows (an
    incident opened and resolved in it, one opened in it); naming every group of the table gives the whole
    table (the path where every stacked row is selected)."""
    s = st()
    facts = compute_facts(tickets(I("A", status="RESOLVED", resolved_at="2026-03-10T03:00Z"), I("B", ticket_type="request"),
                                  I("C", engineer="ann", opened="2026-04-02T02:00Z")), make_events(), s,
                          ts("2026-04-15T00:00Z"))
    whole = aggregate(facts, s, by="engineer")
    march = pd.DataFrame({"grain": ["month"], "period_start": [pd.Timestamp("2026-03-01")], "engineer": ["bob"]})
    part = aggregate(facts, s, by="engineer", only=march)
    assert sorted(zip(part["ticket_type"], part["opened_count"], part["resolved_count"], strict=True)) == [
        ("incident", 1, 1), ("request", 1, 0)]
    assert set(part["grain"]) == {"month"} and set(part["engineer"]) == {"bob"}
    every = whole[["grain", "period_start", "engineer"]].drop_duplicates()
    pd.testing.assert_frame_equal(aggregate(facts, s, by="engineer", only=every), whole)
