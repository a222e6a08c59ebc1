"""KPIS.md 5: the scorecard, on a small hand-made month (March 2026, reporting timezone Asia/Shanghai).

Configured KPIs (targets and weights):
  response_sla_rate      target 0.9   weight 0.3   higher is better
  resolution_median_min  target 60    weight 0.2   lower is better
  first_fix_rate         target 0.8   weight 0.3   higher is better
  induced_incidents      target 0     weight 0.2   1 at 0, else 0
Values are per engineer over all ticket types of the period together.
"""

from __future__ import annotations

import pandas as pd
from helpers import approx_eq, events, kpi_row, settings, tickets, ts

from kpis import kpi_tables
from kpis.facts import compute_facts
from kpis.schema import SCORECARD_COLUMNS, SCORECARD_KPI_COLUMNS
from kpis.scorecard import compute_scorecard

SH = "Asia/Shanghai"
OPEN = "2026-03-10T02:00Z"  # 10:00 Shanghai
AS_OF = ts("2026-04-15T00:00Z")
SCORECARD = [
    {"kpi": "response_sla_rate", "target": 0.9, "weight": 0.3},
    {"kpi": "resolution_median_min", "target": 60, "weight": 0.2},
    {"kpi": "first_fix_rate", "target": 0.8, "weight": 0.3},
    {"kpi": "induced_incidents", "target": 0, "weight": 0.2},
]
P1 = [{"ticket_type": "incident", "priority": "P1", "response": "30m", "resolution": "4h"}]


def at(minutes: float) -> str:
    return str(ts(OPEN) + pd.Timedelta(minutes=minutes))


def inc(tid, engineer, response=None, resolution=None, ticket_type="incident", priority="P1", **kw):
    return {"ticket_id": tid, "ticket_type": ticket_type, "priority": priority, "assignee": engineer,
            "assignment_group": "desk", "opened_at": OPEN,
            "status": "RESOLVED" if resolution is not None else "IN_PROGRESS",
            "first_response_at": None if response is None else at(response),
            "resolved_at": None if resolution is None else at(resolution), **kw}


def month() -> pd.DataFrame:
    return tickets(
        # bob: incidents B1 (resp 10 met, 60 min, first fix), B2 (resp 20 met, 30 min, first fix),
        # B3 (resp 40 breached, 120 min, reopened); request B4 (no SLA policy, 15 min, first fix)
        inc("B1", "bob", 10, 60), inc("B2", "bob", 20, 30), inc("B3", "bob", 40, 120, reopen_count=1),
        inc("B4", "bob", 5, 15, ticket_type="request", priority=None),
        # amy: three incidents, responses 5, 10, 15 (met), resolutions 60, 90, 120, all first fix
        inc("A1", "amy", 5, 60), inc("A2", "amy", 10, 90), inc("A3", "amy", 15, 120),
        # fay: one perfect incident (low sample)
        inc("F1", "fay", 5, 10),
        # carl: one maintenance, open, due only after as_of; dave's incident D1 (no response, unresolved)
        # was caused by it
        inc("M1", "carl", ticket_type="maintenance", priority=None, planned_end="2026-04-20T02:00Z"),
        inc("D1", "dave", caused_by="M1"),
    )


def score_month(tix=None, **cfg):
    cfg.setdefault("scorecard", SCORECARD)
    cfg.setdefault("sla", P1)
    cfg.setdefault("reporting", {"timezone": SH, "grains": ["month"], "min_sample": 3})
    s = settings(**cfg)
    facts = compute_facts(tix if tix is not None else month(), events(), s, AS_OF)
    return compute_scorecard(facts, s)


def test_columns():
    score, parts = score_month()
    assert list(score.columns) == list(SCORECARD_COLUMNS)
    assert list(parts.columns) == list(SCORECARD_KPI_COLUMNS)


