"""KPI engine: canonical tickets + events -> per-ticket facts, per-engineer/team/breakdown KPIs, scorecard.

Pure functions over pandas frames; no I/O, no clock. See ../shared/spec/KPIS.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from kpis.aggregate import aggregate, kpi_rows, with_activity
from kpis.breakdown import breakdown
from kpis.config import KpiSettings
from kpis.facts import compute_facts
from kpis.schema import KPI_BREAKDOWN_COLUMNS, empty_frame
from kpis.scorecard import compute_scorecard

__all__ = ["KpiSettings", "KpiTables", "aggregate", "breakdown", "compute_all", "compute_facts", "compute_scorecard",
           "kpi_tables"]


@dataclass(frozen=True)
class KpiTables:
    """Every table the engine produces for one run."""

    facts: pd.DataFrame
    kpi_engineer: pd.DataFrame
    kpi_team: pd.DataFrame
    scorecard: pd.DataFrame
    scorecard_kpi: pd.DataFrame
    # A default, so callers that build tables for some groups only (pipeline/groups.py) keep working
    # until they compute breakdowns too.
    kpi_breakdown: pd.DataFrame = field(default_factory=lambda: empty_frame(KPI_BREAKDOWN_COLUMNS))


def compute_all(tickets: pd.DataFrame, events: pd.DataFrame, settings: KpiSettings, as_of: pd.Timestamp,
                approvals: pd.DataFrame | None = None) -> KpiTables:
    """Facts, the aggregates, the breakdowns and the scorecard for canonical ``tickets``/``events`` at ``as_of``,
    with the approved exemptions ``approvals`` (KPIS.md 1.4; None: none) applied."""
    return kpi_tables(compute_facts(tickets, events, settings, as_of, approvals), settings)


def kpi_tables(facts: pd.DataFrame, settings: KpiSettings) -> KpiTables:
    """The aggregates, the breakdowns and the scorecard for ``ticket_facts`` (one ``as_of`` for every row)."""
    rows = kpi_rows(facts, settings)  # shared: the aggregates differ only in who is credited
    engineer = aggregate(facts, settings, by="engineer", rows=rows, every_group=True)  # the scorecard sums them all
    scorecard, scorecard_kpi = compute_scorecard(facts, settings, rows, engineer=engineer)
    return KpiTables(
        facts=facts,
        kpi_engineer=with_activity(engineer),
        kpi_team=aggregate(facts, settings, by="team", rows=rows),
        scorecard=scorecard,
        scorecard_kpi=scorecard_kpi,
        kpi_breakdown=breakdown(facts, settings, rows=rows),
    )
