"""Stores: real Parquet files, a real SQLite file and a real PostgreSQL server (``sql_url`` runs both).

What a run relies on: a frame read back equals the frame written (all three stores); a rerun replaces,
never duplicates; a failure at any point of a commit leaves both stores as they were before the SQL
commit and at the new state after it; a killed commit is settled by ``prepare()``; a store that
cannot be written gives one actionable line.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import socket
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from sqlalchemy import DateTime, update
from sqlalchemy.dialects import sqlite

from kpis.schema import BOOL, DATE, FLOAT, GRAINS, INT, STR, TABLE_COLUMNS, TS, conform
from pipeline.store import COMMIT_FAULT_POINTS, Replacement, Stores
from pipeline.store import parquet as parquet_store
from pipeline.store import schema as sqlschema
from pipeline.store.errors import StoreError
from pipeline.store.ledger import Ledger
from pipeline.store.parquet import PARQUET_COLUMNS, PARQUET_KEYS, PARTITION_BY
from pipeline.store.sql import _sqlite_values

TRICKY = ["", 'say "hi"', "line\nbreak", "comma, semicolon;", "back\\slash", "中文 满意", "tab\there", None]
ALL_TABLES = [*TABLE_COLUMNS, "raw_tickets", "raw_events"]



def processes() -> multiprocessing.context.BaseContext:
    """Fresh processes, forked from a server that has the heavy imports done (much faster than spawn)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["pandas", "pyarrow.dataset", "sqlalchemy", "pipeline.store.stores", "pipeline.store.ledger"])
    return ctx

def sample(table: str, n: int, *, seed: int = 0, first_day: int = 0, **fixed: object) -> pd.DataFrame:
    """``n`` rows of ``table`` with every dtype, some nulls and awkward strings; keys unique per row."""
    rng = np.random.default_rng(seed)
    columns = PARQUET_COLUMNS[table]
    keys = PARQUET_KEYS.get(table, ())
    base = pd.Timestamp("2026-03-01T00:00:00Z")
    data: dict[str, object] = {}
    for col in columns.values():
        is_key = col.name in keys or col.name == PARTITION_BY.get(table)
        if col.name == "grain":
            values: list[object] = [GRAINS[i % len(GRAINS)] for i in range(n)]
        elif col.name == "source":
            values = [("helpdesk", "sn", "123")[i % 3] for i in range(n)]
        elif col.dtype == DATE:
            values = [pd.Timestamp("2026-01-01") + pd.Timedelta(days=first_day + i) for i in range(n)]
        elif col.dtype == STR:
            values = [f"{col.name}-{first_day + i}" if is_key else TRICKY[(i + seed) % len(TRICKY)] for i in range(n)]
        elif col.dtype == TS:
            micros = rng.integers(0, 10**13, n)
            values = [base + pd.Timedelta(microseconds=int(m)) if i % 5 else None for i, m in enumerate(micros)]
        elif col.dtype == INT:
            values = [int(v) if i % 4 else None for i, v in enumerate(rng.integers(-(2**40), 2**40, n))]
        elif col.dtype == FLOAT:
            values = [float(v) if i % 3 else None for i, v in enumerate(rng.normal(0, 1e4, n))]
        elif col.dtype == BOOL:
            values = [(True, False, None)[i % 3] for i in range(n)]
        data[col.name] = values
    frame = pd.DataFrame(data)
    for name, value in fixed.items():
        frame[name] = value
    if DATE in {c.dtype for c in columns.values()}:
        for col in columns.values():
            if col.dtype == DATE:
                frame[col.name] = frame[col.name].astype("datetime64[s]")
    return conform(frame, columns)


