"""pipeline.store.table_version: a table's next version is the live rows no removed row matches, in their
order, then the added rows; written as a stream of batches, it holds the rows a copy would."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.store.parquet import ParquetStore, anti_join
from pipeline.store.table_version import TableVersion

_SCHEMA = pa.schema([("source", pa.string()), ("ticket_id", pa.string()), ("grain", pa.string()),
                     ("value", pa.int64())])


def _table(rows: list[tuple], schema: pa.Schema = _SCHEMA) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(schema.names, row, strict=True)) for row in rows], schema=schema)


def _rows(table: pa.Table) -> list[tuple]:
    return list(zip(*(table.column(name).to_pylist() for name in table.column_names), strict=True))


def _in_batches(table: pa.Table, size: int) -> pa.Table:
    return pa.Table.from_batches(table.to_batches(max_chunksize=size), schema=table.schema)


def test_the_kept_rows_stay_in_order_and_the_added_ones_follow() -> None:
    live = _in_batches(_table([("s", "A", "day", 1), ("s", "B", "day", 2), ("s", "C", "month", 3),
                               ("s", "D", "day", 4), ("s", "E", "day", 5)]), 2)  # three batches
    # B by key, every month row by the scope's column, then the new B
    removed = [_table([("s", "B")], pa.schema([("source", pa.string()), ("ticket_id", pa.string())])),
               _table([("month",)], pa.schema([("grain", pa.string())]))]
    added = _table([("s", "B", "day", 20)])
    version = TableVersion.of(live, removed, added)
    assert version.num_rows == 4
    assert _rows(version.to_table()) == [("s", "A", "day", 1), ("s", "D", "day", 4), ("s", "E", "day", 5),
                                         ("s", "B", "day", 20)]


def test_a_missing_value_matches_nothing_as_in_a_join() -> None:
    live = _table([("s", None, "day", 1), ("s", "A", None, 2), ("s", "B", "day", 3)])
    # a one-column scope holding a missing grain: row 2's missing grain is not matched by it
    removed = [_table([(None,), ("day",)], pa.schema([("grain", pa.string())])),
               _table([("s", None)], pa.schema([("source", pa.string()), ("ticket_id", pa.string())]))]
    version = TableVersion.of(live, removed, live.slice(0, 0))
    assert _rows(version.to_table()) == [("s", "A", None, 2)]


def test_nothing_removed_keeps_the_live_batches_as_they_are() -> None:
    live = _in_batches(_table([("s", "A", "day", 1), ("s", "B", "day", 2)]), 1)
    removed = [_table([("s", "Z")], pa.schema([("source", pa.string()), ("ticket_id", pa.string())]))]
    version = TableVersion.of(live, removed, _table([("s", "C", "day", 3)]))
    assert version.kept is None
    assert version.num_rows == 3
    assert [batch.num_rows for batch in version.reader()] == [1, 1, 1]


def test_added_rows_take_the_live_schema_and_a_mismatch_is_an_error() -> None:
    live = _table([("s", "A", "day", 1)])
    with_metadata = _table([("s", "B", "day", 2)]).replace_schema_metadata({"pandas": "{}"})
    assert TableVersion.of(live, [], with_metadata).to_table().schema == live.schema
    other_types = pa.table({"source": ["s"], "ticket_id": ["C"], "grain": ["day"], "value": [1.5]})
    with pytest.raises(pa.ArrowInvalid):
        TableVersion.of(live, [], other_types).to_table()


def test_a_staged_version_holds_its_rows(tmp_path) -> None:
    store = ParquetStore(tmp_path)
    live = _in_batches(_table([("s", str(i), "day", i) for i in range(10)]), 3)
    removed = [_table([("s", "3"), ("s", "7")], pa.schema([("source", pa.string()), ("ticket_id", pa.string())]))]
    store.stage("run-1", "some_table", TableVersion.of(live, removed, _table([("s", "3", "day", 30)])))
    written = ds.dataset(tmp_path / ".staging" / "run-1" / "some_table", format="parquet").to_table()
    assert sorted(_rows(written)) == sorted([("s", str(i), "day", i) for i in range(10) if i not in (3, 7)]
                                           + [("s", "3", "day", 30)])
    store.stage("run-2", "some_table", TableVersion.of(live.slice(0, 0), [], live.slice(0, 0)))
    assert ds.dataset(tmp_path / ".staging" / "run-2" / "some_table", format="parquet").count_rows() == 0


_SOURCE = st.sampled_from(["s", "t"])
_IDS = st.sampled_from(["A", "B", "C", None])
_GRAINS = st.sampled_from(["day", "month", None])


def _matches(row: dict, removed: pa.Table) -> bool:
    """Whether ``row`` equals a row of ``removed`` on its columns, a missing value never equal (a join's rule)."""
    return any(all(value is not None and row[name] == value for name, value in other.items())
               for other in removed.to_pylist())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_SOURCE, _IDS, _GRAINS, st.integers(0, 9)), max_size=30),
       st.lists(st.tuples(_SOURCE, _IDS), max_size=4), st.lists(st.tuples(_GRAINS), max_size=2),
       st.integers(1, 7))
def test_the_version_holds_what_anti_joins_leave_in_the_live_order(rows, keys, grains, batch_rows) -> None:
    live = _in_batches(_table(rows), batch_rows)
    removed = [_table(keys, pa.schema([("source", pa.string()), ("ticket_id", pa.string())])),
               _table(grains, pa.schema([("grain", pa.string())]))]
    version = _rows(TableVersion.of(live, removed, live.slice(0, 0)).to_table())
    assert version == [tuple(row.values()) for row in live.to_pylist()
                       if not any(_matches(row, table) for table in removed)]
    joined = live
    for table in removed:
        joined = anti_join(joined, table)  # what the rewrite did before: the same rows, in an order of its own
    assert sorted(version, key=repr) == sorted(_rows(joined), key=repr)
