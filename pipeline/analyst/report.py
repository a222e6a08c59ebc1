"""``itsm-kpi report``: one self-contained HTML scorecard report for a period, in Chinese or English.

The page needs no network: the CSS is inlined and every chart is an inline SVG drawn here. It shows

1. headline tiles for the whole team, against the targets;
2. the scorecard ranking (scores, and each KPI's score against its configured target);
3. every engineer's KPIs against the evaluation scheme's targets (response < 30 min, first fix >= 80 %,
   CSAT >= 85 %, and every target the scorecard configures), low-sample engineers marked;
4. weekly trends over the period (daily for a week or a day);
5. SLA compliance by priority;
6. the tickets whose response or resolution SLA was breached.

Numbers come from the stored tables through the analyst views' SQL (``pipeline.store.views``), so the report
agrees with ``itsm-kpi query``. Ticket lists are placed in the period by their anchor's local date in
``timezone`` (the reporting timezone; the store does not record it). All data is escaped.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.analyst.query import EXIT_STORE, QueryError, StoreQuery
from pipeline.analyst.report_data import TREND_RATES as _RATES
from pipeline.analyst.report_data import ReportData, read_report_data
from pipeline.analyst.report_period import Period, ReportError, parse_period
from pipeline.store.errors import StoreError

__all__ = [
    "LABELS",
    "Period",
    "ReportData",
    "ReportError",
    "Target",
    "build_report",
    "parse_period",
    "read_report_data",
    "render_report",
]

log = logging.getLogger(__name__)

LANGS = ("zh", "en")
BREACH_ROWS = 200


# -- labels: one dictionary, both languages --------------------------------------------------------
LABELS: dict[str, dict[str, str]] = {
    "title": {"en": "IT service KPI report", "zh": "IT 运维服务 KPI 考核报告"},
    "period": {"en": "Period", "zh": "考核周期"},
    "as_of": {"en": "Data as of", "zh": "数据截至"},
    "generated": {"en": "Generated", "zh": "生成时间"},
    "timezone": {"en": "Time zone", "zh": "时区"},
    "kpi_version": {"en": "KPI definitions", "zh": "指标口径"},
    "overview": {"en": "Team overview", "zh": "团队总览"},
    "ranking": {"en": "Scorecard ranking", "zh": "量化考核排名"},
    "ranking_note": {
        "en": "Score = weighted mean of the KPI scores x 100; each KPI scores min(1, value / target). "
        "Engineers with a low sample are reported but not ranked.",
        "zh": "得分 = 各指标得分的加权平均 × 100；单项得分 = min(1, 实际值 / 目标值)。样本不足的人员列出但不参与排名。",
    },
    "engineer_kpis": {"en": "Engineer KPIs against targets", "zh": "人员指标与考核目标对比"},
    "engineer_kpis_note": {
        "en": "Over all ticket types; rates re-aggregated from their counts. ✓ meets the target, ✗ misses it.",
        "zh": "汇总全部工单类型；比率由分子分母重新计算。✓ 达标，✗ 未达标。",
    },
    "trends": {"en": "Weekly trends", "zh": "周趋势"},
    "trends_daily": {"en": "Daily trends", "zh": "日趋势"},
    "trends_note": {
        "en": "Whole team, per week starting on the date shown; dashed line = target.",
        "zh": "全团队，按周统计（横轴为周一日期）；虚线为目标值。",
    },
    "trends_note_daily": {
        "en": "Whole team, per day; dashed line = target.",
        "zh": "全团队，按日统计；虚线为目标值。",
    },
    "volume": {"en": "Tickets opened and resolved", "zh": "新建与解决工单数"},
    "sla_priority": {"en": "SLA compliance by priority", "zh": "按优先级的 SLA 达标率"},
    "sla_priority_note": {
        "en": "Response SLA by the priority at the response (tickets opened in the period); resolution SLA "
        "by the priority at the resolution (tickets resolved in the period). In-progress tickets excluded.",
        "zh": "响应 SLA 按响应时的优先级统计（本期新建工单）；解决 SLA 按解决时的优先级统计（本期解决工单）。处理中工单不计入。",
    },
    "breaches": {"en": "Tickets with a breached SLA", "zh": "SLA 超时工单"},
    "breaches_note": {
        "en": "Response breaches of tickets opened in the period; resolution breaches of tickets resolved in it, "
        "and of tickets still open. Business minutes.",
        "zh": "本期新建工单的响应超时；本期解决及仍未解决工单的解决超时。时长为工作分钟。",
    },
    "breaches_more": {
        "en": "{n} more: query v_sla_breaches for all of them.",
        "zh": "另有 {n} 条：完整列表请查询视图 v_sla_breaches。",
    },
    "no_data": {"en": "No data for this period.", "zh": "本期无数据。"},
    "no_breaches": {"en": "No SLA breaches in this period.", "zh": "本期无 SLA 超时工单。"},
    "rank": {"en": "Rank", "zh": "排名"},
    "engineer": {"en": "Engineer", "zh": "人员"},
    "score": {"en": "Score", "zh": "得分"},
    "kpis_scored": {"en": "KPIs scored", "zh": "计分指标数"},
    "low_sample": {"en": "low sample", "zh": "样本不足"},
    "not_ranked": {"en": "not ranked", "zh": "不排名"},
    "target": {"en": "target", "zh": "目标"},
    "weight": {"en": "weight", "zh": "权重"},
    "opened": {"en": "Opened", "zh": "新建"},
    "resolved": {"en": "Resolved", "zh": "解决"},
    "priority": {"en": "Priority", "zh": "优先级"},
    "response": {"en": "Response", "zh": "响应"},
    "resolution": {"en": "Resolution", "zh": "解决"},
    "met": {"en": "met", "zh": "达标"},
    "breached": {"en": "breached", "zh": "超时"},
    "compliance": {"en": "compliance", "zh": "达标率"},
    "ticket": {"en": "Ticket", "zh": "工单"},
    "type": {"en": "Type", "zh": "类型"},
    "team": {"en": "Team", "zh": "组"},
    "opened_at": {"en": "Opened", "zh": "报告时间"},
    "breach": {"en": "Breach", "zh": "超时项"},
    "elapsed": {"en": "elapsed", "zh": "用时"},
    "over": {"en": "over by", "zh": "超出"},
    "both": {"en": "Both", "zh": "响应+解决"},
    "still_open": {"en": "Open", "zh": "未解决"},
    "incident": {"en": "incident", "zh": "事件"},
    "request": {"en": "request", "zh": "服务请求"},
    "maintenance": {"en": "maintenance", "zh": "运维任务"},
    "breached_tickets": {"en": "SLA breaches", "zh": "SLA 超时工单"},
    "footer": {
        "en": "itsm-kpi · KPI definitions in KPIS.md · tables and views in docs/tables.md",
        "zh": "itsm-kpi · 指标口径见 KPIS.md · 表与视图说明见 docs/tables.md",
    },
    # KPIs
    "response_sla_rate": {"en": "Response SLA", "zh": "响应达标率"},
    "resolution_sla_rate": {"en": "Resolution SLA", "zh": "解决时限达标率"},
    "first_fix_rate": {"en": "First-fix rate", "zh": "一次解决率"},
    "reopen_rate": {"en": "Reopen rate", "zh": "重开率"},
    "accuracy_rate": {"en": "Diagnosis accuracy", "zh": "诊断准确率"},
    "csat_rate": {"en": "CSAT", "zh": "满意度"},
    "maintenance_on_time_rate": {"en": "Maintenance on time", "zh": "运维任务按时率"},
    "induced_incidents": {"en": "Induced incidents", "zh": "操作引发故障"},
    "response_mean_min": {"en": "Mean response (business min)", "zh": "平均响应（工作分钟）"},
    "resolution_mean_min": {"en": "Mean resolution (business min)", "zh": "平均解决（工作分钟）"},
    "opened_count": {"en": "Opened", "zh": "新建工单"},
    "resolved_count": {"en": "Resolved", "zh": "解决工单"},
}


def label(key: str, lang: str) -> str:
    """The label ``key`` in ``lang`` (the key itself when the dictionary lacks it)."""
    return LABELS.get(key, {}).get(lang, key)


# -- targets ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """A KPI target: ``value`` to reach (at least, or at most when ``higher_is_better`` is false)."""

    value: float
    higher_is_better: bool = True

    def met(self, actual: float | None) -> bool | None:
        """Whether ``actual`` meets the target; None when there is no value."""
        if actual is None or pd.isna(actual):
            return None
        return actual >= self.value if self.higher_is_better else actual <= self.value


#: The evaluation scheme's own targets (驻场人员考核方案); the scorecard's configured targets add to them.
SCHEME_TARGETS: dict[str, Target] = {
    "response_mean_min": Target(30.0, higher_is_better=False),
    "first_fix_rate": Target(0.80),
    "csat_rate": Target(0.85),
}
ENGINEER_KPIS = (
    "response_mean_min",
    "response_sla_rate",
    "resolution_sla_rate",
    "first_fix_rate",
    "reopen_rate",
    "accuracy_rate",
    "csat_rate",
    "maintenance_on_time_rate",
    "induced_incidents",
)
RATE_KPIS = {
    "response_sla_rate",
    "resolution_sla_rate",
    "first_fix_rate",
    "reopen_rate",
    "accuracy_rate",
    "csat_rate",
    "maintenance_on_time_rate",
}


def _targets(parts: pd.DataFrame, extra: Mapping[str, Target] | None) -> dict[str, Target]:
    """Scheme targets, then the scorecard's configured ones, then the caller's."""
    targets = dict(SCHEME_TARGETS)
    if len(parts):
        configured = parts.drop_duplicates("kpi")
        for row in configured.itertuples():
            targets[row.kpi] = Target(float(row.target), bool(row.higher_is_better))
    targets.update(extra or {})
    return targets


# -- formatting ------------------------------------------------------------------------------------
def esc(value: Any) -> str:
    """Any value as escaped HTML text (quotes included)."""
    return html.escape("" if value is None else str(value), quote=True)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and np.isnan(value)) or value is pd.NA


def fmt_value(kpi: str, value: Any) -> str:
    """A KPI value for the page: rates as percentages, minutes with one decimal, counts as integers."""
    if _missing(value):
        return "—"
    if kpi in RATE_KPIS:
        return f"{float(value) * 100:.1f}%"
    if kpi.endswith("_min"):
        return f"{float(value):,.1f}"
    return f"{float(value):,.0f}"


def fmt_target(kpi: str, target: Target) -> str:
    """``≥ 80.0%`` or ``≤ 30.0``."""
    sign = "≥" if target.higher_is_better else "≤"
    if kpi == "induced_incidents":
        sign = "="
    return f"{sign} {fmt_value(kpi, target.value)}"


def _fmt_time(value: Any, timezone: str) -> str:
    if _missing(value) or value is pd.NaT:
        return "—"
    return pd.Timestamp(value).tz_convert(timezone).strftime("%Y-%m-%d %H:%M")


# -- charts: inline SVG ----------------------------------------------------------------------------
PALETTE = {
    "accent": "#1f4e79",
    "second": "#2a9d8f",
    "third": "#e9a23b",
    "bad": "#c0392b",
    "muted": "#b8c2cc",
    "grid": "#e3e7ec",
    "ink": "#1d2733",
    "text": "#6b7785",
}


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{esc(title)}">'
        f"<title>{esc(title)}</title>{''.join(body)}</svg>"
    )


def _text(
    x: float,
    y: float,
    value: str,
    *,
    anchor: str = "start",
    size: int = 11,
    color: str = PALETTE["text"],
    weight: str = "normal",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{color}" '
        f'font-weight="{weight}">{esc(value)}</text>'
    )


def hbar_chart(
    items: Sequence[tuple[str, float | None, bool]],
    *,
    title: str,
    maximum: float = 100.0,
    value_format: Callable[[float], str] = lambda v: f"{v:.1f}",
    note: str = "",
) -> str:
    """Horizontal bars, one per (label, value, muted); muted bars are grey and carry ``note``."""
    row, left, right, width = 26, 110, 60, 640
    height = max(1, len(items)) * row + 24
    inner = width - left - right
    body = [f'<line x1="{left}" y1="4" x2="{left}" y2="{height - 20}" stroke="{PALETTE["grid"]}"/>']
    for tick in (0.25, 0.5, 0.75, 1.0):
        x = left + inner * tick
        body.append(
            f'<line x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{height - 20}" stroke="{PALETTE["grid"]}" '
            'stroke-dasharray="2,3"/>'
        )
        body.append(_text(x, height - 6, value_format(maximum * tick), anchor="middle", size=10))
    for i, (name, value, muted) in enumerate(items):
        y = 6 + i * row
        body.append(_text(left - 8, y + 14, name, anchor="end", size=12, color=PALETTE["ink"]))
        if value is None or _missing(value):
            body.append(_text(left + 6, y + 14, "—", size=11))
            continue
        w = max(1.0, inner * min(float(value), maximum) / maximum)
        color = PALETTE["muted"] if muted else PALETTE["accent"]
        body.append(
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 10}" rx="3" fill="{color}"/>'
        )
        suffix = f"  {note}" if muted and note else ""
        body.append(
            _text(left + w + 6, y + 14, value_format(float(value)) + suffix, size=11, color=PALETTE["ink"])
        )
    return _svg(width, height, body, title)


def _y(value: float, top: float, bottom: float, low: float, high: float) -> float:
    return bottom - (value - low) / (high - low) * (bottom - top) if high > low else bottom


def _y_range(values: Sequence[float], target: float | None, percent: bool) -> tuple[float, float, float]:
    """(low, high, tick step): percentages from a round floor below the data and target to 100 %; counts from 0."""
    marks = [*values, *([target] if target is not None else [])]
    if not percent:
        high = max([*marks, 1.0]) * 1.1
        step = _nice_step(high / 4)
        return 0.0, step * np.ceil(high / step), step
    lowest = min([*marks, 1.0])
    step = 0.1 if lowest >= 0.5 else 0.2 if lowest >= 0.2 else 0.25
    return max(0.0, np.floor(lowest / step) * step - (step if lowest >= 0.5 else 0)), 1.0, step


def _nice_step(raw: float) -> float:
    magnitude = 10 ** np.floor(np.log10(raw)) if raw > 0 else 1.0
    return float(next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw))


def _y_grid(
    low: float, high: float, step: float, x0: float, x1: float, top: float, bottom: float, percent: bool
) -> list[str]:
    body = []
    for tick in np.arange(low, high + step / 2, step):
        y = _y(tick, top, bottom, low, high)
        body.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="{PALETTE["grid"]}"/>')
        body.append(
            _text(x0 - 6, y + 4, f"{tick * 100:.0f}%" if percent else f"{tick:,.0f}", anchor="end", size=10)
        )
    return body


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None], str]],
    *,
    title: str,
    target: float | None = None,
    percent: bool = True,
) -> str:
    """Lines over ``x_labels`` (gaps where a value is None), y from 0 to 100 % (or to the max), target dashed."""
    width, height, left, right, top, bottom = 520, 220, 44, 12, 12, 186
    values = [float(v) for _, vs, _ in series for v in vs if not _missing(v)]
    low, high, tick = _y_range(values, target, percent)
    step = (width - left - right) / max(1, len(x_labels) - 1)
    xs = [left + i * step for i in range(len(x_labels))] if len(x_labels) > 1 else [left + (width - left) / 2]
    body = _y_grid(low, high, tick, left, width - right, top, bottom, percent)
    every = max(1, int(np.ceil(len(x_labels) / 8)))
    for i, name in enumerate(x_labels):
        if i % every == 0:
            body.append(_text(xs[i], bottom + 16, name, anchor="middle", size=10))
    if target is not None:
        y = _y(target, top, bottom, low, high)
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{PALETTE["bad"]}" '
            'stroke-width="1.2" stroke-dasharray="5,4"/>'
        )
    for _, vals, color in series:
        body += _polyline(xs, vals, color, lambda v: _y(v, top, bottom, low, high))
    return _svg(width, height, body, title)


def _polyline(
    xs: Sequence[float], values: Sequence[float | None], color: str, to_y: Callable[[float], float]
) -> list[str]:
    parts, run = [], []
    for x, v in zip(xs, values, strict=True):
        if _missing(v):
            if run:
                parts.append(run)
            run = []
            continue
        run.append((x, to_y(float(v))))
    if run:
        parts.append(run)
    out = []
    for run in parts:
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
        out.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.8" fill="{color}"/>' for x, y in run]
    return out


def bar_chart(
    groups: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None], str]],
    *,
    title: str,
    percent: bool = True,
    target: float | None = None,
) -> str:
    """Grouped vertical bars: one group per label, one bar per series; values 0..1 when ``percent``."""
    width, height, left, right, top, bottom = 520, 220, 44, 12, 16, 186
    values = [float(v) for _, vs, _ in series for v in vs if not _missing(v)]
    _, high, tick = _y_range(values, None, False) if not percent else (0.0, 1.0, 0.25)
    body = _y_grid(0.0, high, tick, left, width - right, top, bottom, percent)
    slot = (width - left - right) / max(1, len(groups))
    bar = min(28.0, slot * 0.8 / max(1, len(series)))
    every = max(1, int(np.ceil(len(groups) / 10)))
    for g, name in enumerate(groups):
        x0 = left + g * slot + (slot - bar * len(series)) / 2
        if g % every == 0:
            body.append(_text(left + g * slot + slot / 2, bottom + 16, name, anchor="middle", size=10))
        for s, (_, vals, color) in enumerate(series):
            value = vals[g]
            if _missing(value):
                continue
            y = _y(float(value), top, bottom, 0, high)
            body.append(
                f'<rect x="{x0 + s * bar:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" '
                f'height="{max(0.5, bottom - y):.1f}" fill="{color}"/>'
            )
            if len(groups) <= 6:
                shown = f"{float(value) * 100:.0f}%" if percent else f"{float(value):,.0f}"
                body.append(
                    _text(
                        x0 + s * bar + (bar - 2) / 2,
                        y - 4,
                        shown,
                        anchor="middle",
                        size=10,
                        color=PALETTE["ink"],
                    )
                )
    if target is not None:
        y = _y(target, top, bottom, 0, high)
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{PALETTE["bad"]}" '
            'stroke-width="1.2" stroke-dasharray="5,4"/>'
        )
    return _svg(width, height, body, title)


def _legend(series: Sequence[tuple[str, str]], target_label: str | None = None) -> str:
    items = [f'<span><i style="background:{color}"></i>{esc(name)}</span>' for name, color in series]
    if target_label:
        items.append(
            f'<span><i style="background:{PALETTE["bad"]};height:2px;vertical-align:3px"></i>'
            f"{esc(target_label)}</span>"
        )
    return f'<div class="legend">{"".join(items)}</div>'


# -- sections --------------------------------------------------------------------------------------
def _panel(title: str, note: str, body: str) -> str:
    note_html = f'<p class="note">{esc(note)}</p>' if note else ""
    return f'<section class="panel"><h2>{esc(title)}</h2>{note_html}{body}</section>'


def _sum(frame: pd.DataFrame, column: str) -> float:
    return float(frame[column].sum()) if column in frame and len(frame) else 0.0


def team_totals(engineers: pd.DataFrame) -> dict[str, float | None]:
    """The whole team's KPIs over the period, re-aggregated from the engineers' counts."""

    def ratio(num: float, den: float) -> float | None:
        return num / den if den else None

    met, breached = _sum(engineers, "response_sla_met"), _sum(engineers, "response_sla_breached")
    rmet, rbreached = _sum(engineers, "resolution_sla_met"), _sum(engineers, "resolution_sla_breached")
    weighted = (engineers["response_mean_min"] * engineers["response_n"]).sum(min_count=1)
    return {
        "opened_count": _sum(engineers, "opened_count"),
        "resolved_count": _sum(engineers, "resolved_count"),
        "response_mean_min": ratio(float(weighted), _sum(engineers, "response_n"))
        if not _missing(weighted)
        else None,
        "response_sla_rate": ratio(met, met + breached),
        "resolution_sla_rate": ratio(rmet, rmet + rbreached),
        "first_fix_rate": ratio(_sum(engineers, "first_fix_count"), _sum(engineers, "resolved_count")),
        "csat_rate": ratio(_sum(engineers, "csat_satisfied"), _sum(engineers, "csat_answered")),
    }


def _tile(name: str, value: str, state: bool | None, target_text: str) -> str:
    css = "" if state is None else (" ok" if state else " bad")
    target_html = f'<div class="target">{esc(target_text)}</div>' if target_text else ""
    return (
        f'<div class="tile{css}"><div class="label">{esc(name)}</div>'
        f'<div class="value">{esc(value)}</div>{target_html}</div>'
    )


def tiles_html(data: ReportData, targets: Mapping[str, Target], lang: str) -> str:
    """Headline numbers for the team."""
    totals = team_totals(data.engineers)
    tiles = []
    for kpi, value in totals.items():
        target = targets.get(kpi)
        text = f"{label('target', lang)} {fmt_target(kpi, target)}" if target else ""
        tiles.append(
            _tile(label(kpi, lang), fmt_value(kpi, value), target.met(value) if target else None, text)
        )
    tiles.append(_tile(label("breached_tickets", lang), f"{len(data.breaches):,}", None, ""))
    return f'<div class="tiles">{"".join(tiles)}</div>'


def _ordered_scorecard(card: pd.DataFrame) -> pd.DataFrame:
    card = card.assign(_unranked=card["rank"].isna())
    return card.sort_values(["_unranked", "rank", "score"], ascending=[True, True, False]).reset_index(
        drop=True
    )


def _engineer_cell(name: str, low_sample: bool, lang: str) -> str:
    badge = f'<span class="badge">{esc(label("low_sample", lang))}</span>' if low_sample else ""
    return f"<td>{esc(name)}{badge}</td>"


def _score_cell(score: Any) -> str:
    if _missing(score):
        return '<td class="num">—</td>'
    width = max(0.0, min(100.0, float(score)))
    return f'<td class="num"><span class="scorebar"><i style="width:{width:.0f}%"></i></span>{float(score):.1f}</td>'


def _kpi_cell(kpi: str, value: Any, target: Target | None, extra: str = "") -> str:
    state = target.met(value) if target else None
    css = "num" if state is None else ("num ok" if state else "num bad")
    mark = "" if state is None else f'<span class="mark">{"✓" if state else "✗"}</span>'
    return f'<td class="{css}">{esc(fmt_value(kpi, value))}{mark}{extra}</td>'


def _scorecard_kpis(parts: pd.DataFrame) -> list[str]:
    """The configured KPIs, heaviest weight first."""
    if parts.empty:
        return []
    weights = parts.drop_duplicates("kpi")[["kpi", "weight"]]
    return list(weights.sort_values(["weight", "kpi"], ascending=[False, True])["kpi"])


def ranking_html(data: ReportData, targets: Mapping[str, Target], lang: str) -> str:
    """The scorecard: a bar per engineer, then each KPI's score against its configured target."""
    card = _ordered_scorecard(data.scorecard)
    items = [
        (
            str(r.engineer),
            None if _missing(r.score) else float(r.score),
            bool(r.low_sample or _missing(r.rank)),
        )
        for r in card.itertuples()
    ]
    chart = hbar_chart(items, title=label("ranking", lang), note=label("not_ranked", lang))
    kpis = _scorecard_kpis(data.parts)
    weights = data.parts.drop_duplicates("kpi").set_index("kpi")["weight"] if kpis else pd.Series(dtype=float)
    head = "".join(
        f'<th class="num">{esc(label(k, lang))}<small>{esc(fmt_target(k, targets[k]))} · '
        f"{esc(label('weight', lang))} {float(weights[k]) * 100:.0f}%</small></th>"
        for k in kpis
        if k in targets
    )
    values = data.parts.set_index(["engineer", "kpi"])["value"] if kpis else pd.Series(dtype=float)
    rows = []
    for r in card.itertuples():
        rank = "—" if _missing(r.rank) else f"{int(r.rank)}"
        cells = "".join(_kpi_cell(k, values.get((r.engineer, k)), targets[k]) for k in kpis if k in targets)
        rows.append(
            f'<tr class="{"low" if r.low_sample else ""}"><td class="num">{esc(rank)}</td>'
            f"{_engineer_cell(str(r.engineer), bool(r.low_sample), lang)}{_score_cell(r.score)}"
            f'<td class="num">{int(r.kpis_scored) if not _missing(r.kpis_scored) else 0}</td>{cells}</tr>'
        )
    table = (
        f'<div class="table-wrap"><table><thead><tr><th class="num">{esc(label("rank", lang))}</th>'
        f'<th>{esc(label("engineer", lang))}</th><th class="num">{esc(label("score", lang))}</th>'
        f'<th class="num">{esc(label("kpis_scored", lang))}</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    return _panel(
        label("ranking", lang),
        label("ranking_note", lang),
        f'<figure class="ranking">{chart}</figure>{table}',
    )


