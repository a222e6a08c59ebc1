"""Each listed breached ticket's resolution timeline as a small inline SVG: the same segments ``itsm-kpi
explain`` shows (``kpis.segments.resolution_segments``), computed from the stored raw layer with the KPI
settings the run recorded, at the ``as_of`` of the ticket's stored row.

A store without a raw layer or without recorded settings (written before they were kept) gets no
timelines; the report is drawn without them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from kpis.errors import ItsmKpiError
from kpis.segments import REOPEN_GAP, WORKING, resolution_segments
from pipeline.analyst.report_charts import PALETTE, Bar, Chart
from pipeline.store.parquet import ParquetStore
from pipeline.store.recompute import stored_settings, ticket_inputs
from pipeline.store.sql import sql_engine

__all__ = ["read_timelines", "timeline_chart"]

log = logging.getLogger(__name__)

WIDTH, HEIGHT = 220, 12
PAUSE_FILL = "#e0a030"
_FILL = {WORKING: PALETTE["accent"], REOPEN_GAP: PALETTE["muted"]}  # anything else is a pause


def read_timelines(store_path: Path, sql_url: str | None, tickets: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """(source, ticket_id) -> segments, for ``tickets`` (source, ticket_id, as_of: their stored rows')."""
    parquet = ParquetStore(store_path)
    if tickets.empty or not parquet.has("raw_tickets"):
        return {}
    url = sql_url or f"sqlite:///{Path(store_path) / 'kpi.sqlite'}"
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return {}
    try:
        engine = sql_engine(url)
        try:
            settings = stored_settings(engine)
        finally:
            engine.dispose()
        if settings is None:
            return {}
        return _timelines(parquet, settings, tickets)
    except ItsmKpiError as e:  # a store the report can read, but not recompute from: no timelines
        log.warning("no breach timelines: %s", e)
        return {}


def _timelines(parquet: ParquetStore, settings, tickets: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """The segments of ``tickets``, one recomputation per distinct ``as_of`` (usually one)."""
    out: dict[tuple[str, str], pd.DataFrame] = {}
    as_of = pd.to_datetime(tickets["as_of"], utc=True)
    for when, group in tickets.groupby(as_of, sort=True):
        inputs = ticket_inputs(parquet, group[["source", "ticket_id"]])
        segments = resolution_segments(inputs.tickets, inputs.events, settings, pd.Timestamp(when), inputs.approvals)
        wanted = set(zip(group["source"], group["ticket_id"], strict=True))
        for key, rows in segments.groupby(["source", "ticket_id"], sort=False):
            if key in wanted:
                out[(str(key[0]), str(key[1]))] = rows.reset_index(drop=True)
    return out


def timeline_chart(segments: pd.DataFrame, title: str) -> Chart:
    """One bar per segment, as long as its calendar time (a hairline apart): counted dark blue, paused amber,
    reopen gaps grey."""
    chart = Chart(WIDTH, HEIGHT, title, cls="timeline")
    total = float(segments["calendar_s"].sum())
    x = 0.0
    for calendar_s, why in zip(segments["calendar_s"], segments["why"], strict=True):
        width = WIDTH * float(calendar_s) / total if total else 0.0
        chart.marks.append(Bar(x, 1, max(width - 0.6, 0.6), HEIGHT - 2, _FILL.get(why, PAUSE_FILL)))
        x += width
    return chart