def test_bob_over_all_ticket_types():
    # response_sla_rate = met 2 / (met 2 + breached 1) = 2/3 (the request has no policy)
    #   -> min(1, (2/3) / 0.9) = 20/27 = 0.740741
    # resolution_median_min over 15, 30, 60, 120 = (30 + 60) / 2 = 45 (not the incidents' 60, nor the
    #   mean of per-type medians 37.5) -> lower is better: min(1, 60 / 45) = 1
    # first_fix_rate = 3 (B1, B2, B4) / 4 resolved = 0.75 -> 0.75 / 0.8 = 0.9375
    # induced_incidents = 0 -> 1
    # score = 100 x (0.3 x 20/27 + 0.2 x 1 + 0.3 x 0.9375 + 0.2 x 1) / 1.0 = 90.347222...
    score, parts = score_month()
    b = kpi_row(score, engineer="bob", period_start="2026-03-01", grain="month")
    assert approx_eq(b["score"], 100 * (0.3 * 20 / 27 + 0.2 + 0.3 * 0.9375 + 0.2))
    assert b["kpis_scored"] == 4
    assert approx_eq(b["weight_scored"], 1.0)
    assert b["low_sample"] is False  # resolved 4 + due 0 >= 3

    p = {r["kpi"]: r for r in parts[parts.engineer == "bob"].to_dict("records")}
    assert approx_eq(p["response_sla_rate"]["value"], 2 / 3)
    assert approx_eq(p["response_sla_rate"]["attainment"], (2 / 3) / 0.9)
    assert approx_eq(p["response_sla_rate"]["score"], 20 / 27)
    assert bool(p["response_sla_rate"]["higher_is_better"]) is True
    assert approx_eq(p["resolution_median_min"]["value"], 45.0)
    assert bool(p["resolution_median_min"]["higher_is_better"]) is False
    assert approx_eq(p["resolution_median_min"]["attainment"], 60 / 45)
    assert approx_eq(p["resolution_median_min"]["score"], 1.0)
    assert approx_eq(p["first_fix_rate"]["value"], 0.75)
    assert approx_eq(p["first_fix_rate"]["score"], 0.9375)
    assert approx_eq(p["induced_incidents"]["value"], 0.0)
    assert approx_eq(p["induced_incidents"]["score"], 1.0)
    assert approx_eq(p["first_fix_rate"]["target"], 0.8) and approx_eq(p["first_fix_rate"]["weight"], 0.3)


def test_amy_capped_at_one_per_kpi():
    # response 3/3 = 1 -> min(1, 1/0.9) = 1; median of 60, 90, 120 = 90 -> 60/90 = 2/3;
    # first fix 3/3 -> min(1, 1/0.8) = 1; induced 0 -> 1
    # score = 100 x (0.3 + 0.2 x 2/3 + 0.3 + 0.2) = 93.333...
    score, _ = score_month()
    a = kpi_row(score, engineer="amy")
    assert approx_eq(a["score"], 100 * (0.3 + 0.2 * 2 / 3 + 0.3 + 0.2))


def test_only_kpis_with_a_value_are_averaged():
    # dave: response_sla_rate 0 / 1 = 0 -> 0; no resolution, no resolved tickets -> median and first fix
    # have no value; induced 0 -> 1. Score = 100 x (0.3 x 0 + 0.2 x 1) / (0.3 + 0.2) = 40
    score, _ = score_month()
    d = kpi_row(score, engineer="dave")
    assert approx_eq(d["score"], 40.0)
    assert d["kpis_scored"] == 2
    assert approx_eq(d["weight_scored"], 0.5)


def test_induced_incident_scores_zero():
    # carl: only maintenance (no response policy, unresolved): the one KPI with a value is induced_incidents
    # = 1 (dave's D1, opened in March) -> score 0 -> 100 x 0 / 0.2 = 0
    score, parts = score_month()
    c = kpi_row(score, engineer="carl")
    assert approx_eq(c["score"], 0.0)
    assert c["kpis_scored"] == 1
    assert approx_eq(c["weight_scored"], 0.2)
    ind = kpi_row(parts, engineer="carl", kpi="induced_incidents")
    assert approx_eq(ind["value"], 1.0) and approx_eq(ind["score"], 0.0)


def test_low_sample_rows_are_reported_but_not_ranked():
    # min_sample 3: amy (3 resolved) and bob (4) are ranked; fay (1), carl (0), dave (0) are low sample.
    # fay scores 100 (response 1/1, median 10 <= 60, first fix 1/1, induced 0) but is not ranked, so amy
    # (93.3) is rank 1 and bob (90.3) rank 2.
    score, _ = score_month()
    f = kpi_row(score, engineer="fay")
    assert approx_eq(f["score"], 100.0)
    assert f["low_sample"] is True and f["rank"] is None
    for e in ("carl", "dave"):
        r = kpi_row(score, engineer=e)
        assert r["low_sample"] is True and r["rank"] is None, e
    assert kpi_row(score, engineer="amy")["rank"] == 1
    assert kpi_row(score, engineer="bob")["rank"] == 2
    assert set(score["engineer"]) == {"amy", "bob", "carl", "dave", "fay"}


def test_lower_is_better_value_zero_scores_one():
    # eve: two incidents resolved at the instant they were opened -> resolution_mean_min = 0 -> score 1
    tix = tickets(inc("E1", "eve", 0, 0), inc("E2", "eve", 0, 0))
    score, parts = score_month(tix, scorecard=[{"kpi": "resolution_mean_min", "target": 30, "weight": 1}])
    e = kpi_row(score, engineer="eve")
    assert approx_eq(kpi_row(parts, engineer="eve", kpi="resolution_mean_min")["value"], 0.0)
    assert approx_eq(kpi_row(parts, engineer="eve", kpi="resolution_mean_min")["score"], 1.0)
    assert approx_eq(e["score"], 100.0)


