"""SLA policies, targets and verdicts (KPIS.md 3: SLA policy, response/resolution SLA).

A ticket's metric (response, resolution) is governed by the first ``[[sla]]`` policy in config order whose
conditions all match it; matching is one boolean mask per policy over vocabulary codes. The policy gives the
target and the calendar.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from kpis.calendar import CalendarColumn
from kpis.config import SlaPolicy
from kpis.vocabulary import MISSING, Vocabulary


def policy_index(policies: tuple[SlaPolicy, ...], values: Mapping[str, np.ndarray], v: Vocabulary) -> np.ndarray:
    """Per ticket, the position of the first policy whose conditions all match; ``len(policies)`` where none does.

    ``values``: per condition the tickets' vocabulary codes (-1 = empty). A condition a policy omits matches
    every ticket, also one whose value is empty; a named one matches only the values it lists.
    """
    n = len(values["ticket_type"])
    index = np.full(n, len(policies), dtype="int32")
    for i in range(len(policies) - 1, -1, -1):  # walk backwards so the first match is written last
        index[_matches(policies[i], values, v, n)] = i
    return index


def _matches(policy: SlaPolicy, values: Mapping[str, np.ndarray], v: Vocabulary, n: int) -> np.ndarray:
    match = np.ones(n, dtype=bool)
    for condition, accepted in policy.conditions.items():
        codes = v.codes(accepted)  # a text no ticket has is ABSENT, which equals no code
        column = values[condition]
        match &= (column == codes[0]) if len(codes) == 1 else np.isin(column, codes)
    return match


@dataclass(frozen=True)
class MetricPolicy:
    """The policy governing one metric of every ticket."""

    index: np.ndarray  # position in the config; len(policies) = no policy
    priority: np.ndarray  # codes: the priority that chose it
    target_s: np.ndarray  # NaN without a policy or without a target for this metric
    calendar: CalendarColumn  # the policy's calendar, else the default one


def metric_policy(policies: tuple[SlaPolicy, ...], index: np.ndarray, priority: np.ndarray, target: str,
                  default_calendar: str) -> MetricPolicy:
    """Targets (``target`` = "response_s" or "resolution_s") and calendars of the policies at ``index``."""
    targets = np.array([np.nan if getattr(p, target) is None else getattr(p, target) for p in policies] + [np.nan])
    calendar_of = [p.calendar or default_calendar for p in policies] + [default_calendar]
    names = tuple(dict.fromkeys(calendar_of))
    codes = np.array([names.index(name) for name in calendar_of])
    return MetricPolicy(index=index, priority=priority, target_s=targets[index],
                        calendar=CalendarColumn(codes[index], names))


def policy_names(policies: tuple[SlaPolicy, ...], index: np.ndarray, v: Vocabulary) -> np.ndarray:
    """``response_policy`` / ``resolution_policy``: the codes of the matched policies' names (-1 without one)."""
    codes = np.array([v.add(p.name) for p in policies] + [MISSING], dtype="int32")
    return codes[index]


def sla_status(v: Vocabulary, stop_at: np.ndarray, elapsed_at_stop: np.ndarray, elapsed_at_as_of: np.ndarray,
               target_s: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """``response_sla`` / ``resolution_sla`` codes: met / breached / in_progress; -1 where not eligible or
    without a target. Never rounds."""
    status = np.where(
        ~np.isnan(stop_at),
        np.where(elapsed_at_stop <= target_s, v.code("met"), v.code("breached")),
        np.where(elapsed_at_as_of > target_s, v.code("breached"), v.code("in_progress")),
    )
    return np.where(eligible & ~np.isnan(target_s), status, MISSING)
