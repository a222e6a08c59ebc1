"""The charts' geometry: scales, ticks and positions, as a list of marks per chart.

A ``Chart`` holds no markup: ``templates/charts.html.j2`` draws it as inline SVG (``charts.svg(chart)``),
one element per mark. Values may be None or NaN: a bar is then left out and a line has a gap.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from pipeline.analyst.report_format import is_missing

__all__ = [
    "PALETTE",
    "Bar",
    "Chart",
    "Label",
    "Line",
    "Path",
    "Series",
    "bar_chart",
    "hbar_chart",
    "line_chart",
]

PALETTE = {
    "accent": "#1f4e79",
    "second": "#2a9d8f",
    "bad": "#c0392b",
    "muted": "#b8c2cc",
    "grid": "#e3e7ec",
    "ink": "#1d2733",
    "text": "#6b7785",
}


@dataclass(frozen=True)
class Line:
    """A straight line; ``dash`` is an SVG dash array ("" for solid)."""

    kind: ClassVar[str] = "line"
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str = PALETTE["grid"]
    dash: str = ""
    width: float = 0.0


@dataclass(frozen=True)
class Bar:
    """A filled rectangle, corners rounded by ``rx``."""

    kind: ClassVar[str] = "bar"
    x: float
    y: float
    width: float
    height: float
    fill: str
    rx: float = 0.0


@dataclass(frozen=True)
class Label:
    """A piece of text anchored at (x, y)."""

    kind: ClassVar[str] = "label"
    x: float
    y: float
    text: str
    anchor: str = "start"
    size: int = 11
    color: str = PALETTE["text"]
    weight: str = "normal"


@dataclass(frozen=True)
class Path:
    """A polyline through ``points`` with a dot on each point."""

    kind: ClassVar[str] = "path"
    points: tuple[tuple[float, float], ...]
    color: str


@dataclass
class Chart:
    """One SVG chart: its size, its accessible title and what it draws."""

    width: int
    height: int
    title: str
    marks: list[Line | Bar | Label | Path] = field(default_factory=list)
    cls: str = "chart"  # the svg element's class: "chart", or "timeline" for a breached ticket's inline timeline


@dataclass(frozen=True)
class Series:
    """One line or bar series: its legend name, a value per x label, its colour."""

    name: str
    values: Sequence[float | None]
    color: str


_MAX_LABEL_PX = 190  # row labels longer than this are cut with an ellipsis




def _text_px(text: str, size: int = 12) -> float:
    """The approximate width of ``text`` in pixels (wide East Asian characters take a full em)."""
    return sum(size if unicodedata.east_asian_width(ch) in "WF" else size * 0.6 for ch in text)


def _fit(text: str, limit: float = _MAX_LABEL_PX) -> str:
    """``text`` cut with ``…`` to fit in ``limit`` pixels."""
    if _text_px(text) <= limit:
        return text
    while text and _text_px(text + "…") > limit:
        text = text[:-1]
    return text + "…"


def _left_margin(labels: Sequence[str]) -> float:
    """Room for the longest row label, between 60 and ``_MAX_LABEL_PX`` + 16 pixels."""
    return max(60.0, min(_MAX_LABEL_PX, max((_text_px(x) for x in labels), default=0.0))) + 16


def hbar_chart(
    items: Sequence[tuple[str, float | None, bool]],
    *,
    title: str,
    maximum: float = 100.0,
    note: str = "",
) -> Chart:
    """Horizontal bars, one per (label, value, muted); muted bars are grey and carry ``note``. A long label
    is cut with an ellipsis; the right margin leaves room for ``note``."""
    row, width = 26, 640
    left = max(110.0, _left_margin([name for name, _, _ in items]))
    right = 60 + (_text_px(f"  {note}", 11) if note else 0)
    height = max(1, len(items)) * row + 24
    inner = width - left - right
    chart = Chart(width, height, title, [Line(left, 4, left, height - 20)])
    for tick in (0.25, 0.5, 0.75, 1.0):
        x = left + inner * tick
        chart.marks.append(Line(x, 4, x, height - 20, dash="2,3"))
        chart.marks.append(Label(x, height - 6, f"{maximum * tick:.1f}", anchor="middle", size=10))
    for i, (name, value, muted) in enumerate(items):
        y = 6 + i * row
        chart.marks.append(Label(left - 8, y + 14, _fit(name), anchor="end", size=12, color=PALETTE["ink"]))
        if is_missing(value):
            chart.marks.append(Label(left + 6, y + 14, "—"))
            continue
        w = max(1.0, inner * min(float(value), maximum) / maximum)
        chart.marks.append(Bar(left, y + 3, w, row - 10, PALETTE["muted" if muted else "accent"], rx=3))
        suffix = f"  {note}" if muted and note else ""
        chart.marks.append(Label(left + w + 6, y + 14, f"{float(value):.1f}{suffix}", color=PALETTE["ink"]))
    return chart


def _y(value: float, top: float, bottom: float, low: float, high: float) -> float:
    """The y coordinate of ``value`` on a scale from ``low`` (at ``bottom``) to ``high`` (at ``top``)."""
    return bottom - (value - low) / (high - low) * (bottom - top) if high > low else bottom


def _y_range(values: Sequence[float], target: float | None, percent: bool) -> tuple[float, float, float]:
    """(low, high, tick step): percentages from a round floor under data and target to 1; counts from 0."""
    marks = [*values, *([target] if target is not None else [])]
    if not percent:
        high = max([*marks, 1.0]) * 1.1
        step = _nice_step(high / 4)
        return 0.0, step * np.ceil(high / step), step
    lowest = min([*marks, 1.0])
    step = 0.1 if lowest >= 0.5 else 0.2 if lowest >= 0.2 else 0.25
    return max(0.0, np.floor(lowest / step) * step - (step if lowest >= 0.5 else 0)), 1.0, step


def _nice_step(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 or 10 times a power of ten that is at least ``raw``."""
    magnitude = 10 ** np.floor(np.log10(raw)) if raw > 0 else 1.0
    return float(next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw))


