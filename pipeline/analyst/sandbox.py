"""The analyst-SQL sandbox shared by ``itsm-kpi query`` and the report (CONTRACT.md, *Analyst SQL*).

One statement, and only a query, decided by each engine's own parser; the engine-specific guards live in
``sandbox_duckdb`` (Parquet store), ``sandbox_sqlite`` and ``sandbox_postgres`` (SQL store), and
``pipeline.analyst.query.StoreQuery`` applies them to every statement it runs, so every user of analyst
SQL gets the same sandbox. Errors:

    QueryError      a statement failed (exit 2) or the store cannot be opened (``exit_code`` 4)
    └── QueryRefused  the sandbox does not allow the statement (exit 2); nothing ran
"""

from __future__ import annotations

from kpis.errors import ItsmKpiError

__all__ = ["DEFAULT_TIMEOUT_S", "EXIT_QUERY", "EXIT_STORE", "QueryError", "QueryRefused", "refused", "timed_out"]

EXIT_QUERY, EXIT_STORE = 2, 4
DEFAULT_TIMEOUT_S = 60.0  # [query].timeout when the config does not say


class QueryError(ItsmKpiError):
    """A query could not run: ``exit_code`` 2 for the statement, 4 for the store."""

    def __init__(self, message: str, exit_code: int = EXIT_QUERY) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class QueryRefused(QueryError):
    """The sandbox does not allow the statement; it was not run, nothing was created or changed."""

    def __init__(self, message: str) -> None:
        super().__init__(f"query refused: {message}", EXIT_QUERY)


def refused(what: str, allowed: str) -> QueryRefused:
    """The refusal of ``what`` (``COPY``, ``more than one statement``), saying what ``allowed`` is."""
    return QueryRefused(f"{what} is not allowed (only {allowed})")


def timed_out(timeout_s: float) -> QueryError:
    """The error of a statement stopped by ``[query].timeout``."""
    return QueryError(f"the statement ran longer than [query].timeout ({timeout_s:g}s) and was stopped")
