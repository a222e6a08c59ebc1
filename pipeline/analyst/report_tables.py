"""Reading the report's v2 tables: breakdowns per client and service, the daily backlog, the tickets due
soon and the time tickets spent in each status (issues #19, #21).

A store written before a table existed, or by runs that do not fill it yet, lacks it or holds no rows: its
reader then returns None and its section says so instead of failing. Every reader queries the store in SQL
through ``StoreQuery``, so DuckDB over Parquet, SQLite and PostgreSQL give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from kpis.backlog import AGE_COLUMNS
from kpis.status_time import FINAL_STATUSES
from pipeline.analyst.query import StoreQuery
from pipeline.analyst.report_period import Period
from pipeline.analyst.report_sql import as_dates, as_floats, as_utc, lit, period_filter, ts_literal

__all__ = [
    "BACKLOG_COUNTS",
    "BREAKDOWN_COUNTS",
    "BREAKDOWN_DIMENSIONS",
    "RISK_WINDOW",
    "AtRisk",
    "read_at_risk",
    "read_backlog",
    "read_breakdown",
    "read_status_time",
    "table_as_of",
]

BREAKDOWN_DIMENSIONS = ("client", "service")
BREAKDOWN_COUNTS = (
    *("opened_count", "resolved_count", "response_sla_met", "response_sla_breached", "resolution_sla_met"),
    *("resolution_sla_breached", "first_fix_count", "csat_answered", "csat_satisfied"),
)
BACKLOG_COUNTS = ("open_count", *AGE_COLUMNS, "overdue_count", "paused_count")
_RISK_COLUMNS = (
    "source, ticket_id, ticket_type, priority, status, engineer, team, opened_at, response_due_at, "
    "resolution_due_at, response_policy, resolution_policy"
)
RISK_WINDOW = pd.Timedelta(days=1)


@dataclass(frozen=True)
class AtRisk:
    """The open tickets with a response or resolution due in ``[since, since + RISK_WINDOW)``.

    ``since`` is the end of the period, or the data's ``as_of`` when that is earlier (``current``: the period
    is not over). ``tickets`` holds their ``ticket_facts`` columns and the flags ``response_risk`` and
    ``resolution_risk`` (which of the two metrics falls due in the window).
    """

    since: pd.Timestamp
    current: bool
    tickets: pd.DataFrame


def _has_rows(store: StoreQuery, table: str) -> bool:
    """Whether the store has ``table`` and at least one row in it."""
    if store.dialect == "sqlite":
        catalog = f"SELECT COUNT(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name = {lit(table)}"
    else:
        catalog = (
            "SELECT COUNT(*) FROM information_schema.tables "
            f"WHERE table_schema = current_schema() AND table_name = {lit(table)}"
        )
    if not int(store.result(catalog).rows[0][0]):
        return False
    return bool(store.result(f"SELECT 1 FROM {table} LIMIT 1").rows)


def stored_timezone(store: StoreQuery) -> str | None:
    """The reporting timezone of the store's latest committed run (``pipeline_runs``), or None."""
    if not _has_rows(store, "pipeline_runs"):
        return None
    rows = store.result("SELECT reporting_timezone FROM pipeline_runs WHERE status IN ('success', 'partial') "
                        "AND reporting_timezone IS NOT NULL ORDER BY finished_at DESC LIMIT 1").rows
    return str(rows[0][0]) if rows else None


def table_as_of(store: StoreQuery, table: str) -> pd.Timestamp | None:
    """The latest ``as_of`` of ``table`` (None when it is missing or empty)."""
    if not _has_rows(store, table):
        return None
    frame = as_utc(store.frame(f"SELECT MAX(as_of) AS as_of FROM {table}"), ("as_of",))
    return None if frame["as_of"].isna().all() else frame["as_of"].iloc[0]


def read_breakdown(store: StoreQuery, period: Period) -> pd.DataFrame | None:
    """The period's ``kpi_breakdown`` counts of each client and service, summed over ticket types."""
    if not _has_rows(store, "kpi_breakdown"):
        return None
    sums = ", ".join(f"SUM({c}) AS {c}" for c in BREAKDOWN_COUNTS)
    dimensions = ", ".join(lit(d) for d in BREAKDOWN_DIMENSIONS)
    frame = store.frame(
        f"SELECT dimension, member, {sums} FROM kpi_breakdown "
        f"WHERE {period_filter(period)} AND dimension IN ({dimensions}) GROUP BY dimension, member"
    )
    return as_floats(frame, ("dimension", "member"))


def _backlog_days(period: Period, as_of: pd.Timestamp | None, timezone: str) -> list[date]:
    """The period's days the backlog can know: up to the local date of ``as_of``."""
    last = period.last_day
    if as_of is not None:
        last = min(last, as_of.tz_convert(timezone).date())
    return [period.start + timedelta(days=i) for i in range((last - period.start).days + 1)]


