"""pipeline.store.parquet's row helpers: the last row of each key, kept in order, and without a copy when no
key repeats (a run's 3M facts rows were copied whole once more before being staged)."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.store.parquet import dedupe_last, in_key_order


def _table(rows: list[tuple[str, int, str]]) -> pa.Table:
    return pa.table({"source": [r[0] for r in rows], "n": [r[1] for r in rows], "value": [r[2] for r in rows]})


def test_the_last_row_of_each_key_is_kept_where_it_stands() -> None:
    table = _table([("a", 1, "first a1"), ("b", 1, "only b1"), ("a", 1, "last a1"), ("a", 2, "only a2")])
    kept = dedupe_last(table, ("source", "n"))
    # a1's last copy is row 2: it stays after b1 (row 1), a2 (row 3) stays last
    assert kept.column("value").to_pylist() == ["only b1", "last a1", "only a2"]


def test_rows_whose_keys_all_differ_are_the_table_itself() -> None:
    table = _table([("a", 1, "x"), ("a", 2, "y"), ("b", 1, "z")])
    assert dedupe_last(table, ("source", "n")) is table  # not a copy of every column
    assert dedupe_last(table, ()) is table


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 3), st.text(max_size=2)), max_size=12))
def test_dedupe_last_keeps_what_a_dictionary_of_last_rows_keeps(rows: list[tuple[str, int, str]]) -> None:
    last = {}
    for position, (source, n, _) in enumerate(rows):
        last[(source, n)] = position  # a later row of the same key replaces the earlier one
    expected = [rows[position] for position in sorted(last.values())]
    kept = dedupe_last(_table(rows), ("source", "n"))
    assert list(zip(*(kept.column(c).to_pylist() for c in ("source", "n", "value")), strict=True)) == expected


def test_rows_in_key_order_are_sorted_in_byte_order_ties_kept_and_not_copied_when_in_order() -> None:
    table = _table([("b", 1, "b1"), ("a", 2, "a2 first"), ("B", 9, "B9"), ("a", 2, "a2 second"), ("a", 1, "a1")])
    ordered = in_key_order(table, ("source", "n"))
    # "B" < "a" < "b" (bytes); the two a2 rows keep their order
    assert ordered.column("value").to_pylist() == ["B9", "a1", "a2 first", "a2 second", "b1"]
    assert in_key_order(ordered, ("source", "n")) is ordered
    assert in_key_order(table, ()) is table
