"""Business calendars and vectorised business time (KPIS.md 2.1).

A calendar's working intervals are laid out once per local date and converted to UTC *for that date*
(``zoneinfo`` with ``fold=0``), so daylight-saving changes are right by construction. Business time
up to an instant is then a cumulative lookup: ``searchsorted`` into the sorted interval starts plus
the part of the interval the instant falls in. ``business_seconds(a, b) = cum(b) - cum(a)``, and the
inverse (the earliest instant at which the cumulative business time reaches a value, for due times) is a
``searchsorted`` into the cumulative time at the interval ends.

Times inside ``kpis`` travel as float64 epoch seconds (NaN = missing): integers are exact in
float64 for any plausible date, and NaN propagates through arithmetic and comparisons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays as holidays_lib
import numpy as np
import pandas as pd

from kpis.config import CalendarSpec
from kpis.step_search import CHUNK, StepSearch, in_chunks

_MARGIN_DAYS = 2
# How far past the laid-out days the inverse looks for working time before calling a value unreachable.
_REACH_LIMIT_DAYS = 50 * 366


def local_midnight(day: date, timezone: str) -> pd.Timestamp:
    """The UTC instant at which local ``day`` starts in ``timezone``. zoneinfo with fold=0, as the business
    calendars read local times: where a DST change skips midnight, the instant the clock would have shown
    00:00 by the offset before the change (no error, as ``tz_localize`` would raise)."""
    return pd.Timestamp(datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(timezone))).tz_convert("UTC")


def epoch_seconds(values: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    """Timestamps (tz-aware, or naive meaning UTC) -> float64 epoch seconds (floored to the second), NaN for NaT."""
    idx = pd.DatetimeIndex(values)
    ticks = idx.asi8  # UTC ticks, tz-aware or not, in the index's own unit: one integer division floors them
    per_second = _TICKS_PER_SECOND[idx.unit]
    out = (ticks // per_second if per_second > 1 else ticks).astype("float64")
    out[idx.isna()] = np.nan
    return out


_TICKS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def from_epoch_seconds(seconds: np.ndarray) -> pd.Series:
    """Float64 epoch seconds (NaN = missing) -> ``datetime64[us, UTC]`` series."""
    missing = np.isnan(seconds)
    micros = np.multiply(seconds, 1_000_000)
    np.round(micros, out=micros)
    micros[missing] = 0
    micros = micros.astype("int64")
    micros[missing] = np.iinfo("int64").min  # NaT
    return pd.Series(pd.DatetimeIndex(micros.view("datetime64[us]"), dtype="datetime64[us, UTC]"))


class BusinessCalendar:
    """Working time of one ``CalendarSpec``; ``business_seconds`` works on whole columns."""

    def __init__(self, spec: CalendarSpec) -> None:
        self.spec = spec
        self._first_day: date | None = None
        self._last_day: date | None = None
        self._origin: float | None = None  # the instant whose cumulative business time is 0, fixed once set
        self._starts = np.empty(0)
        self._lengths = np.empty(0)
        self._cum_before = np.empty(0)
        self._start_search = StepSearch.of(self._starts)
        self._end_search = StepSearch.of(self._starts)  # over the cumulative time at the interval ends

    def business_seconds(self, start, end) -> np.ndarray:
        """Overlap of ``[start, end)`` with the working intervals, in whole seconds (float64, NaN if missing).

        ``start``/``end`` are timestamps (Series, DatetimeIndex) or float64 epoch seconds arrays.
        Where ``end < start`` the result is negative (minus the business time of ``[end, start)``).
        """
        return self.cumulative(_as_seconds(end)) - self.cumulative(_as_seconds(start))

    def cumulative(self, seconds: np.ndarray) -> np.ndarray:
        """Business seconds from a fixed origin up to each instant (negative before it; NaN stays NaN).

        Differences of two results are business time, also across calls: growing the laid-out range
        never moves the origin.
        """
        if self.spec.always_open:
            return seconds
        bounds = finite_bounds(seconds)
        if bounds is not None:
            self._cover(*bounds)
        return self._lookup(seconds)

    def earliest_reaching(self, cumulative_s: np.ndarray) -> np.ndarray:
        """The inverse of ``cumulative``: per value, the earliest instant whose cumulative business time
        reaches it (NaN for NaN, and where no working time ever reaches it).

        For a value inside the laid-out range ``cumulative(earliest_reaching(v)) == v`` and every earlier
        instant has less. A value at or below the cumulative time of the first laid-out interval gives that
        interval's start: callers ask only for values above the cumulative time of an instant they looked up.
        """
        if self.spec.always_open:
            return np.array(cumulative_s, dtype="float64", copy=True)
        bounds = finite_bounds(cumulative_s)
        if bounds is not None and self._first_day is not None:
            self._reach(bounds[1])
        return self._inverse(cumulative_s)

    def _lookup(self, seconds: np.ndarray) -> np.ndarray:
        if not len(self._starts):
            return np.where(np.isnan(seconds), np.nan, 0.0)
        return in_chunks(self._lookup_chunk, seconds, np.float64)

    def _lookup_chunk(self, seconds: np.ndarray) -> np.ndarray:
        i = self._start_search.count(seconds, side="right") - 1  # NaN sorts last and stays NaN below
        ic = np.maximum(i, 0)
        part = np.clip(seconds - self._starts[ic], 0, self._lengths[ic])
        return np.where(i >= 0, self._cum_before[ic] + part, self._cum_before[0])

    def _inverse(self, cumulative_s: np.ndarray) -> np.ndarray:
        if self._first_day is None or not len(self._starts):
            return np.full(len(cumulative_s), np.nan)
        return in_chunks(self._inverse_chunk, cumulative_s, np.float64)

    def _inverse_chunk(self, cumulative_s: np.ndarray) -> np.ndarray:
        i = self._end_search.count(cumulative_s, side="left")  # the first interval ending at or past it
        ic = np.minimum(i, len(self._starts) - 1)
        at = self._starts[ic] + np.maximum(cumulative_s - self._cum_before[ic], 0)
        return np.where(i < len(self._starts), at, np.nan)  # NaN values search past the end and stay NaN

    def _reach(self, cumulative_s: float) -> None:
        """Lay out days after the covered ones until the cumulative business time reaches a value (or give up)."""
        extra = timedelta(days=31)
        while self._cumulative_at_end() < cumulative_s and extra.days <= _REACH_LIMIT_DAYS:
            self._cover_days(self._first_day, self._last_day + extra)
            extra *= 2

    def _cumulative_at_end(self) -> float:
        return float(self._cum_before[-1] + self._lengths[-1]) if len(self._starts) else -np.inf

    def _cover(self, lo: float, hi: float) -> None:
        """Lay out the working intervals for every local date between two instants (with a margin)."""
        first = (datetime.fromtimestamp(lo, UTC) - timedelta(days=_MARGIN_DAYS)).date()
        last = (datetime.fromtimestamp(hi, UTC) + timedelta(days=_MARGIN_DAYS)).date()
        if self._first_day is not None and self._first_day <= first and last <= self._last_day:
            return
        self._cover_days(first, last)

    def _cover_days(self, first: date, last: date) -> None:
        if self._first_day is not None:  # grow, never shrink
            first, last = min(first, self._first_day), max(last, self._last_day)
        starts, ends = self._intervals_utc(first, last)
        starts, ends = _merge_overlaps(starts, ends)
        self._starts, self._lengths = starts, ends - starts
        self._cum_before = np.concatenate([[0.0], np.cumsum(self._lengths)[:-1]]) if len(starts) else starts
        self._first_day, self._last_day = first, last
        if self._origin is None:
            self._origin = float(starts[0]) if len(starts) else _epoch(first)
        self._start_search = StepSearch.of(starts)
        self._cum_before = self._cum_before - self._lookup(np.array([self._origin]))[0]
        self._end_search = StepSearch.of(self._cum_before + self._lengths)

    def _intervals_utc(self, first: date, last: date) -> tuple[np.ndarray, np.ndarray]:
        tz = ZoneInfo(self.spec.timezone)
        holidays, makeup = self._country_days(first.year, last.year)
        starts, ends = [], []
        day = first
        while day <= last:  # one iteration per calendar day, not per ticket
            for start_min, end_min in self._hours_of(day, holidays, makeup):
                starts.append(_local_minute_to_epoch(day, start_min, tz))
                ends.append(_local_minute_to_epoch(day, end_min, tz))
            day += timedelta(days=1)
        return np.asarray(starts, dtype="float64"), np.asarray(ends, dtype="float64")

    def _hours_of(self, day: date, holidays: frozenset[date], makeup: frozenset[date]) -> tuple[tuple[int, int], ...]:
        """A local date's working minutes, by the first rule that applies (KPIS.md 2.1)."""
        if day in self.spec.extra_workdays:  # a declared make-up day wins over a holiday (DECISIONS.md D13)
            return self.spec.hours.get(self.spec.extra_workdays[day], ())
        if day in holidays:
            return ()
        if day in makeup:  # the country's official make-up working day (调休), worked with Monday's hours
            return self.spec.hours.get(0, ())
        return self.spec.hours.get(day.weekday(), ())

    def _country_days(self, first_year: int, last_year: int) -> tuple[frozenset[date], frozenset[date]]:
        """(holidays, official make-up working days): the explicit holidays plus the country's, if any."""
        days, makeup = set(self.spec.holidays), set()
        if self.spec.country:
            years = range(first_year, last_year + 1)
            official = holidays_lib.country_holidays(self.spec.country, subdiv=self.spec.subdivision, years=years)
            days |= set(official)
            makeup = set(official.weekend_workdays)  # listed since holidays 0.48; pyproject asks >= 0.85
        return frozenset(days), frozenset(makeup)


