"""The SQL schema: one table per stored table, typed, keyed and commented as kpis.schema says."""

from __future__ import annotations

import pytest
from sqlalchemy import BigInteger, Boolean, Date, DateTime, Double, Text, create_engine, inspect

from kpis.schema import TABLE_COLUMNS, TABLE_KEYS
from pipeline.store import schema as sqlschema
from pipeline.store.parquet import PARQUET_KEYS

EXPECTED_TYPES = {"str": Text, "Int64": BigInteger, "Float64": Double, "boolean": Boolean, "date32": Date,
                  "datetime64[us, UTC]": DateTime}


@pytest.mark.parametrize("name", list(sqlschema.SQL_COLUMNS))
def test_every_column_has_its_type_and_comment(name: str) -> None:
    table = sqlschema.metadata.tables[name]
    for column in sqlschema.SQL_COLUMNS[name].values():
        sql = table.c[column.name]
        assert isinstance(sql.type, EXPECTED_TYPES[column.dtype]), column.name
        assert sql.comment == column.description
        if column.dtype == "datetime64[us, UTC]":
            assert sql.type.timezone


@pytest.mark.parametrize("name", list(TABLE_COLUMNS))
def test_primary_keys_follow_table_keys(name: str) -> None:
    keys = tuple(c.name for c in sqlschema.metadata.tables[name].primary_key.columns)
    assert keys == TABLE_KEYS.get(name, ("row_id",))


def test_the_ledger_tables_exist() -> None:
    assert {"pipeline_runs", "source_state", "source_files", "run_lock"} <= set(sqlschema.metadata.tables)
    runs = sqlschema.metadata.tables["pipeline_runs"]
    assert [c.name for c in runs.primary_key.columns] == ["run_id"]
    assert all(c.comment for c in runs.columns)


def test_create_all_creates_missing_tables_and_keeps_existing_ones(sql_url: str) -> None:
    engine = create_engine(sql_url)
    sqlschema.create_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO source_state (source, watermark) VALUES ('a', 'w')")
    sqlschema.create_all(engine)

    assert set(inspect(engine).get_table_names()) == set(sqlschema.metadata.tables)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT watermark FROM source_state").scalar() == "w"
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.integration
def test_postgresql_stores_the_column_comments(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    sqlschema.create_all(engine)
    columns = {c["name"]: c for c in inspect(engine).get_columns("kpi_engineer")}
    assert columns["response_p90_min"]["comment"] == TABLE_COLUMNS["kpi_engineer"]["response_p90_min"].description
    assert columns["as_of"]["type"].timezone
    assert str(columns["period_start"]["type"]) == "DATE"
    assert inspect(engine).get_table_comment("ticket_facts")["text"].startswith("One row per (source, ticket_id)")
    engine.dispose()


def test_every_keyed_table_has_its_key_as_the_sql_primary_key() -> None:
    """SQLite writes replace rows with INSERT OR REPLACE, which matches on the primary key: it must be the key."""
    for table, key in PARQUET_KEYS.items():
        if table in sqlschema.metadata.tables:
            primary = [c.name for c in sqlschema.metadata.tables[table].primary_key.columns]
            assert sorted(primary) == sorted(key), table


@pytest.mark.postgres
@pytest.mark.integration
def test_processes_opening_a_new_postgresql_store_at_once_all_succeed(postgres_url: str) -> None:
    # four openers racing on an empty database: without the schema lock two create the same table or view
    # and one fails on pg_type_typname_nsp_index (seen once in CI: a scheduled run beside a reader)
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.store.views import create_views

    engines = [create_engine(postgres_url) for _ in range(4)]

    def open_store(engine) -> None:
        sqlschema.create_all(engine)
        create_views(engine)

    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            list(pool.map(open_store, engines))  # re-raises the first failure
        assert set(sqlschema.SQL_COLUMNS) <= set(inspect(engines[0]).get_table_names())
    finally:
        for engine in engines:
            engine.dispose()
