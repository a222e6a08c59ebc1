"""Reading one period's numbers for the report from the store, through ``StoreQuery``.

Numbers come from the stored tables through the analyst views' SQL (``pipeline.store.views``), so the report
agrees with ``itsm-kpi query``. Ticket lists are placed in the period by their anchor's local date in
``timezone`` (the reporting timezone; the store does not record it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from pipeline.analyst.query import QueryError, StoreQuery
from pipeline.analyst.report_period import Period, ReportError
from pipeline.analyst.report_sql import as_dates as _dates
from pipeline.analyst.report_sql import as_flags as _bool
from pipeline.analyst.report_sql import as_floats as _numeric
from pipeline.analyst.report_sql import as_utc as _utc
from pipeline.analyst.report_sql import lit as _lit
from pipeline.analyst.report_sql import period_filter as _period_filter
from pipeline.analyst.report_tables import (
    AtRisk,
    read_at_risk,
    read_backlog,
    read_breakdown,
    read_status_time,
    table_as_of,
)
from pipeline.store.views import rollup_sql, view_sql

__all__ = ["TREND_RATES", "ReportData", "read_report_data"]


@dataclass
class ReportData:
    """Everything the report shows, read from the store for one period."""

    period: Period
    scorecard: pd.DataFrame
    parts: pd.DataFrame
    engineers: pd.DataFrame
    trend: pd.DataFrame
    facts: pd.DataFrame
    breaches: pd.DataFrame
    breakdown: pd.DataFrame | None  # kpi_breakdown's client and service rows; None: the store has none at all
    backlog: pd.DataFrame | None  # kpi_backlog per day of the period; None: the store has none at all
    at_risk: AtRisk  # open tickets due within a day of the period's end (or of as_of)
    status_time: pd.DataFrame | None  # ticket_status_time per team and status; None: the store has none
    timezone: str
    exemptions: pd.DataFrame = field(default_factory=pd.DataFrame)  # v_exemptions rows counted in the period
    #: (source, ticket_id) -> the resolution timeline of a listed breached ticket (report_timeline.py)
    timelines: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)


_TREND_COUNTS = (
    "opened_count",
    "resolved_count",
    "response_n",
    "response_total_min",
    "response_sla_met",
    "response_sla_breached",
    "resolution_sla_met",
    "resolution_sla_breached",
    "first_fix_count",
    "csat_answered",
    "csat_satisfied",
)
#: The team rates drawn per trend period: rate -> (numerator, denominator columns).
TREND_RATES = {
    "response_sla_rate": ("response_sla_met", ("response_sla_met", "response_sla_breached")),
    "resolution_sla_rate": ("resolution_sla_met", ("resolution_sla_met", "resolution_sla_breached")),
    "first_fix_rate": ("first_fix_count", ("resolved_count",)),
    "csat_rate": ("csat_satisfied", ("csat_answered",)),
}
_FACT_COLUMNS = (
    "ticket_id",
    "engineer",
    "response_priority",
    "resolution_priority",
    "response_sla",
    "resolution_sla",
    "opened_at",
    "resolved_at",
)


def _read_scorecard(store: StoreQuery, period: Period) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The period's ``scorecard`` rows and its ``scorecard_kpi`` parts."""
    card = store.frame(
        f"SELECT engineer, score, rank, kpis_scored, low_sample, as_of, kpi_version "
        f"FROM scorecard WHERE {_period_filter(period)}"
    )
    card = _numeric(card, ("engineer", "low_sample", "as_of", "kpi_version"))
    card["low_sample"] = _bool(card["low_sample"])
    parts = store.frame(
        f"SELECT engineer, kpi, value, target, weight, higher_is_better, attainment, score "
        f"FROM scorecard_kpi WHERE {_period_filter(period)}"
    )
    parts = _numeric(parts, ("engineer", "kpi", "higher_is_better"))
    parts["higher_is_better"] = _bool(parts["higher_is_better"])
    return card, parts


