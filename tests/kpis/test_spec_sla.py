"""KPIS.md 3, SLA policy: named policies with conditions, first match wins; the policy's names in ticket_facts.

The default calendar is 24x7 and timestamps are UTC unless a test says otherwise; 2026-03-02 is a Monday.
Every expected number is worked out in the comment beside it.
"""

from __future__ import annotations

from helpers import SRC, ev, events, row, settings, tickets, ts

from kpis.facts import compute_facts

AS_OF = ts("2026-03-31T00:00Z")


def T(ticket_id="T1", opened_at="2026-03-02T10:00Z", status="IN_PROGRESS", **kw) -> dict:
    return {"ticket_id": ticket_id, "opened_at": opened_at, "status": status, "priority": "P2", **kw}


def facts(*rows: dict, sla: list[dict], evs=None, as_of=AS_OF, **cfg):
    return compute_facts(tickets(*rows), evs if evs is not None else events(), settings(sla=sla, **cfg), as_of)


def policies(f, ticket_id: str) -> tuple:
    r = row(f, ticket_id)
    return r["response_policy"], r["resolution_policy"], r["response_target_s"], r["resolution_target_s"]


# ---------------------------------------------------------------- matching


def test_first_match_in_config_order_wins():
    sla = [
        {"name": "acme-core", "client": "ACME", "service": "ERP", "response": "15m", "resolution": "2h"},
        {"name": "acme", "client": "ACME", "response": "30m", "resolution": "4h"},
        {"name": "any", "response": "1h", "resolution": "8h"},
    ]
    f = facts(T("A", client="ACME", service="ERP"),  # all three match: the first, acme-core (900 / 7200)
              T("B", client="ACME", service="Mail"),  # acme and any match: acme (1800 / 14400)
              T("C", client="Globex", service="ERP"),  # only any (3600 / 28800)
              sla=sla)
    assert policies(f, "A") == ("acme-core", "acme-core", 900, 7200)
    assert policies(f, "B") == ("acme", "acme", 1800, 14400)
    assert policies(f, "C") == ("any", "any", 3600, 28800)


def test_a_later_broader_policy_does_not_shadow_an_earlier_narrow_one():
    # reversed order: "any" first matches everything, so the client policy never applies
    sla = [{"name": "any", "response": "1h"}, {"name": "acme", "client": "ACME", "response": "15m"}]
    f = facts(T("A", client="ACME"), sla=sla)
    assert policies(f, "A") == ("any", "any", 3600, None)


def test_list_conditions_match_any_of_their_values():
    sla = [{"name": "core", "service": ["ERP", "MES"], "priority": ["P1", "P2"], "response": "15m"},
           {"name": "rest", "response": "2h"}]
    f = facts(T("ERP1", service="ERP", priority="P1"),  # ERP in list, P1 in list -> core
              T("MES2", service="MES", priority="P2"),  # -> core
              T("MES3", service="MES", priority="P3"),  # P3 not listed -> rest
              T("CRM1", service="CRM", priority="P1"),  # CRM not listed -> rest
              sla=sla)
    assert [row(f, t)["response_policy"] for t in ("ERP1", "MES2", "MES3", "CRM1")] == ["core", "core", "rest", "rest"]


def test_an_empty_value_matches_only_policies_that_omit_the_condition():
    # KPIS.md 3: "an omitted condition matches every ticket, also one whose value is empty"; a named one needs
    # the ticket's value to equal one of its values, which an empty value never does. Empty text is null (1.1).
    sla = [{"name": "acme", "client": "ACME", "response": "15m"},
           {"name": "no-client-named", "ticket_type": "incident", "response": "1h"}]
    f = facts(T("NULL", client=None), T("BLANK", client="  "), T("ACME", client="ACME"),
              T("REQ", client=None, ticket_type="request"), sla=sla)
    assert row(f, "NULL")["response_policy"] == "no-client-named"
    assert row(f, "BLANK")["response_policy"] == "no-client-named" and row(f, "BLANK")["client"] is None
    assert row(f, "ACME")["response_policy"] == "acme"
    # a request without a client: acme names a client, the second names incidents -> no policy, all SLA nulls
    r = row(f, "REQ")
    assert (r["response_policy"], r["response_target_s"], r["response_sla"]) == (None, None, None)


