"""Which periods a run recomputes: windows from ``--quarter`` / ``--from --to``, the periods of a window
(edge weeks whole), the periods a set of changed tickets touches, and the facts a window takes in.
Every expected value is worked out by hand from the calendar (2026-07-01 is a Wednesday).
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from kpis.schema import TICKET_FACT_COLUMNS, conform
from pipeline.analyst.report_period import Period
from pipeline.periods import (
    Window,
    dates_window,
    facts_in_window,
    facts_on_days,
    period_days,
    quarter_window,
    touched_periods,
    window_periods,
)

GRAINS = ("day", "week", "month", "quarter")
SH = "Asia/Shanghai"


def _periods(frame: pd.DataFrame) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for grain, start in zip(frame["grain"], frame["period_start"], strict=True):
        out.setdefault(grain, []).append(start.date().isoformat())
    return {g: sorted(v) for g, v in out.items()}


def _facts(*rows: dict) -> pd.DataFrame:
    """ticket_facts rows; timestamps written with their offset, stored in UTC."""
    frame = pd.DataFrame([{"source": "helpdesk", "ticket_type": "incident", **r} for r in rows])
    for anchor in ("opened_at", "resolved_at", "satisfaction_at", "planned_end"):
        frame[anchor] = pd.to_datetime(frame.get(anchor, pd.Series([None] * len(frame))), utc=True)
    return conform(frame, TICKET_FACT_COLUMNS)


# --- windows -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "first", "end"), [
    ("2026Q3", date(2026, 7, 1), date(2026, 10, 1)),
    ("2026Q1", date(2026, 1, 1), date(2026, 4, 1)),
    ("2026q4", date(2026, 10, 1), date(2027, 1, 1)),  # the year rolls over
    (" 2025Q2 ", date(2025, 4, 1), date(2025, 7, 1)),
])
def test_quarter_window(text: str, first: date, end: date) -> None:
    assert quarter_window(text) == Window(first, end)


@pytest.mark.parametrize("bad", ["2026Q5", "2026Q0", "2026-Q3", "Q3 2026", "26Q3", "2026"])
def test_a_bad_quarter_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="2026Q3"):
        quarter_window(bad)


def test_dates_window_includes_both_dates() -> None:
    assert dates_window(date(2026, 7, 1), date(2026, 7, 31)) == Window(date(2026, 7, 1), date(2026, 8, 1))
    one_day = dates_window(date(2026, 7, 1), date(2026, 7, 1))
    assert one_day == Window(date(2026, 7, 1), date(2026, 7, 2))
    assert [str(d) for d in one_day.days()] == ["2026-07-01"]
    with pytest.raises(ValueError):
        dates_window(date(2026, 7, 31), date(2026, 7, 1))


def test_window_instants_are_local_midnights() -> None:
    # Shanghai is UTC+8 all year: 2026-07-01 00:00 local is 2026-06-30 16:00 UTC
    first, end = quarter_window("2026Q3").utc_bounds(SH)
    assert (first, end) == (pd.Timestamp("2026-06-30T16:00Z"), pd.Timestamp("2026-09-30T16:00Z"))
    # Berlin's clocks go forward on 2026-03-29: that local day lasts 23 hours
    first, end = dates_window(date(2026, 3, 29), date(2026, 3, 29)).utc_bounds("Europe/Berlin")
    assert (first, end) == (pd.Timestamp("2026-03-28T23:00Z"), pd.Timestamp("2026-03-29T22:00Z"))


# --- the periods of a window ---------------------------------------------------------------------------
def test_window_periods_of_a_quarter_take_the_edge_weeks_whole() -> None:
    periods = _periods(window_periods(quarter_window("2026Q3"), GRAINS))
    # 31 + 31 + 30 days
    days = [(date(2026, 7, 1) + timedelta(days=i)).isoformat() for i in range(92)]
    assert periods["day"] == days
    # Wed 2026-07-01 is in the week of Mon 2026-06-29; Wed 2026-09-30 in the week of Mon 2026-09-28:
    # 13 weeks apart, 14 weeks
    assert periods["week"] == [(date(2026, 6, 29) + timedelta(weeks=i)).isoformat() for i in range(14)]
    assert periods["week"][-1] == "2026-09-28"
    assert periods["month"] == ["2026-07-01", "2026-08-01", "2026-09-01"]
    assert periods["quarter"] == ["2026-07-01"]


def test_window_periods_of_a_few_days_across_a_month_end() -> None:
    # Thu 2026-07-30 .. Sun 2026-08-02: one ISO week (Mon 07-27), two months, one quarter
    frame = window_periods(dates_window(date(2026, 7, 30), date(2026, 8, 2)), ("week", "month", "quarter"))
    assert _periods(frame) == {"week": ["2026-07-27"], "month": ["2026-07-01", "2026-08-01"],
                               "quarter": ["2026-07-01"]}
    assert str(frame["period_start"].dtype) == "datetime64[s]"
    assert not frame.duplicated().any()


def test_window_periods_only_for_the_configured_grains() -> None:
    assert set(window_periods(quarter_window("2026Q3"), ("month",))["grain"]) == {"month"}


# --- the periods that changed tickets touch -----------------------------------------------------------
def test_touched_periods_are_the_local_dates_of_every_anchor_and_of_induced_incidents() -> None:
    a = dict(ticket_id="A", opened_at="2026-06-30T23:30:00+08:00", resolved_at="2026-07-01T00:30:00+08:00")
    m = dict(ticket_id="M", ticket_type="maintenance", opened_at="2026-09-01T10:00:00+08:00",
             planned_end="2026-09-30T23:00:00+08:00")
    induced = dict(ticket_id="I", caused_by="M", opened_at="2026-10-02T10:00:00+08:00")
    elsewhere = dict(ticket_id="J", source="other", caused_by="M", opened_at="2026-11-05T10:00:00+08:00")
    changed, everything = _facts(a, m), _facts(a, m, induced, elsewhere)

    periods = _periods(touched_periods(changed, everything, GRAINS, SH))
    # local days: A opened 06-30 and resolved 07-01 (both 06-30 in UTC); M opened 09-01, due 09-30;
    # I, opened 10-02, was caused by M of the same source; J's "M" is another source's ticket.
    assert periods["day"] == ["2026-06-30", "2026-07-01", "2026-09-01", "2026-09-30", "2026-10-02"]
    # Tue 06-30 and Wed 07-01 -> Mon 06-29; Tue 09-01 -> Mon 08-31; Wed 09-30 and Fri 10-02 -> Mon 09-28
    assert periods["week"] == ["2026-06-29", "2026-08-31", "2026-09-28"]
    assert periods["month"] == ["2026-06-01", "2026-07-01", "2026-09-01", "2026-10-01"]
    assert periods["quarter"] == ["2026-04-01", "2026-07-01", "2026-10-01"]

    # the same instants read in UTC: A's night falls on 06-30 twice
    utc = _periods(touched_periods(changed, everything, ("day",), "UTC"))
    assert utc["day"] == ["2026-06-30", "2026-09-01", "2026-09-30", "2026-10-02"]


def test_touched_periods_of_nothing_is_empty() -> None:
    none = _facts(dict(ticket_id="A", opened_at="2026-07-01T09:00:00+08:00")).iloc[0:0]
    assert len(touched_periods(none, none, GRAINS, SH)) == 0


# --- the facts a window takes in -----------------------------------------------------------------------
def test_facts_in_window_by_any_anchor_on_a_local_date_inside() -> None:
    facts = _facts(
        dict(ticket_id="A", opened_at="2026-06-30T23:30:00+08:00", resolved_at="2026-07-01T00:30:00+08:00"),
        dict(ticket_id="B", opened_at="2026-07-31T23:59:59+08:00"),            # the last second of July
        dict(ticket_id="C", opened_at="2026-08-01T00:00:00+08:00"),            # the first of August
        dict(ticket_id="D", opened_at="2026-05-01T09:00:00+08:00", satisfaction_at="2026-07-15T09:00:00+08:00"),
        dict(ticket_id="E", ticket_type="maintenance", opened_at="2026-06-01T09:00:00+08:00",
             planned_end="2026-07-02T01:00:00+08:00"),
        dict(ticket_id="F", opened_at="2026-06-15T09:00:00+08:00"),
    )
    july = dates_window(date(2026, 7, 1), date(2026, 7, 31))
    assert list(facts_in_window(facts, july, SH)["ticket_id"]) == ["A", "B", "D", "E"]
    # in UTC, A's resolution is on 06-30, C's opening on 07-31
    assert list(facts_in_window(facts, july, "UTC")["ticket_id"]) == ["B", "C", "D", "E"]


def test_facts_on_scattered_days_by_any_anchor() -> None:
    facts = _facts(
        dict(ticket_id="A", opened_at="2026-02-20T09:00:00+08:00", resolved_at="2026-03-09T00:30:00+08:00"),
        dict(ticket_id="B", opened_at="2026-03-02T00:30:00+08:00"),            # 03-01 16:30 UTC
        dict(ticket_id="C", opened_at="2026-03-03T09:00:00+08:00"),
        dict(ticket_id="D", opened_at="2026-02-01T09:00:00+08:00", satisfaction_at="2026-03-01T23:00:00+08:00"),
    )
    days = pd.to_datetime(["2026-03-09", "2026-03-01"]).to_numpy()  # any order, with a gap

    assert facts_on_days(facts, days, SH).tolist() == [True, False, False, True]  # A resolved 03-09, D answered 03-01
    # in UTC A is resolved on 03-08 and B opened on 03-01 (16:30); D answered on 03-01 (15:00) still
    assert facts_on_days(facts, days, "UTC").tolist() == [False, True, False, True]
    assert not facts_on_days(facts, days[:0], SH).any()


def test_period_days_are_every_date_of_each_period() -> None:
    periods = pd.DataFrame({"grain": ["day", "week", "month", "quarter", "month"],
                            "period_start": pd.to_datetime(["2026-03-05", "2026-03-02", "2026-02-01", "2025-10-01",
                                                            "2024-02-01"])})
    days = period_days(periods)

    # Q4 2025: 92 days (Oct 31 + Nov 30 + Dec 31); February 2026: 28; the ISO week Mon 03-02 to Sun 03-08 (7)
    # holds the day 03-05; February 2024: 29 (a leap year)
    assert len(days) == 92 + 28 + 7 + 29
    assert str(days[0]) == "2024-02-01" and str(days[28]) == "2024-02-29" and str(days[29]) == "2025-10-01"
    assert str(days[29 + 91]) == "2025-12-31" and str(days[29 + 92]) == "2026-02-01"
    assert str(days[-1]) == "2026-03-08" and "2026-03-01" not in days.astype(str)
    assert len(period_days(periods.iloc[:0])) == 0
    with pytest.raises(ValueError, match="not a grain: \\['year'\\]"):
        period_days(pd.DataFrame({"grain": ["year"], "period_start": pd.to_datetime(["2026-01-01"])}))


def test_a_window_starting_where_dst_skips_midnight_has_bounds() -> None:
    """Santiago moves its clocks from 00:00 to 01:00 on 2024-09-08 (-04 -> -03): that local midnight does not
    exist. The day starts when the clocks jump, 04:00 UTC (00:00 at -04 = 01:00 at -03), as the calendars and
    the report read it; a day earlier midnight is 04:00 UTC too (-04). tz_localize raised here."""
    window = Window(date(2024, 9, 7), date(2024, 9, 8))
    assert window.utc_bounds("America/Santiago") == (pd.Timestamp("2024-09-07T04:00Z"),
                                                     pd.Timestamp("2024-09-08T04:00Z"))
    assert Period("day", date(2024, 9, 8), date(2024, 9, 9), "2024-09-08").utc_bounds("America/Santiago") == (
        pd.Timestamp("2024-09-08T04:00Z"), pd.Timestamp("2024-09-09T03:00Z"))
