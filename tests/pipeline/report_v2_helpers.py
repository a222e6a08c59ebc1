"""The report's v2 tables (``kpi_breakdown``, ``ticket_status_time``, ``kpi_backlog``) written into a test store.

Stop-gap until the runs write these tables themselves (branch ``wire``): each is computed here by its real KPI
function (``kpis.breakdown.breakdown``, ``kpis.status_time.ticket_status_time``, ``kpis.backlog.kpi_backlog``)
from the store's raw layer and ``ticket_facts`` and committed through the store interface. ``kpi_breakdown`` is
not a registered table yet, so it is written beside the others with the stores' own Arrow and SQL encodings.
Drop this module (and call the real run) once the runs fill the three tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy import Column as SqlColumn
from sqlalchemy import MetaData, Table

from kpis.backlog import kpi_backlog
from kpis.breakdown import breakdown
from kpis.calendar import CalendarColumn, CalendarSet
from kpis.config import KpiSettings
from kpis.schema import EVENT_COLUMNS, KPI_BREAKDOWN_COLUMNS, KPI_BREAKDOWN_KEYS, TICKET_COLUMNS, conform
from kpis.status_time import ticket_status_time
from pipeline.store import Replacement, Stores
from pipeline.store.parquet import ParquetStore, to_arrow
from pipeline.store.schema import sql_type
from pipeline.store.sql import _insert, sql_engine


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


def _write_breakdown(root: Path, sql_url: str, frame: pd.DataFrame) -> None:
    """``kpi_breakdown`` into both stores, encoded as the stores encode their tables."""
    data = to_arrow(frame, KPI_BREAKDOWN_COLUMNS)
    (root / "kpi_breakdown").mkdir(exist_ok=True)
    pq.write_table(data, root / "kpi_breakdown" / "part-0.parquet")
    columns = [
        SqlColumn(c.name, sql_type(c.dtype), primary_key=c.name in KPI_BREAKDOWN_KEYS)
        for c in KPI_BREAKDOWN_COLUMNS.values()
    ]
    table = Table("kpi_breakdown", MetaData(), *columns)
    engine = sql_engine(sql_url)
    try:
        table.create(engine, checkfirst=True)
        with engine.begin() as conn:
            _insert(conn, table, data)
    finally:
        engine.dispose()


def write_v2_tables(root: Path, sql_url: str, tickets: pd.DataFrame, events: pd.DataFrame,
                    facts: pd.DataFrame, settings: KpiSettings, as_of: pd.Timestamp) -> None:
    """Compute the three tables and write them to the Parquet store at ``root`` and the SQL store."""
    tables = v2_tables(tickets, events, facts, settings, as_of)
    stores = Stores(root, sql_url)
    stores.prepare()
    try:
        stores.commit("v2-tables", [Replacement(name, tables[name]) for name in ("ticket_status_time", "kpi_backlog")])
    finally:
        stores.close()
    _write_breakdown(root, sql_url, tables["kpi_breakdown"])


def add_v2_tables_to_run(root: Path, settings: KpiSettings) -> None:
    """The three tables of a store a real run (``itsm-kpi demo`` / ``backfill``) wrote, from its raw layer."""
    parquet = ParquetStore(root)
    tickets = conform(parquet.read("raw_tickets"), TICKET_COLUMNS)
    events = conform(parquet.read("raw_events"), EVENT_COLUMNS)
    facts = parquet.read("ticket_facts")
    as_of = pd.to_datetime(facts["as_of"], utc=True).max()
    write_v2_tables(root, f"sqlite:///{root / 'kpi.sqlite'}", tickets, events, facts, settings, as_of)
