"""The run ledger in the SQL store: runs, watermarks, files already read, store state and the run lock.

Methods named ``*_writes`` return a function of a SQLAlchemy ``Connection`` instead of writing: pass
them (joined with ``combine_writes``) to ``Stores.commit(ledger_writes=...)`` so the ledger commits in
the same transaction as the data it describes.

The lock is one row of ``run_lock``, taken with a conditional INSERT (or a conditional UPDATE when
taking over a stale holder) in a short transaction, so two processes, or on PostgreSQL two machines,
can never both hold it. A holder that stalls past the stale limit (a long GC pause, a suspended VM) is
taken over while it still lives, so the lock is fenced: every grant raises the lock's generation in
``run_lock_generation`` (the fencing token), and a run's commit checks, inside its own transaction,
that it still holds the lock at the generation it was granted (``fence_writes``); a run that lost it
raises LockLost and its transaction rolls back.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from kpis.errors import first_line
from pipeline.store import schema
from pipeline.store.errors import LockLost, LockTimeout, StoreError

__all__ = ["LOCK_NAME", "Ledger", "RunCounts", "Writes", "combine_writes"]

log = logging.getLogger(__name__)

Writes = Callable[[Connection], None]
LOCK_NAME = "itsm-kpi"
_T = schema.metadata.tables
RUNS, STATE, FILES, LOCK = _T["pipeline_runs"], _T["source_state"], _T["source_files"], _T["run_lock"]
STORE_STATE = _T["store_state"]
GENERATION = _T["run_lock_generation"]


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored timestamp is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _timestamp(value: date | datetime | None) -> datetime | None:
    """A UTC datetime from a datetime (naive = UTC) or a date (its midnight UTC)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, dt_time(0))
    return _aware(value).astimezone(UTC)


class RunCounts(Protocol):
    """What a finished run reports (``pipeline.run.RunSummary`` has these attributes; ``rows_superseded``,
    ``conflicts_settled`` and ``error`` are read when present)."""

    status: str
    rows_read: int
    rows_rejected: int
    rows_written: int
    periods_written: int
    stage_seconds: dict[str, float]
    failed_sources: dict[str, str]


def _counts_of(summary: RunCounts) -> dict[str, Any]:
    failed = getattr(summary, "failed_sources", None) or {}
    error = getattr(summary, "error", None) or "; ".join(f"{k}: {v}" for k, v in failed.items()) or None
    return dict(status=summary.status, rows_read=summary.rows_read, rows_rejected=summary.rows_rejected,
                rows_superseded=getattr(summary, "rows_superseded", 0),
                conflicts_settled=getattr(summary, "conflicts_settled", 0), rows_written=summary.rows_written,
                periods_written=summary.periods_written, error=error,
                stage_timings=getattr(summary, "stage_seconds", None))


def _check_status(status: str) -> None:
    if status not in schema.RUN_STATUSES or status == "running":
        raise ValueError(f"a finished run's status is success, partial or failed, not {status!r}")


def combine_writes(*writes: Writes | None) -> Writes:
    """One ``ledger_writes`` function running each of ``writes`` in order (None entries skipped)."""
    def run(conn: Connection) -> None:
        for write in writes:
            if write is not None:
                write(conn)
    return run


