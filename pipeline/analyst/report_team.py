"""The team's sections: overview tiles, scorecard ranking, engineer KPIs and trends (their views)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from pipeline.analyst.report_charts import PALETTE, Chart, Series, bar_chart, hbar_chart, line_chart
from pipeline.analyst.report_data import TREND_RATES
from pipeline.analyst.report_format import ENGINEER_KPIS, KpiCell, Target, is_missing
from pipeline.analyst.report_section import ReportContext

__all__ = ["engineers", "overview", "ranking", "team_totals", "trends"]


# -- overview ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OverviewView:
    """Headline tiles: the team's KPIs against their targets, and the number of breached tickets."""

    tiles: list[KpiCell]
    breached_count: int


def _sum(frame: pd.DataFrame, column: str) -> float:
    """The column's total (0 for an empty frame or a missing column)."""
    return float(frame[column].sum()) if column in frame and len(frame) else 0.0


def _ratio(num: float, den: float) -> float | None:
    """``num / den``, None when ``den`` is 0."""
    return num / den if den else None


def team_totals(engineers: pd.DataFrame) -> dict[str, float | None]:
    """The whole team's KPIs over the period, re-aggregated from the engineers' counts."""
    met, breached = _sum(engineers, "response_sla_met"), _sum(engineers, "response_sla_breached")
    rmet, rbreached = _sum(engineers, "resolution_sla_met"), _sum(engineers, "resolution_sla_breached")
    weighted = (engineers["response_mean_min"] * engineers["response_n"]).sum(min_count=1)
    return {
        "opened_count": _sum(engineers, "opened_count"),
        "resolved_count": _sum(engineers, "resolved_count"),
        "response_mean_min": None
        if is_missing(weighted)
        else _ratio(float(weighted), _sum(engineers, "response_n")),
        "response_sla_rate": _ratio(met, met + breached),
        "resolution_sla_rate": _ratio(rmet, rmet + rbreached),
        "first_fix_rate": _ratio(_sum(engineers, "first_fix_count"), _sum(engineers, "resolved_count")),
        "csat_rate": _ratio(_sum(engineers, "csat_satisfied"), _sum(engineers, "csat_answered")),
    }


def overview(ctx: ReportContext) -> OverviewView:
    """The team overview: a tile per headline KPI, then the count of breached tickets."""
    totals = team_totals(ctx.data.engineers)
    tiles = [KpiCell(kpi, value, ctx.targets.get(kpi)) for kpi, value in totals.items()]
    return OverviewView(tiles, len(ctx.data.breaches))


# -- scorecard ranking ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoredKpi:
    """A KPI the scorecard configures: its target and weight (a share of 1)."""

    kpi: str
    target: Target
    weight: float


@dataclass(frozen=True)
class RankingRow:
    """One engineer on the scorecard; ``rank`` is None for an engineer who is not ranked."""

    rank: float | None
    engineer: str
    low_sample: bool
    score: float | None
    kpis_scored: int
    cells: list[KpiCell]

    @property
    def score_bar_pct(self) -> float:
        """The width of the score bar, 0-100."""
        return 0.0 if self.score is None else max(0.0, min(100.0, self.score))


@dataclass(frozen=True)
class RankingView:
    """The ranking chart, the configured KPIs (heaviest first) and a row per engineer in rank order."""

    chart: Chart
    kpis: list[ScoredKpi]
    rows: list[RankingRow]


def _ordered_scorecard(card: pd.DataFrame) -> pd.DataFrame:
    """Ranked engineers by rank, then the unranked by score."""
    card = card.assign(_unranked=card["rank"].isna())
    order = card.sort_values(["_unranked", "rank", "score"], ascending=[True, True, False])
    return order.reset_index(drop=True)


def _scored_kpis(parts: pd.DataFrame, targets: Mapping[str, Target]) -> list[ScoredKpi]:
    """The configured KPIs that have a target, heaviest weight first."""
    if parts.empty:
        return []
    weights = parts.drop_duplicates("kpi")[["kpi", "weight"]].sort_values(
        ["weight", "kpi"], ascending=[False, True]
    )
    return [
        ScoredKpi(r.kpi, targets[r.kpi], float(r.weight)) for r in weights.itertuples() if r.kpi in targets
    ]


