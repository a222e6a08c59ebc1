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

from kpis.ascending import distinct_ascending
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
        Instants are whole epoch seconds (as ``epoch_seconds`` gives them).

        An event before its ticket's opening counts at the opening; an instant of ``ends_at`` before it
        is not a point."""
        ends_at = np.where(ends_at >= opened[ends_tix], ends_at, np.nan)
        keys = _PointKeys.over(opened, kinds, ends_at)
        if keys is None:  # no ticket with a known opening: no points
            return cls(np.empty(0, dtype="int64"), np.empty(0), kinds, tuple(np.full(len(k), -1) for k in kinds))
        given = keys.of_instants(opened, kinds, ends_tix, ends_at)
        distinct = _sorted_distinct(given[given >= 0])
        bounds = np.cumsum([len(opened), *[len(k) for k in kinds]])
        landing = tuple(_landing(distinct, given[bounds[i]:bounds[i + 1]]) for i in range(len(kinds)))
        del given
        tix, at = keys.split(distinct)
        return cls(tix, at, kinds, landing)

    def values(self, kind: int, *, non_empty: bool = False) -> np.ndarray:
        """Per point: the value of the ticket's last event of ``kinds[kind]`` at or before it (-1: none);
        ``non_empty``: of its last event with a value. In the events' own dtype (int32 vocabulary codes)."""
        events, landing = self.kinds[kind], self.landing[kind]
        used = landing >= 0
        if non_empty:
            used &= events.value != MISSING
        event = np.flatnonzero(used)  # ascending, and so are their points
        if not len(event):
            return np.full(len(self.tix), MISSING, dtype=events.value.dtype)
        lands = landing[event]
        last_on_point = np.append(lands[1:] != lands[:-1], True)
        event, lands = event[last_on_point], lands[last_on_point]
        latest = np.full(len(self.tix), -1, dtype="int64")
        latest[lands] = event
        del event, lands  # fewer arrays as long as the points at once (the backlog's peak, D117)
        np.maximum.accumulate(latest, out=latest)  # the ticket's own, or an earlier ticket's: checked below
        own = latest >= 0
        at_hand = np.maximum(latest, 0, out=latest)
        own &= events.tix[at_hand] == self.tix
        value = events.value[at_hand]
        value[~own] = MISSING
        return value


@dataclass(frozen=True)
class _PointKeys:
    """One int64 per (ticket, whole epoch second), ordered as the pairs are: ``tix * span + (at - base)``.

    Sorting the keys sorts the points, and each point's ticket and instant are read back from its key: no
    sort order to gather the points by, and no copy of them in it (at 1M tickets with 5M events the points'
    arrays peaked at 330 MiB that way and at 173 MiB this way, D117)."""

    base: float
    span: int

    @classmethod
    def over(cls, opened: np.ndarray, kinds: tuple[KindEvents, ...], ends_at: np.ndarray) -> _PointKeys | None:
        """Keys for every instant a point can have (None when no opening is known). Every point lies at or
        after its ticket's opening, so the earliest known opening is the earliest point."""
        if not np.isfinite(opened).any():
            return None
        base = float(np.nanmin(opened))
        latest = max(float(np.nanmax(values)) for values in (opened, *[k.at for k in kinds], ends_at)
                     if np.isfinite(values).any())
        return cls(base, int(latest - base) + 1)

    def of_instants(self, opened: np.ndarray, kinds: tuple[KindEvents, ...], ends_tix: np.ndarray,
                    ends_at: np.ndarray) -> np.ndarray:
        """The keys of the openings, each kind's events (one before its ticket's opening at the opening)
        and the ends, in that order, written into one array; -1 where the instant is unknown."""
        keys = np.empty(len(opened) + sum(len(k) for k in kinds) + len(ends_at), dtype="int64")
        self._write(keys[:len(opened)], np.arange(len(opened)), opened)
        start = len(opened)
        for kind in kinds:
            self._write(keys[start:start + len(kind)], kind.tix, np.maximum(kind.at, opened[kind.tix]))
            start += len(kind)
        self._write(keys[start:], ends_tix, ends_at)
        return keys

    def _write(self, out: np.ndarray, tix: np.ndarray, at: np.ndarray) -> None:
        unknown = ~np.isfinite(at)
        offset = np.subtract(at, self.base)
        offset[unknown] = 0
        np.multiply(tix, self.span, out=out)
        out += offset.astype("int64")
        out[unknown] = -1

    def split(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The tickets and the instants (epoch s) of ``keys``."""
        tix, offset = np.divmod(keys, self.span)
        at = offset.astype("float64")
        at += self.base
        return tix, at


def _sorted_distinct(keys: np.ndarray) -> np.ndarray:
    """``keys`` (a copy of them, sorted in place) without repeats."""
    keys.sort(kind="stable")  # a merge of the sorted runs it is given (openings, each kind, ends): ~4x quicker
    return distinct_ascending(keys)


def _landing(points: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Per key of an event (-1: unknown instant), the point it lands on in the sorted distinct ``points``."""
    landing = np.searchsorted(points, keys)
    landing[keys < 0] = -1
    return landing
