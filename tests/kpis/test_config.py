"""The ``[[sla]]`` policies of CONTRACT.md (names, conditions, calendar, pause statuses) as the engine gets them."""

from __future__ import annotations

import pytest
from helpers import config

from kpis.config import SLA_CONDITIONS, SlaPolicy
from kpis.errors import ConfigError
from pipeline.config import kpi_settings_from_mapping


def parse(*policies: dict, **sections) -> tuple[SlaPolicy, ...]:
    return kpi_settings_from_mapping(config(sla=list(policies), **sections)).sla


def test_the_contract_example_policy():
    (core, standard) = parse(
        {"name": "acme-core-P1", "client": "ACME", "service": ["ERP", "MES"], "ticket_type": "incident",
         "priority": ["P1", "P2"], "response": "15m", "resolution": "2h", "calendar": "24x7",
         "pause_statuses": ["WAITING_THIRD_PARTY"]},
        {"name": "standard-incident-P1", "ticket_type": "incident", "priority": "P1", "response": "30m",
         "resolution": "4h"},
    )
    assert core == SlaPolicy(
        name="acme-core-P1",
        conditions={"ticket_type": ("incident",), "priority": ("P1", "P2"), "client": ("ACME",),
                    "service": ("ERP", "MES")},
        response_s=900, resolution_s=7200, calendar="24x7", pause_statuses=("WAITING_THIRD_PARTY",))
    # no calendar, no pause statuses: the default calendar and [kpi].pause_statuses apply (None here)
    assert standard == SlaPolicy(name="standard-incident-P1",
                                 conditions={"ticket_type": ("incident",), "priority": ("P1",)},
                                 response_s=1800, resolution_s=14400)


def test_every_condition_is_read_and_exported():
    assert SLA_CONDITIONS == ("ticket_type", "priority", "client", "service", "category", "team", "source")
    (p,) = parse({"ticket_type": "request", "priority": "P3", "client": "c", "service": "s", "category": "net",
                  "team": ["desk", "net"], "source": "helpdesk", "response": "1h"})
    assert dict(p.conditions) == {"ticket_type": ("request",), "priority": ("P3",), "client": ("c",),
                                  "service": ("s",), "category": ("net",), "team": ("desk", "net"),
                                  "source": ("helpdesk",)}
    assert (p.response_s, p.resolution_s) == (3600, None)


def test_names_default_to_their_1_based_position():
    names = [p.name for p in parse({"priority": "P1"}, {"name": "vip", "client": "A"}, {"priority": "P2"})]
    assert names == ["sla_1", "vip", "sla_3"]


def test_star_and_omitted_conditions_match_anything():
    # v1 configs wrote "*" for any value: it is read as if the condition were omitted (DECISIONS.md D12)
    (star, omitted) = parse({"ticket_type": "*", "priority": "*", "client": ["ACME", "*"], "response": "1h"},
                            {"response": "1h"})
    assert dict(star.conditions) == {} and dict(omitted.conditions) == {}


@pytest.mark.parametrize("policies, key, words", [
    # a named policy is named in the key path, as a source is: sla['vip'].clinet
    ([{"name": "vip", "clinet": "ACME"}], "sla['vip'].clinet", "client"),
    ([{"name": "a"}, {"name": "b"}, {"name": "a"}], "sla['a'].name", "sla[0]"),
    ([{"response": "1h"}, {"name": "sla_1"}], "sla['sla_1'].name", "sla[0]"),  # the default name counts too
    ([{"name": "vip", "calendar": "night"}], "sla['vip'].calendar", "night"),
    ([{"name": "vip", "priority": "P9"}], "sla['vip'].priority", "P9"),
    ([{"name": "vip", "ticket_type": ["incident", "problem"]}], "sla['vip'].ticket_type", "problem"),
    ([{"name": "vip", "client": []}], "sla['vip'].client", ""),
    ([{"name": "vip", "client": 42}], "sla['vip'].client", "42"),
    ([{"name": "vip", "pause_statuses": ["WAITING"]}], "sla['vip'].pause_statuses", "WAITING"),
    ([{"name": ""}], "sla[0].name", ""),
])
def test_config_errors_name_the_policy_and_the_key(policies, key, words):
    with pytest.raises(ConfigError) as error:
        parse(*policies)
    assert key in str(error.value)
    assert words in str(error.value)


def test_pause_statuses_may_be_empty():
    (p,) = parse({"priority": "P1", "pause_statuses": []})
    assert p.pause_statuses == ()
