"""Bar charts of the client, backlog and time-in-status sections: stacked columns, stacked horizontal bars,
and horizontal rate bars that carry their volume.

Geometry only, like ``report_charts``: a ``Chart`` of marks that ``templates/charts.html.j2`` draws as inline
SVG. Values may be None or NaN: that bar (or that piece of a stack) is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.analyst.report_charts import (
    PALETTE,
    Bar,
    Chart,
    Label,
    Line,
    Series,
    _fit,
    _left_margin,
    _nice_step,
    _Plot,
    _y_grid,
)
from pipeline.analyst.report_format import is_missing

__all__ = ["RateBar", "rate_bars", "stacked_columns", "stacked_hbars"]

_ROW = 26  # height of one horizontal bar's row
def _present(value: float | None) -> float:
    """A value as a float, 0 for a missing one."""
    return 0.0 if is_missing(value) else float(value)


def _count_text(value: float) -> str:
    """A count or an amount for a label: whole numbers with separators, others with one decimal."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


# -- stacked columns -----------------------------------------------------------------------------
def stacked_columns(groups: Sequence[str], series: Sequence[Series], *, title: str) -> Chart:
    """A column per group with ``series`` stacked bottom-up (first series at the bottom), y from 0.

    Each column's total is written above it when there are at most 16 columns.
    """
    width, height = 520, 220
    totals = [sum(_present(s.values[g]) for s in series) for g in range(len(groups))]
    step = _nice_step(max([*totals, 1.0]) * 1.1 / 4)
    plot = _Plot(44, width - 12, 16, 186, 0.0, step * np.ceil(max([*totals, 1.0]) * 1.1 / step))
    chart = Chart(width, height, title, [*_y_grid(plot, step, False)])
    slot = (plot.right - plot.left) / max(1, len(groups))
    bar = min(28.0, slot * 0.75)
    every = max(1, int(np.ceil(len(groups) / 10)))
    for g, name in enumerate(groups):
        x = plot.left + g * slot + (slot - bar) / 2
        if g % every == 0:
            chart.marks.append(Label(x + bar / 2, plot.bottom + 16, name, anchor="middle", size=10))
        chart.marks += _stack(plot, x, bar, [(_present(s.values[g]), s.color) for s in series])
        if len(groups) <= 16 and totals[g] > 0:
            y = plot.y(totals[g]) - 4
            chart.marks.append(Label(x + bar / 2, y, _count_text(totals[g]), anchor="middle", size=10,
                                     color=PALETTE["ink"]))
    return chart


def _stack(plot: _Plot, x: float, width: float, pieces: Sequence[tuple[float, str]]) -> list[Bar]:
    """One column's pieces, each ``(value, colour)`` on top of the ones before it; empty pieces left out."""
    marks, base = [], 0.0
    for value, color in pieces:
        if value <= 0:
            continue
        top, bottom = plot.y(base + value), plot.y(base)
        marks.append(Bar(x, top, width, max(0.5, bottom - top), color))
        base += value
    return marks


# -- stacked horizontal bars ---------------------------------------------------------------------
def _x_axis(chart: Chart, left: float, inner: float, high: float, bottom: float) -> None:
    """Dashed vertical grid lines with their values at a quarter, half, three quarters and all of ``high``."""
    for tick in (0.25, 0.5, 0.75, 1.0):
        x = left + inner * tick
        chart.marks.append(Line(x, 4, x, bottom, dash="2,3"))
        chart.marks.append(Label(x, bottom + 14, _count_text(round(high * tick, 1)), anchor="middle", size=10))


def stacked_hbars(rows: Sequence[str], series: Sequence[Series], *, title: str) -> Chart:
    """A horizontal bar per row label with ``series`` stacked left to right; the total after each bar."""
    width = 640
    left, right = _left_margin(rows), 64.0
    height = max(2, len(rows)) * _ROW + 24  # room for two rows at least: a lone bar stays legible
    inner = width - left - right
    totals = [sum(_present(s.values[r]) for s in series) for r in range(len(rows))]
    high = _nice_step(max([*totals, 1.0]) / 4) * 4
    chart = Chart(width, height, title, [Line(left, 4, left, height - 20)])
    _x_axis(chart, left, inner, high, height - 20)
    for r, name in enumerate(rows):
        y = 6 + r * _ROW
        chart.marks.append(Label(left - 8, y + 14, _fit(name), anchor="end", size=12, color=PALETTE["ink"]))
        x = left
        for one in series:
            w = inner * _present(one.values[r]) / high
            if w > 0:
                chart.marks.append(Bar(x, y + 3, w, _ROW - 10, one.color))
                x += w
        # an amount (hours), written as the table beside it writes it: one decimal, 58.0 not 58
        chart.marks.append(Label(x + 6, y + 14, f"{totals[r]:,.1f}", color=PALETTE["ink"]))
    return chart


# -- rate bars -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RateBar:
    """One row of a rate chart: its label, the rate (0..1, None when there is none) and the text after it."""

    label: str
    rate: float | None
    note: str


def rate_bars(items: Sequence[RateBar], *, title: str, target: float | None = None) -> Chart:
    """A horizontal bar per item from 0 to 100 %, its rate and note after it; the target as a dashed line.

    A bar under the target is drawn in the colour for a miss.
    """
    width = 640
    left, right = _left_margin([i.label for i in items]), 130.0
    height = max(2, len(items)) * _ROW + 24
    inner = width - left - right
    chart = Chart(width, height, title, [Line(left, 4, left, height - 20)])
    _x_axis(chart, left, inner, 100.0, height - 20)
    for i, item in enumerate(items):
        y = 6 + i * _ROW
        chart.marks.append(Label(left - 8, y + 14, _fit(item.label), anchor="end", size=12, color=PALETTE["ink"]))
        if is_missing(item.rate):
            chart.marks.append(Label(left + 6, y + 14, f"—  {item.note}"))
            continue
        rate = float(item.rate)  # type: ignore[arg-type]
        w = max(1.0, inner * min(rate, 1.0))
        missed = target is not None and rate < target
        chart.marks.append(Bar(left, y + 3, w, _ROW - 10, PALETTE["bad" if missed else "accent"], rx=3))
        chart.marks.append(Label(left + w + 6, y + 14, f"{rate * 100:.1f}%  {item.note}", color=PALETTE["ink"]))
    if target is not None:
        x = left + inner * target
        chart.marks.append(Line(x, 2, x, height - 20, stroke=PALETTE["bad"], dash="5,4", width=1.2))
    return chart