def test_higher_is_better_value_zero_scores_zero_and_lower_is_better_above_target():
    # gus: one incident resolved after 120 min, reopened -> first_fix_rate 0 -> 0;
    # resolution_mean_min 120 vs target 60 -> 60/120 = 0.5. Weights 1 and 3:
    # score = 100 x (1 x 0 + 3 x 0.5) / 4 = 37.5
    tix = tickets(inc("G1", "gus", 5, 120, reopen_count=2))
    score, _ = score_month(tix, scorecard=[{"kpi": "first_fix_rate", "target": 0.8, "weight": 1},
                                           {"kpi": "resolution_mean_min", "target": 60, "weight": 3}])
    assert approx_eq(kpi_row(score, engineer="gus")["score"], 37.5)


def test_ties_share_a_rank():
    # hal and ivy both score 100 with 3 resolved each -> both rank 1; jon scores less -> ranked after them
    tix = tickets(*[inc(f"H{i}", "hal", 5, 10) for i in range(3)], *[inc(f"I{i}", "ivy", 5, 10) for i in range(3)],
                  *[inc(f"J{i}", "jon", 5, 10, reopen_count=1 if i == 0 else None) for i in range(3)])
    score, _ = score_month(tix)
    assert kpi_row(score, engineer="hal")["rank"] == 1
    assert kpi_row(score, engineer="ivy")["rank"] == 1
    # jon: first fix 2/3 -> (2/3)/0.8 = 0.8333 -> score 100 x (0.3 + 0.2 + 0.3 x 0.8333 + 0.2) = 95
    j = kpi_row(score, engineer="jon")
    assert approx_eq(j["score"], 95.0)
    # The spec does not say how ties rank; DECISIONS.md D11 chose the 'min' method (1, 1, 3)
    assert j["rank"] == 3


def test_unassigned_is_reported_but_not_ranked():
    # DECISIONS.md D11: the 'unassigned' pseudo-engineer is not a person to rank (the spec only names
    # low_sample). Three resolved incidents without an assignee score 100 (same as hal above) and are not
    # low sample, yet get no rank; kit (95, see jon) is rank 1.
    tix = tickets(*[inc(f"U{i}", None, 5, 10) for i in range(3)],
                  *[inc(f"K{i}", "kit", 5, 10, reopen_count=1 if i == 0 else None) for i in range(3)])
    score, _ = score_month(tix)
    u = kpi_row(score, engineer="unassigned")
    assert approx_eq(u["score"], 100.0) and u["low_sample"] is False and u["rank"] is None
    assert kpi_row(score, engineer="kit")["rank"] == 1


def test_period_without_any_resolution_scores_the_kpis_that_have_a_value():
    # kim: one P1 incident answered after 10 min (met), not resolved. response_sla_rate = 1/1 -> 1;
    # resolution_median_min has no value (nothing resolved) -> left out. Score = 100 x (0.3 x 1) / 0.3 = 100.
    tix = tickets(inc("K1", "kim", 10, None))
    score, parts = score_month(tix, scorecard=[{"kpi": "response_sla_rate", "target": 0.9, "weight": 0.3},
                                               {"kpi": "resolution_median_min", "target": 60, "weight": 0.2}])
    k = kpi_row(score, engineer="kim")
    assert approx_eq(k["score"], 100.0)
    assert k["kpis_scored"] == 1 and approx_eq(k["weight_scored"], 0.3)
    assert k["low_sample"] is True and k["rank"] is None


def test_a_resolution_verdict_kpi_engineer_leaves_out_still_counts_in_the_scorecard():
    """KPIS.md 4 keeps a (period, engineer, ticket type) row only with an opening, a resolved incident or
    request, a CSAT answer, a maintenance due or an induced incident: bob's maintenance M1, opened on 03-02
    and resolved on 03-10 (Shanghai) past its 1h target, has no 03-10 row. The scorecard is over all of his
    ticket types from the facts (D10): on 03-10 his incident I1 opened (response met) and M1's resolution
    breached. Summed from the table's rows, M1 was lost and the value depended on which KPIs were scored."""
    tix = tickets(inc("I1", "bob", response=10),
                  inc("M1", "bob", ticket_type="maintenance", priority="P1", opened_at="2026-03-02T02:00Z",
                      first_response_at="2026-03-02T02:10Z", resolved_at=at(120), status="RESOLVED"))
    s = settings(scorecard=[{"kpi": "resolution_sla_rate", "target": 0.9, "weight": 1}],
                 sla=[{"ticket_type": "maintenance", "resolution": "1h"}],
                 reporting={"timezone": SH, "grains": ["day"], "min_sample": 1})
    tables = kpi_tables(compute_facts(tix, events(), s, AS_OF), s)
    assert ("2026-03-10", "maintenance") not in {(str(p)[:10], t) for p, t in
                                                 zip(tables.kpi_engineer["period_start"],
                                                     tables.kpi_engineer["ticket_type"], strict=True)}
    part = tables.scorecard_kpi.set_index(["period_start", "kpi"]).loc[(pd.Timestamp("2026-03-10"),
                                                                        "resolution_sla_rate")]
    assert (part["value"], part["score"]) == (0.0, 0.0)  # met 0 / (met 0 + breached 1)
    assert tables.scorecard_kpi.equals(compute_scorecard(compute_facts(tix, events(), s, AS_OF), s)[1])
