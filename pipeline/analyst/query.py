"""``itsm-kpi query``: read-only SQL over the Parquet store (DuckDB) or the SQL store (SQLAlchemy).

Over Parquet every table directory ``<store>/<table>/`` is a DuckDB view of the same name
(``read_parquet('<store>/<table>/**/*.parquet', hive_partitioning = true)``, columns in schema order),
and the analyst views of ``pipeline.store.views`` are created on top. Over SQL the statement runs in a
transaction that is read-only where the database supports it and always rolled back.

Results are written as an aligned text table, CSV, or JSON lines. ``StoreQuery`` is the same access for
code (the report uses it).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from kpis.errors import ItsmKpiError, first_line
from pipeline.store.views import VIEWS, view_statements

__all__ = ["ENGINES", "FORMATS", "QueryError", "Result", "StoreQuery", "run_query", "write_result"]

log = logging.getLogger(__name__)

ENGINES = ("parquet", "sql")
FORMATS = ("text", "csv", "json")
EXIT_OK, EXIT_QUERY, EXIT_STORE = 0, 2, 4


class QueryError(ItsmKpiError):
    """A query could not run: ``exit_code`` 2 for the statement, 4 for the store."""

    def __init__(self, message: str, exit_code: int = EXIT_QUERY) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Result:
    """The column names and rows (tuples of Python values) a statement returned."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def frame(self) -> pd.DataFrame:
        """The rows as a frame (values as the engine returned them)."""
        return pd.DataFrame.from_records(self.rows, columns=self.columns)



# -- Parquet through DuckDB --------------------------------------------------------------------
def parquet_tables(store_path: Path) -> dict[str, Path]:
    """Table directories of a Parquet store that hold at least one Parquet file, by name."""
    if not store_path.is_dir():
        return {}
    return {
        d.name: d
        for d in sorted(store_path.iterdir())
        if d.is_dir() and not d.name.startswith(".") and next(d.glob("**/*.parquet"), None) is not None
    }


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _table_view_sql(name: str, path: Path) -> str:
    from pipeline.store.parquet import PARQUET_COLUMNS  # noqa: PLC0415 (only the column order)

    glob = _sql_literal(str(path / "**" / "*.parquet"))
    columns = PARQUET_COLUMNS.get(name)
    select = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    return (
        f'CREATE VIEW "{name}" AS SELECT {select} FROM read_parquet({glob}, '
        "hive_partitioning = true, hive_types_autocast = false, union_by_name = true)"
    )


def _duckdb_connection(store_path: Path) -> Any:
    try:
        import duckdb  # noqa: PLC0415 (optional dependency: itsm-kpi[query])
    except ImportError:
        raise QueryError(
            "querying the Parquet store needs DuckDB: pip install 'itsm-kpi[query]' (or use --engine sql)",
            EXIT_STORE,
        ) from None
    tables = parquet_tables(store_path)
    if not tables:
        raise QueryError(
            f"no Parquet store at {store_path} (no table directories with Parquet files; "
            "run `itsm-kpi demo` or `itsm-kpi run` first, or pass --store/--config)",
            EXIT_STORE,
        )
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        for name, path in tables.items():
            con.execute(_table_view_sql(name, path))
        _create_duckdb_views(con, set(tables))
    except duckdb.Error as exc:
        con.close()
        raise QueryError(f"cannot open the Parquet store {store_path}: {first_line(exc)}", EXIT_STORE) from exc
    return con


def _create_duckdb_views(con: Any, tables: set[str]) -> None:
    for view in VIEWS:
        if not set(view.based_on) <= tables:
            log.info("view %s skipped: the store has no %s", view.name, ", ".join(view.based_on))
            continue
        for statement in view_statements(view, "duckdb"):
            con.execute(statement)


def _duckdb_result(con: Any, sql: str) -> Result:
    import duckdb  # noqa: PLC0415

    try:
        relation = con.sql(sql)
    except duckdb.Error as exc:
        raise QueryError(first_line(exc)) from exc
    if relation is None:  # a statement that returns no rows
        return Result([], [])
    try:
        table = relation.to_arrow_table()  # through Arrow: timestamps with time zone need no pytz
    except duckdb.Error as exc:
        raise QueryError(first_line(exc)) from exc
    return Result(list(table.column_names), [tuple(row.values()) for row in table.to_pylist()])


# -- SQL through SQLAlchemy --------------------------------------------------------------------
def _sql_engine(sql_url: str | None) -> Engine:
    if not sql_url:
        raise QueryError(
            "no SQL store: give --config with store.sql_url, or use --engine parquet", EXIT_STORE
        )
    try:
        url = make_url(sql_url)
    except ArgumentError as exc:
        raise QueryError(f"store.sql_url is not a SQLAlchemy URL: {first_line(exc)}", EXIT_STORE) from exc
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).is_file():
            raise QueryError(
                f"no SQLite store at {url.database} (run `itsm-kpi demo` or `itsm-kpi run` first)", EXIT_STORE
            )
    try:
        return create_engine(url)
    except (ImportError, SQLAlchemyError) as exc:
        raise QueryError(f"cannot use store.sql_url: {first_line(exc)}", EXIT_STORE) from exc


