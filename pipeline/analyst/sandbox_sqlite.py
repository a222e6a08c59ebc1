"""The sandbox over a SQLite store: a read-only connection and an authorizer that allows only reading.

The database is opened with ``mode=ro`` (a missing file is not created, nothing can be written to it).
SQLite asks the authorizer about every action of a statement while it compiles it, before any of it runs;
``ReadOnlyAuthorizer`` allows reading tables and views (``SELECT``, ``READ``, ``FUNCTION``, ``RECURSIVE``)
and the read-only ``PRAGMA``\\ s listed below, and denies everything else: ``ATTACH`` (which ``VACUUM`` and
``VACUUM INTO`` also ask for), ``DETACH``, every write, ``CREATE``/``DROP`` (temporary objects too),
transactions, savepoints and every other ``PRAGMA``. Statements run through the driver's ``execute``,
which compiles exactly one statement and refuses a text holding more. So EXPLAIN of a write is refused too.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

__all__ = ["ALLOWED", "READ_PRAGMAS", "SCHEMA_PRAGMAS", "ReadOnlyAuthorizer", "connect_read_only"]

ALLOWED = "one SELECT, WITH, VALUES or EXPLAIN statement, or a read-only PRAGMA"

# PRAGMAs that describe the schema; their argument names a table or an index, never a new value
SCHEMA_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "database_list",
        "collation_list",
        "function_list",
        "pragma_list",
        "compile_options",
    }
)
# PRAGMAs allowed only without an argument (with one they would set the value)
READ_PRAGMAS = frozenset({"user_version", "schema_version", "application_id", "encoding", "page_size", "page_count"})

_SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_temp_master", "sqlite_schema", "sqlite_temp_schema"})
_SCHEMA_CHANGES = {  # what asks to change the schema table: CREATE, DROP, and pragma_*() table functions
    sqlite3.SQLITE_INSERT: "CREATE",
    sqlite3.SQLITE_DELETE: "DROP",
    sqlite3.SQLITE_UPDATE: "UPDATE of the schema",
}
_READING = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE})
_ACTIONS = (  # authorizer action codes 1..33, as the SQLite C API names them
    "CREATE INDEX,CREATE TABLE,CREATE TEMP INDEX,CREATE TEMP TABLE,CREATE TEMP TRIGGER,CREATE TEMP VIEW,"
    "CREATE TRIGGER,CREATE VIEW,DELETE,DROP INDEX,DROP TABLE,DROP TEMP INDEX,DROP TEMP TABLE,"
    "DROP TEMP TRIGGER,DROP TEMP VIEW,DROP TRIGGER,DROP VIEW,INSERT,PRAGMA,READ,SELECT,TRANSACTION,UPDATE,"
    "ATTACH,DETACH,ALTER TABLE,REINDEX,ANALYZE,CREATE VIRTUAL TABLE,DROP VIRTUAL TABLE,FUNCTION,SAVEPOINT,"
    "RECURSIVE"
).split(",")


def _action_name(action: int, arg1: str | None) -> str:
    """How a refusal names a denied action: ``PRAGMA writable_schema``, ``ATTACH (or VACUUM)``, ``COMMIT``."""
    if action == sqlite3.SQLITE_PRAGMA:
        return f"PRAGMA {arg1}"
    if action == sqlite3.SQLITE_ATTACH:
        return "ATTACH (or VACUUM, which attaches a database)"
    if action == sqlite3.SQLITE_TRANSACTION and arg1:
        return arg1.upper()
    if arg1 in _SCHEMA_TABLES and action in _SCHEMA_CHANGES:
        return _SCHEMA_CHANGES[action]
    return _ACTIONS[action - 1] if 0 < action <= len(_ACTIONS) else f"action {action}"


class ReadOnlyAuthorizer:
    """A ``set_authorizer`` callback that allows only reading; it remembers what it was asked and denied."""

    def __init__(self) -> None:
        self.asked = 0
        self._denied: list[tuple[int, str | None]] = []

    def reset(self) -> None:
        """Forget the previous statement."""
        self.asked = 0
        self._denied = []

    @property
    def denied(self) -> str | None:
        """The first action denied (SQLite stops compiling there), named, or None."""
        return _action_name(*self._denied[0]) if self._denied else None

    def allows(self, action: int, arg1: str | None, arg2: str | None) -> bool:
        """Whether a statement may do ``action`` (with the authorizer's first two arguments)."""
        if action in _READING:
            return True
        if action == sqlite3.SQLITE_PRAGMA:
            name = (arg1 or "").lower()
            return name in SCHEMA_PRAGMAS or (name in READ_PRAGMAS and arg2 is None)
        return False

    def __call__(self, action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
        self.asked += 1
        if self.allows(action, arg1, arg2):
            return sqlite3.SQLITE_OK
        self._denied.append((action, arg1))
        return sqlite3.SQLITE_DENY


class Deadline:
    """A progress handler that stops a statement once ``timeout_s`` has passed since ``start``."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.ends_at = float("inf")
        self.expired = False

    def start(self) -> None:
        """Start the clock for the next statement."""
        self.ends_at = time.monotonic() + self.timeout_s
        self.expired = False

    def __call__(self) -> int:
        self.expired = time.monotonic() > self.ends_at
        return 1 if self.expired else 0


def connect_read_only(path: str) -> sqlite3.Connection:
    """A ``mode=ro`` connection to the SQLite file at ``path`` (never creates it), once a transaction a
    killed writer left behind is rolled back (``roll_back_hot_journal``).

    No statement cache: a cached statement would run again without asking the authorizer.
    """
    database = Path(path).resolve()
    roll_back_hot_journal(database)
    return sqlite3.connect(database.as_uri() + "?mode=ro", uri=True, check_same_thread=False, cached_statements=0)


def roll_back_hot_journal(database: Path) -> None:
    """Roll back what a writer killed inside a transaction left (a run SIGKILLed or OOM-killed mid-commit).

    Its rollback journal (``<database>-journal``) is then *hot*: the next connection that reads must first
    restore the committed pages from it, which a ``mode=ro`` connection may not do ("attempt to write a
    readonly database", until the next run opened the store). One read on a writable connection lets
    SQLite do it: the database is back at its last commit, none of the dead transaction is kept
    (DECISIONS.md D129). A live writer's journal is not hot (it holds its lock) and is left alone, and a
    file this user may not write is left to the read-only open, whose error then says what is wrong.
    """
    journal = database.with_name(database.name + "-journal")
    if not journal.is_file() or journal.stat().st_size == 0:
        return
    try:
        with closing(sqlite3.connect(database.as_uri() + "?mode=rw", uri=True, timeout=5)) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        return
