"""Both stores behind one commit: Parquet datasets and a SQL database that never disagree.

``Stores.commit`` replaces rows in several tables at once and leaves both stores exactly as they were
on any failure before the SQL commit, and both at the new state after it:

1. each table's new full version is staged under ``<root>/.staging/<run_id>/<table>/``, in a background
   thread, as soon as the run hands it over (``Stores.staging``: the raw layer after the merge, the
   facts before the KPIs are computed); the run holds an flock on its staging directory, so another
   process's ``prepare()`` never takes it for a killed run's leftovers;
2. meanwhile, one SQL transaction, opened by the first table handed over and fed by a second thread,
   deletes each table's scoped rows and bulk-inserts the new ones (COPY on PostgreSQL); at the commit
   it runs the caller's ledger writes, records ``commit_id`` in ``store_commits`` and stages a
   snapshot of ``pipeline_runs`` for Parquet;
3. once everything is staged, ``<root>/.journal.json`` names the commit (``commit_id``), the run and
   the staged tables; then SQL commits;
4. the staged directories are swapped into place (old ones through ``<root>/.trash/<run_id>/``);
5. the journal is deleted.

A process killed in between leaves the journal; ``prepare()`` (and the next ``commit``) then rolls
the swap forward when ``store_commits`` holds the journal's ``commit_id``, and back otherwise.
"""

from __future__ import annotations

