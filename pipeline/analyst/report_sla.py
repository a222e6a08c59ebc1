"""The SLA sections: compliance by priority, and the breached tickets (views for their templates)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.analyst.report_charts import PALETTE, Chart, Series, bar_chart
from pipeline.analyst.report_format import KpiCell, is_missing
from pipeline.analyst.report_section import ReportContext
from pipeline.analyst.report_timeline import timeline_chart

__all__ = ["BREACH_ROWS", "breaches", "priority", "sla_by_priority"]

BREACH_ROWS = 200
METRICS = ("response", "resolution")


# -- SLA compliance by priority ------------------------------------------------------------------
def sla_by_priority(facts: pd.DataFrame) -> pd.DataFrame:
    """Met / breached / compliance per priority: response of tickets opened in the period, resolution of
    tickets resolved in it."""
    out = []
    for metric in METRICS:
        rows = facts[facts[f"{metric}_in_period"] & facts[f"{metric}_sla"].isin(["met", "breached"])]
        counts = rows.groupby([f"{metric}_priority", f"{metric}_sla"]).size().unstack(fill_value=0)
        for priority_name, row in counts.iterrows():
            met, breached = int(row.get("met", 0)), int(row.get("breached", 0))
            rate = met / (met + breached) if met + breached else None
            out.append(
                {"metric": metric, "priority": priority_name, "met": met, "breached": breached, "rate": rate}
            )
    frame = pd.DataFrame(out, columns=["metric", "priority", "met", "breached", "rate"])
    return frame.sort_values(["priority", "metric"]).reset_index(drop=True)


@dataclass(frozen=True)
class SlaCounts:
    """One metric's verdicts at one priority, and the compliance judged against the SLA target."""

    met: int
    breached: int
    compliance: KpiCell


@dataclass(frozen=True)
class PriorityRow:
    """A priority with its response and resolution counts (0 and 0, no compliance, where the metric has no
    verdict there)."""

    priority: str
    response: SlaCounts
    resolution: SlaCounts


@dataclass(frozen=True)
class PriorityView:
    """A grouped bar chart of compliance per priority, its legend, and the counts behind it."""

    chart: Chart | None
    legend: tuple[Series, ...]
    rows: list[PriorityRow]


def _sla_counts(by: pd.DataFrame, priority_name: str, metric: str, ctx: ReportContext) -> SlaCounts:
    """The counts of ``metric`` at ``priority_name``: 0 met and 0 breached (no compliance) when it has none."""
    kpi = f"{metric}_sla_rate"
    if (priority_name, metric) not in by.index:
        return SlaCounts(0, 0, KpiCell(kpi, None, ctx.targets.get(kpi)))
    rec = by.loc[(priority_name, metric)]
    return SlaCounts(int(rec["met"]), int(rec["breached"]), KpiCell(kpi, rec["rate"], ctx.targets.get(kpi)))


def priority(ctx: ReportContext) -> PriorityView:
    """SLA compliance by priority: a grouped bar chart and the counts behind it."""
    table = sla_by_priority(ctx.data.facts)
    if table.empty:
        return PriorityView(None, (), [])
    priorities = sorted(table["priority"].unique())
    rate = table.set_index(["metric", "priority"])["rate"]
    legend = tuple(
        Series(ctx.t(m), [rate.get((m, p)) for p in priorities], color)
        for m, color in zip(METRICS, (PALETTE["accent"], PALETTE["second"]), strict=True)
    )
    chart = bar_chart(priorities, legend, title=ctx.t("sla_priority"))
    by = table.set_index(["priority", "metric"])
    rows = [
        PriorityRow(str(p), _sla_counts(by, p, "response", ctx), _sla_counts(by, p, "resolution", ctx))
        for p in priorities
    ]
    return PriorityView(chart, legend, rows)


# -- breached tickets ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Minutes:
    """A metric's elapsed and target business minutes, and by how much a breach overran."""

    elapsed: Any
    target: Any
    over: Any
    breached: bool
    policy: str | None  # the name of the SLA policy that set the target

    @property
    def shows_over(self) -> bool:
        """Whether to show the overrun: only for a breached metric that overran by more than 0."""
        return self.breached and not is_missing(self.over) and float(self.over) > 0


@dataclass(frozen=True)
class BreachRow:
    """One breached ticket; ``breach`` is ``response``, ``resolution`` or ``both``."""

    ticket_id: str
    ticket_type: str
    priority: str
    engineer: str
    team: str
    opened_at: pd.Timestamp
    breach: str
    still_open: bool
    response: Minutes
    resolution: Minutes
    timeline: Chart | None = None  # its resolution timeline (report_timeline), when the store can recompute it


@dataclass(frozen=True)
class BreachesView:
    """The first ``BREACH_ROWS`` breached tickets; ``total`` counts them all, ``more`` those not listed."""

    total: int
    rows: list[BreachRow]

    @property
    def has_timelines(self) -> bool:
        """Whether any listed ticket has its timeline drawn."""
        return any(r.timeline is not None for r in self.rows)

    @property
    def more(self) -> int:
        """How many breached tickets are not listed."""
        return max(0, self.total - len(self.rows))


def _minutes(r: dict[str, Any], metric: str) -> Minutes:
    """``metric``'s minutes of one ``v_sla_breaches`` row."""
    return Minutes(
        r[f"{metric}_elapsed_min"],
        r[f"{metric}_target_min"],
        r[f"{metric}_over_min"],
        r[f"{metric}_sla"] == "breached",
        None if is_missing(r[f"{metric}_policy"]) else str(r[f"{metric}_policy"]),
    )


def _timeline(ctx: ReportContext, r: dict[str, Any]) -> Chart | None:
    """The ticket's resolution timeline as a small chart, when it was read (``ReportData.timelines``)."""
    segments = ctx.data.timelines.get((str(r["source"]), str(r["ticket_id"])))
    if segments is None or segments.empty:
        return None
    return timeline_chart(segments, f"{ctx.t('timeline')} {r['ticket_id']}")


def breaches(ctx: ReportContext) -> BreachesView:
    """The breached tickets of the period (at most ``BREACH_ROWS`` of them listed)."""
    frame = ctx.data.breaches
    rows = [
        BreachRow(
            ticket_id=r["ticket_id"],
            ticket_type=str(r["ticket_type"]),
            priority=r["priority"],
            engineer=r["engineer"],
            team=r["team"],
            opened_at=r["opened_at"],
            breach=str(r["breach"]),
            still_open=bool(r["still_open"]),
            response=_minutes(r, "response"),
            resolution=_minutes(r, "resolution"),
            timeline=_timeline(ctx, r),
        )
        for r in frame.head(BREACH_ROWS).to_dict("records")
    ]
    return BreachesView(len(frame), rows)
