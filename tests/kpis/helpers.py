"""Builders for tiny hand-made frames used by the spec tests (KPIS.md).

Everything here is plain data plumbing: it never computes a KPI, so an expected value in a test is always
the hand calculation written beside it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from kpis.config import KpiSettings
from kpis.schema import EVENT_COLUMNS, TICKET_COLUMNS, conform
from pipeline.config import kpi_settings_from_mapping

SRC = "helpdesk"

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# The office calendar of the spec's example config: 7.5 working hours (27 000 s) a weekday.
OFFICE = {
    "timezone": "Asia/Shanghai",
    "hours": {d: ["09:00-12:00", "13:30-18:00"] for d in WEEKDAYS[:5]},
}


def ts(text: str | None) -> pd.Timestamp | None:
    """A tz-aware UTC timestamp; text without an offset is read as UTC."""
    if text is None:
        return None
    t = pd.Timestamp(text)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def local(text: str, tz: str) -> pd.Timestamp:
    """Local wall-clock text in ``tz`` (unambiguous times only) -> UTC timestamp."""
    return pd.Timestamp(text).tz_localize(tz).tz_convert("UTC")


def _deep_merge(base: dict, extra: Mapping) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def config(**sections: Any) -> dict:
    """A config mapping shaped like the TOML: a 24x7 default calendar in UTC unless overridden."""
    base: dict[str, Any] = {
        "kpi": {"default_calendar": "24x7"},
        "calendars": {"office": copy.deepcopy(OFFICE)},
        "reporting": {},  # timezone: the default calendar's (24x7 -> UTC); min_sample: 10
        "sla": [],
        "scorecard": [],
    }
    return _deep_merge(base, sections)


def settings(**sections: Any) -> KpiSettings:
    return kpi_settings_from_mapping(config(**sections))


_TS_COLS = [c.name for c in TICKET_COLUMNS.values() if c.dtype.startswith("datetime64")]


def tickets(*rows: Mapping[str, Any]) -> pd.DataFrame:
    """Canonical tickets; each row needs ticket_id, opened_at and status (type defaults to incident)."""
    out = []
    for r in rows:
        r = dict(r)
        r.setdefault("source", SRC)
        r.setdefault("ticket_type", "incident")
        for c in _TS_COLS:
            if c in r:
                r[c] = ts(r[c])
        out.append(r)
    frame = pd.DataFrame(out)
    for c in _TS_COLS:
        if c in frame.columns:
            frame[c] = pd.to_datetime(frame[c], utc=True)
    return conform(frame, TICKET_COLUMNS)


def ev(ticket_id: str, at: str, kind: str, value: str | None = "", seq: int | None = None,
       source: str = SRC, actor: str = "") -> dict:
    """One event row; ``seq`` defaults to the order in which the rows are handed to ``events``."""
    return {"source": source, "ticket_id": ticket_id, "at": ts(at), "kind": kind, "value": value,
            "actor": actor, "seq": seq}


def events(*rows: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Canonical events from ``ev`` rows (or lists of them); missing seq = position in the argument list."""
    flat: list[dict] = []
    for r in rows:
        if isinstance(r, Mapping):
            flat.append(dict(r))
        else:
            flat.extend(dict(x) for x in r)
    for i, r in enumerate(flat):
        if r.get("seq") is None:
            r["seq"] = i
    if not flat:
        frame = pd.DataFrame({c: [] for c in EVENT_COLUMNS})
    else:
        frame = pd.DataFrame(flat)
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return conform(frame, EVENT_COLUMNS)


def no_events() -> pd.DataFrame:
    return events()


def _py(v: Any) -> Any:
    if v is None:
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        return v
    if hasattr(v, "item") and not isinstance(v, pd.Timestamp):
        return v.item()
    return v


def row(frame: pd.DataFrame, ticket_id: str, source: str = SRC) -> dict[str, Any]:
    """The facts row of one ticket as plain Python values (null -> None)."""
    hit = frame[(frame["source"] == source) & (frame["ticket_id"] == ticket_id)]
    assert len(hit) == 1, f"expected one facts row for {source}/{ticket_id}, got {len(hit)}"
    return {k: _py(v) for k, v in hit.iloc[0].to_dict().items()}


def kpi_rows(frame: pd.DataFrame, **where: Any) -> pd.DataFrame:
    """Rows of an aggregate table matching column == value (period_start given as 'YYYY-MM-DD')."""
    mask = pd.Series(True, index=frame.index)
    for k, v in where.items():
        if k == "period_start":
            mask &= frame[k] == pd.Timestamp(v)
        else:
            mask &= frame[k] == v
    return frame[mask]


def kpi_row(frame: pd.DataFrame, **where: Any) -> dict[str, Any]:
    hit = kpi_rows(frame, **where)
    assert len(hit) == 1, f"expected one row for {where}, got {len(hit)}:\n{hit}"
    return {k: _py(v) for k, v in hit.iloc[0].to_dict().items()}


def approx_eq(a: float | None, b: float | None, tol: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol * max(1.0, abs(b))