import io
import itertools
import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from sqlalchemy import Column as SqlColumn
from sqlalchemy import (
    Connection,
    Engine,
    MetaData,
    Table,
    create_engine,
    delete,
    event,
    insert,
    select,
    tuple_,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from kpis.errors import first_line
from kpis.schema import TABLE_COLUMNS, conform
from pipeline import sqlschema
from pipeline.errors import StoreError
from pipeline.parquet_store import (
    PARQUET_COLUMNS,
    PARQUET_KEYS,
    ParquetStore,
    anti_join,
    dedupe_last,
    distinct,
    rows_to_remove,
    scope_is_keys,
    to_arrow,
)
from pipeline.views import create_views

__all__ = ["COMMIT_FAULT_POINTS", "FAULT_POINTS", "Replacement", "Staging", "Stores"]

log = logging.getLogger(__name__)

#: Where ``fault`` hooks fire inside a commit, in order.
COMMIT_FAULT_POINTS = ("parquet_staged", "before_sql_commit", "after_sql_commit", "after_swap")
#: ... and before it: a run has handed tables over to the staging and goes on computing.
FAULT_POINTS = ("handed_over", *COMMIT_FAULT_POINTS)
_CHUNK_ROWS = 50_000
_SQLITE_CACHE_KIB = 256 * 1024
_SQLITE_MAX_PARAMETERS = 32766
_STORE_ERRORS = (OSError, pa.ArrowException, SQLAlchemyError)


@dataclass
class Replacement:
    """New rows for one table and the scope of existing rows they replace.

    ``scope`` holds distinct tuples of some of the table's columns; existing rows matching any tuple
    are deleted first (a tuple holding a null matches nothing). A frame with no columns appends.
    Rows sharing a key (``TABLE_KEYS``) with a new row are replaced too, so a key is never doubled.
    """

    table: str
    rows: pd.DataFrame
    scope: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class _Plan:
    table: str
    rows: pa.Table
    scope: pa.Table | None

    @property
    def in_sql(self) -> bool:
        return self.table in TABLE_COLUMNS

    @property
    def changes_anything(self) -> bool:
        return self.rows.num_rows > 0 or (self.scope is not None and self.scope.num_rows > 0)


class Staging:
    """A run's writes in flight: each table handed over is staged to Parquet in one background thread
    and written into the run's open SQL transaction in another, while the run computes the rest.

    Made by ``Stores.staging``; ``Stores.commit`` adds the last tables, waits for both threads and
    commits (the SQL transaction stays open until then, so nothing is visible before).
    """

    def __init__(self, parquet: ParquetStore, engine: Engine, run_id: str, fault: Callable[[str], None]) -> None:
        self.run_id = run_id
        self.tables: list[str] = []  # every table handed over, in order (the journal names them)
        self.plans: list[_Plan] = []  # those with something to write
        self.committing = False  # set by commit: from then on, it settles the staged tables itself
        self.staged_early = False  # tables were handed over before the commit (read from the live tables then)
        self._parquet, self._engine, self._fault = parquet, engine, fault
        self._parquet_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-staging")
        self._sql_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sql-writes")
        self._staged: list[Future[None]] = []
        self._written: list[Future[None]] = []
        self._conn: Connection | None = None  # opened, with its transaction, by the SQL thread's first write

    def add(self, replacements: list[Replacement], *, last: bool = False) -> None:
        """Validate the replacements now (before anything is written) and write them in the background.

        ``last``: the commit's own tables (the others were handed over early, while the run computed).
        """
        for replacement in replacements:
            if replacement.table == "pipeline_runs":
                raise StoreError("pipeline_runs is written by the ledger (pass ledger_writes), not by a Replacement")
            if replacement.table in self.tables:
                raise StoreError(f"run {self.run_id}: one Replacement per table, got {replacement.table} twice")
            plan = _plan(replacement)
            self.tables.append(plan.table)
            # a table with nothing to change is left alone (once it exists: an empty table gets its file)
            if plan.changes_anything or not self._parquet.has(plan.table):
                self.plans.append(plan)
                self._staged.append(self._parquet_thread.submit(self._stage, plan))
                if plan.in_sql:
                    self._written.append(self._sql_thread.submit(lambda plan=plan: _replace_sql(self._sql(), plan)))
        if not last:
            self.staged_early = True
            try:
                self._fault("handed_over")
            except _STORE_ERRORS as exc:
                raise StoreError(f"run {self.run_id} could not stage {', '.join(self.tables)}: {first_line(exc)}") from exc

    def _stage(self, plan: _Plan) -> None:
        self._parquet.stage(self.run_id, plan.table, self._parquet.new_version(plan.table, plan.rows, plan.scope))

    def _sql(self) -> Connection:
        """The run's SQL connection, in its open transaction (SQL thread only)."""
        if self._conn is None:
            self._conn = self._engine.connect()
            self._conn.begin()
        return self._conn

    def wait_parquet(self) -> None:
        """Block until every table handed over is staged; raise the first staging error."""
        for staged in self._staged:
            staged.result()

    def commit_sql(self, last_writes: Callable[[Connection], None]) -> None:
        """After the tables' SQL writes: ``last_writes(conn)``, then commit the transaction (SQL thread)."""
        for written in self._written:
            written.result()  # the first error of an earlier write, before anything else runs

        def finish() -> None:
            conn = self._sql()
            last_writes(conn)
            conn.commit()
        self._sql_thread.submit(finish).result()

    def close(self) -> None:
        """Stop: wait for the writes in progress, drop those not started, roll back an open transaction."""
        self._parquet_thread.shutdown(wait=True, cancel_futures=True)
        self._sql_thread.shutdown(wait=True, cancel_futures=True)
        if self._conn is not None:
            self._conn.close()  # rolls back what was not committed
            self._conn = None


class Stores:
    """The Parquet store under ``parquet_root`` and the SQL store at ``sql_url``, committed together."""

    def __init__(self, parquet_root: Path, sql_url: str, *,
                 fault: Callable[[str], None] | None = None) -> None:
        self.parquet = ParquetStore(Path(parquet_root))
        self._fault_hook = fault
        self.engine = _engine(sql_url)
        self._url_text = self.engine.url.render_as_string(hide_password=True)

    # -- setup ---------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Create the directories and SQL tables, and finish or undo a commit a killed run left behind.

        Raises StoreError (one line) when the Parquet root is not writable or SQL cannot be reached.
        """
        self._prepare_parquet_root()
        self._prepare_sqlite_dir()
        try:
            sqlschema.create_all(self.engine)
            create_views(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"SQL store {self._url_text} cannot be reached or written: {first_line(exc)} "
                             "(check store.sql_url and that the database is up)") from exc
        try:
            with self.parquet.commit_lock():
                self._recover()
        except _STORE_ERRORS as exc:
            raise StoreError(f"cannot recover the interrupted commit in {self.parquet.root}: {first_line(exc)}") from exc

    def _prepare_parquet_root(self) -> None:
        root = self.parquet.root
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / f".write-test-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"Parquet store {root} is not writable: {first_line(exc)} "
                             "(check store.path: it must be a directory this user can write)") from exc

    def _prepare_sqlite_dir(self) -> None:
        url = self.engine.url
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return
        folder = Path(url.database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"SQL store {self._url_text}: cannot create {folder}: {first_line(exc)} "
                             "(check store.sql_url)") from exc

    def _recover(self) -> bool:
        """Settle a commit a killed run left behind (true if there was one) and remove orphans."""
        journal = self.parquet.read_journal()
        if journal is None:
            self.parquet.remove_orphans()
            return False
        run_id, tables = journal["run_id"], journal["tables"]
        if self._sql_committed(journal["commit_id"]):
            log.warning("run %s was killed after its SQL commit: finishing its Parquet swap", run_id)
            self.parquet.swap_in(run_id, tables)
        else:
            log.warning("run %s was killed before its SQL commit: discarding its staged Parquet data", run_id)
            self.parquet.roll_back(run_id, tables)
        self.parquet.delete_journal()
        self.parquet.remove_orphans()
        return True

    def _sql_committed(self, commit_id: str) -> bool:
        commits = sqlschema.metadata.tables["store_commits"]
        with self.engine.connect() as conn:
            found = conn.execute(select(commits.c.commit_id).where(commits.c.commit_id == commit_id)).first()
        return found is not None

    def close(self) -> None:
        """Release the SQL connections."""
        self.engine.dispose()

    # -- reading -------------------------------------------------------------------------------
    def read(self, table: str, filters: Any = None, *, keep: bool = False) -> pd.DataFrame:
        """A Parquet table (outputs, ``pipeline_runs`` or the raw layer) as a conformed frame.

        ``filters``: a ``pyarrow.compute`` expression or DNF tuples like ``[("source", "=", "a")]``
        (dates compare with ``datetime.date``). ``keep``: the commit that rewrites the table reuses this read.
        """
        with self._reading(table):
            return self.parquet.read(table, filters, keep=keep)

    def read_arrow(self, table: str, filters: pc.Expression | None = None, *, keep: bool = False) -> pa.Table:
        """A Parquet table as Arrow, as stored (see ``read``)."""
        with self._reading(table):
            return self.parquet.read_arrow(table, filters, keep=keep)

    @contextmanager
    def _reading(self, table: str) -> Iterator[None]:
        """Check the table name; turn a failed Parquet read into a one-line StoreError."""
        _check_table(table, PARQUET_COLUMNS)
        try:
            yield
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"cannot read Parquet table {table} in {self.parquet.root}: {first_line(exc)}") from exc

    def read_sql(self, table: str) -> pd.DataFrame:
        """A SQL table as a conformed frame, ordered by its primary key."""
        _check_table(table, sqlschema.SQL_COLUMNS)
        try:
            with self.engine.connect() as conn:
                return _read_sql(conn, table)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read SQL table {table} from {self._url_text}: {first_line(exc)}") from exc

    # -- committing ----------------------------------------------------------------------------
    @contextmanager
    def staging(self, run_id: str) -> Iterator[Staging]:
        """Write a run's tables in the background (Parquet staging, the open SQL transaction) as soon as
        each is final, while the run computes the rest; ``commit(..., staging=)`` publishes them.
        Leaving the block without a commit discards them."""
        with self.parquet.claim_staging(run_id):
            staging = Staging(self.parquet, self.engine, run_id, self._fault)
            try:
                yield staging
            finally:
                staging.close()
                if not staging.committing:
                    self.parquet.discard(run_id)

    def commit(self, run_id: str, replacements: list[Replacement], *,
               ledger_writes: Callable[[Connection], None] | None = None, staging: Staging | None = None) -> int:
        """Replace rows in both stores at once; return the number of new rows written.

        ``ledger_writes(conn)`` runs inside the SQL transaction, so the run ledger and the watermarks
        commit with the data. ``pipeline_runs`` is copied to Parquet as it stands in that transaction.
        ``staging``: the run's ``Stores.staging``, holding tables handed over earlier; they commit with these.
        On a failure before the SQL commit both stores are left as they were; after it, both end at
        the new state (at once, or by the next ``prepare()`` if the swap itself cannot be finished).
        """
        if staging is None:
            with self.staging(run_id) as own:
                return self.commit(run_id, replacements, ledger_writes=ledger_writes, staging=own)
        try:
            staging.add(replacements, last=True)
            tables = [*staging.tables, "pipeline_runs"]
            journal = {"run_id": run_id, "commit_id": uuid.uuid4().hex, "tables": tables,
                       "started_at": datetime.now(UTC).isoformat()}
            with self.parquet.commit_lock():
                if self._recover() and staging.staged_early:
                    raise StoreError("the store was recovered from an interrupted commit while this run staged "
                                     "its tables; run again")
                staging.committing = True
                self._stage_and_commit_sql(journal, staging, ledger_writes)
                self._swap(run_id, tables)
        except _STORE_ERRORS as exc:
            raise StoreError(f"run {run_id} could not write the stores: {first_line(exc)}") from exc
        written = sum(p.rows.num_rows for p in staging.plans)
        log.info("run %s committed %d rows to %s", run_id, written, ", ".join(tables))
        return written

    def _fault(self, point: str) -> None:
        if self._fault_hook is not None:
            self._fault_hook(point)

    def _stage_and_commit_sql(self, journal: dict[str, Any], staging: Staging,
                              ledger_writes: Callable[[Connection], None] | None) -> None:
        """Finish the SQL transaction (ledger, commit record) and commit it once the Parquet staging is
        done and the journal written; on a failure, settle both stores."""
        try:
            staging.commit_sql(lambda conn: self._last_sql_writes(conn, journal, ledger_writes,
                                                                  before_commit=lambda: self._staged(staging, journal)))
        except BaseException:
            staging.close()  # rolls SQL back; a failed commit never races with the staging thread
            self._settle_failed_commit(journal)
            raise

    def _staged(self, staging: Staging, journal: dict[str, Any]) -> None:
        """Wait for the Parquet staging (raising its error), then write the journal: SQL may now commit."""
        staging.wait_parquet()
        self._fault("parquet_staged")
        self.parquet.write_journal(journal)

    def _settle_failed_commit(self, journal: dict[str, Any]) -> None:
        """After a failure up to the SQL commit: roll Parquet back, or forward if SQL did commit."""
        run_id, tables = journal["run_id"], journal["tables"]
        if not self.parquet.journal_path.exists():
            self.parquet.roll_back(run_id, tables)  # failed before the journal: SQL was not touched
            return
        try:
            committed = self._sql_committed(journal["commit_id"])
        except SQLAlchemyError:
            log.error("run %s: cannot tell whether SQL committed; the next prepare() settles the Parquet "
                      "store (journal %s kept)", run_id, self.parquet.journal_path)
            return
        if committed:
            self.parquet.swap_in(run_id, tables)
        else:
            self.parquet.roll_back(run_id, tables)
        self.parquet.delete_journal()

    def _last_sql_writes(self, conn: Connection, journal: dict[str, Any],
                         ledger_writes: Callable[[Connection], None] | None,
                         before_commit: Callable[[], None]) -> None:
        """The end of the run's transaction: its ledger, the commit record, ``pipeline_runs`` staged for Parquet."""
        if ledger_writes is not None:
            ledger_writes(conn)
        commits = sqlschema.metadata.tables["store_commits"]
        conn.execute(insert(commits).values(
            commit_id=journal["commit_id"], run_id=journal["run_id"], committed_at=datetime.now(UTC),
            tables=",".join(journal["tables"])))
        runs = to_arrow(_read_sql(conn, "pipeline_runs"), PARQUET_COLUMNS["pipeline_runs"])
        before_commit()
        self.parquet.stage(journal["run_id"], "pipeline_runs", runs)
        self._fault("before_sql_commit")

    def _swap(self, run_id: str, tables: list[str]) -> None:
        """SQL has committed: get Parquet to the new state whatever happens."""
        try:
            self._fault("after_sql_commit")
            self.parquet.swap_in(run_id, tables)
            self._fault("after_swap")
        except BaseException:
            try:
                self.parquet.swap_in(run_id, tables)
            except Exception:
                log.exception("run %s: SQL committed but the Parquet swap failed; the next prepare() "
                              "finishes it (journal %s kept)", run_id, self.parquet.journal_path)
                raise
            self.parquet.delete_journal()
            raise
        self.parquet.delete_journal()


# -- helpers -----------------------------------------------------------------------------------
def _engine(sql_url: str) -> Engine:
    try:
        url = make_url(sql_url)
        connect_args: dict[str, Any] = {}
        if url.get_backend_name() == "sqlite":
            connect_args["timeout"] = 60
        elif url.get_backend_name() == "postgresql":
            connect_args["connect_timeout"] = 10
        engine = create_engine(url, connect_args=connect_args, pool_pre_ping=True)
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise StoreError(f"store.sql_url is not a usable SQLAlchemy URL: {first_line(exc)} "
                         "(e.g. sqlite:///kpi-store/kpi.sqlite or postgresql+psycopg://user@host/db)") from exc
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_page_cache)
    return engine


