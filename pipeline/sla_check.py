"""Which ``[[sla]]`` policies the tickets of a source match (``itsm-kpi validate``, the run summary; issue #19).

A ticket *matches* the policy that governs its resolution, else the one that governs its response
(``ticket_facts.resolution_policy`` / ``response_policy``: first match wins, KPIS.md 3); it matches none when
neither is set. The counts are taken on the facts the pipeline itself computes, so they say what a run
would do. Policies that match nothing are named. A policy with a ``client`` or ``service`` condition while
no ticket carries a client (service) can never match: a warning, not an error (the source may not map that
column yet; DECISIONS.md D85).
"""

from __future__ import annotations

import pandas as pd

from kpis import compute_facts
from kpis.config import KpiSettings

#: Conditions on columns a source often does not fill (docs/connectors.md).
OPTIONAL_CONDITIONS = ("client", "service")


def policy_counts(facts: pd.DataFrame, settings: KpiSettings) -> dict[str, object]:
    """``{"tickets", "policies": {name: count, in config order}, "no_policy", "unused": [names]}`` of ``facts``."""
    matched = facts["resolution_policy"].astype("object").where(facts["resolution_policy"].notna(),
                                                                 facts["response_policy"].astype("object"))
    counts = matched.value_counts(dropna=True)
    policies = {p.name: int(counts.get(p.name, 0)) for p in settings.sla}
    return {"tickets": len(facts), "policies": policies, "no_policy": int(matched.isna().sum()),
            "unused": [name for name, n in policies.items() if n == 0]}


def source_policy_counts(tickets: pd.DataFrame, events: pd.DataFrame, settings: KpiSettings,
                         as_of: pd.Timestamp) -> dict[str, object]:
    """``policy_counts`` of canonical ``tickets``/``events`` (a page a source's check read)."""
    return policy_counts(compute_facts(tickets, events, settings, as_of), settings)


def condition_warnings(tickets: pd.DataFrame, settings: KpiSettings, where: str = "the tickets read") -> list[str]:
    """One line per ``client``/``service`` condition that no ticket of ``tickets`` can meet (none carries one)."""
    lines = []
    for condition in OPTIONAL_CONDITIONS:
        users = [p.name for p in settings.sla if condition in p.conditions]
        if not users or not len(tickets):
            continue
        values = tickets[condition].astype("object")
        if not (values.notna() & (values.astype("str").str.strip() != "")).any():
            lines.append(f"[[sla]] {', '.join(users)}: condition {condition} matches no ticket, none of {where} "
                         f"carries a {condition} (map the source's {condition} column, see docs/connectors.md)")
    return lines