def test_category_is_the_final_category_and_team_the_credited_team():
    # category column "hw", category events net (10:00) then db (11:00): final category db.
    # team: group events desk (10:00) then net (12:00); resolved 11:30 -> credited team desk (the net event is
    # after the resolution), although the ticket's current group is net.
    sla = [{"name": "db", "category": "db", "team": "desk", "response": "10m", "resolution": "1h"},
           {"name": "other", "response": "2h", "resolution": "8h"}]
    evs = events(ev("T1", "2026-03-02T10:00Z", "category", "net"), ev("T1", "2026-03-02T11:00Z", "category", "db"),
                 ev("T1", "2026-03-02T10:00Z", "group", "desk"), ev("T1", "2026-03-02T12:00Z", "group", "net"),
                 ev("T1", "2026-03-02T10:00Z", "status", "IN_PROGRESS"),
                 ev("T1", "2026-03-02T11:30Z", "status", "RESOLVED"))
    f = facts(T("T1", category="hw", assignment_group="net", status="RESOLVED"), sla=sla, evs=evs)
    r = row(f, "T1")
    assert (r["category"], r["team"]) == ("db", "desk")
    # the response (the first resolution, 11:30) and the resolution both get the db policy: 90 min > 1 h
    assert (r["response_policy"], r["resolution_policy"], r["resolution_sla"]) == ("db", "db", "breached")


def test_source_condition():
    sla = [{"name": "desk", "source": "desk-csv", "response": "10m"}, {"name": "rest", "response": "1h"}]
    f = facts(T("T1", source="desk-csv"), T("T1"), sla=sla)
    assert row(f, "T1", source="desk-csv")["response_policy"] == "desk"
    assert row(f, "T1", source=SRC)["response_policy"] == "rest"


def test_each_metric_picks_its_own_policy_by_the_priority_at_its_stop():
    # priority P3 at 10:00, P1 at 11:00; response 10:30 (P3), resolved 12:00 (P1): two different policies
    sla = [{"name": "p1", "priority": "P1", "response": "15m", "resolution": "4h"},
           {"name": "p3", "priority": "P3", "response": "1h", "resolution": "1d"}]
    evs = events(ev("T1", "2026-03-02T10:00Z", "priority", "P3"), ev("T1", "2026-03-02T11:00Z", "priority", "P1"),
                 ev("T1", "2026-03-02T10:30Z", "response"),
                 ev("T1", "2026-03-02T10:00Z", "status", "IN_PROGRESS"),
                 ev("T1", "2026-03-02T12:00Z", "status", "RESOLVED"))
    f = facts(T("T1"), sla=sla, evs=evs)
    assert policies(f, "T1") == ("p3", "p1", 3600, 14400)


def test_v1_policies_keep_their_v1_meaning():
    # a v1 config: every policy names ticket_type and priority, "*" for any. Same targets as v1 read them.
    sla = [{"ticket_type": "incident", "priority": "P1", "response": "30m", "resolution": "4h"},
           {"ticket_type": "incident", "priority": "*", "response": "2h", "resolution": "1d"},
           {"ticket_type": "*", "priority": "P1", "response": "15m", "resolution": "2h"}]
    f = facts(T("I1", priority="P1"), T("I4", priority="P4"), T("R1", ticket_type="request", priority="P1"),
              T("R2", ticket_type="request", priority="P2"), sla=sla)
    assert policies(f, "I1") == ("sla_1", "sla_1", 1800, 14400)
    assert policies(f, "I4") == ("sla_2", "sla_2", 7200, 86400)
    assert policies(f, "R1") == ("sla_3", "sla_3", 900, 7200)
    assert policies(f, "R2") == (None, None, None, None)


def test_policy_calendar_is_used_for_that_metric():
    # default calendar office (Shanghai, 09:00-12:00, 13:30-18:00); the P1 policy runs on 24x7.
    # Opened Mon 11:00 Shanghai (03:00Z), answered 14:00 (06:00Z): 3 h on 24x7, 1.5 h on office.
    sla = [{"name": "p1", "priority": "P1", "response": "2h", "calendar": "24x7"},
           {"name": "p2", "priority": "P2", "response": "2h"}]
    f = facts(T("A", priority="P1", opened_at="2026-03-02T03:00Z", first_response_at="2026-03-02T06:00Z"),
              T("B", priority="P2", opened_at="2026-03-02T03:00Z", first_response_at="2026-03-02T06:00Z"),
              sla=sla, kpi={"default_calendar": "office"})
    assert (row(f, "A")["response_business_s"], row(f, "A")["response_sla"]) == (10800, "breached")  # > 7200
    assert (row(f, "B")["response_business_s"], row(f, "B")["response_sla"]) == (5400, "met")  # <= 7200


def test_client_and_service_are_carried():
    f = facts(T("T1", client=" ACME ", service="ERP"), T("T2"), sla=[])
    assert (row(f, "T1")["client"], row(f, "T1")["service"]) == ("ACME", "ERP")
    assert (row(f, "T2")["client"], row(f, "T2")["service"]) == (None, None)
