"""``np.searchsorted`` for millions of instants into a short ascending array (calendars, day ends).

A binary search per instant costs ~100 ns on unsorted instants (its branches cannot be predicted), and the
engine asks it tens of millions of times: every business-time lookup, due time and backlog day position.
When the keys are strictly ascending, a table over steps of their smallest gap holds, per step, how many
keys lie before the step's start. At most one more key can lie inside a step (no two are closer than a
step), and one comparison tells whether it lies before the instant: a lookup and a comparison instead of a
search.

Exactness: an instant within rounding distance of a step's start could land in the neighbouring step, so
those few are searched as before. Keys that are not strictly ascending, or so unevenly spaced that the table
would be much longer than the keys, are always searched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

#: Instants per pass of ``in_chunks``: a chunk's few arrays stay in the CPU cache from one pass to the next.
CHUNK = 32_768
#: Below this many instants a plain search is as fast as building the table.
_MIN_INSTANTS = 4096
#: The table may have at most this many steps per key (plus a fixed allowance) before searching is cheaper.
_STEPS_PER_KEY = 16
_STEPS_ALLOWANCE = 1 << 16


@dataclass(frozen=True)
class StepTable:
    """Steps of ``step`` seconds from ``base`` (one step before the first key) past the last key."""

    base: float
    step: float
    before_step: np.ndarray  # per step: how many keys lie before its start
    tolerance: float  # in steps: how far from a step's start rounding can move an instant


@dataclass(frozen=True)
class StepSearch:
    """Ascending finite ``keys`` and, built on first use for many instants, their step table."""

    keys: np.ndarray

    @classmethod
    def of(cls, keys: np.ndarray) -> StepSearch:
        """The search over ``keys`` (ascending)."""
        return cls(np.asarray(keys, dtype="float64"))

    def count(self, at: np.ndarray, side: str) -> np.ndarray:
        """``np.searchsorted(keys, at, side)``: per instant, how many keys lie before it (``"left"``) or at or
        before it (``"right"``). NaN counts as after every key, as ``searchsorted`` sorts it."""
        at = np.asarray(at, dtype="float64")
        table = self.table if len(at) >= _MIN_INSTANTS else None
        if table is None:
            return np.searchsorted(self.keys, at, side=side)
        return in_chunks(lambda part: self._count_in(table, part, side), at, np.int64)

    def _count_in(self, table: StepTable, at: np.ndarray, side: str) -> np.ndarray:
        last = len(table.before_step) - 1
        position = np.subtract(at, table.base)
        position /= table.step
        # NaN and instants past the keys fall in the last step, those before them in the first; the clip
        # bounds are half-steps so that no clipped instant looks close to a step's start
        np.fmin(position, last + 0.5, out=position)
        np.fmax(position, 0.5, out=position)
        step = np.floor(position)
        counts = table.before_step[step.astype(np.intp)]
        next_key = self._padded[counts]
        counts += (next_key <= at) if side == "right" else (next_key < at)
        position -= step  # the fraction of its step the instant is at ...
        position -= 0.5
        near = np.flatnonzero(np.abs(position, out=position) >= 0.5 - table.tolerance)  # ... close to either end
        if len(near):
            counts[near] = np.searchsorted(self.keys, at[near], side=side)
        return counts

    @cached_property
    def table(self) -> StepTable | None:
        """The step table, or None where searching is the better choice."""
        keys = self.keys
        if len(keys) < 2 or not np.isfinite(keys[[0, -1]]).all():
            return None
        step = float(np.diff(keys).min())
        if not step > 0:
            return None
        n_steps = int((keys[-1] - keys[0]) // step) + 3
        if n_steps > _STEPS_PER_KEY * len(keys) + _STEPS_ALLOWANCE:
            return None
        base = float(keys[0]) - step
        starts = base + step * np.arange(n_steps)
        reach = 2 * max(abs(base), abs(float(starts[-1])))
        tolerance = 8 * (np.spacing(reach) / step + np.spacing(float(n_steps)))
        return StepTable(base, step, np.searchsorted(keys, starts, side="left"), float(tolerance))

    @cached_property
    def _padded(self) -> np.ndarray:
        """The keys and a NaN after them: the key after the last one compares false with every instant."""
        return np.append(self.keys, np.nan)


def in_chunks(fn: Callable[[np.ndarray], np.ndarray], values: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """An elementwise ``fn`` of ``values``, ``CHUNK`` values at a time.

    A chain of numpy passes over millions of values is bound by memory: each pass streams every array from
    RAM again. Over a chunk the intermediates stay in the cache, about twice as fast; the loop is over chunks,
    a few hundred per 10M values.
    """
    if len(values) <= CHUNK:
        return fn(values)
    out = np.empty(len(values), dtype=dtype)
    for start in range(0, len(values), CHUNK):
        out[start:start + CHUNK] = fn(values[start:start + CHUNK])
    return out
