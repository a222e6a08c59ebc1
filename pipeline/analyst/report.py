"""``itsm-kpi report``: one self-contained HTML scorecard report for a period, in Chinese or English.

The page needs no network: the CSS is inlined and every chart is an inline SVG. It shows, in the order of
``SECTIONS``:

1. headline tiles for the whole team, against the targets;
2. the scorecard ranking (scores, and each KPI's score against its configured target);
3. every engineer's KPIs against the evaluation scheme's targets (response < 30 min, first fix >= 80 %,
   CSAT >= 85 %, and every target the scorecard configures), low-sample engineers marked;
4. weekly trends over the period (daily for a week or a day);
5. SLA compliance by priority;
6. volumes and SLA compliance per client and per service (``kpi_breakdown``);
7. the daily backlog by age, with the overdue and paused tickets (``kpi_backlog``);
8. business hours per team in each status (``ticket_status_time``);
9. the tickets whose response or resolution SLA was breached, each with its resolution timeline and policies;
10. the open tickets falling due within a day of the period's end (or of ``as_of``), by engineer;
11. the approved exemptions counted in the period, per engineer, with their reasons and approvers.

The work is split in three: reading the store (``report_data``, ``report_tables``), preparing each section's
view (``report_team``, ``report_sla``, ``report_clients``, ``report_backlog``, ``report_status``; geometry of
charts in ``report_charts`` and ``report_bars``) and drawing it with the Jinja2 templates under
``templates/`` (autoescaped: every value from the store is escaped). Texts come from one message table,
``templates/messages.toml``. To add a section, see docs/report.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from pipeline.analyst.query import DEFAULT_TIMEOUT_S, EXIT_STORE, QueryError, StoreQuery
from pipeline.analyst.report_backlog import at_risk, backlog
from pipeline.analyst.report_clients import clients
from pipeline.analyst.report_data import ReportData, read_report_data
from pipeline.analyst.report_exemptions import exemptions
from pipeline.analyst.report_format import (
    Target,
    fmt_count,
    fmt_target,
    fmt_time,
    fmt_value,
    is_missing,
    targets_for,
)
from pipeline.analyst.report_messages import LANGS, translator
from pipeline.analyst.report_period import Period, ReportError, parse_period
from pipeline.analyst.report_section import ReportContext, Section
from pipeline.analyst.report_sla import BREACH_ROWS, breaches, priority, sla_by_priority
from pipeline.analyst.report_status import status_time
from pipeline.analyst.report_tables import stored_timezone
from pipeline.analyst.report_team import engineers, overview, ranking, trends
from pipeline.analyst.report_timeline import read_timelines
from pipeline.store.errors import StoreError

__all__ = [
    "SECTIONS",
    "Period",
    "ReportData",
    "ReportError",
    "Section",
    "Target",
    "build_report",
    "parse_period",
    "read_report_data",
    "render_report",
    "sla_by_priority",
]

log = logging.getLogger(__name__)

#: The report's panels, top to bottom: each a view-making function and ``templates/sections/<name>.html.j2``.
SECTIONS: tuple[Section, ...] = (
    Section("overview", overview),
    Section("ranking", ranking),
    Section("engineers", engineers),
    Section("trends", trends),
    Section("priority", priority),
    Section("clients", clients),
    Section("backlog", backlog),
    Section("status_time", status_time),
    Section("breaches", breaches),
    Section("at_risk", at_risk),
    Section("exemptions", exemptions),
)


@cache
def environment() -> jinja2.Environment:
    """The templates of the installed package, autoescaped, with the report's filters."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.analyst", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=lambda value: "" if value is None else value,
    )
    env.filters.update(
        kpi_value=fmt_value,
        kpi_target=fmt_target,
        count=fmt_count,
        local_time=fmt_time,
        xy=lambda value: f"{float(value):.1f}",
    )
    env.tests["missing"] = is_missing
    return env


@dataclass(frozen=True)
class Header:
    """The page header's facts beside the period: data as of, KPI version, when the page was made."""

    as_of: pd.Timestamp | None
    kpi_version: str | None
    generated_at: datetime


@dataclass(frozen=True)
class PreparedSection:
    """A section's template and the view it draws."""

    template: str
    view: Any


def _header(data: ReportData, generated_at: datetime) -> Header:
    """The latest ``as_of`` and the KPI version of the period's scorecard."""
    as_of = pd.to_datetime(data.scorecard["as_of"].dropna(), utc=True, format="ISO8601")
    version = data.scorecard["kpi_version"].dropna()
    return Header(
        as_of=as_of.max() if len(as_of) else None,
        kpi_version=str(version.iloc[0]) if len(version) else None,
        generated_at=generated_at,
    )


def _check_lang(lang: str) -> None:
    """ReportError unless ``lang`` is one the message table has."""
    if lang not in LANGS:
        raise ReportError(f"unknown language {lang!r}; use zh or en")


def render_report(
    data: ReportData,
    lang: str,
    *,
    targets: Mapping[str, Target] | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The whole HTML page for ``data`` in ``lang`` (``zh`` or ``en``)."""
    _check_lang(lang)
    t = translator(lang)
    ctx = ReportContext(data, targets_for(data.parts, targets), t)
    sections = [PreparedSection(s.template, s.prepare(ctx)) for s in SECTIONS]
    page = environment().get_template("report.html.j2")
    return page.render(
        t=t,
        lang=lang,
        period=data.period,
        timezone=data.timezone,
        header=_header(data, generated_at or datetime.now().astimezone()),
        sections=sections,
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
    timezone: str | None = None,
    targets: Mapping[str, Target] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Write the HTML report for ``period`` to ``out_path`` and return the path.

    ``engine`` ``parquet`` reads ``store_path`` through DuckDB, ``sql`` reads ``sql_url``. ``timezone`` is the
    reporting timezone that places tickets in the period (``settings.kpi.reporting_timezone``; None: the one
    the store's latest run recorded, else UTC);
    ``timeout_s`` stops any one of its statements (``[query].timeout``). Raises ReportError (bad period or language, no data for the period) or StoreError (no store).
    """
    _check_lang(lang)
    wanted = parse_period(period, grain)
    try:
        with StoreQuery(store_path=store_path, sql_url=sql_url, engine=engine, timeout_s=timeout_s) as store:
            data = read_report_data(store, wanted, timezone or stored_timezone(store) or "UTC")
        listed = data.breaches.head(BREACH_ROWS)
        data.timelines = read_timelines(store_path, sql_url, listed[["source", "ticket_id", "as_of"]])
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
