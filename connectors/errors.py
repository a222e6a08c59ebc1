"""Errors raised while reading a source (see kpis.errors for the whole tree)."""

from __future__ import annotations

from kpis.errors import ItsmKpiError


class SourceError(ItsmKpiError):
    """A source cannot be read."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        super().__init__(f"source {source}: {message}")


class SourceUnreachable(SourceError):
    """Network failure, timeout, 5xx or 429 after every retry, or a missing file: try again later."""


class SourceAuthError(SourceError):
    """The source refused the credentials (401/403)."""


class SourceResponseError(SourceError):
    """The source answered with something we cannot use (malformed body, a pagination loop, a 4xx)."""


class AdjustmentsError(ItsmKpiError):
    """An approvals file (``[adjustments]``) cannot be read at all, or the file set cannot be used: KPIs computed
    without it would be wrong, so the run stops before writing anything (exit 2: a person fixes the file or
    the config)."""

    def __init__(self, path: object, message: str) -> None:
        self.path = path
        super().__init__(f"adjustments: {message}")
