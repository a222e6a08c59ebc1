"""Errors of the orchestration itself (the tree is drawn in ``kpis.errors``)."""

from __future__ import annotations

import signal

from kpis.errors import ItsmKpiError

__all__ = ["Interrupted", "RejectRatioExceeded", "interrupted_reason", "interrupting_signal"]


class RejectRatioExceeded(ItsmKpiError):
    """A source's rejected share of rows exceeded ``[run].max_reject_ratio``: the run failed after writing
    only ``rejected_rows`` and its ``pipeline_runs`` row; the KPI tables and the raw layer were left as they
    were (exit 6)."""


class Interrupted(KeyboardInterrupt):
    """A signal asked the command to stop (SIGTERM: ``systemctl stop``, ``kill``, ``timeout``, a CronJob's pod
    deleted). Raised in the main thread by ``pipeline.cli``'s handler, it unwinds like Ctrl-C's
    ``KeyboardInterrupt``: the run's uncommitted writes are rolled back and its ``pipeline_runs`` row says
    ``failed``."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def interrupting_signal(error: KeyboardInterrupt) -> signal.Signals:
    """The signal behind an interruption: SIGTERM's ``Interrupted``, else Ctrl-C's SIGINT."""
    return signal.Signals(error.signum) if isinstance(error, Interrupted) else signal.SIGINT


def interrupted_reason(error: KeyboardInterrupt) -> str:
    """The one-line reason an interrupted run records: which signal stopped it."""
    return f"interrupted by {interrupting_signal(error).name}"
