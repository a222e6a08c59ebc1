"""Exact percentiles per group (``percentile_cont``) and the order statistics they read.

A median and a P90 read two values per group of the values sorted within each group. The values become integer
``SortCodes``, one key ``group * width + code`` per value sorts them within every group at once, and
``sorted_reader`` reads the keys a sort would put at the positions wanted: from a sort when many are read, else
by counting them into buckets (``select_sorted_at``, DECISIONS.md D118-D120).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kpis.ascending import distinct_ascending


@dataclass(frozen=True)
class SortCodes:
    """Integers that sort as the values they stand for, so that one integer sort of ``group * width + code``
    orders the values within every group.

    Whole numbers of a moderate range (durations in seconds) are their own codes, shifted to start at 0:
    no sort is needed to make them. Other values are coded by their rank (one argsort).
    """

    code: np.ndarray  # 0 <= code < width; int32 (all but always), so the sort keys can be int32 too
    width: int
    offset: float  # value = code + offset, when ``ascending`` is None
    ascending: np.ndarray | None  # value = ascending[code] for ranked values

    @classmethod
    def of(cls, values: np.ndarray) -> SortCodes:
        """The codes of ``values`` (float64, no NaN)."""
        if len(values):
            low, high = float(values.min()), float(values.max())
            if high - low < _MAX_VALUE_WIDTH and bool(np.all(values == np.floor(values))):
                width = int(high - low) + 1
                return cls((values - low).astype(code_dtype(width)), width, low, None)
        # Equal values may take each other's ranks: the percentiles read values, never positions, so any
        # order of ties gives the same numbers, and the unstable sort is twice as fast.
        by_value = np.argsort(values)
        rank = np.empty(len(values), dtype=code_dtype(len(values)))
        rank[by_value] = np.arange(len(values))
        return cls(rank, max(len(values), 1), 0.0, values[by_value])

    def take(self, positions: np.ndarray) -> SortCodes:
        """The codes of the values at ``positions`` (decoded the same way)."""
        return SortCodes(self.code[positions], self.width, self.offset, self.ascending)

    def values(self, codes: np.ndarray) -> np.ndarray:
        """The values that ``codes`` stand for."""
        if self.ascending is None:
            return codes.astype("float64") + self.offset
        return self.ascending[codes]


def code_dtype(width: int) -> str:
    """The narrowest integer type of codes 0 <= code < ``width`` (int32 all but always)."""
    return "int32" if width < 2**31 else "int64"


# Whole-number values span at most this many codes (~34 years in seconds), so that group * width + code
# stays far inside int64 for any number of groups a table can have.
_MAX_VALUE_WIDTH = 2**30


def percentile_cont(group: np.ndarray, values: np.ndarray, n: np.ndarray, fractions: tuple[float, ...],
                    codes: SortCodes | None = None) -> list:
    """Per group, the continuous percentiles (linear interpolation between order statistics).

    The same as SQL ``percentile_cont`` and numpy's default: position ``(n - 1) * q`` in the sorted values.
    Groups without values get NaN. ``codes``: the values' ``SortCodes``, when computed once for values
    grouped several ways; one integer sort of (group, code) then orders the values within every group.
    """
    if codes is None:
        codes = SortCodes.of(values)
    keys = _sort_keys(group, codes, len(n))
    start = np.cumsum(n) - n
    last = start + np.maximum(n - 1, 0)
    top = max(len(keys) - 1, 0)  # groups without values point anywhere valid; masked below
    reads = []
    for q in fractions:
        position = (np.maximum(n - 1, 0)) * q
        below = np.floor(position).astype("int64")
        low = np.minimum(start + below, top)
        reads.append((position - below, low, np.minimum(np.minimum(low + 1, last), top)))
    # the (group, code) keys a sort would put at the two order statistics each percentile reads; only those
    # are decoded to values
    sorted_key = sorted_reader(keys, [positions for _, low, high in reads for positions in (low, high)])
    results = []
    for fraction, low, high in reads:
        if len(keys):
            at_low, at_high = codes.values(sorted_key(low) % codes.width), codes.values(sorted_key(high) % codes.width)
            value = at_low + fraction * (at_high - at_low)
        else:
            value = np.zeros(len(n))
        results.append(np.where(n > 0, value, np.nan))
    return results


#: From this many keys on, ``sorted_reader`` sorts only the buckets of keys it reads (below, a sort is as
#: quick), while it reads at most one key in ``SELECT_MAX_SHARE``: at 10M keys, 28k-76k positions were found in
#: 0.19-0.42 s against a sort's 0.38-0.64 s, 316k in 0.62-0.67 s against 0.42-0.67 s, 1.7M in 1.1-1.3 s
#: against 0.63-0.66 s. Since the buckets read are counted again (D119), one in 20 or 10 was no quicker.
SELECT_MIN_KEYS = 1 << 16
SELECT_MAX_SHARE = 50


def sorted_reader(keys: np.ndarray, positions: list[np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """A reader of ``np.sort(keys)`` (non-negative integer ``keys``, not empty) at any of ``positions``.

    A percentile reads two keys per group, and a whole sort of 10M keys takes ~0.4 s here (numpy's quicksort,
    ~45 ns a key), 32 of them in a breakdown at 10M tickets; ``select_sorted_at`` finds the keys read in
    ~0.2-0.4 s when they are few (a breakdown's groups, a month's engineers). Many positions (a daily grain of
    500 engineers reads 1.7M) are read from a sort, without numbering them first."""
    if len(keys) < SELECT_MIN_KEYS or sum(len(p) for p in positions) * SELECT_MAX_SHARE > len(keys):
        ordered = np.sort(keys)
        return lambda at: ordered[at]
    wanted = distinct_ascending(np.sort(np.concatenate(positions)))
    found = select_sorted_at(keys, wanted)
    return lambda at: found[np.searchsorted(wanted, at)]


def select_sorted_at(keys: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``np.sort(keys)[positions]`` (non-negative integer ``keys``, ascending distinct ``positions``) by
    counting: the keys fall in about as many buckets of consecutive values as there are keys (one
    ``bincount``); the running counts say which bucket holds each position and where in it. A bucket of one
    value is its own answer; otherwise only the keys of the buckets read go on (``_select_in_buckets``).
    Exact: a bucket's keys all sort between the buckets' around it."""
    return _select_sorted_at(keys, positions, recounted=False)


