"""``itsm-kpi query``: read-only SQL over the Parquet store (DuckDB) or the SQL store (SQLAlchemy).

Over Parquet every table directory ``<store>/<table>/`` is a DuckDB view of the same name
(``read_parquet('<store>/<table>/**/*.parquet', hive_partitioning = true)``, columns in schema order),
and the analyst views of ``pipeline.store.views`` are created on top. Every statement, from ``query`` or
from the report, goes through the sandbox (``pipeline.analyst.sandbox``): one statement, only a query,
decided by the engine's parser; DuckDB confined to the store directory, SQLite opened read-only behind an
authorizer, PostgreSQL in a READ ONLY transaction; each statement stopped after ``timeout_s``.

Results are written as an aligned text table, CSV, or JSON lines. ``StoreQuery`` is the same access for
code (the report uses it).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import sqlite3
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
from sqlalchemy.pool import NullPool

from kpis.errors import first_line
from pipeline.analyst import sandbox_duckdb, sandbox_postgres, sandbox_sqlite
from pipeline.analyst.sandbox import (
    DEFAULT_TIMEOUT_S,
    EXIT_QUERY,
    EXIT_STORE,
    QueryError,
    QueryRefused,
    refused,
    timed_out,
)
from pipeline.store.views import VIEWS, view_statements

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ENGINES",
    "FORMATS",
    "QueryError",
    "QueryRefused",
    "Result",
    "StoreQuery",
    "run_query",
    "csv_cell",
    "write_result",
]

log = logging.getLogger(__name__)

ENGINES = ("parquet", "sql")
FORMATS = ("text", "csv", "json")
EXIT_OK = 0


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
    """An in-memory DuckDB with the store's tables and views, then locked down to the store."""
    import duckdb  # noqa: PLC0415 (a core dependency, imported late to keep `itsm-kpi --help` fast)

    store_path = store_path.resolve()
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
        _create_empty_tables(con, set(tables))
        _create_duckdb_views(con, set(tables))
        sandbox_duckdb.lock_down(con, store_path)
    except duckdb.Error as exc:
        con.close()
        raise QueryError(f"cannot open the Parquet store {store_path}: {first_line(exc)}", EXIT_STORE) from exc
    return con


def _create_empty_tables(con: Any, present: set[str]) -> None:
    """An empty in-memory table for every store table nothing has written yet (``alerts_sent`` before the
    first post), so a query over it answers no rows rather than "does not exist", as over the SQL store."""
    from pipeline.store.parquet import PARQUET_COLUMNS, arrow_schema  # noqa: PLC0415

    for name in sorted(PARQUET_COLUMNS.keys() - present):
        con.from_arrow(arrow_schema(PARQUET_COLUMNS[name]).empty_table()).create(name)


def _create_duckdb_views(con: Any, tables: set[str]) -> None:
    for view in VIEWS:
        if not set(view.based_on) <= tables:
            log.info("view %s skipped: the store has no %s", view.name, ", ".join(view.based_on))
            continue
        for statement in view_statements(view, "duckdb"):
            con.execute(statement)


# -- SQL through SQLAlchemy --------------------------------------------------------------------
def _sqlite_file(database: str | None) -> str:
    """The SQLite store's file, which must exist (it is opened read-only, never created)."""
    if database in (None, "", ":memory:") or str(database).startswith("file:"):
        raise QueryError(f"store.sql_url must name a SQLite file, not {database!r}", EXIT_STORE)
    if not Path(database).is_file():
        raise QueryError(f"no SQLite store at {database} (run `itsm-kpi demo` or `itsm-kpi run` first)", EXIT_STORE)
    return str(database)


def _sql_engine(sql_url: str | None) -> Engine:
    if not sql_url:
        raise QueryError(
            "no SQL store: give --config with store.sql_url, or use --engine parquet", EXIT_STORE
        )
    try:
        url = make_url(sql_url)
    except ArgumentError as exc:
        raise QueryError(f"store.sql_url is not a SQLAlchemy URL: {first_line(exc)}", EXIT_STORE) from exc
    try:
        if url.get_backend_name() == "sqlite":
            path = _sqlite_file(url.database)
            return create_engine("sqlite://", creator=lambda: sandbox_sqlite.connect_read_only(path),
                                 poolclass=NullPool)
        if url.get_backend_name() == "postgresql":
            sandbox_postgres.require_parser()  # refuse before connecting, not at the first statement
        return create_engine(url, poolclass=NullPool)
    except (ImportError, SQLAlchemyError) as exc:
        raise QueryError(f"cannot use store.sql_url: {first_line(exc)}", EXIT_STORE) from exc


