"""kpis/keys.py: lookups of multi-column keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kpis.keys import (
    _CodedKeys,
    _few_values,
    _joined_positions,
    frame_positions,
    key_hits,
    key_order,
    positions,
    same_keys,
    ticket_keys,
    ticket_positions,
    ticket_row_positions,
)


def test_each_lookup_finds_the_row_with_all_key_columns_equal() -> None:
    keys = pd.DataFrame({"source": ["a", "a", "b"], "ticket_id": ["1", "2", "1"]})
    lookups = pd.DataFrame({"source": ["b", "a", "b", "a"], "ticket_id": ["1", "1", "2", "2"]})

    # b/1 is row 2, a/1 row 0, b/2 nowhere (each column matches some row, the pair none), a/2 row 1
    np.testing.assert_array_equal(frame_positions(keys, lookups), [2, 0, -1, 1])


def test_arrow_tables_with_string_and_large_string_columns_match() -> None:
    keys = pa.table({"grain": pa.array(["day", "week"], pa.large_string()),
                     "period_start": pa.array([1, 2], pa.timestamp("s"))})
    lookups = pa.table({"grain": pa.array(["week", "week"]), "period_start": pa.array([2, 1], pa.timestamp("s"))})

    np.testing.assert_array_equal(frame_positions(keys, lookups), [1, -1])


def test_nothing_to_look_up_or_nothing_to_find() -> None:
    keys = pd.DataFrame({"k": ["x"]})

    assert frame_positions(keys, keys.iloc[:0]).tolist() == []
    assert frame_positions(keys.iloc[:0], keys).tolist() == [-1]


def test_a_missing_value_matches_nothing_in_one_column_or_several() -> None:
    keys = pd.DataFrame({"a": ["x", None, "y"], "b": ["1", "1", None]}, dtype="str")
    lookups = pd.DataFrame({"a": [None, "y", "x", "y"], "b": ["1", None, "1", "1"]}, dtype="str")

    np.testing.assert_array_equal(frame_positions(keys, lookups), [-1, -1, 0, -1])
    np.testing.assert_array_equal(frame_positions(keys[["a"]], lookups[["a"]]), [-1, 2, 0, 2])


def test_few_values_per_column_but_many_codes_are_found_by_a_sorted_search() -> None:
    """1600 keys over three columns of 40 values each: few per column (numbered), but 64000 codes, too many
    for a table of every code. Ticket ids (a value per row) are joined instead."""
    i = np.arange(1600)
    keys = pd.DataFrame({"a": i % 40, "b": i // 40, "c": (i * 7) % 40})
    lookups = pd.DataFrame({"a": [7, 7, 39], "b": [3, 3, 39], "c": [(127 * 7) % 40, 0, (1599 * 7) % 40]})
    coded = _CodedKeys.of(pa.Table.from_pandas(lookups), pa.Table.from_pandas(keys), nulls_match=False)

    assert _few_values(pa.Table.from_pandas(keys)) and coded.span == 40**3 > 4 * (1600 + 3) + 1024
    np.testing.assert_array_equal(frame_positions(keys, lookups), [127, -1, 1599])
    assert not _few_values(pa.table({"ticket_id": [str(n) for n in range(100)]}))


def test_float_columns_are_joined() -> None:
    keys = pd.DataFrame({"f": [0.5, float("nan"), 2.0]})
    lookups = pd.DataFrame({"f": [2.0, 0.5, 3.0]})

    np.testing.assert_array_equal(frame_positions(keys, lookups), [2, 0, -1])


small_text = st.one_of(st.none(), st.sampled_from(["x", "y", "z", "é"]))


@hsettings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(small_text, st.integers(0, 3)), max_size=12),
       st.lists(st.tuples(small_text, st.integers(0, 3)), max_size=12), st.booleans())
def test_frame_positions_find_an_equal_key_row_by_every_route(keys, lookups, one_column) -> None:
    """Against the definition, row by row: some row of ``keys`` equal on every column, none missing (any of
    several), else -1; by the lookup table, the sorted search, Arrow's join and whichever ``frame_positions``
    picks."""
    names = ["t"] if one_column else ["t", "n"]
    keys = pd.DataFrame(keys, columns=["t", "n"]).astype({"t": "str"})[names]
    lookups = pd.DataFrame(lookups, columns=["t", "n"]).astype({"t": "str"})[names]
    key_rows = keys.to_dict("records")
    expected = [{i for i, key in enumerate(key_rows) if all(pd.notna(row[c]) and key[c] == row[c] for c in names)}
                for row in lookups.to_dict("records")]
    routes = {"chosen": frame_positions(keys, lookups)}
    if len(keys) and len(lookups):
        coded = _CodedKeys.of(pa.Table.from_pandas(lookups), pa.Table.from_pandas(keys), nulls_match=False)
        routes |= {"table": coded.positions_by_table(), "search": coded.positions_by_search(),
                   "join": _joined_positions(pa.Table.from_pandas(keys), pa.Table.from_pandas(lookups))}
    for route, found in routes.items():
        assert all(f in e if e else f == -1 for e, f in zip(expected, found, strict=True)), (route, expected, found)


# --- key_hits: which rows hold one of the keys -------------------------------------------------------
def test_a_row_hits_only_when_every_key_column_matches_one_key_row() -> None:
    keys = pd.DataFrame({"day": pd.to_datetime(["2026-01-01", "2026-01-02"]), "who": ["amy", "ben"]})
    frame = pd.DataFrame({"day": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-01", "2026-01-03"]),
                          "who": ["amy", "ben", "ben", "amy"], "other": [1, 2, 3, 4]})

    # amy on the 1st and ben on the 2nd are keys; ben on the 1st pairs two key values of no one key; the 3rd is none
    assert key_hits(frame, keys).tolist() == [True, True, False, False]
    assert key_hits(pa.Table.from_pandas(frame), keys).tolist() == [True, True, False, False]


def test_a_missing_value_matches_in_a_one_column_key_but_never_in_several() -> None:
    frame = pd.DataFrame({"a": ["x", None, None], "b": ["1", "1", None]}, dtype="string[pyarrow]")
    keys = pd.DataFrame({"a": [None, "x"], "b": ["1", "1"]}, dtype="string[pyarrow]")

    assert key_hits(frame[["a"]], keys[["a"]].iloc[:1]).tolist() == [False, True, True]
    assert key_hits(frame, keys).tolist() == [True, False, False]


def test_columns_of_another_text_type_are_compared_as_the_keys_type() -> None:
    keys = pa.table({"grain": pa.array(["week"], pa.large_string()), "n": pa.array([2], pa.int64())})
    frame = pa.table({"grain": pa.array(["week", "day"]), "n": pa.array([2, 2], pa.int32())})

    assert key_hits(frame, keys).tolist() == [True, False]


def test_too_many_distinct_values_to_number_jointly_fall_back_to_a_join() -> None:
    n = 2**16  # four columns of 65536 distinct values: 2**64 joint codes would overflow
    keys = pd.DataFrame({c: np.arange(n) for c in "abcd"})
    frame = pd.DataFrame({"a": [5, 5], "b": [5, 6], "c": [5, 5], "d": [5, 5]})

    assert _CodedKeys.of(pa.Table.from_pandas(frame), pa.Table.from_pandas(keys)) is None  # the join, not codes
    assert key_hits(frame, keys).tolist() == [True, False]
    assert _CodedKeys.of(pa.Table.from_pandas(frame), pa.Table.from_pandas(keys[["a", "b", "c"]])) is not None


text = st.one_of(st.none(), st.sampled_from(["x", "y", "z"]))


@hsettings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(text, text), max_size=12), st.lists(st.tuples(text, text), min_size=1, max_size=6),
       st.booleans(), st.booleans())
def test_key_hits_equals_an_inner_merge(rows, keys, one_column, many_values) -> None:
    """``many_values``: 100 more keys of their own values, so that the keys are not few (joined, or numbered
    where a missing key value must match)."""
    others = [(f"o{i}", f"p{i}") for i in range(100)] if many_values else []
    frame = pd.DataFrame(rows, columns=["a", "b"], dtype="object").astype("string[pyarrow]")
    keys = pd.DataFrame(keys + others, columns=["a", "b"], dtype="object").astype("string[pyarrow]")
    names = ["a"] if one_column else ["a", "b"]
    # the reference: pandas merges match missing values; a join of several columns must not
    reference = frame.reset_index().merge(keys[names].drop_duplicates(), on=names)["index"]
    if not one_column:
        complete = frame[names].notna().all(axis=1)
        reference = reference[complete.to_numpy()[reference.to_numpy()]]

    assert key_hits(frame, keys[names]).tolist() == frame.index.isin(reference).tolist()


def _keys(*pairs: tuple[str | None, str | None]) -> pd.DataFrame:
    return pd.DataFrame(list(pairs), columns=["source", "ticket_id"], dtype="object").astype("str")


def test_rows_aligned_with_the_tickets_find_their_own_positions() -> None:
    tickets = _keys(("a", "1"), ("a", "2"), ("b", "1"))
    facts = _keys(("a", "1"), ("a", "2"), ("b", "1"))

    assert same_keys(tickets, facts)
    assert ticket_positions(tickets, facts).tolist() == [0, 1, 2]


@pytest.mark.parametrize("rows, expected", [
    ((("a", "2"), ("a", "1"), ("b", "1")), [1, 0, 2]),  # the same keys in another order
    ((("a", "1"), ("a", "2"), ("b", "9")), [0, 1, -1]),  # one key differs
    ((("a", "1"), ("b", "2"), ("a", "2")), [0, -1, 1]),  # the same ticket ids, a source differs
    ((("a", "1"), ("a", "2")), [0, 1]),  # fewer rows
])
def test_rows_not_aligned_are_joined(rows, expected) -> None:
    tickets = _keys(("a", "1"), ("a", "2"), ("b", "1"))

    assert not same_keys(tickets, _keys(*rows))
    assert ticket_positions(tickets, _keys(*rows)).tolist() == expected


def test_a_missing_key_is_never_taken_as_aligned() -> None:
    tickets = pd.DataFrame({"source": ["a", "a"], "ticket_id": ["1", None]}, dtype="string[pyarrow]")

    assert not same_keys(tickets, tickets.copy())
    assert ticket_positions(tickets, tickets.copy()).tolist() == [0, 1]  # the join still finds both


# --- ticket_row_positions: rows grouped by ticket are looked up once per run -----------------------------
def test_a_run_of_rows_of_one_ticket_takes_the_position_of_its_ticket() -> None:
    tickets = _keys(("a", "1"), ("a", "2"), ("b", "1"))
    keys = ticket_keys(tickets["source"], tickets["ticket_id"])
    # runs: a/1 x3, a/2 x2, b/1, an unknown a/9 x2, then a/1 again (a new run of a ticket seen before)
    rows = _keys(("a", "1"), ("a", "1"), ("a", "1"), ("a", "2"), ("a", "2"), ("b", "1"), ("a", "9"), ("a", "9"),
                 ("a", "1"))

    found = ticket_row_positions(keys, rows["source"], rows["ticket_id"])

    assert found.tolist() == [0, 0, 0, 1, 1, 2, -1, -1, 0]


def test_no_rows_find_no_positions() -> None:
    tickets = _keys(("a", "1"), ("a", "2"))
    keys = ticket_keys(tickets["source"], tickets["ticket_id"])
    none = tickets.iloc[:0]
    for found in (ticket_row_positions(keys, none["source"], none["ticket_id"]), positions(keys, keys[:0])):
        assert found.dtype == np.int64 and found.tolist() == []


def test_runs_in_the_tickets_own_order_take_the_tickets_positions() -> None:
    tickets = _keys(("a", "1"), ("a", "2"), ("b", "1"))
    keys = ticket_keys(tickets["source"], tickets["ticket_id"])
    rows = _keys(("a", "1"), ("a", "2"), ("a", "2"), ("b", "1"), ("b", "1"))
    shuffled = _keys(("a", "2"), ("a", "1"), ("a", "1"), ("b", "1"), ("b", "1"))  # as many runs, another order

    assert ticket_row_positions(keys, rows["source"], rows["ticket_id"]).tolist() == [0, 1, 1, 2, 2]
    assert ticket_row_positions(keys, shuffled["source"], shuffled["ticket_id"]).tolist() == [1, 0, 0, 2, 2]


def test_a_missing_value_starts_a_run_of_its_own() -> None:
    tickets = pd.DataFrame({"source": ["a", "a"], "ticket_id": ["1", None]}, dtype="string[pyarrow]")
    keys = ticket_keys(tickets["source"], tickets["ticket_id"])
    rows = pd.DataFrame({"source": ["a", "a", "a", "a"], "ticket_id": [None, None, "1", "1"]}, dtype="string[pyarrow]")

    # the missing id is one key ("a" and the missing id's text), found at row 1, for both rows that hold it
    assert ticket_row_positions(keys, rows["source"], rows["ticket_id"]).tolist() == [1, 1, 0, 0]


_TICKET = st.tuples(st.sampled_from(["a", "b", None]), st.sampled_from(["1", "2", "10", None]))


@hsettings(max_examples=200, deadline=None)
@given(tickets=st.lists(_TICKET, unique=True, max_size=6),
       runs=st.lists(st.tuples(_TICKET, st.integers(1, 4)), max_size=12),
       numeric_ids=st.booleans())
def test_ticket_row_positions_equal_a_lookup_of_every_row(tickets, runs, numeric_ids) -> None:
    """Whatever the runs (grouped, interleaved, missing values, numeric ids), the positions are those of a
    lookup of every row's own key; both branches (few runs, many) are drawn."""
    ticket_frame = pd.DataFrame(tickets, columns=["source", "ticket_id"], dtype="object")
    rows = pd.DataFrame([pair for pair, times in runs for _ in range(times)], columns=["source", "ticket_id"],
                        dtype="object")
    if numeric_ids:
        ticket_frame["ticket_id"] = pd.to_numeric(ticket_frame["ticket_id"])
        rows["ticket_id"] = pd.to_numeric(rows["ticket_id"])
    keys = ticket_keys(ticket_frame["source"], ticket_frame["ticket_id"])

    found = ticket_row_positions(keys, rows["source"], rows["ticket_id"])

    expected = positions(keys, ticket_keys(rows["source"], rows["ticket_id"]))
    np.testing.assert_array_equal(found, expected)


def test_key_order_sorts_by_the_first_column_then_the_next_in_byte_order() -> None:
    # source first; then ticket ids as text: "INC10" before "INC2", capitals before small letters, 王 last
    source = pa.array(["sn", "jira", "sn", "sn", "sn", "jira"])
    ticket_id = pa.array(["INC2", "Z-1", "INC10", "inc1", "王1", "A-9"])

    order = key_order([source, ticket_id])

    assert [(source[i].as_py(), ticket_id[i].as_py()) for i in order] == [
        ("jira", "A-9"), ("jira", "Z-1"), ("sn", "INC10"), ("sn", "INC2"), ("sn", "inc1"), ("sn", "王1")]
