"""Which periods a run must recompute: windows, and the periods that changed tickets touch."""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kpis.aggregate import local_days, period_starts
from kpis.calendar import local_midnight
from kpis.schema import GRAINS

ANCHORS = ("opened_at", "resolved_at", "satisfaction_at", "planned_end")
PERIOD_KEY = ["grain", "period_start"]


@dataclass(frozen=True)
class Window:
    """Local dates ``[first, end)`` in the reporting timezone."""

    first: date
    end: date

    def utc_bounds(self, timezone: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The window's instants: local midnight of ``first`` and of ``end``, in UTC (``local_midnight``)."""
        return local_midnight(self.first, timezone), local_midnight(self.end, timezone)

    def days(self) -> np.ndarray:
        """Every local date of the window."""
        return np.arange(np.datetime64(self.first), np.datetime64(self.end), dtype="datetime64[D]")


def quarter_window(text: str) -> Window:
    """``2026Q3`` -> that quarter's local dates."""
    text = text.strip().upper()
    if len(text) != 6 or text[4] != "Q" or text[5] not in "1234" or not text[:4].isdigit():
        raise ValueError(f"{text!r} is not a quarter; write it like 2026Q3")
    year, q = int(text[:4]), int(text[5])
    end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return Window(date(year, 3 * q - 2, 1), end)


def dates_window(first: date, last: date) -> Window:
    """``--from first --to last``: both dates included."""
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    return Window(first, last + timedelta(days=1))


def window_periods(window: Window, grains: tuple[str, ...]) -> pd.DataFrame:
    """Every period of every grain that overlaps the window (edge weeks/months whole)."""
    days = window.days()
    frames = [pd.DataFrame({"grain": g, "period_start": np.unique(period_starts(days, g))}) for g in grains]
    return _as_periods(pd.concat(frames, ignore_index=True))


def touched_periods(facts: pd.DataFrame, all_facts: pd.DataFrame, grains: tuple[str, ...], timezone: str) -> pd.DataFrame:
    """Periods of every anchor of ``facts``, plus those of incidents induced by its maintenance tickets."""
    anchors = [facts[a] for a in ANCHORS]
    anchors.append(_induced_incident_openings(facts, all_facts))
    stamps = pd.concat(anchors, ignore_index=True).dropna()
    days = np.unique(local_days(stamps, timezone)) if len(stamps) else np.array([], dtype="datetime64[D]")
    frames = [pd.DataFrame({"grain": g, "period_start": np.unique(period_starts(days, g))}) for g in grains]
    return _as_periods(pd.concat(frames, ignore_index=True))


def facts_in_window(facts: pd.DataFrame, window: Window, timezone: str) -> pd.DataFrame:
    """Facts with at least one anchor on a local date inside the window."""
    return facts[facts_on_days(facts, window.days(), timezone)].reset_index(drop=True)


def facts_on_days(facts: pd.DataFrame, days: np.ndarray, timezone: str) -> np.ndarray:
    """Which rows of ``facts`` have at least one anchor on one of the local ``days`` (``datetime64[D]``)."""
    wanted = np.asarray(days).astype("datetime64[D]").astype("int64")
    hit = np.zeros(len(facts), dtype=bool)
    for anchor in ANCHORS:
        local = local_days(facts[anchor], timezone)
        hit |= ~np.isnat(local) & np.isin(local.astype("int64"), wanted)
    return hit


def period_days(periods: pd.DataFrame) -> np.ndarray:
    """Every local date inside one of ``periods`` (grain, period_start; ISO weeks, calendar months and
    quarters), sorted and unique."""
    start = periods["period_start"].to_numpy().astype("datetime64[D]")
    grain = periods["grain"].to_numpy()
    unknown = set(grain) - set(GRAINS)
    if unknown:
        raise ValueError(f"not a grain: {sorted(unknown)} (grains are {', '.join(GRAINS)})")
    months = np.select([grain == "month", grain == "quarter"], [1, 3], 0)
    month_end = (start.astype("datetime64[M]") + months).astype("datetime64[D]")
    end = np.where(grain == "day", start + 1, np.where(grain == "week", start + 7, month_end))
    lengths = (end - start).astype("int64")
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.unique(np.repeat(start, lengths) + offsets.astype("timedelta64[D]"))


def periods_filter(periods: pd.DataFrame) -> pc.Expression:
    """A pyarrow filter for the rows of a period table that lie in ``periods`` (grain, period_start)."""
    matches = [
        (pc.field("grain") == grain)
        & pc.field("period_start").isin(pa.array(group["period_start"].dt.date.tolist(), type=pa.date32()))
        for grain, group in periods.groupby("grain", sort=True)
    ]
    return functools.reduce(operator.or_, matches) if matches else pc.scalar(False)


def _induced_incident_openings(facts: pd.DataFrame, all_facts: pd.DataFrame) -> pd.Series:
    maintenance = facts.loc[facts["ticket_type"] == "maintenance", ["source", "ticket_id"]]
    if maintenance.empty:
        return pd.Series([], dtype="datetime64[us, UTC]")
    incidents = all_facts[["source", "caused_by", "opened_at"]].merge(
        maintenance, left_on=["source", "caused_by"], right_on=["source", "ticket_id"])
    return incidents["opened_at"]


def _as_periods(frame: pd.DataFrame) -> pd.DataFrame:
    frame["period_start"] = pd.to_datetime(frame["period_start"]).astype("datetime64[s]")
    return frame.drop_duplicates(ignore_index=True)
