"""connectors.mapping's fast paths, each checked against the general way:

- ``read_timestamps``: a column of plain ISO 8601 values is read by Arrow in one pass (``_iso_timestamps``),
  any other column by parsing each distinct text (``_distinct_timestamps``); both must give the same for
  every column the first one takes;
- value maps and counts are worked out once per distinct text: the same as row by row;
- counts of plain digits (a sequence column, a distinct text per row) are cast in one pass: the same as
  parsing each distinct text;
- event values are mapped per distinct text and set by position: the same as row by row.

Hand-worked (source timezone Asia/Shanghai, UTC+8, no DST):

    2026-03-05T10:00:00Z          -> 2026-03-05 10:00:00 UTC
    2026-03-05T10:00:00+08:00     -> 2026-03-05 02:00:00 UTC
    2026-03-05 10:00:59.900       -> naive, 10:00:59.9 in Shanghai -> 02:00:59 UTC (fractions truncated)
    2026-03-05                    -> naive midnight in Shanghai -> 2026-03-04 16:00:00 UTC
    1969-12-31T23:59:59Z          -> before 1970: out of range, missing
    "" and None                   -> missing, no problem
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from connectors.base import SourceConfig
from connectors.mapping import (
    RowReasons,
    _as_text,
    _distinct_timestamps,
    _event_values,
    _iso_timestamps,
    _map_values,
    _parse_count,
    _parse_distinct_counts,
    read_timestamps,
    require_offsets_or_timezone,
)
from kpis.errors import ConfigError

VALUES = ["2026-03-05T10:00:00Z", "2026-03-05T10:00:00+08:00", "2026-03-05 10:00:59.900", "2026-03-05",
          "1969-12-31T23:59:59Z", "", None]


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_an_iso_column_is_read_in_one_pass_as_worked_out(make_source) -> None:
    values = pd.Series(VALUES, dtype="str")
    fast = _iso_timestamps(_as_text(values), make_source())

    assert fast is not None  # the one-pass reader took it
    assert fast.utc.tolist()[:4] == [utc("2026-03-05 10:00:00"), utc("2026-03-05 02:00:00"),
                                     utc("2026-03-05 02:00:59"), utc("2026-03-04 16:00:00")]
    assert fast.utc.isna().tolist() == [False] * 4 + [True] * 3
    assert fast.out_of_range.tolist() == [False] * 4 + [True, False, False]
    assert not fast.unparseable.any() and not fast.no_offset.any() and fast.has_offsets
    assert str(fast.utc.dtype) == "datetime64[us, UTC]"
    assert_same(fast, read_timestamps(values, make_source()))


def test_a_column_in_several_arrow_chunks_is_read_the_same(make_source) -> None:
    parts = [pd.Series(VALUES[:3], dtype="str"), pd.Series(VALUES[3:], dtype="str")]
    values = pd.concat(parts, ignore_index=True)  # two Arrow chunks, as a stacked export's column is
    fast = _iso_timestamps(_as_text(values), make_source())
    assert fast is not None
    assert_same(fast, _iso_timestamps(_as_text(pd.Series(VALUES, dtype="str")), make_source()))
    assert_same(fast, _distinct_timestamps(_as_text(values), make_source()))


def test_naive_values_without_a_timezone_are_marked_not_read(make_source) -> None:
    cfg = make_source(timezone=None)
    values = pd.Series(["2026-03-05T10:00:00+01:00", "2026-03-05 10:00", None], dtype="str")
    fast = _iso_timestamps(_as_text(values), cfg)

    assert fast is not None
    assert fast.utc.tolist()[0] == utc("2026-03-05 09:00:00") and fast.utc.isna().tolist() == [False, True, True]
    assert fast.no_offset.tolist() == [False, True, False] and fast.has_offsets
    assert not fast.unparseable.any()
    with pytest.raises(ConfigError, match="timezone"):  # naive values only: the source needs a timezone
        require_offsets_or_timezone(read_timestamps(values[1:], cfg), values[1:], cfg)


@pytest.mark.parametrize("other", ["05/03/2026 10:00", "soon", "2026-03-05T10:00:00 UTC", "2026-02-30"])
def test_one_value_in_another_notation_sends_the_column_to_the_distinct_parse(make_source, other) -> None:
    values = pd.Series(["2026-03-05T10:00:00Z", other], dtype="str")
    assert _iso_timestamps(_as_text(values), make_source(dayfirst=True)) is None
    stamps = read_timestamps(values, make_source(dayfirst=True))
    assert stamps.utc.iloc[0] == utc("2026-03-05 10:00:00")


def test_a_source_format_or_epoch_setting_keeps_the_distinct_parse(make_source) -> None:
    values = _as_text(pd.Series(["2026-03-05T10:00:00Z"], dtype="str"))
    assert _iso_timestamps(values, make_source(timestamp_format="%Y-%m-%dT%H:%M:%S%z")) is None
    assert _iso_timestamps(values, make_source(options={"epoch": "s"})) is None


# --- property: wherever the one-pass reader answers, it answers as the distinct parse does -------------
DATES = st.sampled_from(["2026-03-05", "2026-03-08", "2026-11-01", "2024-02-29", "2026-02-30", "1969-12-31",
                         "2099-12-31", "2100-01-01", "1900-01-01", "2026-3-5", "20260305", "2026-13-01"])
CLOCKS = st.sampled_from(["", "T10:00", "T02:30:00", " 01:30:00", "T10:00:59.9", "T23:59:59.999999",
                          "T10", "T24:00:00", "T10:00:60", "T10:00:00,5", " 10:00:00.1234567"])
ZONES = st.sampled_from(["", "", "Z", "z", "+08:00", "-05:00", "+0800", "+08", " UTC", "GMT", "+14:00", "+24:00"])
VALUE = st.one_of(st.none(), st.just(""), st.builds(lambda d, c, z: d + c + z, DATES, CLOCKS, ZONES),
                  st.text(max_size=6))


def assert_same(a, b) -> None:
    for name in ("utc", "unparseable", "out_of_range", "no_offset"):
        pd.testing.assert_series_equal(getattr(a, name), getattr(b, name), check_names=False, obj=name)
    assert a.has_offsets == b.has_offsets


def one_pass_or_none(values: list, timezone: str | None) -> bool:
    """Whether the one-pass reader took the column; where it did, it agrees with the distinct parse."""
    cfg = SourceConfig(name="hd", kind="csv", path="unused.csv", timezone=timezone)
    text = _as_text(pd.Series(values, dtype="str"))
    fast = _iso_timestamps(text, cfg)
    if fast is not None:
        assert_same(fast, _distinct_timestamps(text, cfg))
    return fast is not None


TIMEZONES = st.sampled_from([None, "Asia/Shanghai", "America/New_York", "UTC"])


@hsettings(max_examples=400, deadline=None)
@given(st.lists(VALUE, max_size=12), TIMEZONES)
def test_the_one_pass_reader_agrees_with_the_distinct_parse(values, timezone) -> None:
    one_pass_or_none(values, timezone)


PLAIN_DATES = st.sampled_from(["2026-03-05", "2026-03-08", "2026-11-01", "2024-02-29", "1969-12-31", "2099-12-31",
                               "2100-01-01", "1900-01-01"])  # 03-08 and 11-01 02:30 / 01:30: New York's DST edges
PLAIN_CLOCKS = st.sampled_from(["", "T10:00", "T02:30:00", " 01:30:00", "T10:00:59.9", "T23:59:59.999999"])
PLAIN_ZONES = st.sampled_from(["", "", "Z", "+08:00", "-05:00", "+0800"])
PLAIN = st.one_of(st.none(), st.just(""),  # a zone only after a clock
                  st.builds(lambda d, c, z: d + c + (z if c else ""), PLAIN_DATES, PLAIN_CLOCKS, PLAIN_ZONES))


@hsettings(max_examples=300, deadline=None)
@given(st.lists(PLAIN, max_size=12), TIMEZONES)
def test_plain_iso_columns_take_the_one_pass_reader_and_agree(values, timezone) -> None:
    assert one_pass_or_none(values, timezone)


# --- value maps and counts are worked out per distinct text: the same as row by row --------------------
@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["Open", "open", "NEW", "Closed", "x", "3", "3.0", "-1", "2.5",
                                                      "1e2", "", "0"])), max_size=15))
def test_value_maps_and_counts_of_each_row_are_those_of_its_text(values) -> None:
    column = pd.Series(values, dtype="str", index=range(100, 100 + len(values)))
    mapping, canonical = {"Open": "NEW", "Closed": "CLOSED"}, ["NEW", "CLOSED"]

    mapped, unmapped = _map_values(column, mapping, canonical)
    counts, bad = _parse_count(column)

    assert list(mapped.index) == list(column.index) == list(counts.index)
    assert str(mapped.dtype) == "str" and str(counts.dtype) == "Int64"
    for i, value in enumerate(values):
        want = None if value is None else mapping.get(value, value if value in canonical else None)
        assert (mapped.iloc[i] if pd.notna(mapped.iloc[i]) else None) == want
        assert unmapped.iloc[i] == (value is not None and want is None)
        number = None if value is None else pd.to_numeric(pd.Series([value]), errors="coerce")[0]
        whole = number is not None and pd.notna(number) and number >= 0 and number == int(number)
        assert (None if pd.isna(counts.iloc[i]) else int(counts.iloc[i])) == (int(number) if whole else None)
        assert bad.iloc[i] == (value is not None and not whole)


# --- counts of plain digits are cast in one pass: the same as parsing each distinct text ---------------------
COUNT_TEXTS = st.one_of(
    st.none(), st.integers(min_value=0, max_value=10**17).map(str),  # up to 18 digits: 16+ take the general way
    st.integers(min_value=0, max_value=999).map(lambda n: f"{n:05d}"),  # leading zeros
    st.sampled_from(["", " 4", "4 ", "+4", "-0", "-1", "3.0", "2.5", "1e2", "x", "２", "٣", "0x10", "inf", "NaN"]))


@hsettings(max_examples=300, deadline=None)
@given(st.lists(COUNT_TEXTS, max_size=20))
def test_counts_cast_in_one_pass_equal_those_parsed_per_distinct_text(values) -> None:
    column = pd.Series(values, dtype="str", index=range(50, 50 + len(values)))
    counts, bad = _parse_count(column)
    expected_counts, expected_bad = _parse_distinct_counts(column)
    pd.testing.assert_series_equal(counts, expected_counts)
    pd.testing.assert_series_equal(bad, expected_bad)


def test_a_sequence_column_is_read_whole() -> None:
    """Hand-worked: digits (leading zeros, 15 of them) are their numbers; a sign, a fraction or a 16th digit
    are read as before (+4 and -0 are whole numbers >= 0; 2.5 and -1 are not); missing stays missing."""
    column = pd.Series(["0", "007", "999999999999999", "1000000000000000", "+4", "-0", "2.5", "-1", None],
                       dtype="str", index=list("abcdefghi"))
    counts, bad = _parse_count(column)
    assert counts.tolist() == [0, 7, 999_999_999_999_999, 1_000_000_000_000_000, 4, 0, pd.NA, pd.NA, pd.NA]
    assert bad.tolist() == [False] * 6 + [True, True, False]
    assert list(counts.index) == list(bad.index) == list("abcdefghi") and str(counts.dtype) == "Int64"
    # 17 digits are past what float64 holds exactly: read the general way, as before (rounded through float64)
    long = pd.Series(["12345678901234567"], dtype="str")
    assert _parse_count(long)[0].tolist() == _parse_distinct_counts(long)[0].tolist() == [12345678901234568]


# --- event values are mapped per distinct text and set by position: the same as row by row ------------------
EVENT_MAPS = {"status": {"Open": "NEW", "Done": "RESOLVED"}, "priority": {"high": "P1"}}
EVENT_CANONICAL = {"status": {"NEW", "IN_PROGRESS", "WAITING_CUSTOMER", "WAITING_THIRD_PARTY", "ON_HOLD", "RESOLVED",
                              "CLOSED", "CANCELLED"}, "priority": {"P1", "P2", "P3", "P4"}}


def _event_value_by_row(kind: str | None, value: str | None) -> tuple[str | None, str | None]:
    """KPIS.md 1.2 and 1.3 read row by row: (the canonical value, the row's reason when it is rejected)."""
    if kind not in EVENT_MAPS or value is None:
        return value, None
    mapped = EVENT_MAPS[kind].get(value, value if value in EVENT_CANONICAL[kind] else None)
    return mapped, None if mapped is not None else f"unmapped {kind} '{value}'"


@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["status", "priority", "assignee", "response", None]),
                          st.sampled_from(["Open", "Done", "NEW", "CLOSED", "high", "P2", "P9", "x", "bob", None])),
                max_size=20), st.randoms(use_true_random=False))
def test_event_values_are_mapped_as_row_by_row(rows, random) -> None:
    labels = random.sample(range(1000), len(rows))  # any index: rows are set by position, not by label
    kind = pd.Series([k for k, _ in rows], dtype="str", index=labels)
    value = pd.Series([v for _, v in rows], dtype="str", index=labels)
    cfg = SourceConfig(name="s", kind="csv", path="x", status_map=EVENT_MAPS["status"],
                       priority_map=EVENT_MAPS["priority"])
    reasons = RowReasons(value.index)
    mapped = _event_values(kind, value, cfg, reasons)
    expected = [_event_value_by_row(k, v) for k, v in rows]
    assert list(mapped.index) == labels and str(mapped.dtype) == "str"
    assert [None if pd.isna(m) else m for m in mapped] == [m for m, _ in expected]
    assert [None if pd.isna(r) else r for r in reasons.values] == [r for _, r in expected]
