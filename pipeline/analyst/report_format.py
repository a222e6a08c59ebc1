"""KPI targets and how the report writes numbers, targets and times (the templates' filters).

Every function here returns plain text; the templates escape it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "ENGINEER_KPIS",
    "RATE_KPIS",
    "SCHEME_TARGETS",
    "KpiCell",
    "Target",
    "fmt_count",
    "fmt_target",
    "fmt_time",
    "fmt_value",
    "is_missing",
    "targets_for",
]


def is_missing(value: Any) -> bool:
    """Whether ``value`` is a null of any kind (None, NaN, NA, NaT)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and bool(np.isnan(value))


@dataclass(frozen=True)
class Target:
    """A KPI target: ``value`` to reach (at least, or at most when ``higher_is_better`` is false)."""

    value: float
    higher_is_better: bool = True

    def met(self, actual: float | None) -> bool | None:
        """Whether ``actual`` meets the target; None when there is no value."""
        if actual is None or pd.isna(actual):
            return None
        return actual >= self.value if self.higher_is_better else actual <= self.value


#: The evaluation scheme's own targets (驻场人员考核方案); the scorecard's targets add to them.
SCHEME_TARGETS: dict[str, Target] = {
    "response_mean_min": Target(30.0, higher_is_better=False),
    "first_fix_rate": Target(0.80),
    "csat_rate": Target(0.85),
}
ENGINEER_KPIS = (
    "response_mean_min",
    "response_sla_rate",
    "resolution_sla_rate",
    "first_fix_rate",
    "reopen_rate",
    "accuracy_rate",
    "csat_rate",
    "maintenance_on_time_rate",
    "induced_incidents",
)
RATE_KPIS = frozenset(
    {
        "response_sla_rate",
        "resolution_sla_rate",
        "first_fix_rate",
        "reopen_rate",
        "accuracy_rate",
        "csat_rate",
        "maintenance_on_time_rate",
    }
)


def targets_for(parts: pd.DataFrame, extra: Mapping[str, Target] | None) -> dict[str, Target]:
    """Scheme targets, then the scorecard's configured ones (from ``scorecard_kpi``), then the caller's."""
    targets = dict(SCHEME_TARGETS)
    if len(parts):
        for row in parts.drop_duplicates("kpi").itertuples():
            targets[row.kpi] = Target(float(row.target), bool(row.higher_is_better))
    targets.update(extra or {})
    return targets


@dataclass(frozen=True)
class KpiCell:
    """One KPI value in a table, with the target it is judged against (if any)."""

    kpi: str
    value: Any
    target: Target | None

    @property
    def state(self) -> bool | None:
        """True when the value meets its target, False when it misses it, None when not judged."""
        return self.target.met(self.value) if self.target else None


def fmt_value(value: Any, kpi: str) -> str:
    """A KPI value: rates as percentages, minutes with one decimal, counts as integers, ``—`` for none."""
    if is_missing(value):
        return "—"
    if kpi in RATE_KPIS:
        return f"{float(value) * 100:.1f}%"
    if kpi.endswith("_min"):
        return f"{float(value):,.1f}"
    return f"{float(value):,.0f}"


def fmt_target(target: Target, kpi: str) -> str:
    """``≥ 80.0%``, ``≤ 30.0``, or ``= 0`` for induced incidents."""
    sign = "≥" if target.higher_is_better else "≤"
    if kpi == "induced_incidents":
        sign = "="
    return f"{sign} {fmt_value(target.value, kpi)}"


def fmt_count(value: Any) -> str:
    """A whole number with thousands separators, ``—`` for none."""
    return "—" if is_missing(value) else f"{float(value):,.0f}"


def fmt_time(value: Any, timezone: str) -> str:
    """A UTC timestamp as ``YYYY-MM-DD HH:MM`` in ``timezone``, ``—`` for none."""
    if is_missing(value):
        return "—"
    return pd.Timestamp(value).tz_convert(timezone).strftime("%Y-%m-%d %H:%M")