@dataclass(frozen=True)
class _Plot:
    """The plotting area of a vertical chart and its y scale."""

    left: float
    right: float
    top: float
    bottom: float
    low: float
    high: float

    def y(self, value: float) -> float:
        """The y coordinate of ``value``."""
        return _y(value, self.top, self.bottom, self.low, self.high)


def _y_grid(plot: _Plot, step: float, percent: bool) -> list[Line | Label]:
    """Horizontal grid lines with their tick labels (percentages or counts)."""
    marks: list[Line | Label] = []
    for tick in np.arange(plot.low, plot.high + step / 2, step):
        y = plot.y(tick)
        marks.append(Line(plot.left, y, plot.right, y))
        text = f"{tick * 100:.0f}%" if percent else f"{tick:,.0f}"
        marks.append(Label(plot.left - 6, y + 4, text, anchor="end", size=10))
    return marks


def _target_line(plot: _Plot, target: float | None) -> list[Line]:
    """The dashed target line, if there is a target."""
    if target is None:
        return []
    y = plot.y(target)
    return [Line(plot.left, y, plot.right, y, stroke=PALETTE["bad"], dash="5,4", width=1.2)]


def _values(series: Sequence[Series]) -> list[float]:
    """Every present value of every series."""
    return [float(v) for s in series for v in s.values if not is_missing(v)]


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    target: float | None = None,
    percent: bool = True,
) -> Chart:
    """Lines over ``x_labels`` (gaps where a value is missing), y up to 100 % (or the max), target dashed."""
    width, height = 520, 220
    low, high, tick = _y_range(_values(series), target, percent)
    plot = _Plot(44, width - 12, 12, 186, low, high)
    step = (plot.right - plot.left) / max(1, len(x_labels) - 1)
    xs = (
        [plot.left + i * step for i in range(len(x_labels))]
        if len(x_labels) > 1
        else [plot.left + (width - plot.left) / 2]
    )
    chart = Chart(width, height, title, [*_y_grid(plot, tick, percent)])
    every = max(1, int(np.ceil(len(x_labels) / 8)))
    chart.marks += [
        Label(xs[i], plot.bottom + 16, name, anchor="middle", size=10)
        for i, name in enumerate(x_labels)
        if i % every == 0
    ]
    chart.marks += _target_line(plot, target)
    for one in series:
        chart.marks += _paths(xs, one.values, one.color, plot.y)
    return chart


def _paths(
    xs: Sequence[float], values: Sequence[float | None], color: str, to_y: Callable[[float], float]
) -> list[Path]:
    """One path per unbroken run of present values."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, v in zip(xs, values, strict=True):
        if is_missing(v):
            runs.append([])
        else:
            runs[-1].append((x, to_y(float(v))))
    return [Path(tuple(run), color) for run in runs if run]


def bar_chart(
    groups: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    percent: bool = True,
) -> Chart:
    """Grouped vertical bars: one group per label, one bar per series; values 0..1 when ``percent``."""
    width, height = 520, 220
    _, high, tick = (0.0, 1.0, 0.25) if percent else _y_range(_values(series), None, False)
    plot = _Plot(44, width - 12, 16, 186, 0.0, high)
    chart = Chart(width, height, title, [*_y_grid(plot, tick, percent)])
    slot = (plot.right - plot.left) / max(1, len(groups))
    bar = min(28.0, slot * 0.8 / max(1, len(series)))
    every = max(1, int(np.ceil(len(groups) / 10)))
    for g, name in enumerate(groups):
        x0 = plot.left + g * slot + (slot - bar * len(series)) / 2
        if g % every == 0:
            chart.marks.append(
                Label(plot.left + g * slot + slot / 2, plot.bottom + 16, name, anchor="middle", size=10)
            )
        for s, one in enumerate(series):
            chart.marks += _bar(plot, x0 + s * bar, bar, one.values[g], one.color, len(groups) <= 6, percent)
    return chart


def _bar(
    plot: _Plot, x: float, width: float, value: float | None, color: str, labelled: bool, percent: bool
) -> list[Bar | Label]:
    """One vertical bar (nothing for a missing value), with its value above it when ``labelled``."""
    if is_missing(value):
        return []
    y = plot.y(float(value))
    marks: list[Bar | Label] = [Bar(x, y, width - 2, max(0.5, plot.bottom - y), color)]
    if labelled:
        shown = f"{float(value) * 100:.0f}%" if percent else f"{float(value):,.0f}"
        marks.append(Label(x + (width - 2) / 2, y - 4, shown, anchor="middle", size=10, color=PALETTE["ink"]))
    return marks
