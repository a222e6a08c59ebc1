"""Edges of the engine that no single KPI rule covers: empty input, unknown config keys, percentiles, row order."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest
from helpers import settings as make_settings
from helpers import tickets
from hypothesis import given, settings
from hypothesis import strategies as st

from kpis import compute_all
from kpis.aggregate import (
    SortCodes,
    _first,
    _FlagParts,
    _sort_keys,
    aggregate_periods,
    dense_combinations,
    in_name_order,
    kpi_rows,
    percentile_cont,
    select_sorted_at,
)
from kpis.breakdown import member_categories
from kpis.errors import ConfigError
from kpis.schema import TABLE_COLUMNS, empty_events, empty_tickets
from pipeline.config import kpi_settings_from_mapping

aggregate_module = importlib.import_module("kpis.aggregate")  # ``kpis.aggregate`` is also a function


@pytest.mark.parametrize("scorecard", [[], [{"kpi": "first_fix_rate", "target": 0.8, "weight": 1}]])
def test_no_tickets_gives_empty_tables_with_the_stored_dtypes(scorecard) -> None:
    settings = kpi_settings_from_mapping({"scorecard": scorecard})
    tables = compute_all(empty_tickets(), empty_events(), settings, pd.Timestamp("2026-01-01", tz="UTC"))
    for name, frame in [("ticket_facts", tables.facts), ("kpi_engineer", tables.kpi_engineer),
                        ("kpi_team", tables.kpi_team), ("scorecard", tables.scorecard),
                        ("scorecard_kpi", tables.scorecard_kpi)]:
        assert len(frame) == 0
        assert list(frame.columns) == list(TABLE_COLUMNS[name])
        if "period_start" in frame:
            assert str(frame["period_start"].dtype) == "datetime64[s]"


@pytest.mark.parametrize("cfg, key", [
    ({"kpi": {"bogus": 1}}, "kpi.bogus"),
    ({"reporting": {"timezon": "UTC"}}, "reporting.timezon"),
    ({"sla": [{"ticket_type": "incident", "responce": "30m"}]}, "sla[0].responce"),
    ({"calendars": {"x": {"timezone": "UTC", "holiday": []}}}, "calendars.x.holiday"),
    ({"scorecard": [{"kpi": "csat_rate", "target": 1, "wieght": 1}]}, "scorecard[0].wieght"),
])
def test_a_mistyped_key_is_refused_by_name(cfg, key) -> None:
    with pytest.raises(ConfigError) as error:
        kpi_settings_from_mapping(cfg)
    assert key in str(error.value)  # every problem is reported; this one among them


# Whole numbers (durations in seconds) are sorted as their own codes, other values by their rank: both ways;
# and whole numbers ~2**29 apart in 7 groups need int64 sort keys (7 * 2**29 > 2**31).
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.floats(-1e6, 1e6, allow_nan=False)), max_size=60)
       | st.lists(st.tuples(st.integers(0, 6), st.integers(-10**6, 10**6)), max_size=60)
       | st.lists(st.tuples(st.integers(0, 6), st.sampled_from([-2**28, -1, 0, 5, 2**28 - 1])), max_size=60))
def test_group_percentiles_equal_numpy_percentile_per_group(pairs) -> None:
    groups = np.array([g for g, _ in pairs], dtype="int64")
    values = np.array([v for _, v in pairs], dtype="float64")
    n = np.bincount(groups, minlength=7)
    median, p90 = percentile_cont(groups, values, n, (0.5, 0.9))
    for g in range(7):
        mine = values[groups == g]
        if len(mine) == 0:
            assert np.isnan(median[g]) and np.isnan(p90[g])
        else:
            assert median[g] == pytest.approx(np.percentile(mine, 50), rel=1e-12, abs=1e-9)
            assert p90[g] == pytest.approx(np.percentile(mine, 90), rel=1e-12, abs=1e-9)


def test_select_sorted_at_reads_a_sorts_positions_from_the_buckets_that_hold_them() -> None:
    # 2**40 needs a shift: buckets of 2**30 consecutive keys (10 bits of buckets for 6 keys). Sorted:
    # [1, 1, 5, 9, 2**40 - 3, 2**40]; the three 1, 5, 9 share bucket 0 and sort among themselves only.
    keys = np.array([5, 2**40, 1, 9, 1, 2**40 - 3], dtype="int64")
    assert select_sorted_at(keys, np.array([0, 2, 3, 5])).tolist() == [1, 5, 9, 2**40]
    assert keys.tolist() == [5, 2**40, 1, 9, 1, 2**40 - 3]  # the keys themselves are not reordered


def test_select_sorted_at_counts_the_buckets_read_again_in_a_smaller_space(monkeypatch) -> None:
    # With no floor on the keys, the buckets read are counted again instead of sorted. 19 bits of keys, 10 of
    # buckets: buckets of 2**9. Sorted: [3, 513, 515, 515, 1000, 2**19 - 1]; positions 1, 3, 4 all fall in
    # bucket 1 (512..1023), which starts at position 1, so its four keys are read at 0, 2 and 3. Bucket 1 is
    # numbered 0 and each key keeps its low 9 bits: 1000 -> 488, 515 -> 3, 513 -> 1. Those fit in one-value
    # buckets: sorted [1, 3, 3, 488] read at 0, 2, 3 is [1, 3, 488], i.e. 512 + that: [513, 515, 1000].
    monkeypatch.setattr(aggregate_module, "SELECT_MIN_KEYS", 0)
    keys = np.array([1000, 515, 513, 515, 3, 2**19 - 1], dtype="int32")
    assert aggregate_module._recounts(n_few=4, n_wanted=1, shift=9, n_keys=6, recounted=False)
    found = select_sorted_at(keys, np.array([1, 3, 4]))
    assert found.tolist() == [513, 515, 1000]
    assert found.dtype == np.int32
    assert keys.tolist() == [1000, 515, 513, 515, 3, 2**19 - 1]


@pytest.mark.parametrize("recounted", [False, True])
def test_the_buckets_read_are_counted_again_when_it_pays(recounted) -> None:
    def recounts(**sizes) -> bool:
        return aggregate_module._recounts(**sizes, recounted=recounted)
    # one count finishes: 1 bucket << 9 is 10 bits, within the 17 bits of 100k keys' buckets
    assert recounts(n_few=100_000, n_wanted=1, shift=9, n_keys=100_000)
    # buckets halve (14043 << 10: 24 bits, 2 finer than 22) and the keys did (2.6M of 9M): count again
    assert recounts(n_few=2_600_000, n_wanted=14_043, shift=10, n_keys=9_000_000)
    # 20000 << 11 is 26 bits: buckets of 2**4, at most 2**(11 // 2); 2.9M of 10M keys read: count again
    assert recounts(n_few=2_900_000, n_wanted=20_000, shift=11, n_keys=10_000_000)
    # 200000 << 11 is 29 bits: buckets of 2**7, wider than 2**5: sort
    assert not recounts(n_few=2_900_000, n_wanted=200_000, shift=11, n_keys=10_000_000)
    # 14000 << 17 is 31 bits: buckets of 2**9, wider than 2**8: sort, however few keys are read
    assert not recounts(n_few=100_000, n_wanted=14_000, shift=17, n_keys=4_400_000)
    assert not recounts(n_few=1000, n_wanted=1, shift=9, n_keys=100_000)  # below SELECT_MIN_KEYS: sort
    assert not recounts(n_few=100_000, n_wanted=0, shift=9, n_keys=100_000)  # no bucket read


def test_a_first_recount_needs_only_narrower_buckets_a_later_one_fewer_keys_too() -> None:
    recounts = aggregate_module._recounts
    # a night's monthly medians: 6.8M of 7.4M keys in the 10000 buckets read (10000 << 16 is 30 bits, buckets
    # of 2**8 = 2**(16 // 2)). The first recount is a bet of one count: taken although most keys are read.
    assert recounts(n_few=6_800_000, n_wanted=10_000, shift=16, n_keys=7_400_000, recounted=False)
    assert not recounts(n_few=6_800_000, n_wanted=10_000, shift=16, n_keys=7_400_000, recounted=True)
    # clustered: 50 << 19 is 25 bits, 3 finer than 22: a first recount; once recounted, every key still read: sort
    assert recounts(n_few=3_000_000, n_wanted=50, shift=19, n_keys=3_000_000, recounted=False)
    assert not recounts(n_few=3_000_000, n_wanted=50, shift=19, n_keys=3_000_000, recounted=True)


def test_select_sorted_at_recounts_most_keys_once_then_only_fewer(monkeypatch) -> None:
    # 6 keys below 2**28: buckets of 2**18 (10 bits of buckets). Sorted: [5, 300, 1000, 70000, 200000, 2**27];
    # positions 1 and 3 fall in bucket 0, which holds 5 of the 6 keys. 1 << 18 is 19 bits: buckets of 2**9 =
    # 2**(18 // 2), so a first recount, although 5 > 6 / 2. Renumbered (bucket 0 is rank 0) the five keep their
    # values; below 2**18 they take buckets of 2**8: 300 in bucket 1, 70000 in 273, read at 0 and 1 of the two
    # keys of those buckets. 2 << 8 is 10 bits: one count finishes them (44 and 1 << 8 | 112 = 368).
    monkeypatch.setattr(aggregate_module, "SELECT_MIN_KEYS", 0)
    decided = []
    recounts = aggregate_module._recounts

    def spy(n_few, n_wanted, shift, n_keys, recounted) -> bool:
        decided.append((n_few, n_wanted, shift, n_keys, recounted))
        return recounts(n_few, n_wanted, shift, n_keys, recounted)

    monkeypatch.setattr(aggregate_module, "_recounts", spy)
    keys = np.array([200_000, 2**27, 5, 70_000, 1000, 300], dtype="int64")
    assert select_sorted_at(keys, np.array([1, 3])).tolist() == [300, 70_000]
    assert decided == [(5, 1, 18, 6, False), (2, 2, 8, 5, True)]


@pytest.mark.parametrize("counted_again", [False, True])
def test_select_sorted_at_of_no_positions_reads_nothing(monkeypatch, counted_again) -> None:
    if counted_again:
        monkeypatch.setattr(aggregate_module, "SELECT_MIN_KEYS", 0)
    for keys in (np.array([5, 2**40, 1], dtype="int64"), np.array([3, 1], dtype="int32")):
        found = select_sorted_at(keys, np.array([], dtype="int64"))
        assert found.tolist() == []
        assert found.dtype == keys.dtype


def test_select_sorted_at_reads_one_value_buckets_without_the_keys() -> None:
    # keys below 2**10: one bucket per value; sorted [1, 3, 3, 3, 7]
    keys = np.array([3, 3, 7, 3, 1], dtype="int32")
    found = select_sorted_at(keys, np.array([0, 1, 4]))
    assert found.tolist() == [1, 3, 7]
    assert found.dtype == np.int32


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2**62) | st.integers(0, 2**19 - 1) | st.integers(0, 40), min_size=1, max_size=80),
       st.data(), st.booleans())
def test_select_sorted_at_equals_a_sort(keys, data, counted_again) -> None:
    keys = np.array(keys, dtype="int64")
    positions = np.array(sorted(data.draw(st.sets(st.integers(0, len(keys) - 1), min_size=1))))
    with pytest.MonkeyPatch.context() as patch:
        if counted_again:  # the buckets read are counted again, whatever their number of keys (keys below
            # 2**19 are: buckets of at most 2**9 values, renumbered into one-value buckets)
            patch.setattr(aggregate_module, "SELECT_MIN_KEYS", 0)
        assert select_sorted_at(keys, positions).tolist() == np.sort(keys)[positions].tolist()
        small = keys[keys < 2**31].astype("int32")  # the sort keys' usual dtype
        if len(small):
            found = select_sorted_at(small, np.arange(len(small)))
            assert found.tolist() == np.sort(small).tolist()
            assert found.dtype == np.int32


def test_percentiles_of_many_keys_select_what_a_sort_would_read(monkeypatch) -> None:
    rng = np.random.default_rng(5)
    groups = rng.integers(0, 40, 5000)
    values = np.floor(rng.exponential(3000, 5000))  # whole seconds: their own codes, many ties
    n = np.bincount(groups, minlength=41)  # group 40 has no values
    sorted_whole = percentile_cont(groups, values, n, (0.5, 0.9))
    monkeypatch.setattr(aggregate_module, "SELECT_MIN_KEYS", 0)  # whatever the number of keys and positions
    monkeypatch.setattr(aggregate_module, "SELECT_MAX_SHARE", 1)
    selected = percentile_cont(groups, values, n, (0.5, 0.9))
    for mine, expected in zip(selected, sorted_whole, strict=True):
        np.testing.assert_array_equal(mine, expected)
    for g in range(40):
        assert selected[0][g] == np.percentile(values[groups == g], 50)
        assert selected[1][g] == pytest.approx(np.percentile(values[groups == g], 90), rel=1e-12)
    assert np.isnan(selected[0][40]) and np.isnan(selected[1][40])


def test_sort_keys_are_int32_while_every_key_fits_and_int64_beyond() -> None:
    codes = SortCodes.of(np.array([0.0, 2.0**28 - 1]))  # width 2**28: 7 groups fit in int32, 8 do not
    group = np.array([6, 0])
    assert _sort_keys(group, codes, 7).tolist() == [6 * 2**28, 2**28 - 1]
    assert _sort_keys(group, codes, 7).dtype == np.int32
    assert _sort_keys(group, codes, 8).dtype == np.int64
    assert _sort_keys(np.array([7, 0]), codes, 8).tolist() == [7 * 2**28, 2**28 - 1]


def test_whole_numbers_are_their_own_sort_codes_and_other_values_are_ranked() -> None:
    whole = SortCodes.of(np.array([30.0, -5.0, 7.0]))
    assert whole.ascending is None and whole.code.tolist() == [35, 0, 12] and whole.width == 36
    assert whole.values(whole.code).tolist() == [30.0, -5.0, 7.0]
    ranked = SortCodes.of(np.array([0.5, -5.0, 7.0]))
    assert ranked.code.tolist() == [1, 0, 2] and ranked.values(ranked.code).tolist() == [0.5, -5.0, 7.0]


# Names whose first appearance, code point order and case order all differ: "b" first, capitals before small
# letters, 王 (U+738B) after Ä (U+00C4). The tables come out in key order without being sorted as a whole.
_NAMES = ["b", "王", "Z", "a", "Ä", "B"]
_ORDERED = ["B", "Z", "a", "b", "Ä", "王"]


def _named_tickets() -> pd.DataFrame:
    rows = []
    for i, name in enumerate(_NAMES):
        for day, kind in ((2, "request"), (1, "incident")):  # the later day and the later type first
            rows.append({"ticket_id": f"T{i}{day}", "opened_at": f"2026-03-0{day} 09:00", "status": "RESOLVED",
                         "resolved_at": f"2026-03-0{day} 10:00", "ticket_type": kind, "assignee": name,
                         "assignment_group": name, "client": name})
    return tickets(*rows)


def test_aggregate_rows_come_out_in_key_order_with_names_in_code_point_order() -> None:
    cfg = make_settings(reporting={"timezone": "UTC", "breakdowns": ["client"],
                                   "grains": ["week", "day", "quarter", "month"]})
    tables = compute_all(_named_tickets(), empty_events(), cfg, pd.Timestamp("2026-04-01", tz="UTC"))
    day_rows = tables.kpi_engineer[tables.kpi_engineer["grain"] == "day"]
    # Per day: every engineer in code point order, each with incident before request.
    expected = [(day, name, kind) for day, kind in (("2026-03-01", "incident"), ("2026-03-02", "request"))
                for name in _ORDERED]
    assert list(zip(day_rows["period_start"].dt.strftime("%Y-%m-%d"), day_rows["engineer"],
                    day_rows["ticket_type"], strict=True)) == expected
    assert tables.kpi_engineer["grain"].drop_duplicates().tolist() == ["day", "month", "quarter", "week"]
    for frame, keys in ((tables.kpi_engineer, ["engineer", "ticket_type"]), (tables.kpi_team, ["team", "ticket_type"]),
                        (tables.kpi_breakdown, ["dimension", "member", "ticket_type"])):
        order = ["grain", "period_start", *keys]
        pd.testing.assert_frame_equal(frame, frame.sort_values(order, ignore_index=True))
    assert tables.kpi_breakdown["member"].drop_duplicates().tolist() == _ORDERED


def test_a_categorical_who_is_renumbered_in_name_order() -> None:
    names = pd.Index(["b", "王", "Z", "a"], dtype="str")  # categories in order of appearance
    codes, ordered = in_name_order(np.array([0, 1, 2, 3, -1, 1]), names)
    assert ordered.tolist() == ["Z", "a", "b", "王"]
    assert codes.tolist() == [2, 3, 0, 1, -1, 3]  # b -> 2, 王 -> 3, Z -> 0, a -> 1; missing stays -1

    facts = compute_all(_named_tickets(), empty_events(), make_settings(reporting={"timezone": "UTC"}),
                        pd.Timestamp("2026-04-01", tz="UTC")).facts
    members = member_categories(facts["client"])
    # made in name order ("(none)", always a category, sorts first): no renumbering needed
    assert members.cat.categories.tolist() == ["(none)", *_ORDERED]
    in_appearance = pd.Series(pd.Categorical(facts["client"], categories=pd.Index(_NAMES, dtype="str")))
    days = make_settings(reporting={"timezone": "UTC", "grains": ["day"]})
    for member in (members, in_appearance):
        credited = pd.DataFrame({"member": member, "ticket_type": facts["ticket_type"], "as_of": facts["as_of"]})
        table = aggregate_periods(credited, days, by="member", by_type=True, rows=kpi_rows(facts, days))
        assert table["member"].tolist() == _ORDERED * 2  # day 1 (incidents), then day 2 (requests)


def test_dense_combinations_number_the_value_tuples_in_ascending_order() -> None:
    # tuples (1, 5), (-1, 5), (1, 2), (0, 5), (1, 5): ascending (-1, 5) < (0, 5) < (1, 2) < (1, 5)
    combination, first = dense_combinations([np.array([1, -1, 1, 0, 1]), np.array([5, 5, 2, 5, 5])], 5)
    assert combination.tolist() == [3, 0, 2, 1, 3]
    assert combination[first].tolist() == [0, 1, 2, 3]  # a row of each
    empty, none = dense_combinations([np.array([], dtype="int64")], 0)
    assert empty.tolist() == [] and none.tolist() == []


def test_names_already_in_order_keep_their_codes() -> None:
    names = pd.Index(["Z", "a", "王"], dtype="str")
    codes = np.array([2, -1, 0, 1])
    renumbered, ordered = in_name_order(codes, names)
    assert renumbered.tolist() == [2, -1, 0, 1] and ordered.tolist() == ["Z", "a", "王"]


def test_day_keys_count_from_the_first_day_not_from_1970() -> None:
    # 2025-01-01 is day 20089: keys built from it span the days covered (a lookup table), not 20k days more
    assert _first(np.array([20457, 20089, 20100])) == 20089
    assert _first(np.array([-3, 5])) == -3  # before 1970
    assert _first(np.array([], dtype="int64")) == 0


def test_a_family_mostly_flagged_is_counted_as_its_rows_less_its_zeros() -> None:
    # two families stacked: rows 0-3 flagged 1, 1, 0, 1 (mostly 1s: kept as the segment 0-4 less its 0 at
    # row 2); rows 4-6 flagged 0, 0, 1 (kept as the 1 at row 6)
    parts = _FlagParts()
    parts.add(np.array([True, True, False, True]), 0)
    parts.add(np.array([False, False, True]), 4)
    flags = parts.flags("int32")
    assert flags.segments == ((0, 4),) and flags.zeros.tolist() == [2] and flags.ones.tolist() == [6]
    # rows 0..6 in groups 0, 1, 1, 1, 1, 0, 1: group 0 holds rows 0 and 5, of which row 0 is flagged -> 1;
    # group 1 holds rows 1, 2, 3, 4 and 6, of which rows 1, 3 and 6 are flagged -> 3
    group = np.array([0, 1, 1, 1, 1, 0, 1])
    asked = []

    def segment_sizes(start: int, stop: int) -> np.ndarray:
        asked.append((start, stop))
        return np.bincount(group[start:stop], minlength=2)

    assert flags.per_group(group, 2, segment_sizes).tolist() == [1, 3]
    assert asked == [(0, 4)]


def test_a_family_flagged_everywhere_is_one_segment_without_positions() -> None:
    parts = _FlagParts()
    parts.add(np.array([False, False]), 0)  # a family without any 1: nothing kept
    parts.add(np.array([True, True, True]), 2)
    flags = parts.flags("int64")
    assert flags.segments == ((2, 5),) and flags.zeros.tolist() == [] and flags.ones.tolist() == []
    # rows 2, 3, 4 in groups 1, 0, 1 -> 1 in group 0, 2 in group 1
    group = np.array([0, 0, 1, 0, 1])
    sizes = flags.per_group(group, 2, lambda start, stop: np.bincount(group[start:stop], minlength=2))
    assert sizes.tolist() == [1, 2]
