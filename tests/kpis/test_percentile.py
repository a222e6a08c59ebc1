"""Exact group percentiles (kpis/percentile.py): against numpy per group, and the order statistics they read
against a sort, with hand-worked cases of the bucket counting (DECISIONS.md D118-D120)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpis.percentile import SortCodes, _sort_keys, percentile_cont, select_sorted_at

percentile_module = importlib.import_module("kpis.percentile")


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
    monkeypatch.setattr(percentile_module, "SELECT_MIN_KEYS", 0)
    keys = np.array([1000, 515, 513, 515, 3, 2**19 - 1], dtype="int32")
    assert percentile_module._recounts(n_few=4, n_wanted=1, shift=9, n_keys=6, recounted=False)
    found = select_sorted_at(keys, np.array([1, 3, 4]))
    assert found.tolist() == [513, 515, 1000]
    assert found.dtype == np.int32
    assert keys.tolist() == [1000, 515, 513, 515, 3, 2**19 - 1]


@pytest.mark.parametrize("recounted", [False, True])
def test_the_buckets_read_are_counted_again_when_it_pays(recounted) -> None:
    def recounts(**sizes) -> bool:
        return percentile_module._recounts(**sizes, recounted=recounted)
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
    recounts = percentile_module._recounts
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
    monkeypatch.setattr(percentile_module, "SELECT_MIN_KEYS", 0)
    decided = []
    recounts = percentile_module._recounts

    def spy(n_few, n_wanted, shift, n_keys, recounted) -> bool:
        decided.append((n_few, n_wanted, shift, n_keys, recounted))
        return recounts(n_few, n_wanted, shift, n_keys, recounted)

    monkeypatch.setattr(percentile_module, "_recounts", spy)
    keys = np.array([200_000, 2**27, 5, 70_000, 1000, 300], dtype="int64")
    assert select_sorted_at(keys, np.array([1, 3])).tolist() == [300, 70_000]
    assert decided == [(5, 1, 18, 6, False), (2, 2, 8, 5, True)]


@pytest.mark.parametrize("counted_again", [False, True])
def test_select_sorted_at_of_no_positions_reads_nothing(monkeypatch, counted_again) -> None:
    if counted_again:
        monkeypatch.setattr(percentile_module, "SELECT_MIN_KEYS", 0)
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
            patch.setattr(percentile_module, "SELECT_MIN_KEYS", 0)
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
    monkeypatch.setattr(percentile_module, "SELECT_MIN_KEYS", 0)  # whatever the number of keys and positions
    monkeypatch.setattr(percentile_module, "SELECT_MAX_SHARE", 1)
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
