"""kpis/day_ends.py: counting day ends before instants with a step table instead of a binary search."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kpis.day_ends import DayEnds

# Europe/Berlin day ends around the 2026 DST change: 29 March has 23 hours
MARCH_28_END = 1774738800.0  # 2026-03-29 00:00 +01:00
MARCH_29_END = MARCH_28_END + 23 * 3600  # 2026-03-30 00:00 +02:00
MARCH_30_END = MARCH_29_END + 24 * 3600


def test_an_instant_counts_the_day_ends_before_it_and_at_it_on_the_right_side() -> None:
    ends = DayEnds.of(np.array([MARCH_28_END, MARCH_29_END, MARCH_30_END]))
    at = np.array([MARCH_28_END - 1, MARCH_28_END, MARCH_29_END - 1, MARCH_29_END, MARCH_30_END + 1])

    # before the first end: none; exactly at an end: it counts on the right, not on the left
    assert ends.count(at, side="right").tolist() == [0, 1, 1, 2, 3]
    assert ends.count(at, side="left").tolist() == [0, 0, 1, 1, 3]
    assert ends.step_s == 23 * 3600  # the short day sets the step: no step can hold two ends


def test_unknown_and_infinite_instants_count_as_searchsorted_sorts_them() -> None:
    ends = DayEnds.of(np.array([MARCH_28_END, MARCH_29_END]))
    at = np.array([np.nan, np.inf, -np.inf])

    # NaN and +inf after every end, -inf before them all
    assert ends.count(at, side="right").tolist() == [2, 2, 0]
    assert ends.count(at, side="left").tolist() == [2, 2, 0]


def test_no_day_ends_count_nothing() -> None:
    assert DayEnds.of(np.empty(0)).count(np.array([0.0, np.nan]), side="right").tolist() == [0, 0]


_gaps = st.lists(st.integers(min_value=1, max_value=200), max_size=12)  # no gap: a single day end
_instant = st.one_of(st.integers(min_value=-300, max_value=3_000).map(float),
                     st.sampled_from([np.nan, np.inf, -np.inf, 1e18, -1e18]))


@hsettings(max_examples=300, deadline=None)
@given(first=st.integers(min_value=-100, max_value=100), gaps=_gaps, at=st.lists(_instant, max_size=40),
       side=st.sampled_from(["left", "right"]))
def test_count_equals_searchsorted(first, gaps, at, side) -> None:
    """Any ascending distinct ends (gaps of one second to uneven ones), any instants, both sides."""
    ends = first + np.cumsum([0, *gaps]).astype("float64")
    at = np.array(at, dtype="float64")

    np.testing.assert_array_equal(DayEnds.of(ends).count(at, side=side), np.searchsorted(ends, at, side=side))
