"""The backlog's oldest opening per (day, group) (``kpis.backlog._range_min``) against the definition, worked
out day by day: the smallest value of the ranges ``[lo, hi)`` of the group that hold the day."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kpis.backlog import _range_min


def _by_definition(ranges: list[tuple[int, int, int, float]], n_days: int, n_groups: int) -> np.ndarray:
    oldest = np.full((n_days, n_groups), np.inf)
    for group, lo, hi, value in ranges:
        for day in range(lo, hi):
            oldest[day, group] = min(oldest[day, group], value)
    return oldest


def _range_min_of(ranges: list[tuple[int, int, int, float]], n_days: int, n_groups: int) -> np.ndarray:
    columns = np.array(ranges, dtype="float64").reshape(-1, 4)  # whole numbers below 2**53: exact
    group, lo, hi = (columns[:, i].astype("int64") for i in range(3))
    return _range_min(group, lo, hi, columns[:, 3], n_groups, n_days)


def test_ranges_of_one_two_three_and_five_days_by_hand() -> None:
    """Group 0 over days 0-5: 100 on [0, 5), 50 on [2, 3), 70 on [3, 6); group 1: 30 on [4, 6). A range of 5
    days is two blocks of 4 that overlap; a range of 3, two of 2."""
    ranges = [(0, 0, 5, 100.0), (0, 2, 3, 50.0), (0, 3, 6, 70.0), (1, 4, 6, 30.0)]
    assert _range_min_of(ranges, 6, 2).tolist() == [[100, np.inf], [100, np.inf], [50, np.inf], [70, np.inf],
                                                    [70, 30], [70, 30]]


def test_no_ranges_leave_every_day_without_a_value() -> None:
    assert np.isinf(_range_min_of([], 3, 2)).all()


@st.composite
def _ranges(draw: st.DrawFn) -> tuple[list[tuple[int, int, int, float]], int, int]:
    n_days, n_groups = draw(st.integers(1, 70)), draw(st.integers(1, 3))
    ranges = []
    for _ in range(draw(st.integers(0, 25))):
        lo = draw(st.integers(0, n_days - 1))
        hi = draw(st.integers(lo + 1, n_days))
        ranges.append((draw(st.integers(0, n_groups - 1)), lo, hi, float(draw(st.integers(0, 10**9)))))
    return ranges, n_days, n_groups


@settings(max_examples=300, deadline=None)
@given(case=_ranges())
def test_the_oldest_is_the_smallest_value_of_the_ranges_holding_the_day(case) -> None:
    ranges, n_days, n_groups = case
    assert np.array_equal(_range_min_of(ranges, n_days, n_groups), _by_definition(ranges, n_days, n_groups))