def _read_engineers(store: StoreQuery, period: Period) -> pd.DataFrame:
    """One row per engineer: the period's KPIs over all ticket types (the ``v_engineer_*`` roll-up)."""
    frame = store.frame(
        f"SELECT * FROM ({rollup_sql(period.grain)}) r WHERE period_start = {_lit(period.start)}"
    )
    frame = _numeric(frame, ("grain", "period_start", "engineer", "low_sample", "as_of", "kpi_version"))
    frame["low_sample"] = _bool(frame["low_sample"])
    return frame


def _trend_totals(frame: pd.DataFrame) -> pd.DataFrame:
    """The team's counts per trend period, and the rates and mean response re-aggregated from them."""
    totals = frame.groupby("period_start", sort=True)[list(_TREND_COUNTS)].sum()
    for rate, (num, dens) in TREND_RATES.items():
        den = sum(totals[d] for d in dens)
        totals[rate] = totals[num] / den.where(den > 0)
    totals["response_mean_min"] = totals["response_total_min"] / totals["response_n"].where(
        totals["response_n"] > 0
    )
    return totals


def _read_trend(store: StoreQuery, period: Period) -> pd.DataFrame:
    """The team's KPIs per week (or day) of ``period``; a period without rows is all NaN.

    Weeks are cut at the period's edges: every trend column is a sum, so a week is the sum of its days in the
    period and the bars add up to the period's totals. A store that keeps no day rows gives whole ISO weeks.
    """
    days = _trend_rows(store, "day", period.start, period.end)
    if period.trend_grain == "week" and len(days):
        frame = days.assign(period_start=_week_starts(days["period_start"], period.start))
    elif period.trend_grain == "week":
        frame = _trend_rows(store, "week", period.start - timedelta(days=6), period.end)
    else:
        frame = days
    return _trend_totals(frame).reindex(_trend_starts(period), fill_value=np.nan).rename_axis(
        "period_start").reset_index()


def _week_starts(days: pd.Series, first: date) -> pd.Series:
    """Each day's Monday, or ``first`` for the days of the week ``first`` cuts."""
    day = pd.to_datetime(days)
    monday = day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    return monday.clip(lower=pd.Timestamp(first)).dt.date


def _trend_rows(store: StoreQuery, grain: str, first: date, end: date) -> pd.DataFrame:
    """``kpi_engineer``'s trend counts of ``grain`` from ``first`` to ``end`` (exclusive)."""
    columns = ", ".join(
        "response_mean_min * response_n AS response_total_min" if c == "response_total_min" else c
        for c in _TREND_COUNTS
    )
    frame = store.frame(
        f"SELECT period_start, {columns} FROM kpi_engineer "
        f"WHERE grain = {_lit(grain)} AND period_start >= {_lit(first)} AND period_start < {_lit(end)}"
    )
    return _dates(_numeric(frame, ("period_start",)))


def _trend_starts(period: Period) -> list[date]:
    """Every trend period of ``period`` (weeks from its Monday, the first cut at its start; or days), so gaps
    show as gaps."""
    step = 7 if period.trend_grain == "week" else 1
    day = period.start - timedelta(days=period.start.weekday()) if step == 7 else period.start
    starts = []
    while day < period.end:
        starts.append(max(day, period.start))
        day += timedelta(days=step)
    return starts


def _local_dates(values: pd.Series, timezone: str) -> pd.Series:
    """UTC timestamps as local dates in ``timezone``."""
    return values.dt.tz_convert(timezone).dt.date


def _in_period(values: pd.Series, period: Period, timezone: str) -> pd.Series:
    """Whether each timestamp's local date falls in ``period``."""
    local = _local_dates(values, timezone)
    return values.notna() & (local >= period.start) & (local < period.end)


def _read_facts(store: StoreQuery, period: Period, timezone: str) -> pd.DataFrame:
    """Tickets with an SLA verdict, flagged by whether their response / resolution falls in ``period``."""
    frame = store.frame(
        f"SELECT {', '.join(_FACT_COLUMNS)} FROM ticket_facts "
        "WHERE response_sla IS NOT NULL OR resolution_sla IS NOT NULL"
    )
    frame = _utc(frame, ("opened_at", "resolved_at"))
    frame["response_in_period"] = _in_period(frame["opened_at"], period, timezone)
    frame["resolution_in_period"] = _in_period(frame["resolved_at"], period, timezone)
    return frame


