"""pipeline.store.sql's SQLite upserts come in the primary key's order (few rows), or as they are (many)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import create_engine, text

from pipeline.store import sql
from pipeline.store.plan import Replacement, plan_of
from pipeline.store.schema import metadata


def _keys(table: pa.Table) -> list[tuple[str, str]]:
    return list(zip(table["source"].to_pylist(), table["ticket_id"].to_pylist(), strict=True))


def _rows(pairs: list[tuple[str, str]]) -> pa.Table:
    return pa.table({"source": [s for s, _ in pairs], "ticket_id": [t for _, t in pairs],
                     "n": list(range(len(pairs)))})


def test_rows_are_sorted_by_the_key_as_sqlite_orders_it() -> None:
    # byte order: "B" < "a" < "b"; "T10" < "T9" (text, not numbers); the source first
    rows = _rows([("s2", "T1"), ("s1", "b"), ("s1", "T9"), ("s1", "a"), ("s1", "B"), ("s1", "T10")])
    ordered = sql._in_key_order(rows, ("source", "ticket_id"))
    assert _keys(ordered) == [("s1", "B"), ("s1", "T10"), ("s1", "T9"), ("s1", "a"), ("s1", "b"), ("s2", "T1")]
    assert ordered["n"].to_pylist() == [4, 5, 2, 3, 1, 0]  # each row moves whole


def test_rows_in_order_or_many_or_without_a_key_are_left_as_they_are(monkeypatch) -> None:
    in_order = _rows([("s1", "A"), ("s1", "B"), ("s2", "A")])
    assert sql._in_key_order(in_order, ("source", "ticket_id")) is in_order  # no copy
    shuffled = _rows([("s2", "A"), ("s1", "A"), ("s1", "B")])
    assert sql._in_key_order(shuffled, ()) is shuffled
    monkeypatch.setattr(sql, "_SORTED_UPSERT_MAX_ROWS", 2)
    assert sql._in_key_order(shuffled, ("source", "ticket_id")) is shuffled


def _status_rows(seconds: list[int], order: list[int]) -> Replacement:
    rows = pd.DataFrame({"source": "s", "ticket_id": ["T1", "T2", "T3"], "status": "NEW", "entries": 1,
                         "calendar_s": seconds, "business_s": seconds,
                         "as_of": pd.Timestamp("2026-01-01", tz="UTC"), "kpi_version": "v"}).iloc[order]
    return Replacement("ticket_status_time", rows)


@pytest.mark.parametrize("order", [[2, 0, 1], [0, 1, 2]])
def test_an_upsert_in_any_order_replaces_the_rows_of_its_keys(tmp_path, order) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'kpi.sqlite'}")
    metadata.create_all(engine)
    with engine.begin() as conn:
        sql.replace_sql(conn, plan_of(_status_rows([1, 2, 3], [0, 1, 2])))
        sql.replace_sql(conn, plan_of(_status_rows([10, 20, 30], order)))
        stored = conn.execute(text("SELECT ticket_id, calendar_s FROM ticket_status_time ORDER BY ticket_id")).all()
    assert [tuple(row) for row in stored] == [("T1", 10), ("T2", 20), ("T3", 30)]