def _sqlite_page_cache(dbapi_connection: Any, _record: Any) -> None:
    # SQLite caches 2 MiB of pages by default; a nightly upsert of 10k facts spread over a 1M-row table
    # touches ~10k pages, and holding them cuts its SQL time by a third (256 MiB, allocated as used).
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
    cursor.close()


def _check_table(table: str, known: dict[str, Any]) -> None:
    if table not in known:
        raise StoreError(f"unknown table {table!r}; known: {', '.join(sorted(known))}")


def _plan(replacement: Replacement) -> _Plan:
    """Validate and convert one replacement before anything is written."""
    table = replacement.table
    _check_table(table, PARQUET_COLUMNS)
    columns = PARQUET_COLUMNS[table]
    extra = sorted(set(replacement.rows.columns) - set(columns))
    if extra:
        log.warning("%s: dropping columns not in the schema: %s", table, ", ".join(extra))
    keys = PARQUET_KEYS.get(table, ())
    rows = to_arrow(replacement.rows, columns)
    for key in keys:
        if rows.column(key).null_count:
            raise StoreError(f"{table}: {rows.column(key).null_count} new rows have no {key} (a key column)")
    return _Plan(table, dedupe_last(rows, keys), _scope(table, replacement.scope))


def _scope(table: str, scope: pd.DataFrame) -> pa.Table | None:
    if len(scope.columns) == 0:
        return None
    columns = PARQUET_COLUMNS[table]
    unknown = sorted(set(scope.columns) - set(columns))
    if unknown:
        raise StoreError(f"{table}: scope columns {', '.join(unknown)} are not columns of the table")
    scope_columns = {name: columns[name] for name in scope.columns}
    return distinct(to_arrow(scope, scope_columns))


