"""The exemptions section: the period's approved exemptions per engineer, with their reasons and approvers."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.analyst.report_section import ReportContext

__all__ = ["exemptions"]

SCOPES = ("response", "resolution", "ticket")


@dataclass(frozen=True)
class ExemptionRow:
    """One engineer's exemptions in the period: how many of each scope, why, and who approved them."""

    engineer: str
    counts: tuple[int, ...]  # per scope, in ``SCOPES`` order
    total: int
    reasons: list[tuple[str, int]]  # most frequent first
    approvers: list[str]
    tickets: list[str]


@dataclass(frozen=True)
class ExemptionsView:
    """The section's table, engineers with the most exemptions first."""

    rows: list[ExemptionRow]
    scopes: tuple[str, ...] = SCOPES

    @property
    def total(self) -> int:
        """Every exemption of the period."""
        return sum(r.total for r in self.rows)


def exemptions(ctx: ReportContext) -> ExemptionsView:
    """Exemptions counted in the period's KPIs (response and ticket ones at the ticket's opening, resolution
    ones at its resolution), grouped by the engineer credited with the ticket."""
    frame = ctx.data.exemptions
    if frame.empty:
        return ExemptionsView([])
    frame = frame.assign(engineer=frame["engineer"].fillna("—").astype("str"))
    rows = []
    for engineer, group in frame.groupby("engineer", sort=True):
        counts = tuple(int((group["scope"] == s).sum()) for s in SCOPES)
        reasons = group["reason"].astype("str").value_counts(sort=True)
        rows.append(ExemptionRow(
            engineer=str(engineer), counts=counts, total=len(group),
            reasons=sorted(((str(r), int(n)) for r, n in reasons.items()), key=lambda x: (-x[1], x[0])),
            approvers=sorted(group["approved_by"].astype("str").unique()),
            tickets=sorted(group["ticket_id"].astype("str").unique()),
        ))
    return ExemptionsView(sorted(rows, key=lambda r: (-r.total, r.engineer)))
