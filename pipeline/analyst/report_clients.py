"""The clients section (issue #19): the period's SLA and volumes per client and per business service.

Read from ``kpi_breakdown`` (KPIS.md 4.1) rows of the period's grain, summed over ticket types; rates are
re-aggregated from their counts, never averaged. The member ``(none)`` (tickets without a client or service)
is shown under its translated name.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from kpis.breakdown import NO_MEMBER
from pipeline.analyst.report_bars import RateBar, rate_bars
from pipeline.analyst.report_charts import Chart
from pipeline.analyst.report_data import TREND_RATES
from pipeline.analyst.report_format import KpiCell
from pipeline.analyst.report_section import ReportContext
from pipeline.analyst.report_sla import SlaCounts
from pipeline.analyst.report_tables import BREAKDOWN_DIMENSIONS

__all__ = ["CHART_MEMBERS", "clients"]

CHART_MEMBERS = 20  # the chart shows the clients with the most resolved tickets; the table shows them all


@dataclass(frozen=True)
class MemberRow:
    """One client (or service) in the period: volumes, both SLAs' counts and rates, first fix and CSAT."""

    member: str
    is_none: bool  # the ``(none)`` member: tickets without a value
    opened: float
    resolved: float
    response: SlaCounts
    resolution: SlaCounts
    first_fix: KpiCell
    csat: KpiCell


@dataclass(frozen=True)
class DimensionTable:
    """The rows of one dimension (``client`` or ``service``, also the heading's message id)."""

    dimension: str
    rows: list[MemberRow]


@dataclass(frozen=True)
class ClientsView:
    """``stored``: the store has kpi_breakdown rows at all; the chart of resolution SLA per client; a table
    per dimension that has rows in the period."""

    stored: bool
    chart: Chart | None
    tables: list[DimensionTable]


def _rate(row: pd.Series, rate: str) -> float | None:
    """``rate`` of one member from its counts, None when the denominator is 0."""
    num, dens = TREND_RATES[rate]  # the same rates from the same counts, summed per member
    den = sum(float(row[d]) for d in dens)
    return float(row[num]) / den if den else None


def _sla(row: pd.Series, metric: str, ctx: ReportContext) -> SlaCounts:
    """One metric's met / breached counts and its compliance against the SLA target."""
    kpi = f"{metric}_sla_rate"
    return SlaCounts(
        int(row[f"{metric}_sla_met"]),
        int(row[f"{metric}_sla_breached"]),
        KpiCell(kpi, _rate(row, kpi), ctx.targets.get(kpi)),
    )


def _member_row(row: pd.Series, ctx: ReportContext) -> MemberRow:
    """The table row of one member."""
    return MemberRow(
        member=str(row["member"]),
        is_none=row["member"] == NO_MEMBER,
        opened=float(row["opened_count"]),
        resolved=float(row["resolved_count"]),
        response=_sla(row, "response", ctx),
        resolution=_sla(row, "resolution", ctx),
        first_fix=KpiCell("first_fix_rate", _rate(row, "first_fix_rate"), ctx.targets.get("first_fix_rate")),
        csat=KpiCell("csat_rate", _rate(row, "csat_rate"), ctx.targets.get("csat_rate")),
    )


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Members by resolved then opened tickets (most first), then by name; ``(none)`` last."""
    frame = frame.assign(_none=frame["member"] == NO_MEMBER)
    return frame.sort_values(
        ["_none", "resolved_count", "opened_count", "member"], ascending=[True, False, False, True]
    )


def _chart(table: DimensionTable, ctx: ReportContext) -> Chart:
    """Resolution SLA compliance per client, each bar followed by how many resolutions it judges."""
    target = ctx.targets.get("resolution_sla_rate")
    bars = [
        RateBar(
            ctx.t("member_none") if r.is_none else r.member,
            r.resolution.compliance.value,
            ctx.t("sla_judged").format(n=r.resolution.met + r.resolution.breached),
        )
        for r in table.rows[:CHART_MEMBERS]
    ]
    return rate_bars(bars, title=ctx.t("clients_chart"), target=target.value if target else None)


def clients(ctx: ReportContext) -> ClientsView:
    """SLA and volumes per client and per service in the period, and a chart of resolution SLA per client."""
    frame = ctx.data.breakdown
    if frame is None:
        return ClientsView(False, None, [])
    tables = [
        DimensionTable(dimension, [_member_row(r, ctx) for _, r in _ordered(rows).iterrows()])
        for dimension in BREAKDOWN_DIMENSIONS
        if len(rows := frame[frame["dimension"] == dimension])
    ]
    by_client = [table for table in tables if table.dimension == "client"]
    chart = _chart(by_client[0], ctx) if by_client else None
    return ClientsView(True, chart, tables)
