"""KPIS.md 2.1: business time on a calendar, worked out by hand.

Office calendar (Asia/Shanghai, UTC+8, no DST): Mon-Fri 09:00-12:00 and 13:30-18:00 = 3 h + 4.5 h = 7.5 h
= 27 000 s a working day. 2026-03-02 is a Monday.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from helpers import OFFICE, WEEKDAYS, local, ts

from kpis.calendar import BusinessCalendar
from kpis.config import CalendarSpec
from pipeline.config import calendar_from_mapping

SH = "Asia/Shanghai"
BERLIN = "Europe/Berlin"


def cal(**overrides) -> BusinessCalendar:
    cfg = {**OFFICE, **overrides}
    return BusinessCalendar(calendar_from_mapping("test", cfg))


def bs(calendar: BusinessCalendar, a: pd.Timestamp, b: pd.Timestamp) -> float:
    out = calendar.business_seconds(pd.Series([a], dtype="datetime64[us, UTC]"),
                                    pd.Series([b], dtype="datetime64[us, UTC]"))
    out = np.asarray(out, dtype="float64")
    assert out.shape == (1,)
    return float(out[0])


def sh(text: str) -> pd.Timestamp:
    return local(text, SH)


# ---------------------------------------------------------------- ordinary working days


def test_inside_one_interval():
    # Mon 09:30 -> 11:00 = 1.5 h = 5400 s
    assert bs(cal(), sh("2026-03-02 09:30"), sh("2026-03-02 11:00")) == 5400


def test_across_lunch_break():
    # Mon 11:00 -> 14:00: 11:00-12:00 (3600) + 13:30-14:00 (1800) = 5400; lunch 12:00-13:30 not counted
    assert bs(cal(), sh("2026-03-02 11:00"), sh("2026-03-02 14:00")) == 5400


def test_seconds_precision_across_lunch():
    # Mon 11:59:30 -> 13:30:15: 30 s before lunch + 15 s after = 45 s
    assert bs(cal(), sh("2026-03-02 11:59:30"), sh("2026-03-02 13:30:15")) == 45


def test_outside_hours_is_zero():
    # Mon 07:00 -> 09:00 (before opening) = 0; Mon 18:00 -> Tue 09:00 (night) = 0; lunch = 0
    c = cal()
    assert bs(c, sh("2026-03-02 07:00"), sh("2026-03-02 09:00")) == 0
    assert bs(c, sh("2026-03-02 18:00"), sh("2026-03-03 09:00")) == 0
    assert bs(c, sh("2026-03-02 12:00"), sh("2026-03-02 13:30")) == 0


def test_empty_interval_is_zero():
    t = sh("2026-03-02 10:00")
    assert bs(cal(), t, t) == 0


def test_across_night():
    # Mon 17:00 -> Tue 10:00: Mon 17:00-18:00 (3600) + Tue 09:00-10:00 (3600) = 7200
    assert bs(cal(), sh("2026-03-02 17:00"), sh("2026-03-03 10:00")) == 7200


def test_across_weekend():
    # Fri 2026-03-06 17:00 -> Mon 2026-03-09 10:00: Fri 3600 + Sat 0 + Sun 0 + Mon 3600 = 7200
    assert bs(cal(), sh("2026-03-06 17:00"), sh("2026-03-09 10:00")) == 7200


def test_whole_week():
    # Mon 00:00 -> next Mon 00:00: 5 working days x 27000 = 135000
    assert bs(cal(), sh("2026-03-02 00:00"), sh("2026-03-09 00:00")) == 135000


def test_interval_in_utc_is_converted_to_local_time():
    # 01:00Z-02:00Z = 09:00-10:00 Shanghai = 3600; 10:00Z-11:00Z = 18:00-19:00 Shanghai = 0
    c = cal()
    assert bs(c, ts("2026-03-02T01:00Z"), ts("2026-03-02T02:00Z")) == 3600
    assert bs(c, ts("2026-03-02T10:00Z"), ts("2026-03-02T11:00Z")) == 0


# ---------------------------------------------------------------- holidays and make-up days


def test_explicit_holiday_removes_the_whole_date():
    # Tue 2026-03-03 is a holiday. Mon 17:00 -> Wed 10:00 = Mon 3600 + Tue 0 + Wed 3600 = 7200
    # (without the holiday: 3600 + 27000 + 3600 = 34200)
    assert bs(cal(holidays=["2026-03-03"]), sh("2026-03-02 17:00"), sh("2026-03-04 10:00")) == 7200
    assert bs(cal(), sh("2026-03-02 17:00"), sh("2026-03-04 10:00")) == 34200


def test_country_holiday_cn_national_day():
    # 2026-10-01 (Thu) is China's National Day in the holidays package.
    # Whole day 09:00-18:00 on it: 0 with country CN, 27000 without.
    c_cn = cal(country="CN")
    assert bs(c_cn, sh("2026-10-01 09:00"), sh("2026-10-01 18:00")) == 0
    assert bs(cal(), sh("2026-10-01 09:00"), sh("2026-10-01 18:00")) == 27000
    # Wed 2026-09-30 17:00 -> Thu 2026-10-01 18:00 = Wed 17:00-18:00 only = 3600
    assert bs(c_cn, sh("2026-09-30 17:00"), sh("2026-10-01 18:00")) == 3600


def _makeup_calendar(**extra) -> BusinessCalendar:
    # Mon-Thu 09:00-12:00 + 13:30-18:00 (27000 s); Fri 09:00-12:00 only (10800 s)
    hours = {d: ["09:00-12:00", "13:30-18:00"] for d in WEEKDAYS[:4]}
    hours["fri"] = ["09:00-12:00"]
    return cal(hours=hours, **extra)


def test_makeup_day_is_worked_with_the_named_weekdays_hours():
    # Sun 2026-09-27 is a make-up day worked with Friday's hours: 09:00-12:00 = 10800
    c = _makeup_calendar(extra_workdays={"2026-09-27": "fri"})
    assert bs(c, sh("2026-09-27 00:00"), sh("2026-09-28 00:00")) == 10800
    # Sat 2026-10-10 worked with Monday's hours: 27000
    c2 = _makeup_calendar(extra_workdays={"2026-10-10": "mon"})
    assert bs(c2, sh("2026-10-10 00:00"), sh("2026-10-11 00:00")) == 27000
    # without the make-up day Sunday is off
    assert bs(_makeup_calendar(), sh("2026-09-27 00:00"), sh("2026-09-28 00:00")) == 0


def test_makeup_day_inside_a_longer_interval():
    # Thu 2026-09-24 17:00 -> Mon 2026-09-28 10:00, Sun 09-27 worked as Friday:
    # Thu 17:00-18:00 3600 + Fri 09-12 10800 + Sat 0 + Sun (Fri hours) 10800 + Mon 09:00-10:00 3600 = 28800
    c = _makeup_calendar(extra_workdays={"2026-09-27": "fri"})
    assert bs(c, sh("2026-09-24 17:00"), sh("2026-09-28 10:00")) == 28800


def test_makeup_day_partially_covered():
    # Sun 2026-09-27 worked with Monday's hours; 11:00 -> 14:00 = 3600 + 1800 = 5400 (lunch off)
    c = _makeup_calendar(extra_workdays={"2026-09-27": "mon"})
    assert bs(c, sh("2026-09-27 11:00"), sh("2026-09-27 14:00")) == 5400


def test_extra_workday_overrides_a_holiday_on_the_same_date():
    # Lead's reading: an extra working day wins over a holiday listed for the same date.
    c = _makeup_calendar(holidays=["2026-09-27"], extra_workdays={"2026-09-27": "fri"})
    assert bs(c, sh("2026-09-27 00:00"), sh("2026-09-28 00:00")) == 10800


# China's official make-up working days (调休) as the installed holidays package lists them in
# weekend_workdays: Sat 2026-10-10 (worked for the National Day week), Sun 2025-09-28, Sat 2026-02-14.
CN_MAKEUP_SAT = "2026-10-10"


def _monday_differs(**extra) -> BusinessCalendar:
    # Monday 08:00-12:00 (14400 s), Tue-Fri 09:00-12:00 + 13:30-18:00 (27000 s), weekends off, country CN
    hours = {d: ["09:00-12:00", "13:30-18:00"] for d in WEEKDAYS[1:5]}
    hours["mon"] = ["08:00-12:00"]
    return cal(hours=hours, country="CN", **extra)


def test_the_package_lists_the_make_up_days_these_tests_use():
    import holidays

    listed = holidays.country_holidays("CN", years=[2025, 2026]).weekend_workdays
    assert {date.fromisoformat(d) for d in (CN_MAKEUP_SAT, "2025-09-28", "2026-02-14")} <= listed


def test_country_make_up_day_is_worked_with_mondays_hours():
    # KPIS.md 2.1 (v2): Sat 2026-10-10 is a CN make-up day -> Monday's hours 08:00-12:00 = 14400 (v1: 0)
    day = (sh(f"{CN_MAKEUP_SAT} 00:00"), sh("2026-10-11 00:00"))
    assert bs(_monday_differs(), *day) == 14400
    # with the ordinary office calendar: Monday's 27000; without a country it is a weekend day: 0
    assert bs(cal(country="CN"), *day) == 27000
    assert bs(cal(), *day) == 0
    # a Sunday one in 2025: Sun 2025-09-28 09:00-18:00 on the office calendar = 27000
    assert bs(cal(country="CN"), sh("2025-09-28 00:00"), sh("2025-09-29 00:00")) == 27000


def test_make_up_day_rules_in_order_extra_workday_then_holiday_then_country():
    day = (sh(f"{CN_MAKEUP_SAT} 00:00"), sh("2026-10-11 00:00"))
    # extra_workdays first: the date is worked with Friday's hours (27000), not Monday's (14400)
    assert bs(_monday_differs(extra_workdays={CN_MAKEUP_SAT: "fri"}), *day) == 27000
    # then a holiday: an explicit holiday on the make-up day removes it
    assert bs(_monday_differs(holidays=[CN_MAKEUP_SAT]), *day) == 0


def test_business_time_across_a_make_up_saturday():
    # Fri 2026-10-09 17:00 -> Mon 2026-10-12 10:00 on the office calendar with CN:
    # Fri 17:00-18:00 3600 + Sat (make-up, Monday's hours) 27000 + Sun 0 + Mon 09:00-10:00 3600 = 34200
    assert bs(cal(country="CN"), sh("2026-10-09 17:00"), sh("2026-10-12 10:00")) == 34200


# ---------------------------------------------------------------- daylight saving (Europe/Berlin)
# Spring 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z). Autumn 2026-10-25: 03:00 CEST -> 02:00 CET
# (01:00Z); 02:00-03:00 happens twice. zoneinfo with fold=0: a non-existent time takes the offset before
# the change (02:30 -> +01:00 -> 01:30Z); a repeated time takes the first occurrence (02:30 -> +02:00 -> 00:30Z).


def berlin(**hours) -> BusinessCalendar:
    return BusinessCalendar(calendar_from_mapping("berlin", {"timezone": BERLIN, "hours": hours}))


WIDE_SPRING = (ts("2026-03-28T12:00Z"), ts("2026-03-30T12:00Z"))
WIDE_AUTUMN = (ts("2026-10-24T12:00Z"), ts("2026-10-26T12:00Z"))


def test_dst_whole_day_is_23_and_25_hours():
    c = berlin(sun=["00:00-24:00"])
    # Sun 2026-03-29 00:00 CET (23:00Z Sat) -> Mon 00:00 CEST (22:00Z Sun) = 23 h = 82800
    assert bs(c, *WIDE_SPRING) == 82800
    # Sun 2026-10-25 00:00 CEST (22:00Z Sat) -> Mon 00:00 CET (23:00Z Sun) = 25 h = 90000
    assert bs(c, *WIDE_AUTUMN) == 90000


def test_dst_interval_spanning_the_changed_hour():
    c = berlin(sun=["01:00-03:00"])
    # spring: 01:00 CET = 00:00Z, 03:00 CEST = 01:00Z -> 3600
    assert bs(c, *WIDE_SPRING) == 3600
    # autumn: 01:00 CEST = 23:00Z (24th), 03:00 CET = 02:00Z -> 3 h = 10800
    assert bs(c, *WIDE_AUTUMN) == 10800


def test_dst_interval_starting_in_the_missing_or_repeated_hour():
    c = berlin(sun=["02:30-04:00"])
    # spring: 02:30 does not exist, fold=0 -> +01:00 -> 01:30Z; 04:00 CEST = 02:00Z -> 1800
    assert bs(c, *WIDE_SPRING) == 1800
    # autumn: 02:30 twice, fold=0 -> first (CEST) -> 00:30Z; 04:00 CET = 03:00Z -> 2.5 h = 9000
    assert bs(c, *WIDE_AUTUMN) == 9000


def test_dst_interval_ending_in_the_missing_or_repeated_hour():
    c = berlin(sun=["01:00-02:30"])
    # spring: 01:00 CET = 00:00Z; 02:30 (fold=0, +01:00) = 01:30Z -> 5400
    assert bs(c, *WIDE_SPRING) == 5400
    # autumn: 01:00 CEST = 23:00Z (24th); 02:30 (fold=0, CEST) = 00:30Z -> 5400
    assert bs(c, *WIDE_AUTUMN) == 5400


def test_dst_interval_that_collapses_in_utc_counts_nothing():
    # spring: 02:15 (missing, fold=0 -> +01:00) = 01:15Z; 03:00 CEST = 01:00Z: the interval [01:15Z, 01:00Z)
    # is empty in real time, so its overlap with anything is 0 (never negative).
    c = berlin(sun=["02:15-03:00"])
    assert bs(c, *WIDE_SPRING) == 0


def test_dst_intervals_that_overlap_in_utc_count_once():
    # spring: 01:00-02:30 -> [00:00Z, 01:30Z); 03:00-04:00 -> [01:00Z, 02:00Z). The overlap of [a, b) with
    # the working intervals is [00:00Z, 02:00Z) = 7200 (a plain sum of lengths would give 9000).
    c = berlin(sun=["01:00-02:30", "03:00-04:00"])
    assert bs(c, *WIDE_SPRING) == 7200


def test_dst_office_hours_follow_the_local_offset_of_each_date():
    c = berlin(**{d: ["09:00-17:00"] for d in WEEKDAYS[:5]})
    # Mon 2026-03-23 (CET): 09:00 = 08:00Z
    assert bs(c, ts("2026-03-23T07:00Z"), ts("2026-03-23T08:00Z")) == 0
    assert bs(c, ts("2026-03-23T08:00Z"), ts("2026-03-23T09:00Z")) == 3600
    # Mon 2026-03-30 (CEST): 09:00 = 07:00Z
    assert bs(c, ts("2026-03-30T07:00Z"), ts("2026-03-30T08:00Z")) == 3600
    # Fri 2026-03-27 16:00 CET (15:00Z) -> Mon 2026-03-30 10:00 CEST (08:00Z): 3600 + 3600 = 7200
    assert bs(c, ts("2026-03-27T15:00Z"), ts("2026-03-30T08:00Z")) == 7200
    # autumn: Mon 2026-10-26 (CET) 09:00 = 08:00Z; Fri 2026-10-23 (CEST) 17:00 = 15:00Z
    assert bs(c, ts("2026-10-26T07:00Z"), ts("2026-10-26T08:00Z")) == 0
    assert bs(c, ts("2026-10-23T14:00Z"), ts("2026-10-26T09:00Z")) == 7200


# ---------------------------------------------------------------- 24x7 and vector behaviour


@pytest.mark.parametrize("tz", ["UTC", BERLIN, SH])
def test_24x7_is_calendar_time(tz):
    c = BusinessCalendar(CalendarSpec.always(tz))
    # 48 h of real time across the spring DST change = 172800, whatever the timezone
    assert bs(c, *WIDE_SPRING) == 172800
    assert bs(c, ts("2026-03-02T00:00:07Z"), ts("2026-03-02T00:01:00Z")) == 53


def test_vectorised_in_order_and_nan_for_missing():
    c = cal()
    start = pd.Series([sh("2026-03-02 11:00"), pd.NaT, sh("2026-03-02 17:00"), sh("2026-03-06 17:00")],
                      dtype="datetime64[us, UTC]")
    end = pd.Series([sh("2026-03-02 14:00"), sh("2026-03-02 14:00"), pd.NaT, sh("2026-03-09 10:00")],
                    dtype="datetime64[us, UTC]")
    out = np.asarray(c.business_seconds(start, end), dtype="float64")
    # 5400 (lunch), NaN (start NaT), NaN (end NaT), 7200 (weekend)
    assert out.shape == (4,)
    assert out[0] == 5400 and np.isnan(out[1]) and np.isnan(out[2]) and out[3] == 7200



# ---------------------------------------------------------------- the inverse: earliest instant reaching a business time


def reach(calendar: BusinessCalendar, start: pd.Timestamp, business_s: float) -> pd.Timestamp | None:
    """The earliest instant at which business time since ``start`` reaches ``business_s``."""
    from_start = calendar.cumulative(np.array([start.timestamp()]))
    at = calendar.earliest_reaching(from_start + business_s)[0]
    return None if np.isnan(at) else pd.Timestamp(at, unit="s", tz="UTC")


def test_reaching_inside_one_interval():
    # Mon 09:30 + 1 h = 10:30
    assert reach(cal(), sh("2026-03-02 09:30"), 3600) == sh("2026-03-02 10:30")


def test_reaching_across_lunch():
    # Mon 11:00 + 1.5 h: 11:00-12:00 gives 1 h, lunch 12:00-13:30 gives nothing, 13:30-14:00 the last 0.5 h
    assert reach(cal(), sh("2026-03-02 11:00"), 5400) == sh("2026-03-02 14:00")


def test_reaching_exactly_at_an_interval_end_is_that_end_not_the_next_start():
    # Mon 11:00 + 1 h is reached at 12:00 (the earliest instant), not at 13:30 when work resumes
    assert reach(cal(), sh("2026-03-02 11:00"), 3600) == sh("2026-03-02 12:00")
    # one second more: 13:30:01
    assert reach(cal(), sh("2026-03-02 11:00"), 3601) == sh("2026-03-02 13:30:01")


def test_reaching_from_outside_working_hours():
    # Sat 2026-03-07 10:00 + 1 h: nothing until Mon 09:00, reached Mon 10:00
    assert reach(cal(), sh("2026-03-07 10:00"), 3600) == sh("2026-03-09 10:00")


def test_reaching_across_a_holiday_and_a_night():
    # Tue 2026-03-03 is a holiday. Mon 17:00 + 2 h: Mon 17:00-18:00 (1 h), Tue nothing, Wed 09:00-10:00 -> Wed 10:00
    assert reach(cal(holidays=["2026-03-03"]), sh("2026-03-02 17:00"), 7200) == sh("2026-03-04 10:00")
    # without the holiday: Tue 10:00
    assert reach(cal(), sh("2026-03-02 17:00"), 7200) == sh("2026-03-03 10:00")


def test_reaching_zero_is_the_first_instant_with_that_business_time():
    # 0 business seconds after Sat 10:00 is already reached at the end of Friday's work: callers that ask
    # for "t >= start" take the later of the two (kpis.sla)
    assert reach(cal(), sh("2026-03-07 10:00"), 0) == sh("2026-03-06 18:00")


def test_reaching_far_beyond_the_laid_out_days():
    # 20 working days (540 000 s) after Mon 2026-03-02 09:00: Fri 2026-03-27 18:00 (4 weeks of 5 days = 20)
    assert reach(cal(), sh("2026-03-02 09:00"), 20 * 27000) == sh("2026-03-27 18:00")


def test_reaching_on_a_calendar_without_working_hours_never_happens():
    # the config refuses such a calendar (pipeline/config/build.py); the engine still answers for one
    c = BusinessCalendar(CalendarSpec(name="never", timezone=SH, hours={}))
    assert reach(c, sh("2026-03-02 09:00"), 60) is None


def test_reaching_on_24x7_adds_the_seconds():
    c = BusinessCalendar(CalendarSpec.always(SH))
    assert reach(c, ts("2026-03-02T00:00:07Z"), 53) == ts("2026-03-02T00:01:00Z")


def test_reaching_across_the_spring_dst_change():
    # Berlin Sun 2026-03-29 00:00-24:00 is 23 h long: 00:00 CET (23:00Z Sat) + 23 h = Mon 00:00 CEST = 22:00Z Sun
    c = berlin(sun=["00:00-24:00"])
    assert reach(c, ts("2026-03-28T23:00Z"), 23 * 3600) == ts("2026-03-29T22:00Z")
