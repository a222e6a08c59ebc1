"""The backlog section (KPIS.md 4.2, issue #21) and the tickets at risk of a breach.

The backlog: open tickets at the end of each local day of the period by age (``kpi_backlog`` summed over
engineers, ticket types and priorities), with the overdue and paused ones. At risk: open tickets whose
response or resolution falls due within a day after the period's end (or after ``as_of`` while the period is
not over), by engineer, each due time in the reporting timezone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from kpis.backlog import AGE_COLUMNS
from pipeline.analyst.report_bars import stacked_columns
from pipeline.analyst.report_charts import Chart, Series
from pipeline.analyst.report_section import ReportContext
from pipeline.analyst.report_tables import RISK_WINDOW

__all__ = ["AGE_COLORS", "AtRiskView", "BacklogView", "at_risk", "backlog"]

#: One colour per age bucket, light (new) to dark (old).
AGE_COLORS = ("#a9cce3", "#5dade2", "#2e86c1", "#1f4e79", "#c0392b")


@dataclass(frozen=True)
class BacklogDay:
    """One day's open tickets at its end: in total, per age bucket (``AGE_COLUMNS`` order), overdue, paused."""

    day: date
    open: int
    ages: tuple[int, ...]
    overdue: int
    paused: int
    oldest_opened_at: pd.Timestamp | None


@dataclass(frozen=True)
class BacklogView:
    """``stored``: the store has kpi_backlog rows at all; ``last``: the period's last known day; ``peak``: the
    day with the most open tickets (the first of them); ``days`` every day, for the table."""

    stored: bool
    chart: Chart | None
    legend: list[Series]
    last: BacklogDay | None
    peak: BacklogDay | None
    days: list[BacklogDay]


def _backlog_day(row: dict) -> BacklogDay:
    """A ``read_backlog`` row as counts."""
    oldest = row["oldest_opened_at"]
    return BacklogDay(
        day=row["day"],
        open=int(row["open_count"]),
        ages=tuple(int(row[c]) for c in AGE_COLUMNS),
        overdue=int(row["overdue_count"]),
        paused=int(row["paused_count"]),
        oldest_opened_at=None if pd.isna(oldest) else oldest,
    )


def backlog(ctx: ReportContext) -> BacklogView:
    """The period's daily backlog as a column per day stacked by age, and the last and peak days."""
    frame = ctx.data.backlog
    if frame is None:
        return BacklogView(False, None, [], None, None, [])
    days = [_backlog_day(r) for r in frame.to_dict("records")]
    if not days:
        return BacklogView(True, None, [], None, None, [])
    legend = [Series(ctx.t(c), [d.ages[i] for d in days], AGE_COLORS[i]) for i, c in enumerate(AGE_COLUMNS)]
    chart = stacked_columns([d.day.strftime("%m-%d") for d in days], legend, title=ctx.t("backlog_chart"))
    peak = max(days, key=lambda d: d.open)  # the first day with the most open tickets
    return BacklogView(True, chart, legend, days[-1], peak, days)


# -- at risk ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RiskRow:
    """One metric of one open ticket that falls due in the window, with the policy that sets its target."""

    ticket_id: str
    ticket_type: str
    priority: str | None
    status: str | None
    team: str | None
    metric: str  # response / resolution
    due_at: pd.Timestamp
    policy: str | None


@dataclass(frozen=True)
class RiskEngineer:
    """An engineer's metrics falling due, earliest first."""

    engineer: str
    rows: list[RiskRow]


@dataclass(frozen=True)
class AtRiskView:
    """The window ``[since, until)`` the list looks at, whether ``since`` is ``as_of`` (``current``), and
    the engineers with something falling due in it (most first, then by name)."""

    since: pd.Timestamp
    until: pd.Timestamp
    current: bool
    engineers: list[RiskEngineer]

    @property
    def total(self) -> int:
        """How many (ticket, metric) pairs fall due."""
        return sum(len(e.rows) for e in self.engineers)


def _risk_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per ticket and metric falling due, the metric's due time and policy beside it."""
    parts = [
        frame[frame[f"{metric}_risk"]].assign(
            metric=metric, due=frame[f"{metric}_due_at"], policy=frame[f"{metric}_policy"]
        )
        for metric in ("response", "resolution")
    ]
    rows = pd.concat(parts, ignore_index=True)
    return rows.sort_values(["engineer", "due", "ticket_id", "metric"], kind="stable")


def _risk_row(r: dict) -> RiskRow:
    """A ``_risk_rows`` record as a row of the list."""
    return RiskRow(str(r["ticket_id"]), str(r["ticket_type"]), r["priority"], r["status"], r["team"],
                   r["metric"], r["due"], r["policy"])


def at_risk(ctx: ReportContext) -> AtRiskView:
    """The open tickets falling due within ``RISK_WINDOW`` after the period's end or ``as_of``, by engineer."""
    found = ctx.data.at_risk
    rows = _risk_rows(found.tickets)
    engineers = [
        RiskEngineer(str(name), [_risk_row(r) for r in group.to_dict("records")])
        for name, group in rows.groupby("engineer", sort=True)
    ]
    engineers.sort(key=lambda e: -len(e.rows))  # stable: names stay in order among equals
    return AtRiskView(found.since, found.since + RISK_WINDOW, found.current, engineers)