def engineers_html(data: ReportData, targets: Mapping[str, Target], lang: str) -> str:
    """Every engineer's KPIs over the period, each against its target where there is one."""
    frame = data.engineers.sort_values(["low_sample", "engineer"]).reset_index(drop=True)
    if frame.empty:
        return _panel(label("engineer_kpis", lang), "", f'<p class="empty">{esc(label("no_data", lang))}</p>')
    head = [
        f"<th>{esc(label('engineer', lang))}</th>",
        f'<th class="num">{esc(label("opened", lang))}</th>',
        f'<th class="num">{esc(label("resolved", lang))}</th>',
    ]
    for kpi in ENGINEER_KPIS:
        target = targets.get(kpi)
        small = f"<small>{esc(fmt_target(kpi, target))}</small>" if target else "<small>&nbsp;</small>"
        head.append(f'<th class="num">{esc(label(kpi, lang))}{small}</th>')
    rows = []
    for r in frame.to_dict("records"):
        cells = [
            _engineer_cell(str(r["engineer"]), bool(r["low_sample"]), lang),
            f'<td class="num">{fmt_value("opened_count", r["opened_count"])}</td>',
            f'<td class="num">{fmt_value("resolved_count", r["resolved_count"])}</td>',
        ]
        cells += [_kpi_cell(kpi, r.get(kpi), targets.get(kpi)) for kpi in ENGINEER_KPIS]
        rows.append(f'<tr class="{"low" if r["low_sample"] else ""}">{"".join(cells)}</tr>')
    table = (
        f'<div class="table-wrap"><table><thead><tr>{"".join(head)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    return _panel(label("engineer_kpis", lang), label("engineer_kpis_note", lang), table)


def _trend_figure(
    trend: pd.DataFrame,
    xs: list[str],
    kpi: str,
    targets: Mapping[str, Target],
    lang: str,
    *,
    percent: bool = True,
) -> str:
    target = targets.get(kpi)
    chart = line_chart(
        xs,
        [(label(kpi, lang), list(trend[kpi]), PALETTE["accent"])],
        title=label(kpi, lang),
        target=target.value if target else None,
        percent=percent,
    )
    caption = label(kpi, lang) + (f" ({label('target', lang)} {fmt_target(kpi, target)})" if target else "")
    return f"<figure><figcaption>{esc(caption)}</figcaption>{chart}</figure>"


def trends_html(data: ReportData, targets: Mapping[str, Target], lang: str) -> str:
    """Small multiples of the team's rates per week (or day), and the volume, over the period."""
    weekly = data.period.trend_grain == "week"
    title = label("trends" if weekly else "trends_daily", lang)
    note = label("trends_note" if weekly else "trends_note_daily", lang)
    trend = data.trend
    if trend.empty:
        return _panel(title, note, f'<p class="empty">{esc(label("no_data", lang))}</p>')
    xs = [d.strftime("%m-%d") for d in trend["period_start"]]
    figures = [_trend_figure(trend, xs, kpi, targets, lang) for kpi in _RATES]
    figures.append(_trend_figure(trend, xs, "response_mean_min", targets, lang, percent=False))
    series = [
        (label("opened", lang), list(trend["opened_count"]), PALETTE["accent"]),
        (label("resolved", lang), list(trend["resolved_count"]), PALETTE["second"]),
    ]
    volume = bar_chart(xs, series, title=label("volume", lang), percent=False)
    legend = _legend([(name, color) for name, _, color in series])
    figures.append(f"<figure><figcaption>{esc(label('volume', lang))}</figcaption>{legend}{volume}</figure>")
    return _panel(title, note, f'<div class="charts">{"".join(figures)}</div>')


def sla_by_priority(facts: pd.DataFrame) -> pd.DataFrame:
    """Met / breached / compliance per priority for response (opened in period) and resolution (resolved in it)."""
    out = []
    for metric in ("response", "resolution"):
        rows = facts[facts[f"{metric}_in_period"] & facts[f"{metric}_sla"].isin(["met", "breached"])]
        counts = rows.groupby([f"{metric}_priority", f"{metric}_sla"]).size().unstack(fill_value=0)
        for priority, row in counts.iterrows():
            met, breached = int(row.get("met", 0)), int(row.get("breached", 0))
            out.append(
                {
                    "metric": metric,
                    "priority": priority,
                    "met": met,
                    "breached": breached,
                    "rate": met / (met + breached) if met + breached else None,
                }
            )
    frame = pd.DataFrame(out, columns=["metric", "priority", "met", "breached", "rate"])
    return frame.sort_values(["priority", "metric"]).reset_index(drop=True)


def priority_html(data: ReportData, targets: Mapping[str, Target], lang: str) -> str:
    """SLA compliance by priority: a grouped bar chart and the counts behind it."""
    table = sla_by_priority(data.facts)
    title, note = label("sla_priority", lang), label("sla_priority_note", lang)
    if table.empty:
        return _panel(title, note, f'<p class="empty">{esc(label("no_data", lang))}</p>')
    priorities = sorted(table["priority"].unique())
    rate = table.set_index(["metric", "priority"])["rate"]
    series = [
        (label(m, lang), [rate.get((m, p)) for p in priorities], color)
        for m, color in (("response", PALETTE["accent"]), ("resolution", PALETTE["second"]))
    ]
    chart = bar_chart(priorities, series, title=title)
    legend = _legend([(name, color) for name, _, color in series])
    by = table.set_index(["priority", "metric"])
    rows = []
    for p in priorities:
        cells = [f"<td>{esc(p)}</td>"]
        for m in ("response", "resolution"):
            rec = by.loc[(p, m)] if (p, m) in by.index else None
            if rec is None:
                cells += ['<td class="num">—</td>'] * 3
                continue
            cells += [
                f'<td class="num">{int(rec["met"])}</td>',
                f'<td class="num">{int(rec["breached"])}</td>',
                _kpi_cell(f"{m}_sla_rate", rec["rate"], targets.get(f"{m}_sla_rate")),
            ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    head = f"<th>{esc(label('priority', lang))}</th>" + "".join(
        f'<th class="num">{esc(label(m, lang))}<small>{esc(label(k, lang))}</small></th>'
        for m in ("response", "resolution")
        for k in ("met", "breached", "compliance")
    )
    counts = (
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    return _panel(
        title, note, f'<div class="charts"><figure>{legend}{chart}</figure><div>{counts}</div></div>'
    )


def _minutes_cell(elapsed: Any, target: Any, over: Any, breached: bool) -> str:
    """``elapsed / target`` business minutes, with the overrun of a breached metric."""
    if _missing(target):
        return '<td class="num">—</td>'
    shown = "—" if _missing(elapsed) else f"{float(elapsed):,.0f}"
    css = "num bad" if breached else "num"
    extra = f"<small> (+{float(over):,.0f})</small>" if breached and not _missing(over) and over > 0 else ""
    return f'<td class="{css}">{shown} / {float(target):,.0f}{extra}</td>'


def _breach_badge(kind: str, still_open: bool, lang: str) -> str:
    text = label(kind, lang)
    badge = f'<span class="badge breach">{esc(text)}</span>'
    if still_open:
        badge += f'<span class="badge open">{esc(label("still_open", lang))}</span>'
    return badge


def breaches_html(data: ReportData, lang: str) -> str:
    """The breached tickets of the period (at most ``BREACH_ROWS``)."""
    frame = data.breaches
    title, note = label("breaches", lang), label("breaches_note", lang)
    if frame.empty:
        return _panel(title, note, f'<p class="empty">{esc(label("no_breaches", lang))}</p>')
    head = "".join(
        f"<th>{esc(label(k, lang))}</th>"
        for k in ("ticket", "type", "priority", "engineer", "team", "opened_at", "breach")
    )
    head += (
        f'<th class="num">{esc(label("response", lang))}<small>{esc(label("elapsed", lang))} / '
        f"{esc(label('target', lang))}</small></th>"
        f'<th class="num">{esc(label("resolution", lang))}<small>{esc(label("elapsed", lang))} / '
        f"{esc(label('target', lang))}</small></th>"
    )
    rows = []
    for r in frame.head(BREACH_ROWS).to_dict("records"):
        rows.append(
            f"<tr><td>{esc(r['ticket_id'])}</td><td>{esc(label(str(r['ticket_type']), lang))}</td><td>{esc(r['priority'])}</td>"
            f"<td>{esc(r['engineer'])}</td><td>{esc(r['team'])}</td>"
            f"<td>{esc(_fmt_time(r['opened_at'], data.timezone))}</td>"
            f"<td>{_breach_badge(str(r['breach']), bool(r['still_open']), lang)}</td>"
            + _minutes_cell(
                r["response_elapsed_min"],
                r["response_target_min"],
                r["response_over_min"],
                r["response_sla"] == "breached",
            )
            + _minutes_cell(
                r["resolution_elapsed_min"],
                r["resolution_target_min"],
                r["resolution_over_min"],
                r["resolution_sla"] == "breached",
            )
            + "</tr>"
        )
    more = len(frame) - BREACH_ROWS
    tail = f'<p class="note">{esc(label("breaches_more", lang).format(n=more))}</p>' if more > 0 else ""
    table = (
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{tail}"
    )
    return _panel(f"{title} ({len(frame)})", note, table)


# -- the page --------------------------------------------------------------------------------------
def _css() -> str:
    return (resources.files("pipeline.analyst") / "templates" / "report.css").read_text(encoding="utf-8")


def _header(data: ReportData, lang: str, generated_at: datetime) -> str:
    as_of = data.scorecard["as_of"].dropna()
    as_of_text = (
        _fmt_time(pd.to_datetime(as_of, utc=True, format="ISO8601").max(), data.timezone)
        if len(as_of)
        else "—"
    )
    version = data.scorecard["kpi_version"].dropna()
    p = data.period
    spans = [
        f"{label('period', lang)}: {p.start.isoformat()} – {(p.end - timedelta(days=1)).isoformat()}",
        f"{label('as_of', lang)}: {as_of_text}",
        f"{label('timezone', lang)}: {data.timezone}",
        f"{label('kpi_version', lang)}: {version.iloc[0] if len(version) else '—'}",
        f"{label('generated', lang)}: {generated_at.strftime('%Y-%m-%d %H:%M')}",
    ]
    return (
        f'<header class="top"><h1>{esc(label("title", lang))} · {esc(p.title(lang))}</h1>'
        f'<div class="sub">{"".join(f"<span>{esc(s)}</span>" for s in spans)}</div></header>'
    )


def render_report(
    data: ReportData,
    lang: str,
    *,
    targets: Mapping[str, Target] | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The whole HTML page for ``data`` in ``lang`` (``zh`` or ``en``)."""
    if lang not in LANGS:
        raise ReportError(f"unknown language {lang!r}; use zh or en")
    all_targets = _targets(data.parts, targets)
    generated_at = generated_at or datetime.now().astimezone()
    sections = [
        _panel(label("overview", lang), "", tiles_html(data, all_targets, lang)),
        ranking_html(data, all_targets, lang),
        engineers_html(data, all_targets, lang),
        trends_html(data, all_targets, lang),
        priority_html(data, all_targets, lang),
        breaches_html(data, lang),
    ]
    html_lang = "zh-CN" if lang == "zh" else "en"
    title = f"{label('title', lang)} · {data.period.title(lang)}"
    return (
        f'<!DOCTYPE html>\n<html lang="{html_lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_css()}</style></head><body>"
        f"{_header(data, lang, generated_at)}<main>{''.join(sections)}</main>"
        f"<footer>{esc(label('footer', lang))}</footer></body></html>\n"
    )


def build_report(
    store_path: Path,
    sql_url: str | None,
    period: str,
    lang: str,
    out_path: Path,
    *,
    grain: str | None = None,
    engine: str = "parquet",
    timezone: str = "UTC",
    targets: Mapping[str, Target] | None = None,
) -> Path:
    """Write the HTML report for ``period`` to ``out_path`` and return the path.

    ``engine`` ``parquet`` reads ``store_path`` through DuckDB, ``sql`` reads ``sql_url``. ``timezone`` is the
    reporting timezone that places tickets in the period (pass ``settings.kpi.reporting_timezone``).
    Raises ReportError (bad period or language, no data for the period) or StoreError (no store).
    """
    if lang not in LANGS:
        raise ReportError(f"unknown language {lang!r}; use zh or en")
    wanted = parse_period(period, grain)
    try:
        with StoreQuery(store_path=store_path, sql_url=sql_url, engine=engine) as store:
            data = read_report_data(store, wanted, timezone)
    except QueryError as exc:
        if exc.exit_code == EXIT_STORE:
            raise StoreError(str(exc)) from exc
        raise ReportError(f"cannot read the store: {exc}") from exc
    page = render_report(data, lang, targets=targets)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write {out_path}: {exc.strerror or exc}") from exc
    log.info("wrote the %s report for %s to %s", lang, wanted.text, out_path)
    return out_path
