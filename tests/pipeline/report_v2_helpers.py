"""The report's v2 tables (``kpi_breakdown``, ``ticket_status_time``, ``kpi_backlog``) for a hand-built store.

The report tests' tiny store is written table by table, not by a run; its v2 tables are computed here by their
real KPI functions (``kpis.breakdown.breakdown``, ``kpis.status_time.ticket_status_time``,
``kpis.backlog.kpi_backlog``) and committed through the store interface. Stores written by a real run
(``itsm-kpi demo``, ``backfill``) have them already.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kpis.backlog import kpi_backlog
from kpis.breakdown import breakdown
from kpis.calendar import CalendarColumn, CalendarSet
from kpis.config import KpiSettings
from kpis.status_time import ticket_status_time
from pipeline.store import Replacement, Stores


def status_calendars(tickets: pd.DataFrame, facts: pd.DataFrame, settings: KpiSettings) -> CalendarColumn:
    """Each ticket's calendar for its time in status (KPIS.md 3.1): its resolution policy's, else the default."""
    by_policy = {p.name: p.calendar or settings.default_calendar for p in settings.sla}
    policy = tickets[["source", "ticket_id"]].merge(
        facts[["source", "ticket_id", "resolution_policy"]], how="left", on=["source", "ticket_id"]
    )["resolution_policy"]
    names = tuple(dict.fromkeys([settings.default_calendar, *by_policy.values()]))
    chosen = policy.map(by_policy).fillna(settings.default_calendar)
    return CalendarColumn(np.array([names.index(n) for n in chosen], dtype="int64"), names)


def v2_tables(tickets: pd.DataFrame, events: pd.DataFrame, facts: pd.DataFrame, settings: KpiSettings,
              as_of: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The three tables computed by the KPI engine's own functions."""
    calendars = CalendarSet(dict(settings.calendars))
    return {
        "kpi_breakdown": breakdown(facts, settings),
        "ticket_status_time": ticket_status_time(
            tickets, events, calendars, status_calendars(tickets, facts, settings), as_of
        ),
        "kpi_backlog": kpi_backlog(tickets, events, facts, settings, as_of),
    }



def write_v2_tables(root: Path, sql_url: str, tickets: pd.DataFrame, events: pd.DataFrame,
                    facts: pd.DataFrame, settings: KpiSettings, as_of: pd.Timestamp) -> None:
    """Compute the three tables and write them to the Parquet store at ``root`` and the SQL store."""
    tables = v2_tables(tickets, events, facts, settings, as_of)
    stores = Stores(root, sql_url)
    stores.prepare()
    try:
        stores.commit("v2-tables", [Replacement(name, tables[name])
                                    for name in ("ticket_status_time", "kpi_backlog", "kpi_breakdown")])
    finally:
        stores.close()

