"""A run's writes in flight: tables handed over while the run computes, staged to Parquet and written
into the run's open SQL transaction in two background threads (see ``pipeline.store.stores``)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import pyarrow as pa
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from kpis.errors import first_line
from pipeline.store.errors import StoreError
from pipeline.store.parquet import ParquetStore
from pipeline.store.plan import Replacement, TablePlan, plan_of
from pipeline.store.sql import replace_sql

__all__ = ["STORE_ERRORS", "Staging"]

#: Errors of the storage layers that a run reports as a one-line StoreError.
STORE_ERRORS = (OSError, pa.ArrowException, SQLAlchemyError)


class Staging:
    """A run's writes in flight: each table handed over is staged to Parquet in one background thread
    and written into the run's open SQL transaction in another, while the run computes the rest.

    Made by ``Stores.staging``; ``Stores.commit`` adds the last tables, waits for both threads and
    commits (the SQL transaction stays open until then, so nothing is visible before).
    """

    def __init__(self, parquet: ParquetStore, engine: Engine, run_id: str, fault: Callable[[str], None]) -> None:
        self.run_id = run_id
        self.tables: list[str] = []  # every table handed over, in order (the journal names them)
        self.plans: list[TablePlan] = []  # those with something to write
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
            plan = plan_of(replacement)
            self.tables.append(plan.table)
            # a table with nothing to change is left alone (once it exists: an empty table gets its file)
            if plan.changes_anything or not self._parquet.has(plan.table):
                self.plans.append(plan)
                self._staged.append(self._parquet_thread.submit(self._stage, plan))
                if plan.in_sql:
                    self._written.append(self._sql_thread.submit(lambda plan=plan: replace_sql(self._sql(), plan)))
        if not last:
            self.staged_early = True
            try:
                self._fault("handed_over")
            except STORE_ERRORS as exc:
                raise StoreError(f"run {self.run_id} could not stage {', '.join(self.tables)}: {first_line(exc)}") from exc

    def _stage(self, plan: TablePlan) -> None:
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