def _read_sql(conn: Connection, table: str) -> pd.DataFrame:
    columns = sqlschema.SQL_COLUMNS[table]
    sql_table = sqlschema.metadata.tables[table]
    order = [sql_table.c[k] for k in sqlschema.SQL_KEYS.get(table, ())]
    query = select(*[sql_table.c[name] for name in columns]).order_by(*order)
    frame = pd.DataFrame(conn.execute(query).all(), columns=list(columns))
    for column in columns.values():
        if column.dtype == "date32":
            frame[column.name] = pd.to_datetime(frame[column.name])
        elif column.dtype.startswith("datetime64"):
            frame[column.name] = pd.to_datetime(frame[column.name], utc=True)
    return conform(frame, columns)


# -- SQL bulk writes ---------------------------------------------------------------------------
def _replace_sql(conn: Connection, plan: _Plan) -> None:
    table = sqlschema.metadata.tables[plan.table]
    # SQLite replaces a row of the same primary key (= the table's key) itself: INSERT OR REPLACE saves
    # staging the new rows' keys in a temporary table to delete them first.
    upsert = conn.dialect.name == "sqlite" and bool(PARQUET_KEYS.get(plan.table))
    for values in _rows_to_delete(plan, new_keys=not upsert):
        if values.num_rows:
            _delete_matching(conn, table, values)
    _insert(conn, table, plan.rows, replace=upsert)


