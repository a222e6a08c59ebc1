"""The sandbox over the Parquet store (DuckDB): what a statement may be, and what the connection may touch.

``check_statement`` asks DuckDB's own parser (``extract_statements`` of the locked-down connection: DuckDB
1.x expands ``IMPORT DATABASE`` while parsing, reading files, so the parser must be sandboxed too): exactly
one statement of type SELECT (which covers WITH, VALUES, DESCRIBE, SHOW, SUMMARIZE and FROM-first queries;
DuckDB 1.x also parses read-only PRAGMAs such as ``PRAGMA version`` as SELECT) or EXPLAIN of such a
statement (so ``EXPLAIN ANALYZE COPY ...`` never runs the COPY). ``lock_down`` is called once the store's
views are registered: spilling to disk is switched off, external access is switched off with the store
directory the only allowed one, extensions can no longer be installed or loaded, and the configuration is
locked, so no later statement can undo any of it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from kpis.errors import first_line
from pipeline.analyst.sandbox import QueryError, QueryRefused, refused, timed_out

__all__ = ["ALLOWED", "check_statement", "lock_down", "run_statement"]

ALLOWED = "one SELECT, WITH, VALUES, DESCRIBE, SHOW or EXPLAIN statement"


def _first_keyword(text: str) -> str:
    """The statement's first keyword as DuckDB's tokenizer sees it (``COPY``, ``INSTALL``): what to name."""
    import duckdb  # noqa: PLC0415 (imported where used: the module is importable without DuckDB)

    for offset, kind in duckdb.tokenize(text):
        if kind != duckdb.token_type.comment:
            return text[offset:].split(None, 1)[0].rstrip(";(").upper()
    return "an empty statement"


def _outside(exc: Exception, store_path: Path) -> QueryRefused:
    """The refusal of a statement that reached for a file outside the store."""
    return QueryRefused(
        f"{first_line(exc)} (only the store's files under {_allowed_directory(store_path)} can be read)"
    )


def _statements(con: Any, sql: str, store_path: Path) -> list[tuple[Any, str]]:
    """(type, text) of each statement of ``sql`` by DuckDB's parser; a kind without a name is refused."""
    import duckdb  # noqa: PLC0415

    try:
        return [(s.type, s.query) for s in con.extract_statements(sql)]
    except duckdb.PermissionException as exc:
        raise _outside(exc, store_path) from exc
    except duckdb.Error as exc:
        raise QueryError(first_line(exc)) from exc
    except ValueError:  # e.g. UPDATE EXTENSIONS: a StatementType this binding has no name for
        raise refused(_first_keyword(sql), ALLOWED) from None


def _explained(text: str) -> str:
    """The statement an ``EXPLAIN [ANALYZE] [(options)] ...`` explains, cut where DuckDB's tokenizer says."""
    import duckdb  # noqa: PLC0415

    tokens = [(o, k) for o, k in duckdb.tokenize(text) if k != duckdb.token_type.comment]
    ends = [o for o, _ in tokens[1:]] + [len(text)]
    words = [text[o:end].strip().upper() for (o, _), end in zip(tokens, ends, strict=True)]
    i, depth = 1, 0
    if i < len(words) and words[i] in ("ANALYZE", "ANALYSE"):
        i += 1
    while i < len(words) and (depth or words[i].startswith("(")):
        if tokens[i][1] == duckdb.token_type.operator:
            depth += words[i].count("(") - words[i].count(")")
        i += 1
    return text[tokens[i][0]:] if i < len(tokens) else ""


def check_statement(con: Any, sql: str, store_path: Path) -> None:
    """Raise QueryRefused unless ``sql`` is exactly one query (or EXPLAIN of one) by the parser of ``con``."""
    import duckdb  # noqa: PLC0415

    statements = _statements(con, sql, store_path)
    if not statements:
        raise refused("an empty statement", ALLOWED)
    if len(statements) > 1:
        raise refused("more than one statement", ALLOWED)
    kind, text = statements[0]
    if kind == duckdb.StatementType.SELECT:
        return
    if kind == duckdb.StatementType.EXPLAIN:
        check_statement(con, _explained(text), store_path)
        return
    keyword = _first_keyword(text)
    raise refused(f"a WITH that writes ({kind.name})" if keyword == "WITH" else keyword, ALLOWED)


def _allowed_directory(store_path: Path) -> str:
    """The store directory as DuckDB compares it: absolute, with a trailing separator (no sibling prefix)."""
    return str(store_path.resolve()).rstrip("/") + "/"


def lock_down(con: Any, store_path: Path) -> None:
    """Confine ``con`` to reading ``store_path``; call after the store's views are created."""
    directory = _allowed_directory(store_path).replace("'", "''")
    for statement in (
        "SET temp_directory = ''",  # no spill files: a query that needs more memory fails instead
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        f"SET allowed_directories = ['{directory}']",
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    ):
        con.execute(statement)


def run_statement(con: Any, sql: str, timeout_s: float, store_path: Path) -> Any:
    """Check ``sql``, run it on the locked-down ``con`` and return its rows as an Arrow table (or None).

    A statement still running after ``timeout_s`` is interrupted; a path outside the store is refused.
    """
    import duckdb  # noqa: PLC0415

    check_statement(con, sql, store_path)
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.start()
    try:
        relation = con.sql(sql)
        return None if relation is None else relation.to_arrow_table()
    except duckdb.PermissionException as exc:
        raise _outside(exc, store_path) from exc
    except duckdb.InterruptException as exc:
        raise timed_out(timeout_s) from exc
    except duckdb.Error as exc:
        raise QueryError(first_line(exc)) from exc
    finally:
        timer.cancel()
