"""kpis/change_points.py: each ticket's change points and the value each kind of event holds at them."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kpis.change_points import ChangePoints
from kpis.timeline import KindEvents


def _events(*rows: tuple[int, float, int]) -> KindEvents:
    """(tix, at, value) rows, already in history order."""
    tix, at, value = zip(*rows, strict=True) if rows else ((), (), ())
    return KindEvents(np.array(tix, dtype="int64"), np.array(at, dtype="float64"), np.array(value, dtype="int64"))


def test_points_are_the_opening_and_each_later_event_instant_and_values_fill_forward() -> None:
    opened = np.array([100.0, 500.0])
    # ticket 0: a status before its opening (counts at 100), two at 150 (the later one holds), one at 300;
    # ticket 1: one status at 600
    status = _events((0, 50.0, 7), (0, 150.0, 8), (0, 150.0, 9), (0, 300.0, -1), (1, 600.0, 4))
    assignee = _events((0, 200.0, 3))
    points = ChangePoints.of(opened, (status, assignee), np.array([1]), np.array([700.0]))

    assert points.tix.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert points.at.tolist() == [100.0, 150.0, 200.0, 300.0, 500.0, 600.0, 700.0]
    # status: 7 from before the opening, 9 (the last at 150), still 9 at 200, then the empty value at 300;
    # ticket 1 has nothing before 600, and ticket 0's values never leak into it
    assert points.values(0).tolist() == [7, 9, 9, -1, -1, 4, 4]
    assert points.values(0, non_empty=True).tolist() == [7, 9, 9, 9, -1, 4, 4]
    assert points.values(1).tolist() == [-1, -1, 3, 3, -1, -1, -1]


def test_an_unknown_opening_has_no_points_and_an_end_before_the_opening_is_none() -> None:
    opened = np.array([np.nan, 100.0])
    status = _events((0, 50.0, 1), (1, 120.0, 2))
    points = ChangePoints.of(opened, (status,), np.array([1, 0]), np.array([90.0, 200.0]))

    # ticket 0 (no opening) has none; ticket 1's end at 90 lies before its opening at 100
    assert points.tix.tolist() == [1, 1]
    assert points.at.tolist() == [100.0, 120.0]
    assert points.values(0).tolist() == [-1, 2]
    assert points.landing[0].tolist() == [-1, 1]


def test_no_events_of_a_kind_give_no_values() -> None:
    points = ChangePoints.of(np.array([10.0]), (_events(),), np.zeros(0, dtype="int64"), np.zeros(0))

    assert points.values(0).tolist() == [-1]


_event = st.tuples(st.integers(0, 3), st.integers(0, 12).map(float), st.integers(-1, 3))


@hsettings(max_examples=300, deadline=None)
@given(opened=st.lists(st.one_of(st.integers(0, 12).map(float), st.just(np.nan)), min_size=4, max_size=4),
       kinds=st.lists(st.lists(_event, max_size=10), min_size=1, max_size=3),
       non_empty=st.booleans())
def test_values_are_the_last_event_at_or_before_each_point(opened, kinds, non_empty) -> None:
    """The literal reading: per point, the value of the ticket's last event of the kind (in history order)
    whose instant is at or before the point's."""
    opened = np.array(opened)
    events = tuple(_events(*sorted(rows, key=lambda r: (r[0], r[1]))) for rows in kinds)
    points = ChangePoints.of(opened, events, np.zeros(0, dtype="int64"), np.zeros(0))

    for k, rows in enumerate(kinds):
        rows = sorted(rows, key=lambda r: (r[0], r[1]))  # stable: the history order of equal instants
        expected = []
        for tix, at in zip(points.tix, points.at, strict=True):
            held = [v for t, a, v in rows if t == tix and a <= at and (v != -1 or not non_empty)]
            expected.append(held[-1] if held else -1)
        assert points.values(k, non_empty=non_empty).tolist() == expected
    expected_points = sorted({(t, max(a, opened[t])) for rows in kinds for t, a, _ in rows if not np.isnan(opened[t])}
                             | {(t, opened[t]) for t in range(4) if not np.isnan(opened[t])})
    assert list(zip(points.tix.tolist(), points.at.tolist(), strict=True)) == expected_points