def _rows_to_delete(plan: _Plan, *, new_keys: bool = True) -> list[pa.Table]:
    """The rows to delete before inserting ``plan.rows``: ``rows_to_remove``, or, without ``new_keys``
    (an upsert replaces rows by key), only the scope's keys that the new rows do not bring back (a
    nightly facts scope is exactly those keys: deleting them first would repeat the upsert's work)."""
    keys = list(PARQUET_KEYS.get(plan.table, ()))
    if new_keys:
        return rows_to_remove(plan.scope, plan.rows, keys)
    scope = plan.scope
    if scope is None or scope.num_rows == 0:
        return []
    if plan.rows.num_rows and scope_is_keys(scope, keys):
        return [anti_join(scope.select(keys), plan.rows.select(keys))]
    return [scope]


def _delete_matching(conn: Connection, table: Table, values: pa.Table) -> None:
    """Delete the rows of ``table`` equal to any row of ``values`` (through a temporary table)."""
    tmp = Table(f"tmp_match_{table.name}", MetaData(),
                *[SqlColumn(name, table.c[name].type) for name in values.column_names],
                prefixes=["TEMPORARY"])
    tmp.drop(conn, checkfirst=True)  # SQLite keeps a temp table created outside a rolled-back transaction
    tmp.create(conn)
    _insert(conn, tmp, values)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ANALYZE {conn.dialect.identifier_preparer.format_table(tmp)}")
    # A row-value IN (subquery): SQLite builds a transient index on it, PostgreSQL a hashed semi-join
    # (a correlated EXISTS makes SQLite scan the temporary table once per row).
    names = values.column_names
    match = tuple_(*[table.c[name] for name in names]).in_(select(*[tmp.c[name] for name in names]))
    result = conn.execute(delete(table).where(match))
    log.debug("%s: deleted %s rows", table.name, result.rowcount)
    tmp.drop(conn)


