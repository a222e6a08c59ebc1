"""KPIS.md 4.1: kpi_breakdown, the kpi_engineer columns per client, service, category and priority.

Reporting timezone Asia/Shanghai, month grain, 24x7 default calendar; tickets opened 02:00Z = 10:00 Shanghai on
Tue 2026-03-10. Every expected number is worked out in the comment beside it.
"""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import approx_eq, ev, events, kpi_row, kpi_rows, settings, tickets, ts

from kpis import compute_all
from kpis.breakdown import breakdown, member_categories, members
from kpis.config import KpiSettings
from kpis.errors import ConfigError
from kpis.facts import compute_facts
from kpis.schema import KPI_BREAKDOWN_COLUMNS, KPI_BREAKDOWN_KEYS

OPEN = "2026-03-10T02:00Z"
AS_OF = ts("2026-04-15T00:00Z")
P1 = [{"ticket_type": "incident", "priority": "P1", "response": "30m", "resolution": "4h"}]


def at(minutes: float) -> str:
    return str(ts(OPEN) + pd.Timedelta(minutes=minutes))


def I(tid, client=None, service=None, category=None, priority="P1", **kw):  # noqa: E743
    return {"ticket_id": tid, "opened_at": OPEN, "status": kw.pop("status", "IN_PROGRESS"), "client": client,
            "service": service, "category": category, "priority": priority, "assignee": "bob", **kw}


def st(**reporting) -> KpiSettings:
    return settings(sla=P1, reporting={"timezone": "Asia/Shanghai", "grains": ["month"], **reporting})


def table(*rows, evs=None, s=None) -> pd.DataFrame:
    s = s or st()
    return breakdown(compute_facts(tickets(*rows), evs if evs is not None else events(), s, AS_OF), s)


def month(frame: pd.DataFrame, dimension: str, member: str, ticket_type: str = "incident") -> dict:
    return kpi_row(frame, grain="month", period_start="2026-03-01", dimension=dimension, member=member,
                   ticket_type=ticket_type)


def test_columns_and_default_dimensions():
    frame = table(I("A", client="ACME", service="ERP", category="net"))
    assert list(frame.columns) == list(KPI_BREAKDOWN_COLUMNS)
    # one ticket -> one row per default dimension
    assert sorted(zip(frame["dimension"], frame["member"], strict=True)) == [
        ("category", "net"), ("client", "ACME"), ("priority", "P1"), ("service", "ERP")]


def test_rows_per_member_with_none_for_empty_values():
    # ACME: A1 (response 10 min met, resolved after 60 min met), A2 (response 40 min breached, open);
    # Globex: G1 (response 20 min met); no client: N1 (response 50 min breached)
    frame = table(
        I("A1", client="ACME", first_response_at=at(10), status="RESOLVED", resolved_at=at(60)),
        I("A2", client="ACME", first_response_at=at(40)),
        I("G1", client="Globex", first_response_at=at(20)),
        I("N1", client=None, first_response_at=at(50)),
    )
    acme = month(frame, "client", "ACME")
    assert (acme["opened_count"], acme["response_sla_met"], acme["response_sla_breached"]) == (2, 1, 1)
    assert approx_eq(acme["response_sla_rate"], 0.5)
    assert (acme["resolved_count"], acme["resolution_sla_met"]) == (1, 1)
    assert approx_eq(acme["response_mean_min"], 25.0)  # (10 + 40) / 2
    globex = month(frame, "client", "Globex")
    assert (globex["opened_count"], globex["response_sla_rate"]) == (1, 1.0)
    none = month(frame, "client", "(none)")
    assert (none["opened_count"], none["response_sla_breached"]) == (1, 1)
    # service and category are empty on every ticket: one "(none)" row with all four
    assert month(frame, "service", "(none)")["opened_count"] == 4
    assert month(frame, "category", "(none)")["opened_count"] == 4
    assert month(frame, "priority", "P1")["opened_count"] == 4


def test_blank_empty_missing_and_a_literal_none_are_one_member():
    # clients "  ", "", missing and the text "(none)": one "(none)" row of 4 tickets, not four rows; ACME apart
    frame = table(I("B", client="  "), I("E", client=""), I("M", client=None), I("L", client="(none)"),
                  I("A", client="ACME"))
    clients = kpi_rows(frame, dimension="client")
    assert sorted(clients["member"]) == ["(none)", "ACME"]
    assert month(frame, "client", "(none)")["opened_count"] == 4
    assert month(frame, "client", "ACME")["opened_count"] == 1


