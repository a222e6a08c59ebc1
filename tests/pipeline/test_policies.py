"""Each ticket's resolution-policy calendar and pause statuses (KPIS.md 3, 3.1, 4.2)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.config import kpi_settings_from_mapping
from pipeline.policies import resolution_calendars, resolution_pauses, ticket_policies

OFFICE = {"timezone": "UTC", "hours": {"mon": ["09:00-18:00"]}}
SETTINGS = kpi_settings_from_mapping({
    "kpi": {"default_calendar": "office", "pause_statuses": ["WAITING_CUSTOMER"]},
    "calendars": {"office": OFFICE},
    "sla": [
        # own calendar and pauses
        {"name": "p1", "priority": "P1", "resolution": "4h", "calendar": "24x7", "pause_statuses": ["WAITING_THIRD_PARTY"]},
        # neither named: the default calendar and [kpi].pause_statuses
        {"name": "std", "resolution": "1d"},
    ],
})


def test_a_ticket_takes_its_policys_calendar_and_pauses_else_the_defaults() -> None:
    policy = pd.Series(["p1", "std", None, "gone"])  # "gone": a name no [[sla]] entry has any more
    calendars = resolution_calendars(policy, SETTINGS)
    names = [calendars.names[i] for i in calendars.codes]
    assert names == ["24x7", "office", "office", "office"]
    pauses = resolution_pauses(policy, SETTINGS)
    assert [pauses.sets[i] for i in pauses.index] == [("WAITING_THIRD_PARTY",), ("WAITING_CUSTOMER",),
                                                      ("WAITING_CUSTOMER",), ("WAITING_CUSTOMER",)]


def test_ticket_policies_are_aligned_with_the_tickets_whatever_the_facts_order() -> None:
    tickets = pd.DataFrame({"source": ["s", "s", "t"], "ticket_id": ["A", "B", "A"]})
    facts = pd.DataFrame({"source": ["t", "s"], "ticket_id": ["A", "A"], "resolution_policy": ["p1", None]})
    got = ticket_policies(tickets, facts)
    # s/A has facts without a policy, s/B has no facts, t/A has p1
    assert got.isna().tolist() == [True, True, False] and got.iloc[2] == "p1"
    assert np.array_equal(got.index, tickets.index)