def _read_breaches(store: StoreQuery, period: Period, timezone: str) -> pd.DataFrame:
    """``v_sla_breaches`` rows of the period with the tickets' SLA policy names: response breaches of tickets
    opened in it, resolution breaches of tickets resolved in it or still open at its end; oldest first."""
    frame = store.frame(
        f"SELECT b.*, f.response_policy, f.resolution_policy FROM ({view_sql('v_sla_breaches')}) b "
        "JOIN ticket_facts f ON f.source = b.source AND f.ticket_id = b.ticket_id"
    )
    frame = _utc(frame, ("opened_at", "response_at", "resolved_at", "as_of"))
    opened = _in_period(frame["opened_at"], period, timezone)
    resolved = _in_period(frame["resolved_at"], period, timezone)
    still_open = frame["resolved_at"].isna() & (_local_dates(frame["opened_at"], timezone) < period.end)
    response = frame["breach"].isin(["response", "both"]) & opened
    resolution = frame["breach"].isin(["resolution", "both"]) & (resolved | still_open)
    # the breaches this period counts: a response breach of July is not the October report's, nor the reverse
    frame["breach"] = np.where(response & resolution, "both", np.where(response, "response", "resolution"))
    frame = frame[response | resolution].copy()
    frame["still_open"] = frame["resolved_at"].isna()
    over = frame[["response_over_min", "resolution_over_min"]].apply(pd.to_numeric, errors="coerce")
    frame["worst_over_min"] = over.max(axis=1)
    return frame.sort_values(["opened_at", "ticket_id"]).reset_index(drop=True)


def _read_exemptions(store: StoreQuery, period: Period, timezone: str) -> pd.DataFrame:
    """``v_exemptions`` rows the period's KPI rows count: applied response and ticket exemptions of tickets
    opened in it, applied resolution exemptions of tickets resolved in it (each at its KPIs' anchor)."""
    try:
        frame = store.frame(f"SELECT * FROM ({view_sql('v_exemptions')}) x")
    except QueryError:  # a store written before approvals were stored has no adjustments table
        return pd.DataFrame()
    if frame.empty:
        return frame
    frame = _utc(frame, ("approved_at", "opened_at", "resolved_at"))
    applied = _bool(frame["applied"])
    anchor = frame["opened_at"].where(frame["scope"] != "resolution", frame["resolved_at"])
    return frame[applied & _in_period(anchor, period, timezone)].reset_index(drop=True)


def _available_periods(store: StoreQuery, grain: str) -> list[str]:
    """The start dates of the scorecard periods of ``grain`` the store holds."""
    frame = store.frame(f"SELECT DISTINCT period_start FROM scorecard WHERE grain = {_lit(grain)}")
    return sorted(str(d) for d in pd.to_datetime(frame["period_start"]).dt.date) if len(frame) else []


def read_report_data(store: StoreQuery, period: Period, timezone: str) -> ReportData:
    """Read every table the report needs; ReportError when the store has no scorecard for the period."""
    card, parts = _read_scorecard(store, period)
    if card.empty:
        have = _available_periods(store, period.grain)
        raise ReportError(
            f"no scorecard for {period.grain} {period.text} in the store; "
            f"{period.grain} periods stored: {', '.join(have) if have else 'none'}"
        )
    as_of = table_as_of(store, "ticket_facts")
    return ReportData(
        period=period,
        scorecard=card,
        parts=parts,
        engineers=_read_engineers(store, period),
        trend=_read_trend(store, period),
        facts=_read_facts(store, period, timezone),
        breaches=_read_breaches(store, period, timezone),
        breakdown=read_breakdown(store, period),
        backlog=read_backlog(store, period, timezone),
        at_risk=read_at_risk(store, period, as_of, timezone),
        status_time=read_status_time(store, period, timezone),
        timezone=timezone,
        exemptions=_read_exemptions(store, period, timezone),
    )

