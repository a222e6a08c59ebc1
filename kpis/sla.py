"""SLA policies, targets, due times and verdicts (KPIS.md 3: SLA policy, response/resolution SLA and due times).

A ticket's metric (response, resolution) is governed by the first ``[[sla]]`` policy in config order whose
conditions all match it; matching is one boolean mask per policy over the distinct combinations of the
tickets' values (vocabulary codes). The policy gives the target, the calendar and (for resolution) the pause
statuses. A due time is the earliest instant at which the metric's counted business time reaches the target:
the calendar's inverse (``earliest_reaching``) of the cumulative business time at which that happens, found in
the counted piece of the timeline where it does (pauses and reopen gaps work in cumulative business time too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from kpis.aggregate import dense_combinations
from kpis.calendar import CalendarColumn, CalendarSet
from kpis.config import SLA_CONDITIONS, SlaPolicy
from kpis.schema import STATUSES
from kpis.timeline import Pieces, Segments, counted_pieces
from kpis.vocabulary import MISSING, Vocabulary


def policy_index(policies: tuple[SlaPolicy, ...], values: Mapping[str, np.ndarray], v: Vocabulary) -> np.ndarray:
    """Per ticket, the position of the first policy whose conditions all match; ``len(policies)`` where none does.

    ``values``: per condition the tickets' vocabulary codes (-1 = empty). A condition a policy omits matches
    every ticket, also one whose value is empty; a named one matches only the values it lists. The policies
    are matched against the distinct combinations of the named conditions' values (a few hundred, however
    many tickets), each ticket then takes its combination's policy.
    """
    named = [c for c in SLA_CONDITIONS if any(c in p.conditions for p in policies)]
    combination, first = dense_combinations([values[c] for c in named], len(values["ticket_type"]))
    distinct = {c: values[c][first] for c in named}
    index = np.full(len(first), len(policies), dtype="int32")
    for i in range(len(policies) - 1, -1, -1):  # walk backwards so the first match is written last
        index[_matches(policies[i], distinct, v, len(first))] = i
    return index[combination]


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
    return MetricPolicy(index=index, priority=priority, target_s=targets[index],
                        calendar=policy_calendars(policies, index, default_calendar))


def policy_calendars(policies: tuple[SlaPolicy, ...], index: np.ndarray, default_calendar: str) -> CalendarColumn:
    """The calendar of the policy at each ``index`` (``len(policies)``: none, the default calendar)."""
    calendar_of = [p.calendar or default_calendar for p in policies] + [default_calendar]
    names = tuple(dict.fromkeys(calendar_of))
    codes = np.array([names.index(name) for name in calendar_of], dtype="int64")
    return CalendarColumn(codes[index], names)


def policy_names(policies: tuple[SlaPolicy, ...], index: np.ndarray, v: Vocabulary) -> np.ndarray:
    """``response_policy`` / ``resolution_policy``: the codes of the matched policies' names (-1 without one)."""
    codes = np.array([v.add(p.name) for p in policies] + [MISSING], dtype="int32")
    return codes[index]


def pause_lookup(policies: tuple[SlaPolicy, ...], default: tuple[str, ...], v: Vocabulary) -> np.ndarray:
    """``[policy position, status code]`` -> does that status pause resolution time under that policy.

    A policy without ``pause_statuses`` (and a ticket without a policy, the last row) pauses in ``default``.
    """
    width = int(max(v.codes(STATUSES).max(initial=-1), -1)) + 1
    lookup = np.zeros((len(policies) + 1, width), dtype=bool)
    for i, statuses in enumerate([*(p.pause_statuses for p in policies), None]):
        codes = v.codes(statuses if statuses is not None else default)
        lookup[i, codes[codes >= 0]] = True
    return lookup


def all_pause_statuses(policies: tuple[SlaPolicy, ...], default: tuple[str, ...]) -> tuple[str, ...]:
    """Every status that pauses the resolution time of some ticket."""
    every = [*default, *(s for p in policies for s in (p.pause_statuses or ()))]
    return tuple(dict.fromkeys(every))