def _select_sorted_at(keys: np.ndarray, positions: np.ndarray, recounted: bool) -> np.ndarray:
    """``select_sorted_at``; ``recounted``: the keys are those of buckets read, renumbered (``_recounts``)."""
    top = int(keys.max())
    shift = _bucket_shift(top, len(keys))
    bucket_of = np.right_shift(keys, shift).astype(np.intp, copy=False)
    counts = np.bincount(bucket_of, minlength=(top >> shift) + 1)
    ends = np.cumsum(counts)
    bucket = np.searchsorted(ends, positions, side="right")
    if shift == 0:  # every bucket holds one key value: no key needs reading again
        return bucket.astype(keys.dtype)
    wanted = distinct_ascending(bucket)
    chosen = np.zeros(len(counts), dtype=bool)
    chosen[wanted] = True
    few = keys[chosen[bucket_of]]
    del bucket_of
    first_in_few = np.cumsum(counts[wanted]) - counts[wanted]
    at = first_in_few[np.searchsorted(wanted, bucket)] + positions - (ends[bucket] - counts[bucket])
    return _select_in_buckets(few, at, wanted, shift, len(keys), recounted)


def _bucket_shift(top: int, n_keys: int) -> int:
    """How many low bits of keys up to ``top`` one bucket spans: about one bucket per key, at most 2**22."""
    return max(0, top.bit_length() - min(22, max(10, n_keys.bit_length())))


def _select_in_buckets(few: np.ndarray, at: np.ndarray, wanted: np.ndarray, shift: int, n_keys: int,
                       recounted: bool) -> np.ndarray:
    """``np.sort(few)[at]`` where ``few`` are the keys of the buckets ``wanted`` (ascending) of ``2**shift``
    values each, out of ``n_keys`` (``recounted``: those keys are a recount's). Ties crowd the buckets a
    percentile reads (at 10M tickets 60% of the response keys fell in the 240 read), so rather than sorting
    them, the buckets are numbered 0.. and the keys counted again in that smaller space (``_recounts``); a sort
    finishes what is left."""
    if not _recounts(len(few), len(wanted), shift, n_keys, recounted):
        few.sort()  # in bucket order, and each bucket's keys in order
        return few[at]
    dtype = few.dtype
    rank = np.full(int(wanted[-1]) + 1, -1, dtype=np.intp)
    rank[wanted] = np.arange(len(wanted))
    low_bits = (1 << shift) - 1
    local = rank[np.right_shift(few, shift).astype(np.intp, copy=False)]
    local <<= shift
    local |= few & low_bits
    del few
    found = _select_sorted_at(local, at, recounted=True)
    return ((wanted[found >> shift] << shift) | (found & low_bits)).astype(dtype)


def _recounts(n_few: int, n_wanted: int, shift: int, n_keys: int, recounted: bool) -> bool:
    """Whether ``n_few`` keys of ``n_wanted`` buckets of ``2**shift`` values, out of ``n_keys`` (``recounted``:
    keys already counted again), are counted again rather than sorted: when one count finishes them (buckets
    of one value), or when the buckets at least halve and, from the second recount on, the keys did too.
    The first recount is a bet of one count against a sort: most keys in the buckets read is what percentiles
    of many groups give (the medians sit where the values crowd), and the narrower buckets then hold a few
    (DECISIONS.md D120). Where clustered values keep every key in the buckets read, counting round after round
    cost 3x a sort (3M keys in 50 clusters: 0.49 s, 0.15 s), so a further round needs the keys to have halved."""
    if n_few < SELECT_MIN_KEYS or not n_wanted:
        return False
    finer = _bucket_shift(n_wanted << shift, n_few)
    return finer == 0 or (finer <= shift // 2 and (not recounted or 2 * n_few <= n_keys))


def _sort_keys(group: np.ndarray, codes: SortCodes, n_groups: int) -> np.ndarray:
    """``group * width + code`` per value, in int32 when every key fits (half the bytes: twice as fast a sort).

    Built in place in one copy of ``group``: at 10M values each further temporary is a pass through memory.
    """
    keys = group.astype("int32" if n_groups * codes.width < 2**31 else "int64")
    keys *= codes.width
    keys += codes.code
    return keys