def _read_only(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")


def _sql_result(conn: Connection, sql: str) -> Result:
    try:
        cursor = conn.exec_driver_sql(sql)
    except SQLAlchemyError as exc:
        raise QueryError(first_line(exc)) from exc
    if not cursor.returns_rows:
        return Result([], [])
    return Result(list(cursor.keys()), [tuple(row) for row in cursor.all()])


# -- one access for both -----------------------------------------------------------------------
class StoreQuery:
    """Read-only SQL over one store; a context manager. ``engine``: ``parquet`` (DuckDB) or ``sql``."""

    def __init__(self, *, store_path: Path | None, sql_url: str | None, engine: str) -> None:
        if engine not in ENGINES:
            raise QueryError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
        self.engine = engine
        self._duck: Any = None
        self._sql_engine: Engine | None = None
        self._conn: Connection | None = None
        if engine == "parquet":
            self._duck = _duckdb_connection(Path(store_path or "kpi-store"))
        else:
            self._open_sql(sql_url)

    def _open_sql(self, sql_url: str | None) -> None:
        self._sql_engine = _sql_engine(sql_url)
        try:
            self._conn = self._sql_engine.connect()
            self._conn.begin()
            _read_only(self._conn)
        except SQLAlchemyError as exc:
            self.close()
            raise QueryError(f"cannot reach the SQL store: {first_line(exc)}", EXIT_STORE) from exc

    @property
    def dialect(self) -> str:
        """``duckdb``, ``sqlite`` or ``postgresql``."""
        return "duckdb" if self._conn is None else self._conn.dialect.name

    def result(self, sql: str) -> Result:
        """Run one statement; raise QueryError with a one-line reason when it fails."""
        if self._duck is not None:
            return _duckdb_result(self._duck, sql)
        assert self._conn is not None
        return _sql_result(self._conn, sql)

    def frame(self, sql: str) -> pd.DataFrame:
        """Run one statement and return its rows as a frame."""
        return self.result(sql).frame()

    def close(self) -> None:
        """Roll back (nothing is ever written) and release the connection."""
        if self._duck is not None:
            self._duck.close()
            self._duck = None
        if self._conn is not None:
            self._conn.rollback()
            self._conn.close()
            self._conn = None
        if self._sql_engine is not None:
            self._sql_engine.dispose()
            self._sql_engine = None

    def __enter__(self) -> StoreQuery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- writing results ---------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """A value as JSON/CSV can carry it: ISO dates and times, floats for decimals, None for NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _text_cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if math.isfinite(value) else str(value)
    return str(value).replace("\n", " ")


def _width(text: str) -> int:
    """Columns a string takes in a terminal (wide East Asian characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * (width - _width(text))
    return fill + text if right else text + fill


def _is_number(values: Sequence[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(
        isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in present
    )


def write_text(result: Result, out: TextIO) -> None:
    """An aligned table with a header, numbers right-aligned, and a row count."""
    cells = [[_text_cell(v) for v in row] for row in result.rows]
    numeric = [_is_number([row[i] for row in result.rows]) for i in range(len(result.columns))]
    widths = [max([_width(c)] + [_width(row[i]) for row in cells]) for i, c in enumerate(result.columns)]
    out.write(
        " | ".join(_pad(c, w, False) for c, w in zip(result.columns, widths, strict=True)).rstrip() + "\n"
    )
    out.write("-+-".join("-" * w for w in widths) + "\n")
    for row in cells:
        line = " | ".join(_pad(v, w, r) for v, w, r in zip(row, widths, numeric, strict=True))
        out.write(line.rstrip() + "\n")
    out.write(f"({len(cells)} row{'' if len(cells) == 1 else 's'})\n")


def write_csv(result: Result, out: TextIO) -> None:
    """CSV with a header row; null as an empty field, booleans as true/false."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(
            [
                "" if v is None else _text_cell(v) if isinstance(v, bool) else _plain(v)
                for v in (_plain(x) for x in row)
            ]
        )


def write_json(result: Result, out: TextIO) -> None:
    """JSON lines: one object per row, keys in column order."""
    for row in result.rows:
        record = {c: _plain(v) for c, v in zip(result.columns, row, strict=True)}
        out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


_WRITERS = {"text": write_text, "csv": write_csv, "json": write_json}


def write_result(result: Result, fmt: str, out: TextIO) -> None:
    """Write ``result`` to ``out`` as ``text``, ``csv`` or ``json`` (JSON lines)."""
    _WRITERS[fmt](result, out)


def run_query(
    sql: str,
    *,
    store_path: Path,
    sql_url: str | None,
    engine: str,
    fmt: str,
    out: TextIO,
    err: TextIO | None = None,
) -> int:
    """Run ``sql`` against the chosen store and write the rows to ``out``; return the exit status.

    0 on success; 2 for a statement that fails (or an unknown format); 4 when the store is missing or
    unreachable. The one-line reason goes to ``err`` (default stderr).
    """
    err = err if err is not None else sys.stderr
    if fmt not in FORMATS:
        err.write(f"itsm-kpi query: unknown format {fmt!r}; use one of {', '.join(FORMATS)}\n")
        return EXIT_QUERY
    try:
        with StoreQuery(store_path=store_path, sql_url=sql_url, engine=engine) as store:
            result = store.result(sql)
    except QueryError as exc:
        err.write(f"itsm-kpi query: {str(exc).splitlines()[0]}\n")
        return exc.exit_code
    write_result(result, fmt, out)
    return EXIT_OK
