"""Errors of the orchestration itself (the tree is drawn in ``kpis.errors``)."""

from __future__ import annotations

from kpis.errors import ItsmKpiError

__all__ = ["RejectRatioExceeded"]


class RejectRatioExceeded(ItsmKpiError):
    """A source's rejected share of rows exceeded ``[run].max_reject_ratio``: the run failed after writing
    only ``rejected_rows`` and its ``pipeline_runs`` row; the KPI tables and the raw layer were left as they
    were (exit 6)."""
