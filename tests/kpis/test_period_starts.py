"""kpis.aggregate.period_starts: the first local date of each date's period, by calendar arithmetic for a
few dates and through a table of the range's days for many (the two must agree everywhere).

Hand-worked (ISO weeks start on Monday):

    2026-01-01 is a Thursday  -> week 2025-12-29, month 2026-01-01, quarter 2026-01-01
    2026-05-17 is a Sunday    -> week 2026-05-11, month 2026-05-01, quarter 2026-04-01
    2024-02-29 is a Thursday  -> week 2024-02-26, month 2024-02-01, quarter 2024-01-01
    1969-12-31 is a Wednesday -> week 1969-12-29, month 1969-12-01, quarter 1969-10-01 (before the epoch)
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from kpis.aggregate import period_starts

DATES = ["2026-01-01", "2026-05-17", "2024-02-29", "1969-12-31"]
EXPECTED = {
    "day": DATES,
    "week": ["2025-12-29", "2026-05-11", "2024-02-26", "1969-12-29"],
    "month": ["2026-01-01", "2026-05-01", "2024-02-01", "1969-12-01"],
    "quarter": ["2026-01-01", "2026-04-01", "2024-01-01", "1969-10-01"],
}


def days(texts: list[str]) -> np.ndarray:
    return np.array(texts, dtype="datetime64[D]")


def test_a_few_dates() -> None:
    for grain, expected in EXPECTED.items():
        assert period_starts(days(DATES), grain).tolist() == days(expected).tolist(), grain


def test_many_dates_over_a_short_range_give_the_same_starts() -> None:
    many = np.tile(days(DATES[:3]), 3000)  # 9000 dates (past 4096) over 2024-02-29 .. 2026-05-17 (809 days)
    for grain, expected in EXPECTED.items():
        out = period_starts(many, grain)
        assert out.dtype == np.dtype("datetime64[D]")
        assert out.tolist() == np.tile(days(expected[:3]), 3000).tolist(), grain


def test_a_missing_date_among_many_keeps_the_arithmetic() -> None:
    many = np.tile(days(DATES[:3]), 3000)
    many[7] = np.datetime64("NaT")
    assert np.isnat(period_starts(many, "month")[7])
    for grain, expected in EXPECTED.items():
        out = period_starts(many, grain)
        assert out[8] == days(expected[2:3])[0]
        assert out[7:8].tolist() == period_starts(many[7:8], grain).tolist()  # what one NaT alone gives


@given(st.lists(st.integers(-2000, 2000), min_size=1, max_size=40), st.integers(-30000, 30000),
       st.integers(0, 3000), st.sampled_from(["day", "week", "month", "quarter"]))
def test_the_table_of_days_agrees_with_the_calendar_arithmetic(offsets, base, extra, grain) -> None:
    few = (np.array(offsets, dtype="int64") + base).astype("datetime64[D]")
    many = np.resize(few, 4097 + extra)  # past 4096 dates over at most 4001 days: the table
    expected = np.array([period_starts(few[i:i + 1], grain)[0] for i in range(len(few))])  # one by one
    assert period_starts(many, grain).tolist() == np.resize(expected, len(many)).tolist()
