"""kpis/step_search.py: counting sorted keys before instants with a step table instead of a binary search.

The table is used from 4096 instants on, and instants are read ``CHUNK`` at a time, so the hand cases repeat
their instants past both: each answer below is worked out for the first copy and must hold for every copy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from helpers import OFFICE, local
from hypothesis import assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kpis.calendar import BusinessCalendar
from kpis.step_search import CHUNK, StepSearch, in_chunks
from pipeline.config import calendar_from_mapping

# Europe/Berlin day ends around the 2026 DST change: 29 March has 23 hours
MARCH_28_END = 1774738800.0  # 2026-03-29 00:00 +01:00
MARCH_29_END = MARCH_28_END + 23 * 3600  # 2026-03-30 00:00 +02:00
MARCH_30_END = MARCH_29_END + 24 * 3600
MANY = CHUNK + 5000  # past the size from which the table is used, and into a second, partial chunk


def counted(search: StepSearch, at: list[float], side: str) -> list[int]:
    """The counts of ``at``, asked among ``MANY`` copies of it; every copy must give the same answer."""
    result = search.count(np.resize(np.array(at, dtype="float64"), MANY * len(at)), side=side)
    copies = result.reshape(MANY, len(at))
    assert (copies == copies[0]).all()
    return copies[0].tolist()


def test_an_instant_counts_the_keys_before_it_and_at_it_on_the_right_side() -> None:
    search = StepSearch.of(np.array([MARCH_28_END, MARCH_29_END, MARCH_30_END]))
    at = [MARCH_28_END - 1, MARCH_28_END, MARCH_29_END - 1, MARCH_29_END, MARCH_30_END + 1, MARCH_28_END + 3600]

    # before the first end: none; exactly at an end: it counts on the right, not on the left
    assert counted(search, at, "right") == [0, 1, 1, 2, 3, 1]
    assert counted(search, at, "left") == [0, 0, 1, 1, 3, 1]
    assert search.table is not None and search.table.step == 23 * 3600  # the short day sets the step


def test_instants_exactly_at_a_steps_start_are_searched_and_still_right() -> None:
    # keys 0, 10, 25: the step is 10 s from -10, so 0, 10 and 20 start steps; 10 is also a key
    search = StepSearch.of(np.array([0.0, 10.0, 25.0]))
    at = [0.0, 10.0, 20.0, 25.0, 9.999, 10.001]

    assert counted(search, at, "right") == [1, 2, 2, 3, 1, 2]
    assert counted(search, at, "left") == [0, 1, 2, 2, 1, 2]


def test_unknown_and_infinite_instants_count_as_searchsorted_sorts_them() -> None:
    search = StepSearch.of(np.array([MARCH_28_END, MARCH_29_END]))
    at = [np.nan, np.inf, -np.inf, 1e300, -1e300]

    # NaN and +inf after every end, -inf before them all
    assert counted(search, at, "right") == [2, 2, 0, 2, 0]
    assert counted(search, at, "left") == [2, 2, 0, 2, 0]


def test_keys_the_table_cannot_serve_are_searched() -> None:
    # none, one, a repeated key (no gap), keys a second apart across a year (too many steps per key)
    for keys, at, right in (([], [0.0, np.nan], [0, 0]),
                            ([5.0], [4.0, 5.0, 6.0], [0, 1, 1]),
                            ([1.0, 2.0, 2.0, 3.0], [2.0, 2.5], [3, 3]),
                            ([0.0, 1.0, 31_536_000.0], [0.5, 1.0, 4e7], [1, 2, 3])):
        search = StepSearch.of(np.array(keys))
        assert counted(search, at, "right") == right
        assert search.table is None


def test_in_chunks_applies_a_function_to_every_chunk_and_the_partial_last_one() -> None:
    values = np.arange(2 * CHUNK + 3, dtype="float64")
    seen: list[int] = []

    def doubled(part: np.ndarray) -> np.ndarray:
        seen.append(len(part))
        return part * 2

    np.testing.assert_array_equal(in_chunks(doubled, values, np.float64), values * 2)
    assert seen == [CHUNK, CHUNK, 3]


_gaps = st.lists(st.one_of(st.integers(min_value=1, max_value=200).map(float),
                           st.floats(min_value=1e-3, max_value=1e4)), max_size=12)  # no gap: a single key
_instant = st.one_of(st.integers(min_value=-300, max_value=3_000).map(float),
                     st.floats(min_value=-1e4, max_value=1e5),
                     st.sampled_from([np.nan, np.inf, -np.inf, 1e18, -1e18]))


@hsettings(max_examples=200, deadline=None)
@given(first=st.one_of(st.integers(min_value=-100, max_value=100).map(float),
                       st.floats(min_value=1.6e9, max_value=1.9e9)),
       gaps=_gaps, at=st.lists(_instant, max_size=30), near_keys=st.booleans(), side=st.sampled_from(["left", "right"]))
def test_count_equals_searchsorted(first, gaps, at, near_keys, side) -> None:
    """Any ascending keys (whole seconds, fractions, epoch-sized), any instants, also on and one float away
    from each key and each step's start, both sides: the same counts as a binary search."""
    keys = first + np.cumsum([0.0, *gaps])
    keys = np.unique(keys)  # a fraction added to a large first key can round two keys together
    search = StepSearch.of(keys)
    at = np.array(at, dtype="float64")
    if near_keys and search.table is not None:
        edges = np.concatenate([keys, search.table.base + search.table.step * np.arange(len(search.table.before_step))])
        at = np.concatenate([at, edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)])
    at = np.resize(at, max(MANY, len(at))) if len(at) else at

    np.testing.assert_array_equal(search.count(at, side=side), np.searchsorted(keys, at, side=side))