def excluded_segments(candidates: Segments, resolution_index: np.ndarray, lookup: np.ndarray) -> Segments:
    """The segments taken off each ticket's resolution time: reopen gaps and its own policy's pauses."""
    return candidates.select(candidates.reopen_gap | paused(candidates, resolution_index, lookup))


def paused(segments: Segments, resolution_index: np.ndarray, lookup: np.ndarray) -> np.ndarray:
    """Which segments are in a status that pauses their ticket's resolution time under its policy."""
    status = segments.status
    known = (status >= 0) & (status < lookup.shape[1])
    out = np.zeros(len(segments), dtype=bool)
    out[known] = lookup[resolution_index[segments.tix[known]], status[known]]
    return out


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


def response_due_at(opened_at: np.ndarray, opened_cum: np.ndarray, policy: MetricPolicy, eligible: np.ndarray,
                    calendars: CalendarSet) -> np.ndarray:
    """The earliest instant at which business time since ``opened_at`` reaches the response target (never
    paused); NaN without a target or where not ``eligible``. ``opened_cum``: ``opened_at``'s cumulative
    business time on the policy calendar."""
    target = np.where(eligible, policy.target_s, np.nan)
    due = calendars.earliest_reaching(policy.calendar, opened_cum + target)
    return np.where(target == 0, opened_at, due)


def resolution_due_at(opened_at: np.ndarray, opened_cum: np.ndarray, policy: MetricPolicy, excluded: Pieces,
                      eligible: np.ndarray, calendars: CalendarSet) -> np.ndarray:
    """The earliest instant at which the counted resolution time reaches the target: business time since
    ``opened_at`` minus the ``excluded`` stretches (as cumulative business time), the last status holding for
    ever. NaN without a target, where not ``eligible``, and where the clock stops (a pause that never ends)
    before the target."""
    target = np.where(eligible, policy.target_s, np.nan)
    reach_cum = opened_cum + target  # the cumulative business time at which the target is reached ...
    tix = excluded.tix
    taken_off = np.minimum(excluded.end, reach_cum[tix]) - np.maximum(excluded.start, opened_cum[tix]) > 0
    paused = np.zeros(len(target), dtype=bool)
    paused[tix[taken_off]] = True  # ... unless something is taken off before it (NaN: False)
    paused &= target > 0
    if paused.any():
        pieces = counted_pieces(excluded.select(paused[tix]), opened_cum)
        reached, at_cum = _reach_in_pieces(pieces, target)
        reach_cum[paused] = np.nan  # stays so where the clock stops before the target
        reach_cum[reached] = at_cum
    due = calendars.earliest_reaching(policy.calendar, reach_cum)
    return np.where(target == 0, opened_at, due)


def _reach_in_pieces(pieces: Pieces, target_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tickets, cumulative business time): where, inside the first counted piece whose end reaches it, each
    ticket's counted time reaches its target (tickets whose pieces never reach it are left out)."""
    endless = np.isinf(pieces.end)
    length = np.where(endless, 0.0, pieces.end - pieces.start)
    need = target_s[pieces.tix] - _before_in_ticket(pieces.tix, length)
    hit = _first_per_ticket(pieces.tix, endless | (length >= need))
    return pieces.tix[hit], pieces.start[hit] + need[hit]


def _before_in_ticket(tix: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For rows sorted by ``tix``: the sum of the same ticket's earlier ``values``."""
    if not len(tix):
        return values
    total = np.cumsum(values)
    first = np.concatenate([[True], tix[1:] != tix[:-1]])
    before_ticket = (total - values)[first]  # the running total where each ticket starts
    return total - values - np.repeat(before_ticket, np.diff(np.append(np.flatnonzero(first), len(tix))))


def _first_per_ticket(tix: np.ndarray, flag: np.ndarray) -> np.ndarray:
    """For rows sorted by ``tix``: the position of each ticket's first row where ``flag`` holds."""
    where = np.flatnonzero(flag)
    first = np.concatenate([[True], tix[where][1:] != tix[where][:-1]]) if len(where) else np.zeros(0, dtype=bool)
    return where[first]
