"""Business calendars and vectorised business time (KPIS.md 2.1).

A calendar's working intervals are laid out once per local date and converted to UTC *for that date*
(``zoneinfo`` with ``fold=0``), so daylight-saving changes are right by construction. Business time
up to an instant is then a cumulative lookup: ``searchsorted`` into the sorted interval starts plus
the part of the interval the instant falls in. ``business_seconds(a, b) = cum(b) - cum(a)``.

Times inside ``kpis`` travel as float64 epoch seconds (NaN = missing): integers are exact in
float64 for any plausible date, and NaN propagates through arithmetic and comparisons.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays as holidays_lib
import numpy as np
import pandas as pd

from kpis.config import CalendarSpec

_MARGIN_DAYS = 2


def epoch_seconds(values: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    """Timestamps (tz-aware, or naive meaning UTC) -> float64 epoch seconds, NaN for NaT."""
    idx = pd.DatetimeIndex(values)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    out = idx.as_unit("s").asi8.astype("float64")
    out[idx.isna()] = np.nan
    return out


def from_epoch_seconds(seconds: np.ndarray) -> pd.Series:
    """Float64 epoch seconds (NaN = missing) -> ``datetime64[us, UTC]`` series."""
    return pd.Series(pd.to_datetime(seconds, unit="s", utc=True)).astype("datetime64[us, UTC]")


class BusinessCalendar:
    """Working time of one ``CalendarSpec``; ``business_seconds`` works on whole columns."""

    def __init__(self, spec: CalendarSpec) -> None:
        self.spec = spec
        self._first_day: date | None = None
        self._last_day: date | None = None
        self._starts = np.empty(0)
        self._lengths = np.empty(0)
        self._cum_before = np.empty(0)

    def business_seconds(self, start, end) -> np.ndarray:
        """Overlap of ``[start, end)`` with the working intervals, in whole seconds (float64, NaN if missing).

        ``start``/``end`` are timestamps (Series, DatetimeIndex) or float64 epoch seconds arrays.
        Where ``end < start`` the result is negative (minus the business time of ``[end, start)``).
        """
        a, b = _as_seconds(start), _as_seconds(end)
        if self.spec.always_open:
            return b - a
        both = np.concatenate([a, b])
        if (~np.isnan(both)).any():
            self._cover(float(np.nanmin(both)), float(np.nanmax(both)))
        return self._cumulative(b) - self._cumulative(a)

    def _cumulative(self, seconds: np.ndarray) -> np.ndarray:
        """Business seconds from the start of the laid-out range up to each instant (NaN stays NaN)."""
        valid = ~np.isnan(seconds)
        out = np.full(seconds.shape, np.nan)
        t = seconds[valid]
        i = np.searchsorted(self._starts, t, side="right") - 1
        inside = i >= 0
        ic = np.where(inside, i, 0)
        part = np.clip(t - self._starts[ic], 0, self._lengths[ic]) if len(self._starts) else np.zeros_like(t)
        out[valid] = np.where(inside, self._cum_before[ic] + part, 0.0) if len(self._starts) else 0.0
        return out

    def _cover(self, lo: float, hi: float) -> None:
        """Lay out the working intervals for every local date between two instants (with a margin)."""
        first = (datetime.fromtimestamp(lo, UTC) - timedelta(days=_MARGIN_DAYS)).date()
        last = (datetime.fromtimestamp(hi, UTC) + timedelta(days=_MARGIN_DAYS)).date()
        if self._first_day is not None and self._first_day <= first and last <= self._last_day:
            return
        if self._first_day is not None:  # grow, never shrink: earlier callers' results stay comparable
            first, last = min(first, self._first_day), max(last, self._last_day)
        starts, ends = self._intervals_utc(first, last)
        starts, ends = _merge_overlaps(starts, ends)
        lengths = ends - starts
        self._starts, self._lengths = starts, lengths
        self._cum_before = np.concatenate([[0.0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths
        self._first_day, self._last_day = first, last

    def _intervals_utc(self, first: date, last: date) -> tuple[np.ndarray, np.ndarray]:
        tz = ZoneInfo(self.spec.timezone)
        holidays = self._holidays(first.year, last.year)
        starts, ends = [], []
        day = first
        while day <= last:  # one iteration per calendar day, not per ticket
            for start_min, end_min in self._hours_of(day, holidays):
                starts.append(_local_minute_to_epoch(day, start_min, tz))
                ends.append(_local_minute_to_epoch(day, end_min, tz))
            day += timedelta(days=1)
        return np.asarray(starts, dtype="float64"), np.asarray(ends, dtype="float64")

    def _hours_of(self, day: date, holidays: frozenset[date]) -> tuple[tuple[int, int], ...]:
        # A make-up working day wins over a holiday on the same date (DECISIONS.md).
        if day in self.spec.extra_workdays:
            return self.spec.hours.get(self.spec.extra_workdays[day], ())
        if day in holidays:
            return ()
        return self.spec.hours.get(day.weekday(), ())

    def _holidays(self, first_year: int, last_year: int) -> frozenset[date]:
        days = set(self.spec.holidays)
        if self.spec.country:
            years = range(first_year, last_year + 1)
            days |= set(holidays_lib.country_holidays(self.spec.country, subdiv=self.spec.subdivision, years=years))
        return frozenset(days)


def _local_minute_to_epoch(day: date, minute: int, tz: ZoneInfo) -> float:
    """Local wall-clock ``day`` + ``minute`` (24:00 = next midnight) -> UTC epoch seconds, fold=0."""
    naive = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
    return naive.replace(tzinfo=tz).timestamp()


def _merge_overlaps(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort intervals and merge the ones that overlap or touch."""
    if len(starts) == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], np.maximum(ends[order], starts[order])
    running_end = np.maximum.accumulate(ends)
    new_group = np.concatenate([[True], starts[1:] > running_end[:-1]])
    group = np.cumsum(new_group) - 1
    merged_starts = starts[new_group]
    merged_ends = np.zeros(len(merged_starts))
    np.maximum.at(merged_ends, group, ends)
    return merged_starts, merged_ends


def _as_seconds(values) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values
    return epoch_seconds(values)


class CalendarSet:
    """All configured calendars, built lazily by name; computes business time per row's calendar."""

    def __init__(self, specs: dict[str, CalendarSpec]) -> None:
        self._specs = specs
        self._built: dict[str, BusinessCalendar] = {}

    def __getitem__(self, name: str) -> BusinessCalendar:
        if name not in self._built:
            self._built[name] = BusinessCalendar(self._specs[name])
        return self._built[name]

    def business_seconds(self, calendar_names: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Business seconds of ``[start, end)`` where each row names its own calendar."""
        out = np.full(len(start), np.nan)
        for name in pd.unique(calendar_names):
            rows = calendar_names == name
            out[rows] = self[name].business_seconds(start[rows], end[rows])
        return out