class _SqlSandbox:
    """The sandbox of one SQL connection: checks, settings and error mapping per dialect."""

    def __init__(self, conn: Connection, timeout_s: float) -> None:
        self.dialect = conn.dialect.name
        self.timeout_s = timeout_s
        self._raw: Any = conn.connection.dbapi_connection
        self.authorizer = sandbox_sqlite.ReadOnlyAuthorizer()
        self.deadline = sandbox_sqlite.Deadline(timeout_s)
        if self.dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")  # belt and braces: the file is opened read-only
            conn.rollback()  # ends SQLAlchemy's autobegun transaction; the pragma holds for the connection
            self._raw.set_authorizer(self.authorizer)
            self._raw.set_progress_handler(self.deadline, 10_000)
        elif self.dialect != "postgresql":
            raise QueryError(f"the query sandbox does not support {self.dialect} stores", EXIT_STORE)

    def before(self, conn: Connection, sql: str) -> None:
        """Check ``sql`` and prepare the statement's transaction (nothing of ``sql`` has run)."""
        if self.dialect == "postgresql":
            sandbox_postgres.check_statement(sql)
            for setting in sandbox_postgres.statement_settings(self.timeout_s):
                conn.exec_driver_sql(setting)
        else:
            self.authorizer.reset()
            self.deadline.start()

    def after(self) -> None:
        """Refuse a text that held no statement (SQLite runs it as nothing, silently)."""
        if self.dialect == "sqlite" and self.authorizer.asked == 0:
            raise refused("an empty statement", sandbox_sqlite.ALLOWED)

    def error(self, exc: SQLAlchemyError) -> QueryError:
        """The QueryError for a statement that failed."""
        message = first_line(exc)
        if self.dialect == "postgresql":
            return sandbox_postgres.error_of(exc, message, self.timeout_s)
        if self.authorizer.denied is not None:
            return refused(self.authorizer.denied, sandbox_sqlite.ALLOWED)
        if isinstance(getattr(exc, "orig", None), sqlite3.ProgrammingError) and "one statement" in message:
            return refused("more than one statement", sandbox_sqlite.ALLOWED)
        if self.deadline.expired:
            return timed_out(self.timeout_s)
        return QueryError(message)

    def release(self) -> None:
        """Take the authorizer off before the connection is rolled back and closed."""
        if self.dialect == "sqlite":
            self._raw.set_authorizer(None)
            self._raw.set_progress_handler(None, 0)


def _driver_text(conn: Connection, sql: str) -> str:
    """``sql`` as the driver must receive it: ``%`` doubled where the driver reads ``%s`` placeholders."""
    return sql.replace("%", "%%") if conn.dialect.paramstyle in ("format", "pyformat") else sql


def _sql_result(conn: Connection, guard: _SqlSandbox, sql: str) -> Result:
    """Run ``sql`` in its own transaction, always rolled back."""
    transaction = conn.begin()
    try:
        guard.before(conn, sql)
        cursor = conn.exec_driver_sql(_driver_text(conn, sql))
        guard.after()
        if not cursor.returns_rows:
            return Result([], [])
        return Result(list(cursor.keys()), [tuple(row) for row in cursor.all()])
    except SQLAlchemyError as exc:
        raise guard.error(exc) from exc
    finally:
        transaction.rollback()