def canonical(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Rows in a fixed order, for comparing table contents."""
    frame = conform(frame, PARQUET_COLUMNS[table])
    if frame.empty:
        return frame
    order = list(PARQUET_KEYS.get(table) or frame.columns)
    return frame.sort_values(order, kind="stable", na_position="first").reset_index(drop=True)


def snapshot(stores: Stores) -> dict[str, pd.DataFrame]:
    """Every table of both stores, in a fixed row order."""
    out = {f"parquet:{t}": canonical(stores.read(t), t) for t in [*ALL_TABLES, "pipeline_runs"]}
    for table in sqlschema.SQL_COLUMNS:
        if table != "run_lock":
            frame = stores.read_sql(table)
            out[f"sql:{table}"] = canonical(frame, table) if table in PARQUET_COLUMNS else frame
    return out


def assert_same(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame]) -> None:
    assert before.keys() == after.keys()
    for name in before:
        pd.testing.assert_frame_equal(after[name], before[name], obj=name)


def is_empty(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


def period_scope(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[["grain", "period_start"]].drop_duplicates()


@pytest.fixture
def stores(tmp_path: Path, sql_url: str):
    s = Stores(tmp_path / "store", sql_url)
    s.prepare()
    yield s
    s.close()


def _commit_first_version(stores: Stores) -> dict[str, pd.DataFrame]:
    """Commit a first version of two tables; return what was written."""
    engineer, facts = sample("kpi_engineer", 12), sample("ticket_facts", 9)
    stores.commit("run-1", [Replacement("kpi_engineer", engineer, period_scope(engineer)),
                            Replacement("ticket_facts", facts, facts[["source", "ticket_id"]])])
    return {"kpi_engineer": engineer, "ticket_facts": facts}


def _second_version() -> list[Replacement]:
    engineer = sample("kpi_engineer", 6, seed=7, first_day=6)  # overlaps days 6..11, adds none
    facts = sample("ticket_facts", 4, seed=7, first_day=5)  # replaces tickets 5..8
    return [Replacement("kpi_engineer", engineer, period_scope(engineer)),
            Replacement("ticket_facts", facts, facts[["source", "ticket_id"]]),
            Replacement("rejected_rows", sample("rejected_rows", 3, seed=7), pd.DataFrame())]


# -- round trips -----------------------------------------------------------------------------------
def test_bulk_inserted_timestamps_are_the_text_sqlalchemy_writes_on_sqlite() -> None:
    """Rows matched by value (a scope delete) and analysts' string comparisons need one text per instant."""
    instants = [datetime(2026, 1, 15, 8, 0, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, 59, 5, tzinfo=UTC),
                datetime(2026, 7, 1, 1, 2, 3, 456789, tzinfo=UTC)]
    column = pa.chunked_array([[*instants, None]], type=pa.timestamp("us", tz="UTC"))
    dialect = sqlite.dialect()
    store = DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
    assert _sqlite_values(column) == [store(t.replace(tzinfo=None)) for t in instants] + [None]
    assert _sqlite_values(column)[0] == "2026-01-15 08:00:00.000000"


@pytest.mark.parametrize("table", ALL_TABLES)
def test_a_frame_read_back_equals_the_frame_written(stores: Stores, table: str) -> None:
    rows = sample(table, 30, seed=3)
    stores.commit("run-1", [Replacement(table, rows, pd.DataFrame())])

    expected = canonical(rows, table)
    pd.testing.assert_frame_equal(canonical(stores.read(table), table), expected)
    if table in TABLE_COLUMNS:
        pd.testing.assert_frame_equal(canonical(stores.read_sql(table), table), expected)


def test_rows_over_several_statements_read_back_equal(stores: Stores) -> None:
    """SQLite takes at most 32766 parameters a statement: 1500 facts rows of 47 columns are three statements
    (697 + 697 + 106 rows), the last one shorter."""
    rows = sample("ticket_facts", 1500, seed=5)
    assert len(rows.columns) == 47
    stores.commit("run-1", [Replacement("ticket_facts", rows, pd.DataFrame())])

    pd.testing.assert_frame_equal(canonical(stores.read_sql("ticket_facts"), "ticket_facts"),
                                  canonical(rows, "ticket_facts"))


def test_parquet_datasets_are_hive_partitioned_for_pyarrow_and_duckdb(stores: Stores) -> None:
    rows = sample("kpi_team", 8)
    stores.commit("run-1", [Replacement("kpi_team", rows, period_scope(rows))])
    root = stores.parquet.root

    assert sorted(p.name for p in (root / "kpi_team").iterdir()) == sorted(f"grain={g}" for g in GRAINS)
    table = ds.dataset(root / "kpi_team", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 8 and table.schema.field("period_start").type == pa.date32()
    described = duckdb.sql(
        f"DESCRIBE SELECT * FROM read_parquet('{root}/kpi_team/**/*.parquet', hive_partitioning = true)")
    types = {row[0]: row[1] for row in described.fetchall()}
    assert types["grain"] == "VARCHAR" and types["period_start"] == "DATE"
    assert types["as_of"] == "TIMESTAMP WITH TIME ZONE" and types["opened_count"] == "BIGINT"
    count = duckdb.sql(f"SELECT count(*) FROM read_parquet('{root}/kpi_team/**/*.parquet', "
                       "hive_partitioning = true) WHERE grain = 'day'").fetchall()
    assert count == [(2,)]


def test_the_first_commit_gives_every_sql_table_its_parquet_twin(stores: Stores) -> None:
    """CONTRACT.md: both stores hold the same tables with the same columns. A commit that writes one table
    still leaves Parquet holding every SQL table, empty where nothing was written (``alerts_sent`` had no
    folder until the first post), and DuckDB's glob finds each with the SQL table's columns (``rejected_rows.row_id``, a
    surrogate key, is SQL's only extra)."""
    rows = sample("kpi_team", 3)
    stores.commit("run-1", [Replacement("kpi_team", rows, period_scope(rows))])
    root = stores.parquet.root
    for table in TABLE_COLUMNS:
        found = duckdb.sql(f"SELECT * FROM read_parquet('{root}/{table}/**/*.parquet', hive_partitioning = true)")
        sql_columns = set(stores.read_sql(table).columns) - ({"row_id"} if table == "rejected_rows" else set())
        assert set(found.columns) == sql_columns, table
        assert len(found.fetchall()) == (3 if table == "kpi_team" else 0), table


def test_a_big_partition_is_split_into_files_and_reads_back_whole(stores: Stores,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parquet_store, "_ROWS_PER_FILE", 4)  # 1M-row partitions get files of 256k rows
    rows = sample("ticket_facts", 10, source="hd")
    stores.commit("run-1", [Replacement("ticket_facts", rows, pd.DataFrame())])
    root = stores.parquet.root
    assert sorted(p.name for p in (root / "ticket_facts" / "source=hd").iterdir()) == [
        "part-0.parquet", "part-1.parquet", "part-2.parquet"]  # 4 + 4 + 2 rows
    pd.testing.assert_frame_equal(canonical(stores.read("ticket_facts"), "ticket_facts"),
                                  canonical(rows, "ticket_facts"))
    count = duckdb.sql(f"SELECT count(*) FROM read_parquet('{root}/ticket_facts/**/*.parquet', "
                       "hive_partitioning = true)").fetchall()
    assert count == [(10,)]


def test_a_table_read_during_a_run_is_read_again_after_a_commit_replaced_it(stores: Stores) -> None:
    first, second = sample("ticket_facts", 3, seed=1), sample("ticket_facts", 2, seed=2)
    second["ticket_id"] = "new-" + second["ticket_id"]
    stores.commit("run-1", [Replacement("ticket_facts", first, pd.DataFrame())])
    assert stores.read_arrow("ticket_facts", keep=True).num_rows == 3
    other = Stores(stores.parquet.root, str(stores.engine.url))  # another process's commit
    other.commit("run-2", [Replacement("ticket_facts", second, pd.DataFrame())])
    assert stores.read_arrow("ticket_facts").num_rows == 5
    pd.testing.assert_frame_equal(canonical(stores.read("ticket_facts"), "ticket_facts"),
                                  canonical(pd.concat([first, second]), "ticket_facts"))


def test_an_empty_table_is_still_a_dataset_duckdb_can_read(stores: Stores) -> None:
    stores.commit("run-1", [Replacement("scorecard", sample("scorecard", 0), pd.DataFrame())])
    root = stores.parquet.root
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{root}/scorecard/**/*.parquet', hive_partitioning = true)")
    assert relation.fetchall() == [] and "engineer" in relation.columns
    assert stores.read("scorecard").empty
    for partitioning in ("hive", ds.partitioning(pa.schema([("grain", pa.string())]), flavor="hive")):
        assert ds.dataset(root / "scorecard", format="parquet", partitioning=partitioning).to_table().num_rows == 0


def test_read_filters_on_partition_and_date(stores: Stores) -> None:
    rows = sample("kpi_engineer", 12)
    stores.commit("run-1", [Replacement("kpi_engineer", rows, period_scope(rows))])

    got = stores.read("kpi_engineer", [("grain", "=", "week"), ("period_start", ">=", date(2026, 1, 5))])
    assert sorted(got["period_start"].dt.day) == [6, 10]


def test_a_filtered_read_that_keeps_the_table_filters_the_whole_table_it_keeps(stores: Stores) -> None:
    rows = sample("kpi_engineer", 12)
    stores.commit("run-1", [Replacement("kpi_engineer", rows, period_scope(rows))])
    week = [("grain", "=", "week"), ("period_start", ">=", date(2026, 1, 5))]

    kept = stores.read("kpi_engineer", week, keep=True)

    pd.testing.assert_frame_equal(kept, stores.read("kpi_engineer", week))
    assert stores.read_arrow("kpi_engineer", keep=True).num_rows == 12  # the whole table, not the filtered rows


def test_a_read_of_some_columns_is_the_same_from_the_files_and_from_the_table_kept(stores: Stores) -> None:
    rows = sample("kpi_engineer", 12)
    stores.commit("run-1", [Replacement("kpi_engineer", rows, period_scope(rows))])
    week, columns = pc.field("grain") == "week", ["grain", "engineer"]

    scanned = stores.read_arrow("kpi_engineer", week, columns=columns)  # nothing kept: pushed down to the scan
    stores.read_arrow("kpi_engineer", keep=True)
    kept = stores.read_arrow("kpi_engineer", week, columns=columns)  # from the table kept in memory

    assert scanned.column_names == columns and scanned.equals(kept)
    assert scanned.num_rows == int((rows["grain"] == "week").sum()) > 0
    # a filter on a column not read: the same from the files and from memory
    from_memory = stores.read_arrow("kpi_engineer", week, columns=["engineer"])
    other = Stores(stores.parquet.root, str(stores.engine.url))  # holds nothing: reads the files
    assert from_memory.equals(other.read_arrow("kpi_engineer", week, columns=["engineer"]))
    assert stores.read_arrow("scorecard", columns=["engineer"]).column_names == ["engineer"]  # never written


def test_reading_a_table_never_written_gives_an_empty_frame_with_its_columns(stores: Stores) -> None:
    frame = stores.read("raw_events")
    assert frame.empty and list(frame.columns) == list(PARQUET_COLUMNS["raw_events"])
    assert stores.read_sql("kpi_team").empty


# -- replacing -------------------------------------------------------------------------------------
@pytest.mark.parametrize("table", ["ticket_facts", "kpi_engineer"])
def test_rows_spanning_several_insert_statements_read_back_whole(stores: Stores, table: str) -> None:
    """SQLite takes at most 32766 parameters per statement: 1,700 rows of 20-40 columns take several
    statements, the last one partly filled."""
    rows = sample(table, 1_700, seed=11)
    stores.commit("run-1", [Replacement(table, rows, pd.DataFrame())])

    pd.testing.assert_frame_equal(canonical(stores.read_sql(table), table), canonical(rows, table))


def test_a_key_scope_deletes_its_keys_that_the_new_rows_do_not_bring(stores: Stores) -> None:
    old = sample("ticket_facts", 6)
    stores.commit("run-1", [Replacement("ticket_facts", old, old[["source", "ticket_id"]])])
    new = sample("ticket_facts", 2, seed=9)  # tickets 0 and 1 again, other values
    scope = old[["source", "ticket_id"]].iloc[:3]  # tickets 0, 1 and 2: ticket 2 is gone
    stores.commit("run-2", [Replacement("ticket_facts", new, scope)])

    expected = canonical(pd.concat([new, old.iloc[3:]]), "ticket_facts")
    pd.testing.assert_frame_equal(canonical(stores.read("ticket_facts"), "ticket_facts"), expected)
    pd.testing.assert_frame_equal(canonical(stores.read_sql("ticket_facts"), "ticket_facts"), expected)


def test_replacing_a_window_twice_gives_identical_tables(stores: Stores) -> None:
    rows = sample("kpi_engineer", 10)
    first = stores.commit("run-1", [Replacement("kpi_engineer", rows, period_scope(rows))])
    once = snapshot(stores)
    second = stores.commit("run-2", [Replacement("kpi_engineer", rows, period_scope(rows))])
    twice = snapshot(stores)

    assert first == second == 10
    for name in ("parquet:kpi_engineer", "sql:kpi_engineer"):
        pd.testing.assert_frame_equal(twice[name], once[name])
        assert len(twice[name]) == 10


def test_scope_removes_stale_rows_and_keys_never_double(stores: Stores) -> None:
    old = sample("kpi_engineer", 8)
    stores.commit("run-1", [Replacement("kpi_engineer", old, period_scope(old))])
    # Recompute days 2..3: engineer "engineer-2" vanished from day 2, a new one appears on day 3.
    new = sample("kpi_engineer", 2, seed=5, first_day=2)
    new["grain"] = old["grain"].iloc[2:4].to_numpy()
    new.loc[0, "engineer"] = "engineer-new"
    stores.commit("run-2", [Replacement("kpi_engineer", new, period_scope(new))])

    expected = canonical(pd.concat([old.iloc[[0, 1, 4, 5, 6, 7]], new]), "kpi_engineer")
    pd.testing.assert_frame_equal(canonical(stores.read("kpi_engineer"), "kpi_engineer"), expected)
    pd.testing.assert_frame_equal(canonical(stores.read_sql("kpi_engineer"), "kpi_engineer"), expected)


def test_new_rows_replace_rows_of_the_same_key_outside_the_scope(stores: Stores) -> None:
    old = sample("ticket_facts", 4)
    stores.commit("run-1", [Replacement("ticket_facts", old, old[["source", "ticket_id"]])])
    new = sample("ticket_facts", 2, seed=9)  # same keys as old rows 0 and 1, empty scope
    stores.commit("run-2", [Replacement("ticket_facts", pd.concat([new, new]), pd.DataFrame())])

    expected = canonical(pd.concat([old.iloc[2:], new]), "ticket_facts")
    pd.testing.assert_frame_equal(canonical(stores.read("ticket_facts"), "ticket_facts"), expected)
    pd.testing.assert_frame_equal(canonical(stores.read_sql("ticket_facts"), "ticket_facts"), expected)


def test_an_empty_scope_appends(stores: Stores) -> None:
    rejected = sample("rejected_rows", 5)
    stores.commit("run-1", [Replacement("rejected_rows", rejected, pd.DataFrame())])
    stores.commit("run-2", [Replacement("rejected_rows", rejected, pd.DataFrame())])
    assert len(stores.read("rejected_rows")) == len(stores.read_sql("rejected_rows")) == 10


def test_pipeline_runs_reach_parquet_with_the_commit(stores: Stores) -> None:
    ledger = Ledger(stores.engine)
    run_id = ledger.start_run("run", None, None, pd.Timestamp("2026-03-02T00:00:00Z"))
    rows = sample("kpi_engineer", 4)
    stores.commit(run_id, [Replacement("kpi_engineer", rows, period_scope(rows))],
                  ledger_writes=ledger.finish_run_writes(run_id, "success", rows_written=4))

    runs = stores.read("pipeline_runs")
    assert runs["run_id"].tolist() == [run_id] and runs["status"].tolist() == ["success"]
    pd.testing.assert_frame_equal(runs, stores.read_sql("pipeline_runs"))


def test_a_key_column_without_value_is_refused_before_anything_is_written(stores: Stores) -> None:
    rows = sample("scorecard", 3)
    rows.loc[1, "engineer"] = None
    before = snapshot(stores)
    with pytest.raises(StoreError, match="engineer"):
        stores.commit("run-1", [Replacement("scorecard", rows, period_scope(rows))])
    assert_same(before, snapshot(stores))


# -- failures --------------------------------------------------------------------------------------
class Boom(RuntimeError):
    pass


def _raise_at(point: str):
    def fault(at: str) -> None:
        if at == point:
            raise Boom(at)
    return fault


def _ledger_writes(stores: Stores, run_id: str):
    """Writes that move a watermark, to check the ledger commits (or not) with the data."""
    return Ledger(stores.engine).set_watermark_writes("helpdesk", f"mark-of-{run_id}")


@pytest.mark.parametrize("point", ["parquet_staged", "before_sql_commit"])
def test_a_failure_before_the_sql_commit_leaves_both_stores_as_before(
        tmp_path: Path, sql_url: str, point: str) -> None:
    stores = Stores(tmp_path / "store", sql_url)
    stores.prepare()
    _commit_first_version(stores)
    before = snapshot(stores)

    failing = Stores(tmp_path / "store", sql_url, fault=_raise_at(point))
    with pytest.raises(Boom):
        failing.commit("run-2", _second_version(), ledger_writes=_ledger_writes(failing, "run-2"))
    failing.close()

    assert_same(before, snapshot(stores))
    assert Ledger(stores.engine).watermark("helpdesk") is None
    assert not stores.parquet.journal_path.exists()
    assert is_empty(stores.parquet.root / ".staging") and is_empty(stores.parquet.root / ".trash")
    stores.close()


@pytest.mark.parametrize("point", ["after_sql_commit", "after_swap"])
def test_a_failure_after_the_sql_commit_leaves_both_stores_at_the_new_state(
        tmp_path: Path, sql_url: str, point: str) -> None:
    expected = _expected_after_second_commit(tmp_path / "expected")
    stores = Stores(tmp_path / "store", sql_url)
    stores.prepare()
    _commit_first_version(stores)

    failing = Stores(tmp_path / "store", sql_url, fault=_raise_at(point))
    with pytest.raises(Boom):
        failing.commit("run-2", _second_version(), ledger_writes=_ledger_writes(failing, "run-2"))
    failing.close()

    _assert_same_data(expected, snapshot(stores))
    assert Ledger(stores.engine).watermark("helpdesk") == "mark-of-run-2"
    assert not stores.parquet.journal_path.exists()
    stores.close()


def _expected_after_second_commit(folder: Path) -> dict[str, pd.DataFrame]:
    """Both commits without any failure, into a store of their own (SQLite)."""
    stores = Stores(folder, f"sqlite:///{folder / 'kpi.sqlite'}")
    stores.prepare()
    _commit_first_version(stores)
    stores.commit("run-2", _second_version())
    out = snapshot(stores)
    stores.close()
    return out


def _assert_same_data(expected: dict[str, pd.DataFrame], got: dict[str, pd.DataFrame]) -> None:
    """Equal output tables; the ledger tables differ in run times and ids, so they are left out."""
    for name in expected:
        if name.split(":")[1] in PARQUET_COLUMNS and "pipeline_runs" not in name:
            frame, want = got[name], expected[name]
            if name == "sql:rejected_rows":
                frame, want = frame.drop(columns="row_id", errors="ignore"), want.drop(columns="row_id", errors="ignore")
            pd.testing.assert_frame_equal(frame, want, obj=name)


def _commit_then_die(root: str, sql_url: str, point: str) -> None:
    """In a child process: commit the second version and die (os._exit) at ``point``."""
    def fault(at: str) -> None:
        if at == point:
            os._exit(17)
    stores = Stores(Path(root), sql_url, fault=fault)
    stores.commit("run-2", _second_version(), ledger_writes=_ledger_writes(stores, "run-2"))
    os._exit(0)


@pytest.mark.parametrize("point", COMMIT_FAULT_POINTS)
def test_prepare_settles_a_commit_killed_at_any_point(tmp_path: Path, sql_url: str, point: str) -> None:
    stores = Stores(tmp_path / "store", sql_url)
    stores.prepare()
    _commit_first_version(stores)
    before = snapshot(stores)
    stores.close()

    child = processes().Process(
        target=_commit_then_die, args=(str(tmp_path / "store"), sql_url, point))
    child.start()
    child.join(120)
    assert child.exitcode == 17
    journal_left = (tmp_path / "store" / ".journal.json").exists()
    assert journal_left == (point != "parquet_staged")  # the journal is written after staging

    recovered = Stores(tmp_path / "store", sql_url)
    recovered.prepare()
    after = snapshot(recovered)
    if point in ("parquet_staged", "before_sql_commit"):
        assert_same(before, after)
        assert Ledger(recovered.engine).watermark("helpdesk") is None
    else:
        _assert_same_data(_expected_after_second_commit(tmp_path / "expected"), after)
        assert Ledger(recovered.engine).watermark("helpdesk") == "mark-of-run-2"
    assert not recovered.parquet.journal_path.exists()
    assert is_empty(recovered.parquet.root / ".staging") and is_empty(recovered.parquet.root / ".trash")
    recovered.close()


# -- tables handed over before the commit ----------------------------------------------------------
def _first_version_store(tmp_path: Path, sql_url: str) -> tuple[Stores, dict[str, pd.DataFrame]]:
    """A store holding the first version, and what both commits without any failure give."""
    expected = _expected_after_second_commit(tmp_path / "expected")
    stores = Stores(tmp_path / "store", sql_url)
    stores.prepare()
    _commit_first_version(stores)
    return stores, expected


def test_tables_handed_over_early_commit_with_the_rest_as_one(tmp_path: Path, sql_url: str) -> None:
    stores, expected = _first_version_store(tmp_path, sql_url)
    engineer, facts, rejected = _second_version()
    before = snapshot(stores)

    with stores.staging("run-2") as staging:
        staging.add([facts, rejected])
        staging.wait_parquet()
        assert (stores.parquet.staging_dir("run-2") / "ticket_facts").is_dir()
        assert_same(before, snapshot(stores))  # staged, not published
        stores.commit("run-2", [engineer], staging=staging)

    _assert_same_data(expected, snapshot(stores))
    assert is_empty(stores.parquet.root / ".staging")
    stores.close()


def test_a_run_failing_after_handing_tables_over_leaves_both_stores_as_before(stores: Stores) -> None:
    _commit_first_version(stores)
    before = snapshot(stores)
    engineer, facts, _ = _second_version()

    with pytest.raises(Boom), stores.staging("run-2") as staging:
        staging.add([facts, engineer])
        raise Boom("the KPIs could not be computed")

    assert_same(before, snapshot(stores))
    assert is_empty(stores.parquet.root / ".staging")


def _prepare_in(root: str, sql_url: str) -> None:
    """In a child process: what a second run does first (it then waits for the run lock)."""
    stores = Stores(Path(root), sql_url)
    stores.prepare()
    stores.close()


def test_another_process_preparing_leaves_a_live_runs_staging_alone(tmp_path: Path, sql_url: str) -> None:
    stores, expected = _first_version_store(tmp_path, sql_url)
    engineer, facts, rejected = _second_version()

    with stores.staging("run-2") as staging:
        staging.add([facts])
        staging.wait_parquet()
        child = processes().Process(target=_prepare_in, args=(str(tmp_path / "store"), sql_url))
        child.start()
        child.join(120)
        assert child.exitcode == 0
        assert (stores.parquet.staging_dir("run-2") / "ticket_facts").is_dir()
        stores.commit("run-2", [engineer, rejected], staging=staging)

    _assert_same_data(expected, snapshot(stores))
    stores.close()


def test_a_sql_error_rolls_back_both_stores(stores: Stores) -> None:
    _commit_first_version(stores)
    before = snapshot(stores)
    runs = sqlschema.metadata.tables["pipeline_runs"]

    def failing_ledger(conn) -> None:
        conn.execute(update(runs).values(status="success"))
        conn.exec_driver_sql("SELECT * FROM no_such_table")

    with pytest.raises(StoreError) as info:
        stores.commit("run-2", _second_version(), ledger_writes=failing_ledger)
    assert "\n" not in str(info.value) and "run-2" in str(info.value)
    assert_same(before, snapshot(stores))


# -- unusable stores -------------------------------------------------------------------------------
def test_a_file_where_the_store_directory_should_be_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "store").write_text("not a directory")
    stores = Stores(tmp_path / "store", f"sqlite:///{tmp_path / 'kpi.sqlite'}")
    with pytest.raises(StoreError) as info:
        stores.prepare()
    message = str(info.value)
    assert "\n" not in message and "not writable" in message and str(tmp_path / "store") in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod")
def test_a_read_only_store_directory_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store").chmod(0o500)
    try:
        with pytest.raises(StoreError, match="not writable"):
            Stores(tmp_path / "store", f"sqlite:///{tmp_path / 'kpi.sqlite'}").prepare()
    finally:
        (tmp_path / "store").chmod(0o700)


def test_a_sqlite_file_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder")
    stores = Stores(tmp_path / "store", f"sqlite:///{tmp_path / 'blocker' / 'kpi.sqlite'}")
    with pytest.raises(StoreError) as info:
        stores.prepare()
    assert "\n" not in str(info.value) and "sql_url" in str(info.value)


def test_an_unreachable_postgresql_server_is_one_line_without_the_password(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stores = Stores(tmp_path / "store", f"postgresql+psycopg://kpi:s3cret@127.0.0.1:{port}/kpi")
    with pytest.raises(StoreError) as info:
        stores.prepare()
    message = str(info.value)
    assert "\n" not in message and "s3cret" not in message and "cannot be reached" in message


def test_a_bad_sql_url_is_one_line() -> None:
    with pytest.raises(StoreError, match="not a usable SQLAlchemy URL"):
        Stores(Path("unused"), "nosuchdb://x/y")


def test_unknown_tables_are_refused(stores: Stores) -> None:
    with pytest.raises(StoreError, match="unknown table"):
        stores.commit("run-1", [Replacement("kpi_everyone", pd.DataFrame(), pd.DataFrame())])
    with pytest.raises(StoreError, match="ledger"):
        stores.commit("run-1", [Replacement("pipeline_runs", pd.DataFrame(), pd.DataFrame())])


@pytest.mark.parametrize("text", ['{"run_id": "run-1", "commit_', '{"run_id": "run-1"}', "[]"])
def test_a_damaged_journal_stops_with_one_line_saying_what_to_do(tmp_path: Path, text: str) -> None:
    """The journal is written to a temporary file and renamed, so only damage from outside can tear it; that
    was a JSONDecodeError (exit 1) on every later run."""
    stores = Stores(tmp_path / "store", f"sqlite:///{tmp_path / 'store' / 'kpi.sqlite'}")
    stores.prepare()
    (tmp_path / "store" / ".journal.json").write_text(text, encoding="utf-8")
    with pytest.raises(StoreError, match=r"the journal .*\.journal\.json of an interrupted commit is damaged \(") as err:
        stores.prepare()
    assert str(err.value).endswith("then delete the journal and rerun a backfill of that run's window")
    stores.close()