def _local_minute_to_epoch(day: date, minute: int, tz: ZoneInfo) -> float:
    """Local wall-clock ``day`` + ``minute`` (24:00 = next midnight) -> UTC epoch seconds, fold=0."""
    naive = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
    return naive.replace(tzinfo=tz).timestamp()


def _epoch(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


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


def finite_bounds(values: np.ndarray) -> tuple[float, float] | None:
    """The smallest and largest finite value (None: there is none), read ``CHUNK`` values at a time so that
    picking the finite ones does not copy millions of them."""
    lo, hi = np.inf, -np.inf
    for start in range(0, len(values), CHUNK):
        part = values[start:start + CHUNK]
        part = part[np.isfinite(part)]
        if len(part):
            lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
    return (lo, hi) if lo <= hi else None


def _as_seconds(values) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values
    return epoch_seconds(values)


@dataclass(frozen=True)
class CalendarColumn:
    """Which calendar applies to each row: ``codes`` index into ``names``."""

    codes: np.ndarray
    names: tuple[str, ...]

    def take(self, rows: np.ndarray) -> CalendarColumn:
        """The calendars of the selected rows (a boolean mask or positions)."""
        return CalendarColumn(self.codes[rows], self.names)

    def present(self) -> np.ndarray:
        """The codes that occur at least once."""
        return np.flatnonzero(np.bincount(self.codes, minlength=len(self.names)))


class CalendarSet:
    """All configured calendars, built lazily by name; computes business time per row's calendar."""

    def __init__(self, specs: dict[str, CalendarSpec]) -> None:
        self._specs = specs
        self._built: dict[str, BusinessCalendar] = {}

    def __getitem__(self, name: str) -> BusinessCalendar:
        if name not in self._built:
            self._built[name] = BusinessCalendar(self._specs[name])
        return self._built[name]

    def cumulative(self, calendars: CalendarColumn, seconds: np.ndarray) -> np.ndarray:
        """Each row's cumulative business time in its own calendar (see ``BusinessCalendar.cumulative``)."""
        return self._per_calendar(calendars, seconds, BusinessCalendar.cumulative)

    def cumulative_at(self, calendars: CalendarColumn, instant: float) -> np.ndarray:
        """Each row's cumulative business time at one instant (cheap: one lookup per calendar)."""
        per_calendar = np.array([self[name].cumulative(np.array([instant]))[0] for name in calendars.names])
        return per_calendar[calendars.codes]

    def earliest_reaching(self, calendars: CalendarColumn, cumulative_s: np.ndarray) -> np.ndarray:
        """Each row's ``BusinessCalendar.earliest_reaching`` in its own calendar."""
        return self._per_calendar(calendars, cumulative_s, BusinessCalendar.earliest_reaching)

    def _per_calendar(self, calendars: CalendarColumn, values: np.ndarray,
                      ask: Callable[[BusinessCalendar, np.ndarray], np.ndarray]) -> np.ndarray:
        """``ask`` each present calendar about its rows' ``values`` (all of them at once when one calendar
        serves every row: no masks); NaN for rows of no calendar."""
        present = calendars.present()
        if len(present) == 1:
            return ask(self[calendars.names[present[0]]], values)
        out = np.full(len(values), np.nan)
        for code in present:
            rows = calendars.codes == code
            out[rows] = ask(self[calendars.names[code]], values[rows])
        return out

    def business_seconds(self, calendars: CalendarColumn, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Business seconds of ``[start, end)`` where each row names its own calendar."""
        return self.cumulative(calendars, end) - self.cumulative(calendars, start)