def test_members_are_the_values_with_none_for_empty_ones_and_one_category_each():
    values = pd.Series([" x ", " ", "", None, "(none)", "b", " x "], dtype="str", name="client", index=range(3, 10))
    named = members(values)
    assert named.tolist() == [" x ", "(none)", "(none)", "(none)", "(none)", "b", " x "]  # a value is kept as is
    assert (named.name, list(named.index), str(named.dtype)) == ("client", list(range(3, 10)), "str")
    coded = member_categories(values)
    assert sorted(coded.cat.categories) == [" x ", "(none)", "b"]  # each member once (" " sorts before "(")
    assert coded.astype("str").tolist() == named.tolist()


def test_category_is_the_final_one_and_priority_the_current_one():
    # column category hw, category events net then db -> member db; priority column P3, event P1 -> member P1
    evs = events(ev("T1", "2026-03-10T02:00Z", "category", "net"), ev("T1", "2026-03-10T03:00Z", "category", "db"),
                 ev("T1", "2026-03-10T03:00Z", "priority", "P1"))
    frame = table(I("T1", category="hw", priority="P3"), evs=evs)
    assert set(kpi_rows(frame, dimension="category")["member"]) == {"db"}
    assert set(kpi_rows(frame, dimension="priority")["member"]) == {"P1"}


def test_induced_incidents_are_credited_to_the_maintenance_tickets_member():
    # maintenance M1 for ACME/ERP caused incident I1 of Globex/CRM: the induced incident counts in ACME's and
    # ERP's maintenance rows (like the maintenance ticket's engineer in kpi_engineer), not in Globex's
    frame = table(I("M1", client="ACME", service="ERP", ticket_type="maintenance", priority=None),
                  I("I1", client="Globex", service="CRM", caused_by="M1"))
    assert month(frame, "client", "ACME", "maintenance")["induced_incidents"] == 1
    assert month(frame, "service", "ERP", "maintenance")["induced_incidents"] == 1
    globex = month(frame, "client", "Globex")
    assert (globex["opened_count"], globex["induced_incidents"]) == (1, 0)
    # the maintenance ticket has no priority: its priority member is "(none)", which gets the credit
    assert month(frame, "priority", "(none)", "maintenance")["induced_incidents"] == 1


def test_configured_dimensions_only():
    frame = table(I("A", client="ACME", service="ERP"), s=st(breakdowns=["service", "source"]))
    assert sorted(set(frame["dimension"])) == ["service", "source"]
    assert month(frame, "source", "helpdesk")["opened_count"] == 1
    empty = table(I("A"), s=st(breakdowns=[]))
    assert len(empty) == 0 and list(empty.columns) == list(KPI_BREAKDOWN_COLUMNS)


@pytest.mark.parametrize("breakdowns, words", [(["client", "team"], "'team'"), (["client", "client"], "twice")])
def test_unknown_or_repeated_dimensions_are_config_errors(breakdowns, words):
    with pytest.raises(ConfigError) as error:
        st(breakdowns=breakdowns)
    assert "reporting.breakdowns" in str(error.value) and words in str(error.value)


def test_only_some_groups_gives_their_rows_of_the_whole_table():
    s = settings(sla=P1, reporting={"timezone": "Asia/Shanghai"})
    facts = compute_facts(tickets(I("A1", client="ACME", first_response_at=at(10)), I("G1", client="Globex"),
                                  I("N1", service="ERP")), events(), s, AS_OF)
    whole = breakdown(facts, s)
    only = pd.DataFrame({"grain": ["month", "week"],
                         "period_start": pd.to_datetime(["2026-03-01", "2026-03-09"]).astype("datetime64[s]"),
                         "dimension": ["client", "service"], "member": ["ACME", "ERP"]})
    part = breakdown(facts, s, only=only)
    keys = list(KPI_BREAKDOWN_KEYS)
    assert sorted(zip(part["grain"], part["dimension"], part["member"], strict=True)) == [
        ("month", "client", "ACME"), ("week", "service", "ERP")]
    expected = whole.merge(only, on=["grain", "period_start", "dimension", "member"])[whole.columns]
    pd.testing.assert_frame_equal(part.sort_values(keys, ignore_index=True),
                                  expected.sort_values(keys, ignore_index=True), check_exact=True)


def test_kpi_tables_include_the_breakdown():
    s = st()
    tables = compute_all(tickets(I("A", client="ACME")), events(), s, AS_OF)
    assert month(tables.kpi_breakdown, "client", "ACME")["opened_count"] == 1
