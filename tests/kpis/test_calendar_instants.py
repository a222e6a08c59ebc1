"""kpis/calendar.py: the helpers around instants (finite bounds; epoch seconds and back, the form every time
takes inside ``kpis``)."""

from __future__ import annotations

import numpy as np

from kpis.calendar import finite_bounds
from kpis.step_search import CHUNK


def test_finite_bounds_skip_missing_and_infinite_values_across_chunks() -> None:
    values = np.full(3 * CHUNK + 5, np.nan)
    values[[0, 1, 7]] = [np.inf, -np.inf, 40.0]
    values[CHUNK + 3] = 12.5  # the smallest, in the second chunk
    values[-1] = 99.0  # the largest, alone in the last one

    assert finite_bounds(values) == (12.5, 99.0)
    assert finite_bounds(np.array([np.nan, np.inf])) is None
    assert finite_bounds(np.empty(0)) is None
