"""kpis/calendar.py: the helpers around instants (finite bounds; epoch seconds and back, the form every time
takes inside ``kpis``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kpis.calendar import epoch_seconds, finite_bounds, from_epoch_seconds
from kpis.step_search import CHUNK

TICKS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def test_epoch_seconds_floor_to_the_second_in_every_unit_and_zone() -> None:
    # 2026-03-02 09:30:00.9 in Shanghai is 01:30:00.9 UTC = 1772415000.9 s; before 1970 floors down too
    shanghai = pd.Series(pd.to_datetime(["2026-03-02 09:30:00.9", None]).tz_localize("Asia/Shanghai"))
    before_1970 = pd.Series(pd.to_datetime(["1969-12-31 23:59:59.5", "1970-01-01 00:00:00.5"]))

    np.testing.assert_array_equal(epoch_seconds(shanghai), [1772415000.0, np.nan])
    np.testing.assert_array_equal(epoch_seconds(before_1970), [-1.0, 0.0])
    for unit in TICKS_PER_SECOND:
        np.testing.assert_array_equal(epoch_seconds(shanghai.dt.as_unit(unit)), [1772415000.0, np.nan])


def test_from_epoch_seconds_keeps_microseconds_and_missing() -> None:
    back = from_epoch_seconds(np.array([1772415000.0, 1772415000.25, -1.5, np.nan, 0.9999996]))

    assert str(back.dtype) == "datetime64[us, UTC]"
    assert back.tolist()[:3] == [pd.Timestamp("2026-03-02 01:30:00", tz="UTC"),
                                 pd.Timestamp("2026-03-02 01:30:00.25", tz="UTC"),
                                 pd.Timestamp("1969-12-31 23:59:58.5", tz="UTC")]
    assert pd.isna(back[3])
    assert back[4] == pd.Timestamp("1970-01-01 00:00:01", tz="UTC")  # 999 999.6 microseconds: the nearest one


@hsettings(max_examples=200, deadline=None)
@given(ticks=st.lists(st.one_of(st.none(), st.integers(min_value=-4_000_000_000, max_value=4_000_000_000)),
                      max_size=20),
       unit=st.sampled_from(sorted(TICKS_PER_SECOND)), zone=st.sampled_from([None, "UTC", "America/New_York"]))
def test_epoch_seconds_are_the_ticks_floored_to_seconds(ticks, unit, zone) -> None:
    """Any instants in any unit, naive or in any zone: Python's integer floor of the ticks since 1970, and
    back again they are those instants floored to the second."""
    scaled = [None if t is None else t * (TICKS_PER_SECOND[unit] // 1000 or 1) + 7 for t in ticks]
    index = pd.DatetimeIndex(np.array([np.iinfo("int64").min if t is None else t for t in scaled],
                                      dtype="int64").view(f"datetime64[{unit}]"))
    stamps = pd.Series(index if zone is None else index.tz_localize("UTC").tz_convert(zone))

    seconds = epoch_seconds(stamps)

    expected = [np.nan if t is None else float(t // TICKS_PER_SECOND[unit]) for t in scaled]
    np.testing.assert_array_equal(seconds, expected)
    floored = pd.Series(index.tz_localize("UTC")).dt.floor("s").dt.as_unit("us")
    assert from_epoch_seconds(seconds).equals(floored)


def test_finite_bounds_skip_missing_and_infinite_values_across_chunks() -> None:
    values = np.full(3 * CHUNK + 5, np.nan)
    values[[0, 1, 7]] = [np.inf, -np.inf, 40.0]
    values[CHUNK + 3] = 12.5  # the smallest, in the second chunk
    values[-1] = 99.0  # the largest, alone in the last one

    assert finite_bounds(values) == (12.5, 99.0)
    assert finite_bounds(np.array([np.nan, np.inf])) is None
    assert finite_bounds(np.empty(0)) is None
