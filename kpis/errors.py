"""The exception tree shared by all packages.

    ItsmKpiError
    ├── ConfigError          a config value is missing or wrong (names the key and the fix)
    │   └── pipeline.config.errors.ConfigProblems   every problem of a config file, found at once
    ├── connectors.errors.SourceError        a source cannot be read
    │   ├── SourceUnreachable                network / 5xx / 429 after retries, missing file
    │   ├── SourceAuthError                  401 / 403
    │   └── SourceResponseError              malformed body, pagination loop, other 4xx
    ├── connectors.errors.AdjustmentsError   an approvals file cannot be read at all: the run stops (exit 2)
    ├── pipeline.store.errors.StoreError     a store cannot be written or read
    │   ├── LockTimeout                      another run holds the lock
    │   └── LockLost                         this run's lock was taken over; nothing of it was committed
    ├── pipeline.errors.RejectRatioExceeded  a source's rejected share exceeded run.max_reject_ratio (exit 6)
    ├── pipeline.analyst.query.QueryError    an analyst statement fails, or the store cannot be opened
    │   └── QueryRefused                     the query sandbox does not allow the statement (exit 2)
    └── BadRequest                           what was asked for cannot be answered as asked (exit 2)
        ├── pipeline.analyst.report.ReportError  the report cannot be built (period, language, --out, no data)
        └── pipeline.explain.UnknownTicket       explain: no such ticket (or source) in the store
"""

from __future__ import annotations


def first_line(error: BaseException) -> str:
    """The first non-blank line of an error's message (of the driver's error for SQLAlchemy ones)."""
    cause = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return lines[0] if lines else type(cause).__name__


class ItsmKpiError(Exception):
    """Base of every error itsm-kpi raises on purpose; its message is one actionable line."""


class BadRequest(ItsmKpiError):
    """A command's arguments ask for what cannot be answered as asked (a period without data, an unknown
    ticket): the user's to change, like a bad argument (exit 2), not a bug."""


class ConfigError(ItsmKpiError):
    """A configuration value is missing or invalid."""

    def __init__(self, key: str, problem: str, fix: str = "") -> None:
        self.key, self.problem, self.fix = key, problem, fix
        message = f"config {key}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)
