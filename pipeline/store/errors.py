"""Errors of the pipeline's stores and runs (see kpis.errors for the whole tree)."""

from __future__ import annotations

from kpis.errors import ItsmKpiError


class StoreError(ItsmKpiError):
    """A store cannot be written or read; the stores are left as they were."""


class LockTimeout(StoreError):
    """Another run holds the run lock for longer than we may wait."""


class LockLost(StoreError):
    """This run's run lock was taken over (it was silent past ``run.stale_lock``): it must not commit."""