def _upsert(conn: Connection, table: Any, values: dict[str, Any], keys: list[str]) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE on SQLite and PostgreSQL; delete + insert elsewhere."""
    dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(conn.dialect.name)
    if dialect is None:
        conn.execute(delete(table).where(*[table.c[k] == values[k] for k in keys]))
        conn.execute(insert(table).values(**values))
        return
    stmt = dialect.insert(table).values(**values)
    changes = {k: stmt.excluded[k] for k in values if k not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=changes))


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: How the error of a run whose lock was taken over (it was killed, or stalled) begins.
ABANDONED = "abandoned:"


def _close_abandoned_run(conn: Connection, run_id: str, now: datetime, reason: str) -> None:
    """The run whose stale lock was taken over will never finish: record it as failed, with why."""
    still_running = (RUNS.c.run_id == run_id) & (RUNS.c.status == "running")
    conn.execute(update(RUNS).where(still_running).values(
        status="failed", finished_at=now, error=f"{ABANDONED} {reason}; its lock was taken over"))


class Ledger:
    """Runs, watermarks, files already read and the run lock, in the SQL store behind ``engine``."""

    def __init__(self, engine: Engine, *, lock_name: str = LOCK_NAME, poll_s: float = 1.0) -> None:
        self.engine = engine
        self.lock_name = lock_name
        self.poll_s = poll_s
        self.host = socket.gethostname()
        self.tokens: dict[str, int] = {}  # run_id -> the lock generation it was granted by acquire_lock

    def _write(self, what: str, writes: Writes) -> None:
        try:
            with self.engine.begin() as conn:
                writes(conn)
        except SQLAlchemyError as exc:
            first = str(getattr(exc, "orig", exc)).strip().splitlines()
            raise StoreError(f"cannot {what} in the SQL store: {first[0] if first else exc}") from exc

    # -- runs ----------------------------------------------------------------------------------
    def start_run(self, kind: str, window_from: date | datetime | None, window_to: date | datetime | None,
                  as_of: datetime, *, run_id: str | None = None, reporting_timezone: str | None = None,
                  config_hash: str | None = None) -> str:
        """Record a new run with status ``running`` (committed at once) and return its id.

        ``run_id`` defaults to ``<UTC start>-<random>``; pass one when the lock was taken under it.
        ``reporting_timezone`` and ``config_hash`` say in which timezone its periods are and with which config.
        """
        window_from, window_to, as_of = _timestamp(window_from), _timestamp(window_to), _timestamp(as_of)
        started = _now()
        run_id = run_id or f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        row = dict(run_id=run_id, kind=kind, started_at=started, status="running", window_from=window_from,
                   window_to=window_to, as_of=as_of, host=self.host, pid=os.getpid(),
                   reporting_timezone=reporting_timezone, config_hash=config_hash)
        self._write("record the run start", lambda conn: conn.execute(insert(RUNS).values(**row)))
        log.info("run %s (%s) started", run_id, kind)
        return run_id

    def finish_run_writes(self, run_id: str, status: str | RunCounts, *, rows_read: int = 0,
                          rows_rejected: int = 0, rows_written: int = 0, periods_written: int = 0,
                          error: str | None = None, stage_timings: dict[str, float] | None = None) -> Writes:
        """The write that closes a run (to run inside ``Stores.commit``).

        ``status`` is success, partial or failed with the counts as keywords, or an object with those
        attributes (``RunCounts``), read when the write runs, so counts set until then are recorded.
        When this Ledger took the run lock for ``run_id``, a success or partial first runs
        ``fence_writes`` (LockLost, rolling the commit back, if the run lost the lock); pass it first
        among the commit's ledger writes, so the lock rows are locked before ``pipeline_runs``.
        """
        def values() -> dict[str, Any]:
            if isinstance(status, str):
                return dict(status=status, rows_read=rows_read, rows_rejected=rows_rejected,
                            rows_written=rows_written, periods_written=periods_written, error=error,
                            stage_timings=stage_timings)
            return _counts_of(status)

        if isinstance(status, str):
            _check_status(status)

        def write(conn: Connection) -> None:
            row = values()
            _check_status(row["status"])
            if row["status"] != "failed" and run_id in self.tokens:  # only the lock's holder commits its run
                self.fence_writes(run_id, self.tokens[run_id])(conn)
            row["stage_timings"] = json.dumps(row["stage_timings"] or {}, sort_keys=True)
            conn.execute(update(RUNS).where(RUNS.c.run_id == run_id).values(finished_at=_now(), **row))
        return write

    def fail_run(self, run_id: str, error: str, stage_timings: dict[str, float] | None = None) -> None:
        """Mark a run failed, in its own transaction (the data transaction did not happen)."""
        write = self.finish_run_writes(run_id, "failed", error=error, stage_timings=stage_timings)
        self._write("record the run failure", write)
        log.error("run %s failed: %s", run_id, error)

    def alert_counts_writes(self, run_id: str, sent: int, failed: int) -> Writes:
        """The write that records how many alert messages a run posted and how many failed."""
        def write(conn: Connection) -> None:
            conn.execute(update(RUNS).where(RUNS.c.run_id == run_id).values(alerts_sent=sent, alerts_failed=failed))
        return write

    def record_alert_counts(self, run_id: str, sent: int, failed: int) -> None:
        """Record the alert counts on their own (a failed run has no data transaction to join)."""
        self._write("record the alert counts", self.alert_counts_writes(run_id, sent, failed))

    def last_success(self) -> datetime | None:
        """When the last successful (or partial) run finished, or None."""
        done = RUNS.c.status.in_(("success", "partial"))
        with self.engine.connect() as conn:
            return _aware(conn.execute(select(RUNS.c.finished_at).where(done).order_by(
                RUNS.c.finished_at.desc()).limit(1)).scalar())

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One ``pipeline_runs`` row as a dict, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(RUNS).where(RUNS.c.run_id == run_id)).mappings().first()
        return dict(row) if row else None

    # -- watermarks and files ------------------------------------------------------------------
    def watermark(self, source: str) -> str | None:
        """Where the next incremental pull of ``source`` starts, or None before its first run."""
        with self.engine.connect() as conn:
            return conn.execute(select(STATE.c.watermark).where(STATE.c.source == source)).scalar()

    def set_watermark_writes(self, source: str, watermark: str) -> Writes:
        """The write that moves ``source``'s watermark."""
        def write(conn: Connection) -> None:
            _upsert(conn, STATE, {"source": source, "watermark": watermark, "updated_at": _now()}, ["source"])
        return write

    def seen_files(self, source: str) -> set[str]:
        """Keys of the files of ``source`` already read."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(FILES.c.file_key).where(FILES.c.source == source)).scalars())

    def add_files_writes(self, source: str, file_keys: Iterable[str], run_id: str) -> Writes:
        """The writes recording ``file_keys`` as read by ``run_id`` (keys already recorded are kept)."""
        keys = sorted(set(file_keys))

        def write(conn: Connection) -> None:
            if not keys:
                return
            known = set(conn.execute(select(FILES.c.file_key).where(FILES.c.source == source)).scalars())
            now = _now()
            rows = [{"source": source, "file_key": k, "run_id": run_id, "read_at": now} for k in keys if k not in known]
            if rows:
                conn.execute(insert(FILES), rows)
        return write

    # -- facts about the stored data --------------------------------------------------------------
    def store_state(self, name: str) -> str | None:
        """A value recorded about the stored data (e.g. ``facts_fingerprint``), or None."""
        with self.engine.connect() as conn:
            return conn.execute(select(STORE_STATE.c.value).where(STORE_STATE.c.name == name)).scalar()

    def set_store_state_writes(self, name: str, value: str | None) -> Writes:
        """The write that records ``value`` under ``name`` (None forgets it)."""
        def write(conn: Connection) -> None:
            if value is None:
                conn.execute(delete(STORE_STATE).where(STORE_STATE.c.name == name))
            else:
                _upsert(conn, STORE_STATE, {"name": name, "value": value, "updated_at": _now()}, ["name"])
        return write

    # -- the lock ------------------------------------------------------------------------------
    def acquire_lock(self, run_id: str, wait_s: float, stale_after_s: float) -> int:
        """Take the run lock for ``run_id``, waiting up to ``wait_s``; return its fencing token.

        A holder is stale when its heartbeat is older than ``stale_after_s``, or when it ran on this
        host and its process is gone; a stale lock is taken over with a warning. The token is the
        lock's new generation (each acquisition and take-over adds one; the holder asking again keeps
        its own); this Ledger remembers it in ``tokens`` for ``finish_run_writes``. Raises LockTimeout
        when the lock is still held after ``wait_s``.
        """
        deadline = time.monotonic() + wait_s
        while True:
            attempt = self._try_lock(run_id, stale_after_s)
            if isinstance(attempt, int):
                self.tokens[run_id] = attempt
                log.info("run %s holds the run lock %r (generation %d)", run_id, self.lock_name, attempt)
                return attempt
            if not attempt:
                continue  # released between our two statements: try again at once
            if time.monotonic() >= deadline:
                raise LockTimeout(self._held_message(attempt, wait_s, stale_after_s))
            time.sleep(max(0.0, min(self.poll_s, deadline - time.monotonic())))

    def _try_lock(self, run_id: str, stale_after_s: float) -> int | dict[str, Any]:
        """One attempt: the token when ``run_id`` now holds the lock, else the holder's row ({} to retry).

        Lock rows are taken in one order everywhere (``run_lock``, then ``run_lock_generation``, then
        ``pipeline_runs``), as ``fence_writes`` does, so a take-over and a commit never deadlock.
        """
        now = _now()
        mine = dict(name=self.lock_name, holder=run_id, host=self.host, pid=os.getpid(), acquired_at=now,
                    heartbeat_at=now)
        with self.engine.begin() as conn:
            if self._insert_if_free(conn, mine):
                return self._grant(conn, run_id, now)
            row = conn.execute(select(LOCK).where(LOCK.c.name == self.lock_name)).mappings().first()
            if row is None:
                return {}
            holder = dict(row)
            if holder["holder"] == run_id:
                return self._generation_of(conn, run_id) or self._grant(conn, run_id, now)
            reason = self._stale_reason(holder, now, stale_after_s)
            if reason and self._take_over(conn, holder, mine):
                log.warning("run lock %r: took it over from run %s on %s pid %s (%s)", self.lock_name,
                            holder["holder"], holder["host"], holder["pid"], reason)
                token = self._grant(conn, run_id, now, taken=holder)
                _close_abandoned_run(conn, holder["holder"], now, reason)
                return token
            return holder

    @staticmethod
    def _dialect(conn: Connection) -> Any:
        """The SQLAlchemy dialect module with INSERT ... ON CONFLICT (the lock needs one)."""
        dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(conn.dialect.name)
        if dialect is None:
            raise StoreError(f"the run lock supports SQLite and PostgreSQL, not {conn.dialect.name}")
        return dialect

    @classmethod
    def _insert_if_free(cls, conn: Connection, row: dict[str, Any]) -> bool:
        stmt = cls._dialect(conn).insert(LOCK).values(**row).on_conflict_do_nothing(index_elements=["name"])
        return conn.execute(stmt).rowcount == 1

    def _grant(self, conn: Connection, run_id: str, now: datetime, taken: dict[str, Any] | None = None) -> int:
        """Give ``run_id`` the lock's next generation, in the transaction that took the lock; return it.

        ``taken``: the stale holder's row when this grant takes its lock over (recorded, with how long
        it had been silent, so the loser can say to whom and why it lost the lock).
        """
        silent = _aware(taken["heartbeat_at"]) if taken else None
        grant = dict(holder=run_id, granted_at=now, taken_from=taken["holder"] if taken else None,
                     taken_after_s=int((now - silent).total_seconds()) if silent else None)
        stmt = self._dialect(conn).insert(GENERATION).values(name=self.lock_name, generation=1, **grant)
        conn.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                                set_={"generation": GENERATION.c.generation + 1, **grant}))
        return conn.execute(select(GENERATION.c.generation).where(GENERATION.c.name == self.lock_name)).scalar_one()

    def _generation_of(self, conn: Connection, run_id: str) -> int | None:
        """The generation granted to ``run_id``, if the latest grant is its own."""
        mine = (GENERATION.c.name == self.lock_name) & (GENERATION.c.holder == run_id)
        return conn.execute(select(GENERATION.c.generation).where(mine)).scalar()

    def _stale_reason(self, holder: dict[str, Any], now: datetime, stale_after_s: float) -> str | None:
        heartbeat = _aware(holder["heartbeat_at"])
        if heartbeat is None or now - heartbeat > timedelta(seconds=stale_after_s):
            return f"no heartbeat since {heartbeat}, more than {stale_after_s:g} s"
        if holder["host"] == self.host and holder["pid"] != os.getpid() and not _pid_alive(holder["pid"]):
            return f"process {holder['pid']} on this host is gone"
        return None

    @staticmethod
    def _take_over(conn: Connection, holder: dict[str, Any], mine: dict[str, Any]) -> bool:
        """Replace exactly the stale row we looked at; a concurrent taker or heartbeat makes this miss."""
        same = (LOCK.c.name == holder["name"]) & (LOCK.c.holder == holder["holder"]) & (
            LOCK.c.heartbeat_at == holder["heartbeat_at"])
        return conn.execute(update(LOCK).where(same).values(**mine)).rowcount == 1

    def _held_message(self, holder: dict[str, Any], wait_s: float, stale_after_s: float) -> str:
        return (f"run lock {self.lock_name!r} is held by run {holder['holder']} on {holder['host']} "
                f"pid {holder['pid']} since {_aware(holder['acquired_at'])} (last heartbeat "
                f"{_aware(holder['heartbeat_at'])}); waited {wait_s:g} s. Let that run finish, or if it is "
                f"gone, rerun: a lock without a heartbeat for {stale_after_s:g} s is taken over "
                f"(or delete its row from run_lock)")

    def fence_writes(self, run_id: str, generation: int) -> Writes:
        """The write that lets a commit through only while ``run_id`` holds the lock at ``generation``.

        Run it in the commit's transaction, before its ``pipeline_runs`` write: it refreshes the holder's
        heartbeat (an UPDATE, so SQLite's write lock, or PostgreSQL's lock on the row, is held from here
        to the commit and no take-over can slip in between), then reads the generation ``FOR UPDATE``.
        Raises LockLost, which rolls the whole transaction back, when the lock was taken over.
        """
        def write(conn: Connection) -> None:
            mine = (LOCK.c.name == self.lock_name) & (LOCK.c.holder == run_id)
            held = conn.execute(update(LOCK).where(mine).values(heartbeat_at=_now())).rowcount == 1
            grant = self._grant_row(conn, for_update=True)
            if not held or grant is None or grant["generation"] != generation:
                raise LockLost(f"{self._lost_message(run_id, generation, grant)}; nothing of this run was committed")
        return write

    def check_lock(self, run_id: str) -> None:
        """Raise LockLost if ``run_id`` no longer holds the lock it took through this Ledger.

        A plain read, for a run to stop early between stages (before its commit); the commit's own
        check (``fence_writes``) is the one that counts.
        """
        generation = self.tokens.get(run_id)
        if generation is None:
            return
        try:
            with self.engine.connect() as conn:
                holder = conn.execute(select(LOCK.c.holder).where(LOCK.c.name == self.lock_name)).scalar()
                grant = self._grant_row(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the run lock in the SQL store: {first_line(exc)}") from exc
        if holder != run_id or grant is None or grant["generation"] != generation:
            raise LockLost(f"{self._lost_message(run_id, generation, grant)}; nothing of this run was committed")

    def _grant_row(self, conn: Connection, *, for_update: bool = False) -> dict[str, Any] | None:
        """The lock's latest grant (``run_lock_generation`` row), or None."""
        query = select(GENERATION).where(GENERATION.c.name == self.lock_name)
        row = conn.execute(query.with_for_update() if for_update else query).mappings().first()
        return dict(row) if row else None

    def _lost_message(self, run_id: str, generation: int | None, grant: dict[str, Any] | None) -> str:
        """Why ``run_id`` no longer holds the lock, naming the run that took it when that is known."""
        if grant is not None and grant["taken_from"] == run_id:
            after = "" if grant["taken_after_s"] is None else f" after {grant['taken_after_s']} s"
            return f"run {run_id} lost the run lock to run {grant['holder']} (taken over as stale{after})"
        if grant is not None and grant["generation"] != generation:
            return (f"run {run_id} lost the run lock (it held generation {generation}; run {grant['holder']} "
                    f"was granted generation {grant['generation']} since)")
        if grant is None:
            return f"run {run_id} lost the run lock {self.lock_name!r} (its run_lock_generation row is gone)"
        return f"run {run_id} lost the run lock {self.lock_name!r} (its row was deleted from run_lock)"

    def heartbeat(self, run_id: str) -> None:
        """Tell other runs that ``run_id`` is alive; LockLost if it no longer holds the lock."""
        def write(conn: Connection) -> None:
            stmt = update(LOCK).where((LOCK.c.name == self.lock_name) & (LOCK.c.holder == run_id))
            if conn.execute(stmt.values(heartbeat_at=_now())).rowcount != 1:
                lost = self._lost_message(run_id, self.tokens.get(run_id), self._grant_row(conn))
                raise LockLost(f"{lost}; stopping so two runs never write at once")
        self._write("update the run lock heartbeat", write)

    def release_lock(self, run_id: str) -> None:
        """Give the lock up (a no-op when ``run_id`` does not hold it); its generation stays counted."""
        def write(conn: Connection) -> None:
            conn.execute(delete(LOCK).where((LOCK.c.name == self.lock_name) & (LOCK.c.holder == run_id)))
        self._write("release the run lock", write)
        self.tokens.pop(run_id, None)
        log.info("run %s released the run lock %r", run_id, self.lock_name)
