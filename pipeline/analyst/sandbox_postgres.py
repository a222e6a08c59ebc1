"""The sandbox over a PostgreSQL store: PostgreSQL's own parser decides, a READ ONLY transaction enforces.

``check_statement`` parses the text with PostgreSQL's parser (libpg_query, through ``pglast``) before
anything reaches the server: exactly one statement, which must be a ``SELECT`` (covering ``WITH``,
``VALUES`` and ``TABLE``) without ``INTO`` or a data-modifying ``WITH``, a ``SHOW``, or an ``EXPLAIN`` of
such a statement. ``statement_settings`` are run first in the statement's own transaction: ``READ ONLY``
(the server refuses any write, whatever the parser missed) and ``[query].timeout`` as ``statement_timeout``.
The docs (docs/query.md) recommend a role that has ``SELECT`` only, so a function with side effects or a
server file (``pg_read_file``) is refused by the server too.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.analyst.sandbox import EXIT_STORE, QueryError, QueryRefused, refused, timed_out

__all__ = ["ALLOWED", "check_statement", "error_of", "require_parser", "statement_settings"]

ALLOWED = "one SELECT, WITH, VALUES, TABLE, SHOW or EXPLAIN statement"
_READ_ONLY_SQL_TRANSACTION = "25006"  # SQLSTATE: a write refused by a READ ONLY transaction
_QUERY_CANCELED = "57014"  # SQLSTATE: statement_timeout (or a cancel)


def require_parser() -> Any:
    """``pglast.parser``, or QueryError (exit 4) saying how to install it."""
    try:
        import pglast.parser  # noqa: PLC0415 (optional: itsm-kpi[postgres])
    except ImportError:
        raise QueryError(
            "querying PostgreSQL needs pglast (PostgreSQL's parser): pip install 'itsm-kpi[postgres]'",
            EXIT_STORE,
        ) from None
    return pglast.parser


def _first_keyword(parser: Any, text: str) -> str:
    """The statement's first keyword as PostgreSQL's scanner sees it (``COPY``, ``SET``): what to name."""
    for token in parser.scan(text):
        if token.name not in ("C_COMMENT", "SQL_COMMENT"):
            return text[token.start : token.end + 1].upper()
    return "an empty statement"


def _kind_name(node: Any) -> str:
    """A parse node's statement kind in SQL words: ``InsertStmt`` -> ``INSERT``, ``CreateTableAsStmt`` ->
    ``CREATE TABLE AS``."""
    words = re.findall(r"[A-Z][a-z]*", type(node).__name__.removesuffix("Stmt"))
    return " ".join(words).upper()


def _check_node(node: Any, text: str | None, parser: Any) -> None:
    """Raise QueryRefused unless ``node`` only reads; ``text`` is its SQL (None inside an EXPLAIN)."""
    kind = type(node).__name__
    if kind == "SelectStmt":
        if node.intoClause is not None:
            raise refused("SELECT INTO", ALLOWED)
        for cte in getattr(node.withClause, "ctes", None) or ():
            if type(cte.ctequery).__name__ != "SelectStmt":
                raise refused(f"a WITH that writes ({_kind_name(cte.ctequery)})", ALLOWED)
        return
    if kind == "VariableShowStmt":
        return
    if kind == "ExplainStmt":
        _check_node(node.query, None, parser)
        return
    raise refused(_first_keyword(parser, text) if text else f"EXPLAIN of {_kind_name(node)}", ALLOWED)


def check_statement(sql: str) -> None:
    """Raise QueryRefused unless ``sql`` is exactly one query (or EXPLAIN of one) by PostgreSQL's parser."""
    parser = require_parser()
    try:
        statements = parser.parse_sql(sql)
    except parser.ParseError as exc:
        raise QueryError(f"syntax error: {exc}") from exc
    if not statements:
        raise refused("an empty statement", ALLOWED)
    if len(statements) > 1:
        raise refused("more than one statement", ALLOWED)
    _check_node(statements[0].stmt, sql, parser)


def statement_settings(timeout_s: float) -> tuple[str, ...]:
    """What runs first in each statement's transaction: READ ONLY, and the statement timeout."""
    return ("SET TRANSACTION READ ONLY", f"SET LOCAL statement_timeout = {max(1, round(timeout_s * 1000))}")


def error_of(exc: Any, message: str, timeout_s: float) -> QueryError:
    """The QueryError for a driver error: a refused write, a timeout, or the server's one line."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if sqlstate == _READ_ONLY_SQL_TRANSACTION:
        return QueryRefused(f"{message} (only reading is allowed)")
    if sqlstate == _QUERY_CANCELED:
        return timed_out(timeout_s)
    return QueryError(message)