# -- one access for both -----------------------------------------------------------------------
class StoreQuery:
    """Read-only SQL over one store through the sandbox; a context manager.

    ``engine``: ``parquet`` (DuckDB over ``store_path``) or ``sql`` (``sql_url``). ``timeout_s`` is
    ``[query].timeout``: a statement running longer is stopped.
    """

    def __init__(
        self,
        *,
        store_path: Path | None,
        sql_url: str | None,
        engine: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if engine not in ENGINES:
            raise QueryError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
        self.engine = engine
        self.timeout_s = timeout_s
        self._store_path = Path(store_path or "kpi-store")
        self._duck: Any = None
        self._sql_engine: Engine | None = None
        self._conn: Connection | None = None
        self._guard: _SqlSandbox | None = None
        if engine == "parquet":
            self._duck = _duckdb_connection(self._store_path)
        else:
            self._open_sql(sql_url)

    def _open_sql(self, sql_url: str | None) -> None:
        self._sql_engine = _sql_engine(sql_url)
        try:
            self._conn = self._sql_engine.connect()
            self._guard = _SqlSandbox(self._conn, self.timeout_s)
        except (SQLAlchemyError, sqlite3.Error) as exc:
            self.close()
            raise QueryError(f"cannot reach the SQL store: {first_line(exc)}", EXIT_STORE) from exc
        except QueryError:
            self.close()
            raise

    @property
    def dialect(self) -> str:
        """``duckdb``, ``sqlite`` or ``postgresql``."""
        return "duckdb" if self._conn is None else self._conn.dialect.name

    def result(self, sql: str) -> Result:
        """Run one statement; raise QueryRefused when the sandbox does not allow it, QueryError when it fails."""
        if self._duck is not None:
            table = sandbox_duckdb.run_statement(self._duck, sql, self.timeout_s, self._store_path)
            if table is None:
                return Result([], [])
            return Result(list(table.column_names), [tuple(row.values()) for row in table.to_pylist()])
        assert self._conn is not None and self._guard is not None
        return _sql_result(self._conn, self._guard, sql)

    def frame(self, sql: str) -> pd.DataFrame:
        """Run one statement and return its rows as a frame."""
        return self.result(sql).frame()

    def close(self) -> None:
        """Release the connection (every statement's transaction was already rolled back)."""
        if self._duck is not None:
            self._duck.close()
            self._duck = None
        if self._guard is not None:
            self._guard.release()
            self._guard = None
        if self._conn is not None:
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
    """A value as JSON/CSV can carry it: ISO dates and times, floats for decimals, None for NaN and the
    infinities (JSON has none of them: ``Infinity`` is no JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
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


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value as the project writes it to CSV: null empty, booleans true/false, numbers as numbers.

    Text that starts like a spreadsheet formula (``=``, ``+``, ``-``, ``@``, tab, carriage return) gets a
    leading ``'`` so a spreadsheet shows it instead of running it; a number is data and is written as
    it is, so ``-3`` in a numeric column stays ``-3`` (DECISIONS.md).
    """
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return _text_cell(value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv_line(cells: list[Any]) -> str:
    """One CSV record ending in ``\\n``; a field holding a carriage return or a newline is quoted.

    The csv module quotes only the characters of its line terminator, so the record is written with
    ``\\r\\n`` (a bare carriage return inside a field then gets quoted too) and ends in ``\\n``.
    """
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()[:-2] + "\n"


def write_csv(result: Result, out: TextIO) -> None:
    """CSV with a header row, each value through ``csv_cell`` (the header too: names are text)."""
    out.write(_csv_line([csv_cell(c) for c in result.columns]))
    for row in result.rows:
        out.write(_csv_line([csv_cell(v) for v in row]))


def write_json(result: Result, out: TextIO) -> None:
    """JSON lines: one object per row, keys in column order."""
    for row in result.rows:
        record = {c: _plain(v) for c, v in zip(result.columns, row, strict=True)}
        out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


_WRITERS = {"text": write_text, "csv": write_csv, "json": write_json}


def write_result(result: Result, fmt: str, out: TextIO) -> None:
    """Write ``result`` to ``out`` as ``text``, ``csv`` or ``json`` (JSON lines)."""
    _WRITERS[fmt](result, out)


def _error_line(exc: QueryError) -> str:
    """The one line ``query`` prints for ``exc``: refusals and store errors as they are, else ``query failed``."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if exc.exit_code == EXIT_QUERY and not isinstance(exc, QueryRefused):
        return f"query failed: {message}"
    return message


def run_query(
    sql: str,
    *,
    store_path: Path,
    sql_url: str | None,
    engine: str,
    fmt: str,
    out: TextIO,
    err: TextIO | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> int:
    """Run ``sql`` against the chosen store and write the rows to ``out``; return the exit status.

    0 on success; 2 for a statement the sandbox refuses, one that fails (or an unknown format); 4 when the
    store is missing or unreachable. The one-line reason goes to ``err`` (default stderr) as
    ``itsm-kpi: query refused: ...``, ``itsm-kpi: query failed: ...`` or ``itsm-kpi: <store problem>``.
    """
    err = err if err is not None else sys.stderr
    if fmt not in FORMATS:
        err.write(f"itsm-kpi: unknown query output format {fmt!r}; use one of {', '.join(FORMATS)}\n")
        return EXIT_QUERY
    try:
        with StoreQuery(store_path=store_path, sql_url=sql_url, engine=engine, timeout_s=timeout_s) as store:
            result = store.result(sql)
    except QueryError as exc:
        err.write(f"itsm-kpi: {_error_line(exc)}\n")
        return exc.exit_code
    write_result(result, fmt, out)
    return EXIT_OK