def _insert(conn: Connection, table: Table, data: pa.Table, *, replace: bool = False) -> None:
    """Bulk-insert ``data``; ``replace`` (SQLite only) replaces rows with the same primary key."""
    if data.num_rows == 0:
        return
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        _copy_postgres(conn, table, data)
    elif conn.dialect.name == "sqlite":
        _executemany_sqlite(conn, table, data, replace=replace)
    else:
        for batch in data.to_batches(max_chunksize=_CHUNK_ROWS):
            conn.execute(insert(table), batch.to_pylist())


def _copy_postgres(conn: Connection, table: Table, data: pa.Table) -> None:
    """COPY ... FROM STDIN in CSV: nulls unquoted and empty, strings quoted (Arrow's CSV writer)."""
    quote = conn.dialect.identifier_preparer
    names = ", ".join(quote.quote(name) for name in data.column_names)
    sql = f"COPY {quote.format_table(table)} ({names}) FROM STDIN (FORMAT csv)"
    options = pcsv.WriteOptions(include_header=False)
    cursor = conn.connection.driver_connection.cursor()
    with cursor, cursor.copy(sql) as copy:
        for batch in data.to_batches(max_chunksize=_CHUNK_ROWS):
            buffer = io.BytesIO()
            pcsv.write_csv(pa.Table.from_batches([batch], schema=data.schema), buffer, options)
            copy.write(buffer.getvalue())


def _sqlite_values(column: pa.ChunkedArray) -> list[Any]:
    """Python values as SQLAlchemy's SQLite types store them (timestamps as UTC text, µs)."""
    if pa.types.is_timestamp(column.type):
        # "YYYY-MM-DD HH:MM:SS.ffffff" in UTC, as strftime("%Y-%m-%d %H:%M:%S") writes it, 17x faster
        column = column.cast(pa.timestamp("us")).cast(pa.string())
    elif pa.types.is_date32(column.type):
        column = column.cast(pa.string())
    elif pa.types.is_boolean(column.type):
        column = column.cast(pa.int8())
    return column.to_pylist()


def _executemany_sqlite(conn: Connection, table: Table, data: pa.Table, *, replace: bool = False) -> None:
    """Insert ``data`` through multi-row ``VALUES`` statements of up to 32766 parameters each.

    ``executemany`` steps SQLite once per row and releases the GIL around each step; while another
    thread runs Python code, taking it back can wait out the interpreter's switch interval (5 ms) per
    row. The SQL writes run in the background while the run computes: next to a busy Python thread,
    the nightly 10k fact rows took 79 s through ``executemany`` and 0.3 s in statements of 799 rows.
    """
    quote = conn.dialect.identifier_preparer
    names = ", ".join(quote.quote(name) for name in data.column_names)
    row_marks = "(" + ", ".join("?" for _ in data.column_names) + ")"
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    head = f"{verb} INTO {quote.format_table(table)} ({names}) VALUES "
    per_statement = max(1, _sqlite_max_parameters(conn) // data.num_columns)
    full = head + ", ".join([row_marks] * per_statement)
    for batch in data.to_batches(max_chunksize=_CHUNK_ROWS):
        chunk = pa.Table.from_batches([batch], schema=data.schema)
        columns = [_sqlite_values(chunk.column(i)) for i in range(chunk.num_columns)]
        values = list(itertools.chain.from_iterable(zip(*columns, strict=True)))
        step = per_statement * chunk.num_columns
        for start in range(0, len(values), step):
            part = tuple(values[start:start + step])
            sql = full if len(part) == step else head + ", ".join([row_marks] * (len(part) // chunk.num_columns))
            conn.exec_driver_sql(sql, part)


def _sqlite_max_parameters(conn: Connection) -> int:
    """Parameters one SQLite statement may bind: the build's limit, at most SQLite's default of 32766."""
    limit = conn.connection.driver_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return min(limit, _SQLITE_MAX_PARAMETERS)