def read_backlog(store: StoreQuery, period: Period, timezone: str) -> pd.DataFrame | None:
    """``kpi_backlog`` summed per day of the period up to its ``as_of`` (0 on a day with nothing open), with
    the day's oldest opening."""
    if not _has_rows(store, "kpi_backlog"):
        return None
    sums = ", ".join(f"SUM({c}) AS {c}" for c in BACKLOG_COUNTS)
    frame = store.frame(
        f"SELECT day, {sums}, MIN(oldest_opened_at) AS oldest_opened_at FROM kpi_backlog "
        f"WHERE day >= {lit(period.start)} AND day < {lit(period.end)} GROUP BY day"
    )
    frame = as_utc(as_dates(as_floats(frame, ("day", "oldest_opened_at")), "day"), ("oldest_opened_at",))
    days = _backlog_days(period, table_as_of(store, "kpi_backlog"), timezone)
    filled = frame.set_index("day").reindex(days)
    filled[list(BACKLOG_COUNTS)] = filled[list(BACKLOG_COUNTS)].fillna(0.0)
    return filled.rename_axis("day").reset_index()


def _risk_since(period: Period, as_of: pd.Timestamp | None, timezone: str) -> tuple[pd.Timestamp, bool]:
    """The instant the at-risk list looks ahead from, and whether it is ``as_of`` (the period is not over)."""
    end = period.utc_bounds(timezone)[1]
    return (as_of, True) if as_of is not None and as_of < end else (end, False)


def _risk_conditions(store: StoreQuery, since: pd.Timestamp) -> tuple[str, str]:
    """The SQL conditions of a response and of a resolution falling due in the window after ``since``.

    A response is at risk while it had not been given at ``since``; a resolution while the ticket was open
    then (its current status is not final, or it was resolved later). An exempted metric never is.
    """
    start, until = ts_literal(store, since), ts_literal(store, since + RISK_WINDOW)
    final = ", ".join(lit(s) for s in FINAL_STATUSES)
    response = (
        f"response_due_at >= {start} AND response_due_at < {until} "
        f"AND (response_at IS NULL OR response_at >= {start}) AND COALESCE(response_sla, '') <> 'exempt'"
    )
    resolution = (
        f"resolution_due_at >= {start} AND resolution_due_at < {until} "
        f"AND (status NOT IN ({final}) OR resolved_at >= {start}) AND COALESCE(resolution_sla, '') <> 'exempt'"
    )
    return response, resolution


def read_at_risk(store: StoreQuery, period: Period, as_of: pd.Timestamp | None, timezone: str) -> AtRisk:
    """Tickets not excluded (cancelled, exempt), opened before ``since``, with a response or resolution
    still to come that falls due within ``RISK_WINDOW`` of it; by engineer, then due time."""
    since, current = _risk_since(period, as_of, timezone)
    response, resolution = _risk_conditions(store, since)
    frame = store.frame(
        f"SELECT {_RISK_COLUMNS}, CASE WHEN {response} THEN 1 ELSE 0 END AS response_risk, "
        f"CASE WHEN {resolution} THEN 1 ELSE 0 END AS resolution_risk FROM ticket_facts "
        f"WHERE excluded_reason IS NULL AND opened_at < {ts_literal(store, since)} "
        f"AND (({response}) OR ({resolution}))"
    )
    frame = as_utc(frame, ("opened_at", "response_due_at", "resolution_due_at"))
    for metric in ("response", "resolution"):
        frame[f"{metric}_risk"] = pd.to_numeric(frame[f"{metric}_risk"]).astype(bool)
    frame["due_at"] = pd.concat(
        [frame["response_due_at"].where(frame["response_risk"]),
         frame["resolution_due_at"].where(frame["resolution_risk"])], axis=1
    ).min(axis=1)
    frame = frame.sort_values(["engineer", "due_at", "ticket_id"]).reset_index(drop=True)
    return AtRisk(since, current, frame)


def read_status_time(store: StoreQuery, period: Period, timezone: str) -> pd.DataFrame | None:
    """Business and calendar seconds per team and status of the tickets opened in the period
    (``ticket_status_time`` joined to the credited team in ``ticket_facts``), with each team's number of
    those tickets that have status rows."""
    if not _has_rows(store, "ticket_status_time"):
        return None
    start, end = (ts_literal(store, b) for b in period.utc_bounds(timezone))
    opened = f"f.opened_at >= {start} AND f.opened_at < {end}"
    frame = store.frame(
        "SELECT f.team AS team, s.status AS status, SUM(s.business_s) AS business_s, "
        "SUM(s.calendar_s) AS calendar_s FROM ticket_status_time s JOIN ticket_facts f "
        f"ON f.source = s.source AND f.ticket_id = s.ticket_id WHERE {opened} GROUP BY f.team, s.status"
    )
    tickets = store.frame(
        f"SELECT f.team AS team, COUNT(*) AS tickets FROM ticket_facts f WHERE {opened} AND EXISTS "
        "(SELECT 1 FROM ticket_status_time s WHERE s.source = f.source AND s.ticket_id = f.ticket_id) "
        "GROUP BY f.team"
    )
    frame = as_floats(frame, ("team", "status")).merge(as_floats(tickets, ("team",)), on="team", how="left")
    return frame.sort_values(["team", "status"]).reset_index(drop=True)
