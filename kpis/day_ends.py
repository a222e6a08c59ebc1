"""How many day ends lie before an instant, for millions of instants (the backlog's day positions).

``np.searchsorted(ends, t)`` costs a binary search per instant, and the backlog asks it for every open
stretch's start, end, due time and age edges (tens of millions of questions at 1M tickets). Day ends are
at least 23 hours apart, so a table over steps of the smallest gap holds, per step, how many ends lie
before it; at most one more end can lie inside the step, and one comparison tells whether it does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DayEnds:
    """Ascending, distinct instants (epoch seconds) and the step table over them."""

    ends: np.ndarray
    base: float  # the first step's start: one step before the first end
    step_s: float  # the smallest gap between two ends: no step holds two of them
    before_step: np.ndarray  # per step: how many ends lie before its start

    @classmethod
    def of(cls, ends: np.ndarray) -> DayEnds:
        """The table of ``ends`` (ascending, distinct, finite)."""
        ends = np.asarray(ends, dtype="float64")
        step_s = float(np.diff(ends).min()) if len(ends) > 1 else 86_400.0
        base = float(ends[0]) - step_s if len(ends) else 0.0
        n_steps = int((ends[-1] - base) // step_s) + 2 if len(ends) else 1
        starts = base + step_s * np.arange(n_steps)
        return cls(ends, base, step_s, np.searchsorted(ends, starts, side="left"))

    def count(self, at: np.ndarray, side: str) -> np.ndarray:
        """``np.searchsorted(ends, at, side)``: per instant, how many ends lie before it (``"left"``) or
        at or before it (``"right"``). NaN counts as after every end, as ``searchsorted`` sorts it."""
        if not len(self.ends):
            return np.zeros(len(at), dtype="int64")
        at = np.asarray(at, dtype="float64")
        last = len(self.before_step) - 1
        offset = np.clip(np.nan_to_num(at - self.base, nan=np.inf), 0.0, last * self.step_s)  # NaN: last
        below = self.before_step[(offset // self.step_s).astype("int64")]
        next_end = self.ends[np.minimum(below, len(self.ends) - 1)]
        inside = (below < len(self.ends)) & ((next_end <= at) if side == "right" else (next_end < at))
        return below + inside
