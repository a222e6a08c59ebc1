"""The time-in-status section (KPIS.md 3.1, issue #21): where each team's tickets waited.

From ``ticket_status_time`` of the tickets opened in the period, joined to the team each is credited to in
``ticket_facts``; business hours (on each ticket's resolution calendar). The chart stacks, per team, the mean
business hours a ticket spent in each status; the table gives the totals.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.analyst.report_bars import stacked_hbars
from pipeline.analyst.report_charts import Chart, Series
from pipeline.analyst.report_section import ReportContext

__all__ = ["STATUS_COLORS", "StatusTimeView", "status_time"]

SECONDS_PER_HOUR = 3600.0
#: Canonical statuses in their usual order, with their colours; other statuses follow in grey.
STATUS_COLORS = {
    "NEW": "#a9cce3",
    "IN_PROGRESS": "#1f4e79",
    "WAITING_CUSTOMER": "#e6a23c",
    "WAITING_THIRD_PARTY": "#d35400",
    "RESOLVED": "#2a9d8f",
    "CLOSED": "#7fb3a9",
    "CANCELLED": "#b8c2cc",
}
_OTHER_COLOR = "#8e9aa6"


@dataclass(frozen=True)
class TeamHours:
    """One team: tickets with status rows, business hours per status (``statuses`` order), and in total."""

    team: str
    tickets: int
    hours: tuple[float, ...]

    @property
    def total(self) -> float:
        """All its business hours."""
        return sum(self.hours)


@dataclass(frozen=True)
class StatusTimeView:
    """``stored``: the store has ticket_status_time rows at all; the statuses shown (those with time)."""

    stored: bool
    statuses: list[str]
    teams: list[TeamHours]
    chart: Chart | None
    legend: list[Series]


def _statuses(present: pd.Series) -> list[str]:
    """The statuses in canonical order, then the others by name."""
    known = [s for s in STATUS_COLORS if s in set(present)]
    return known + sorted(set(present) - set(known))


def status_time(ctx: ReportContext) -> StatusTimeView:
    """Business hours per team and status; the chart shows the mean per ticket, teams by total hours."""
    frame = ctx.data.status_time
    if frame is None:
        return StatusTimeView(False, [], [], None, [])
    frame = frame[frame["business_s"] > 0]
    if frame.empty:
        return StatusTimeView(True, [], [], None, [])
    statuses = _statuses(frame["status"])
    hours = frame.pivot_table(index="team", columns="status", values="business_s", aggfunc="sum", fill_value=0.0)
    hours = hours.reindex(columns=statuses, fill_value=0.0) / SECONDS_PER_HOUR
    tickets = frame.groupby("team")["tickets"].first()
    order = hours.sum(axis=1).sort_values(ascending=False, kind="stable").index
    teams = [TeamHours(str(team), int(tickets[team]), tuple(float(h) for h in hours.loc[team])) for team in order]
    mean = hours.loc[order].div(tickets[order], axis=0)
    legend = [
        Series(ctx.t(s, s), list(mean[s]), STATUS_COLORS.get(s, _OTHER_COLOR)) for s in statuses
    ]
    chart = stacked_hbars([t.team for t in teams], legend, title=ctx.t("status_time_chart"))
    return StatusTimeView(True, statuses, teams, chart, legend)
