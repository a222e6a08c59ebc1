"""Which tickets and engineers each alert kind lists (CONTRACT.md, Alerts), on hand-made facts."""

from __future__ import annotations

import pandas as pd

from pipeline.alerts.deliver import AlertData, messages, needs_roster
from pipeline.alerts.items import FACT_COLUMNS, below_target_items, breached_items, due_soon_items, for_rule
from pipeline.alerts.rules import AlertContext
from pipeline.settings import AlertSettings

AS_OF = pd.Timestamp("2026-09-10T08:00:00Z")


def _facts(*rows: dict) -> pd.DataFrame:
    base = {c: None for c in FACT_COLUMNS}
    frame = pd.DataFrame([{**base, "source": "hd", "status": "IN_PROGRESS", **r} for r in rows])
    for c in ("response_at", "resolved_at", "response_due_at", "resolution_due_at"):
        frame[c] = pd.to_datetime(frame[c], utc=True)
    return frame


def _posted(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame([{"alert": "desk", "kind": "breached", "source": "hd", "ticket_id": t, "metric": m}
                         for t, m in rows], columns=["alert", "kind", "source", "ticket_id", "metric"])


def test_breached_lists_each_breached_metric_not_posted_before() -> None:
    facts = _facts(
        {"ticket_id": "A", "engineer": "ann", "response_sla": "breached", "resolution_sla": "breached",
         "response_policy": "p1", "resolution_policy": "p1"},
        {"ticket_id": "B", "engineer": "bo", "response_sla": "met", "resolution_sla": "breached"},
        {"ticket_id": "C", "engineer": "cy", "response_sla": "exempt", "resolution_sla": "in_progress"},
    )
    # A's response breach was posted by an earlier run: only its resolution breach and B's are new
    found = breached_items(facts, _posted(("A", "response")))
    assert sorted((i["ticket_id"], i["metric"]) for i in found) == [("A", "resolution"), ("B", "resolution")]
    assert next(i for i in found if i["ticket_id"] == "A")["policy"] == "p1"


def test_due_soon_is_the_half_open_window_after_as_of() -> None:
    edge = AS_OF + pd.Timedelta(hours=4)
    facts = _facts(
        {"ticket_id": "at_as_of", "resolution_due_at": AS_OF},  # not after as_of: out
        {"ticket_id": "at_edge", "resolution_due_at": edge},  # exactly as_of + due_within: in
        {"ticket_id": "past_edge", "resolution_due_at": edge + pd.Timedelta(seconds=1)},  # out
        {"ticket_id": "answered", "response_due_at": edge, "response_at": AS_OF},  # its response is done: out
        {"ticket_id": "unanswered", "response_due_at": AS_OF + pd.Timedelta(hours=1)},  # in
        {"ticket_id": "done", "status": "RESOLVED", "resolution_due_at": edge},  # resolved: out
        {"ticket_id": "excluded", "excluded_reason": "exempt", "resolution_due_at": edge},  # out
        # an approved resolution exemption: the ticket is not excluded and its due time stays (KPIS.md 3): in (D128)
        {"ticket_id": "exempted", "resolution_due_at": edge, "resolution_sla": "exempt"},
    )
    found = due_soon_items(facts, AS_OF, 4 * 3600)
    assert [(i["ticket_id"], i["metric"]) for i in found] == [
        ("unanswered", "response"), ("at_edge", "resolution"), ("exempted", "resolution")]  # by due time, then id


def test_team_and_client_filters() -> None:
    facts = _facts({"ticket_id": "A", "team": "desk", "client": "ACME"}, {"ticket_id": "B", "team": "net", "client": "ACME"},
                   {"ticket_id": "C", "team": "desk", "client": None})
    rule = AlertSettings(name="x", url_env="X", team=("desk",), client=("ACME",))
    assert list(for_rule(facts, rule)["ticket_id"]) == ["A"]
    assert list(for_rule(facts, AlertSettings(name="x", url_env="X"))["ticket_id"]) == ["A", "B", "C"]


def test_below_target_leaves_out_low_samples_and_kpis_at_target() -> None:
    parts = pd.DataFrame({
        "engineer": ["ann", "ann", "bo", "cy"],
        "kpi": ["first_fix_rate", "induced_incidents", "first_fix_rate", "first_fix_rate"],
        "value": [0.7, 1.0, 0.9, 0.1], "target": [0.8, 0.0, 0.8, 0.8],
        "attainment": [0.875, 0.0, 1.125, 0.125],  # induced_incidents: 0 when above 0
        "higher_is_better": [True, False, True, True],
    })
    scorecard = pd.DataFrame({"engineer": ["ann", "bo", "cy"], "low_sample": [False, False, True]})
    found = below_target_items(parts, scorecard)
    assert [(i["engineer"], i["kpi"], i["higher_is_better"]) for i in found] == [
        ("ann", "first_fix_rate", True), ("ann", "induced_incidents", False)]


def test_a_team_alerts_below_target_lists_only_who_worked_its_teams_tickets() -> None:
    parts = pd.DataFrame({"engineer": ["ann", "bo"], "kpi": ["first_fix_rate"] * 2, "value": [0.7, 0.6],
                          "target": [0.8, 0.8], "attainment": [0.875, 0.75], "higher_is_better": [True, True]})
    scorecard = pd.DataFrame({"engineer": ["ann", "bo"], "low_sample": [False, False]})
    roster = pd.DataFrame({"engineer": ["ann", "bo", "bo"], "team": ["desk", "net", "net"],
                           "client": ["ACME", "ACME", "Globex"]})
    data = AlertData(facts=pd.DataFrame(columns=list(FACT_COLUMNS)), posted=_posted(), scorecard_kpi=parts, scorecard=scorecard, roster=roster)
    context = AlertContext(as_of_iso=AS_OF.isoformat())

    def engineers(**scope: tuple[str, ...]) -> list[str]:
        rule = AlertSettings(name="desk", url_env="X", on=("below_target",), **scope)
        (message,) = messages([rule], data, context, AS_OF)
        return [item["engineer"] for item in message.items]

    assert engineers() == ["ann", "bo"]  # no scope: everyone's scorecard
    assert engineers(team=("desk",)) == ["ann"]  # bo worked no desk ticket this month
    assert engineers(client=("Globex",)) == ["bo"]
    assert messages([AlertSettings(name="d", url_env="X", on=("below_target",), team=("hr",))],
                    data, context, AS_OF) == []  # nobody worked an hr ticket: no message


def test_only_a_scoped_below_target_needs_the_months_roster() -> None:
    plain = AlertSettings(name="a", url_env="X", on=("below_target",))
    scoped_breaches = AlertSettings(name="b", url_env="X", on=("breached",), team=("desk",))
    scoped_scores = AlertSettings(name="c", url_env="X", on=("below_target",), client=("ACME",))
    assert not needs_roster([plain, scoped_breaches])  # the stores are not read for it
    assert needs_roster([plain, scoped_scores])
