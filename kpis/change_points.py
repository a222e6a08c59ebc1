"""A ticket's change points for the backlog (``kpis.backlog``), and what each kind of event says at each.

A ticket's open state, engineer, priority and pause state can only change at its opening, at its status,
assignee and priority events, and (without status events) at the end of a resolved ticket. Those instants,
sorted and distinct per ticket, are its change points. What a kind of event says at a point is the value
of the ticket's last event of that kind at or before it.

Every event of the kinds that set values is itself one of the points (one before the opening counts at the
opening), so that value is a forward fill along the sorted points: each point takes the last event that
lands on it or on an earlier point of the ticket. No search per point is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kpis.timeline import KindEvents
from kpis.vocabulary import MISSING


@dataclass(frozen=True)
class ChangePoints:
    """Per ticket, sorted and distinct: its change points ``(tix, at)``, and for each kind of event that
    was given, where each of its events lands (the point it counts at; -1: none, its time is unknown)."""

    tix: np.ndarray
    at: np.ndarray
    kinds: tuple[KindEvents, ...]
    landing: tuple[np.ndarray, ...]

    @classmethod
    def of(cls, opened: np.ndarray, kinds: tuple[KindEvents, ...], ends_tix: np.ndarray,
           ends_at: np.ndarray) -> ChangePoints:
        """The points of tickets opened at ``opened`` (epoch s, NaN: unknown, then no points), with the
        events of ``kinds`` (each sorted as ``KindEvents`` are) and more instants ``(ends_tix, ends_at)``.

        An event before its ticket's opening counts at the opening; an instant of ``ends_at`` before it
        is not a point."""
        n = len(opened)
        ends_at = np.where(ends_at >= opened[ends_tix], ends_at, np.nan)
        tix = np.concatenate([np.arange(n), *[k.tix for k in kinds], ends_tix]).astype("int64")
        at = np.concatenate([opened, *[np.maximum(k.at, opened[k.tix]) for k in kinds], ends_at])
        order = _in_ticket_time_order(tix, at)
        tix_sorted, at_sorted = tix[order], at[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (tix_sorted[1:] != tix_sorted[:-1]) | (at_sorted[1:] != at_sorted[:-1])
        bounds = np.cumsum([n, *[len(k) for k in kinds]])
        landing = tuple(np.empty(0, dtype="int64") for _ in kinds)
        if bounds[-1] > n:  # some events: where each one lands (the openings' and ends' points are not needed)
            point = np.full(len(tix), -1, dtype="int64")
            point[order] = np.cumsum(first) - 1
            landing = tuple(point[bounds[i]:bounds[i + 1]] for i in range(len(kinds)))
        return cls(tix_sorted[first], at_sorted[first], kinds, landing)

    def values(self, kind: int, *, non_empty: bool = False) -> np.ndarray:
        """Per point: the value of the ticket's last event of ``kinds[kind]`` at or before it (-1: none);
        ``non_empty``: of its last event with a value."""
        events, landing = self.kinds[kind], self.landing[kind]
        used = landing >= 0
        if non_empty:
            used &= events.value != MISSING
        event = np.flatnonzero(used)  # ascending, and so are their points
        if not len(event):
            return np.full(len(self.tix), MISSING, dtype="int64")
        lands = landing[event]
        last_on_point = np.append(lands[1:] != lands[:-1], True)
        latest = np.full(len(self.tix), -1, dtype="int64")
        latest[lands[last_on_point]] = event[last_on_point]
        latest = np.maximum.accumulate(latest)  # the ticket's own, or an earlier ticket's: checked below
        at_hand = np.maximum(latest, 0)
        own = (latest >= 0) & (events.tix[at_hand] == self.tix)
        return np.where(own, events.value[at_hand], MISSING).astype("int64")


def _in_ticket_time_order(tix: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The positions of the known instants (finite ``at``) ordered by (ticket, instant), ties as given: one
    stable sort, which merges the sorted runs it is given."""
    if np.isfinite(at).all():  # usually: no copies of both arrays for the selection
        return np.argsort(_ticket_time_keys(tix, at), kind="stable")
    kept = np.flatnonzero(np.isfinite(at))
    return kept[np.argsort(_ticket_time_keys(tix[kept], at[kept]), kind="stable")]


def _ticket_time_keys(tix: np.ndarray, at: np.ndarray) -> np.ndarray:
    """One int64 per (ticket, whole epoch second) ordered as the pairs are (timestamps are whole seconds)."""
    if not len(at):
        return tix.astype("int64")
    base = float(at.min())
    return tix.astype("int64") * (int(at.max() - base) + 1) + (at - base).astype("int64")