@hsettings(max_examples=200, deadline=None)
@given(first=st.floats(min_value=-1e12, max_value=1e12), step=st.sampled_from([0.1, 1 / 3, 3.0, 7.0, 86_400.0, 864_000.0, 8.64e9]),
       n=st.integers(min_value=2, max_value=40), half=st.booleans(), side=st.sampled_from(["left", "right"]))
def test_evenly_spaced_keys_on_the_steps_starts_count_as_searchsorted(first, step, n, half, side) -> None:
    """Keys a step apart (shifted by half a step or not) put every key on or next to a step's start, where
    rounding decides the step an instant lands in: on, and one float either side of, every key and start."""
    keys = np.unique(first + step * np.arange(n) + (step / 2 if half else 0.0))
    search = StepSearch.of(keys)
    assume(search.table is not None)  # rounding can merge keys into uneven gaps
    edges = np.concatenate([keys, search.table.base + search.table.step * np.arange(len(search.table.before_step))])
    at = np.resize(np.concatenate([edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)]), MANY)

    np.testing.assert_array_equal(search.count(at, side=side), np.searchsorted(keys, at, side=side))

# ---------------------------------------------------------------- through a business calendar

def _office() -> BusinessCalendar:
    return BusinessCalendar(calendar_from_mapping("office", OFFICE))


def _sh(text: str) -> float:
    return local(text, "Asia/Shanghai").timestamp()


def test_business_time_across_lunch_is_the_same_for_thousands_of_instants() -> None:
    # Mon 11:00 -> 14:00: 11:00-12:00 (3600) + 13:30-14:00 (1800) = 5400; Mon 11:59:30 -> 13:30:15: 45 s;
    # Sat 10:00 -> Mon 09:30: 1800 (the weekend does not count)
    start = np.resize([_sh("2026-03-02 11:00"), _sh("2026-03-02 11:59:30"), _sh("2026-02-28 10:00")], 3 * MANY)
    end = np.resize([_sh("2026-03-02 14:00"), _sh("2026-03-02 13:30:15"), _sh("2026-03-02 09:30")], 3 * MANY)

    seconds = _office().business_seconds(start, end)

    assert seconds.reshape(MANY, 3).tolist() == [[5400.0, 45.0, 1800.0]] * MANY


def test_due_times_across_lunch_are_the_same_for_thousands_of_instants() -> None:
    # Mon 11:00 + 1 h is reached at 12:00 (not 13:30), + 1 h 1 s at 13:30:01, + 1.5 h at 14:00
    calendar = _office()
    start = calendar.cumulative(np.full(3 * MANY, _sh("2026-03-02 11:00")))
    due = calendar.earliest_reaching(start + np.resize([3600.0, 3601.0, 5400.0], 3 * MANY))

    expected = [_sh("2026-03-02 12:00"), _sh("2026-03-02 13:30:01"), _sh("2026-03-02 14:00")]
    assert due.reshape(MANY, 3).tolist() == [expected] * MANY


@hsettings(max_examples=25, deadline=None)
@given(seconds=st.lists(st.integers(min_value=0, max_value=120 * 86_400), min_size=1, max_size=50),
       fractions=st.booleans())
def test_a_calendar_answers_many_instants_as_it_answers_each_alone(seconds, fractions) -> None:
    """Business time and due times of thousands of instants (the table) equal those of each instant alone
    (a binary search), over four months of office days, weekends and nights."""
    at = _sh("2026-01-01 00:00") + np.resize(np.array(seconds, dtype="float64"), MANY)
    if fractions:
        at = at + np.resize([0.25, 0.5, 0.999], MANY)
    calendar = _office()
    together = calendar.cumulative(at)
    alone = np.array([calendar.cumulative(at[i:i + 1])[0] for i in range(len(seconds))])
    np.testing.assert_array_equal(together[:len(seconds)], alone)
    reached = calendar.earliest_reaching(together + 3600)
    np.testing.assert_array_equal(reached[:len(seconds)],
                                  [calendar.earliest_reaching(together[i:i + 1] + 3600)[0] for i in range(len(seconds))])
    assert pd.notna(reached).all()