def ranking(ctx: ReportContext) -> RankingView:
    """The scorecard: a bar per engineer, then each configured KPI's value against its target."""
    card = _ordered_scorecard(ctx.data.scorecard)
    kpis = _scored_kpis(ctx.data.parts, ctx.targets)
    values = ctx.data.parts.set_index(["engineer", "kpi"])["value"] if kpis else pd.Series(dtype=float)
    rows = [
        RankingRow(
            rank=None if is_missing(r.rank) else float(r.rank),
            engineer=str(r.engineer),
            low_sample=bool(r.low_sample),
            score=None if is_missing(r.score) else float(r.score),
            kpis_scored=0 if is_missing(r.kpis_scored) else int(r.kpis_scored),
            cells=[KpiCell(k.kpi, values.get((r.engineer, k.kpi)), k.target) for k in kpis],
        )
        for r in card.itertuples()
    ]
    bars = [(row.engineer, row.score, row.low_sample or row.rank is None) for row in rows]
    chart = hbar_chart(bars, title=ctx.t("ranking"), note=ctx.t("not_ranked"))
    return RankingView(chart, kpis, rows)


# -- engineer KPIs -------------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineerRow:
    """One engineer's KPIs over the period, each judged against its target."""

    engineer: str
    low_sample: bool
    opened_count: float
    resolved_count: float
    cells: list[KpiCell]


@dataclass(frozen=True)
class EngineersView:
    """The KPI columns with their targets (None: not judged) and a row per engineer, low samples last."""

    columns: list[tuple[str, Target | None]]
    rows: list[EngineerRow]


def engineers(ctx: ReportContext) -> EngineersView:
    """Every engineer's KPIs over the period, each against its target where there is one."""
    frame = ctx.data.engineers.sort_values(["low_sample", "engineer"]).reset_index(drop=True)
    rows = [
        EngineerRow(
            engineer=str(r["engineer"]),
            low_sample=bool(r["low_sample"]),
            opened_count=r["opened_count"],
            resolved_count=r["resolved_count"],
            cells=[KpiCell(kpi, r.get(kpi), ctx.targets.get(kpi)) for kpi in ENGINEER_KPIS],
        )
        for r in frame.to_dict("records")
    ]
    return EngineersView([(kpi, ctx.targets.get(kpi)) for kpi in ENGINEER_KPIS], rows)


# -- trends --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    """One chart with its caption (a message id), the target it shows (if any) and its legend."""

    caption: str
    chart: Chart
    target: Target | None = None
    legend: tuple[Series, ...] = ()


@dataclass(frozen=True)
class TrendsView:
    """Small multiples per week (or per day); ``weekly`` chooses the title and note."""

    weekly: bool
    figures: list[Figure]


def _trend_figure(ctx: ReportContext, xs: list[str], kpi: str, *, percent: bool = True) -> Figure:
    """The team's ``kpi`` per trend period as a line, its target dashed."""
    target = ctx.targets.get(kpi)
    series = [Series(ctx.t(kpi), list(ctx.data.trend[kpi]), PALETTE["accent"])]
    chart = line_chart(xs, series, title=ctx.t(kpi), target=target.value if target else None, percent=percent)
    return Figure(kpi, chart, target)


def trends(ctx: ReportContext) -> TrendsView:
    """The team's rates and mean response per week (or day) of the period, then the ticket volume."""
    weekly = ctx.data.period.trend_grain == "week"
    trend = ctx.data.trend
    if trend.empty:
        return TrendsView(weekly, [])
    xs = [d.strftime("%m-%d") for d in trend["period_start"]]
    figures = [_trend_figure(ctx, xs, kpi) for kpi in TREND_RATES]
    figures.append(_trend_figure(ctx, xs, "response_mean_min", percent=False))
    volume = (
        Series(ctx.t("opened"), list(trend["opened_count"]), PALETTE["accent"]),
        Series(ctx.t("resolved"), list(trend["resolved_count"]), PALETTE["second"]),
    )
    chart = bar_chart(xs, volume, title=ctx.t("volume"), percent=False)
    figures.append(Figure("volume", chart, legend=volume))
    return TrendsView(weekly, figures)
