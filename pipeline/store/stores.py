"""Both stores behind one commit: Parquet datasets and a SQL database that never disagree.

``Stores.commit`` replaces rows in several tables at once and leaves both stores exactly as they were
on any failure before the SQL commit, and both at the new state after it:

1. each table's new full version is staged under ``<root>/.staging/<run_id>/<table>/`` and fsynced, in a
   background thread, as soon as the run hands it over (``Stores.staging``: the raw layer after the merge, the
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

Storage sits behind this one interface (``Stores``): ``prepare``, ``read`` / ``read_arrow`` (Parquet),
``read_sql``, ``staging`` and ``commit``, ``close``. The backends live beside it: ``parquet.py``
(``ParquetStore``; ``durable.py``: its fsyncs), ``sql.py`` (engine and bulk writes), ``schema.py`` (the SQL tables), ``ledger.py``
(runs, watermarks, the lock) and ``views.py`` (the analyst views).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import SQLAlchemyError

from kpis.errors import first_line
from kpis.schema import TABLE_COLUMNS, empty_frame
from pipeline.store import schema
from pipeline.store.errors import StoreError
from pipeline.store.parquet import PARQUET_COLUMNS, ParquetStore, to_arrow
from pipeline.store.plan import Replacement, check_table
from pipeline.store.sql import read_sql_table, sql_engine
from pipeline.store.staging import STORE_ERRORS, Staging
from pipeline.store.views import create_views

__all__ = ["COMMIT_FAULT_POINTS", "FAULT_POINTS", "Stores"]

log = logging.getLogger(__name__)

#: Where ``fault`` hooks fire inside a commit, in order.
COMMIT_FAULT_POINTS = ("parquet_staged", "before_sql_commit", "after_sql_commit", "after_swap")
#: ... and before it: a run has handed tables over to the staging and goes on computing.
FAULT_POINTS = ("handed_over", *COMMIT_FAULT_POINTS)


class Stores:
    """The Parquet store under ``parquet_root`` and the SQL store at ``sql_url``, committed together."""

    def __init__(self, parquet_root: Path, sql_url: str, *,
                 fault: Callable[[str], None] | None = None) -> None:
        self.parquet = ParquetStore(Path(parquet_root))
        self._fault_hook = fault
        self.engine = sql_engine(sql_url)
        self._url_text = self.engine.url.render_as_string(hide_password=True)

    # -- setup ---------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Create the directories and SQL tables, and finish or undo a commit a killed run left behind.

        Raises StoreError (one line) when the Parquet root is not writable or SQL cannot be reached.
        """
        self._prepare_parquet_root()
        self._prepare_sqlite_dir()
        try:
            schema.create_all(self.engine)
            create_views(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"SQL store {self._url_text} cannot be reached or written: {first_line(exc)} "
                             "(check store.sql_url and that the database is up)") from exc
        try:
            with self.parquet.commit_lock():
                self._recover()
        except STORE_ERRORS as exc:
            raise StoreError(f"cannot recover the interrupted commit in {self.parquet.root}: {first_line(exc)}") from exc

    def settle_for_reading(self) -> None:
        """What a reader (``query``, ``report``, ``explain``, ``alerts``) does before it opens the stores: finish
        or undo the commit a killed run left, as ``prepare`` would, so that Parquet shows what SQL does. Only
        when a journal is there; nothing else is created. A store this user may not write is left as it is,
        with a warning: the next run settles it."""
        if self.parquet.read_journal() is None:
            return
        try:
            with self.parquet.commit_lock():  # a run still committing holds it: its journal is then gone
                if self.parquet.read_journal() is not None:
                    self._recover()
        except STORE_ERRORS as exc:
            log.warning("the Parquet store %s holds a commit a killed run left, and it could not be settled (%s): "
                        "until the next run, Parquet may show the stores as they were before that run's commit",
                        self.parquet.root, first_line(exc))

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
        commits = schema.metadata.tables["store_commits"]
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

    def read_arrow(self, table: str, filters: pc.Expression | None = None, *, keep: bool = False,
                   columns: list[str] | None = None) -> pa.Table:
        """A Parquet table as Arrow, as stored (see ``read``); ``columns``: only these (all when None)."""
        with self._reading(table):
            return self.parquet.read_arrow(table, filters, keep=keep, columns=columns)

    @contextmanager
    def _reading(self, table: str) -> Iterator[None]:
        """Check the table name; turn a failed Parquet read into a one-line StoreError."""
        check_table(table, PARQUET_COLUMNS)
        try:
            yield
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"cannot read Parquet table {table} in {self.parquet.root}: {first_line(exc)}") from exc

    def read_sql(self, table: str) -> pd.DataFrame:
        """A SQL table as a conformed frame, ordered by its primary key."""
        check_table(table, schema.SQL_COLUMNS)
        try:
            with self.engine.connect() as conn:
                return read_sql_table(conn, table)
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
            staging.add([*replacements, *self._sql_twins_missing(staging.tables, replacements)], last=True)
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
        except STORE_ERRORS as exc:
            raise StoreError(f"run {run_id} could not write the stores: {first_line(exc)}") from exc
        written = sum(p.rows.num_rows for p in staging.plans)
        log.info("run %s committed %d rows to %s", run_id, written, ", ".join(tables))
        return written

    def _sql_twins_missing(self, staged: list[str], replacements: list[Replacement]) -> list[Replacement]:
        """An empty table for each SQL table Parquet does not hold yet, nor this commit writes (``alerts_sent``
        until the first post): both stores hold the same tables from the first commit on (CONTRACT.md, Stores),
        so DuckDB's glob over ``<table>/**/*.parquet`` finds every one of them."""
        named = {*staged, *(replacement.table for replacement in replacements)}
        return [Replacement(table, empty_frame(columns)) for table, columns in TABLE_COLUMNS.items()
                if table not in named and not self.parquet.has(table)]

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
        commits = schema.metadata.tables["store_commits"]
        conn.execute(insert(commits).values(
            commit_id=journal["commit_id"], run_id=journal["run_id"], committed_at=datetime.now(UTC),
            tables=",".join(journal["tables"])))
        runs = to_arrow(read_sql_table(conn, "pipeline_runs"), PARQUET_COLUMNS["pipeline_runs"])
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

