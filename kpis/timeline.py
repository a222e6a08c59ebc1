"""Per-ticket history from the ``events`` frame (KPIS.md 1.2, 2.2, 3).

Everything works on whole columns: events are sorted once by (ticket, at, kind order, seq) and every
question ("last assignee at or before t", "first resolution") is a ``searchsorted`` on a composite
(ticket, time) key or a first/last-per-group reduction. Tickets are numbered ``0..n-1`` (``tix``);
times are float64 epoch seconds with NaN for missing (see kpis.calendar); values are vocabulary codes
(see kpis.vocabulary; -1 = empty).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kpis.calendar import CalendarColumn, CalendarSet
from kpis.schema import DONE_STATUSES, EVENT_KINDS
from kpis.vocabulary import CODE_DTYPE, MISSING, Vocabulary, positions_in


@dataclass(frozen=True)
class KindEvents:
    """The events of one kind, sorted by (tix, at, kind order, seq)."""

    tix: np.ndarray
    at: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.tix)

    def select(self, keep: np.ndarray) -> KindEvents:
        """The events where ``keep`` is true."""
        return KindEvents(self.tix[keep], self.at[keep], self.value[keep])

    def non_empty(self) -> KindEvents:
        """Only the events with a non-empty value."""
        return self.select(self.value != MISSING)

    def has_any(self, n: int) -> np.ndarray:
        """Per ticket: does it have at least one event of this kind."""
        return np.bincount(self.tix, minlength=n) > 0

    def first_value(self, n: int) -> np.ndarray:
        """Per ticket: the value of its first event (-1 when it has none)."""
        return _per_ticket(self.tix, self.value, n, first=True, fill=MISSING)

    def last_value(self, n: int) -> np.ndarray:
        """Per ticket: the value of its last event (-1 when it has none)."""
        return _per_ticket(self.tix, self.value, n, first=False, fill=MISSING)

    def first_at(self, n: int) -> np.ndarray:
        """Per ticket: the time of its first event (NaN when it has none)."""
        return _per_ticket(self.tix, self.at, n, first=True, fill=np.nan)

    def last_at(self, n: int) -> np.ndarray:
        """Per ticket: the time of its last event (NaN when it has none)."""
        return _per_ticket(self.tix, self.at, n, first=False, fill=np.nan)

    def value_at(self, query_at: np.ndarray) -> np.ndarray:
        """Per ticket: the value of its last event at or before ``query_at[tix]`` (-1 when there is none).

        ``query_at`` has one entry per ticket; NaN means "after every event".
        """
        i = self.index_at(query_at)
        return np.where(i >= 0, self.value[np.maximum(i, 0)], MISSING) if len(self) else i

    def index_at(self, query_at: np.ndarray) -> np.ndarray:
        """Per ticket: the position (in these events) of its last event at or before ``query_at[tix]``, -1
        when there is none (``value_at`` reads its value; an explanation names the event)."""
        n = len(query_at)
        if len(self) == 0:
            return np.full(n, MISSING, dtype=CODE_DTYPE)
        base = int(self.at.min())
        span = int(self.at.max()) - base + 2  # offsets -1 .. span-1 stay inside one ticket's slot
        q = np.clip(np.nan_to_num(query_at, nan=np.inf), base - 1, base + span - 1)
        keys = self.tix * span + (self.at.astype("int64") - base)
        q_keys = np.arange(n, dtype="int64") * span + (q.astype("int64") - base)
        i = np.searchsorted(keys, q_keys, side="right") - 1
        ic = np.maximum(i, 0)
        hit = (i >= 0) & (self.tix[ic] == np.arange(n))
        return np.where(hit, i, -1)


def _per_ticket(tix: np.ndarray, values: np.ndarray, n: int, *, first: bool, fill) -> np.ndarray:
    out = np.full(n, fill, dtype=values.dtype)
    if len(tix) == 0:
        return out
    boundary = np.flatnonzero(np.diff(tix)) + 1  # tix is sorted: groups are runs
    idx = np.concatenate([[0], boundary]) if first else np.concatenate([boundary - 1, [len(tix) - 1]])
    out[tix[idx]] = values[idx]
    return out


@dataclass(frozen=True)
class History:
    """Sorted events split by kind."""

    by_kind: dict[str, KindEvents]

    def __getitem__(self, kind: str) -> KindEvents:
        return self.by_kind[kind]


def sorted_history(events: pd.DataFrame, tix: np.ndarray, at: np.ndarray, vocabulary: Vocabulary) -> History:
    """Sort events by ticket, time, the kind tie-break order and source order; split them by kind."""
    kind_rank = kind_ranks(events)
    order = _event_order(tix, at, kind_rank, events["seq"].to_numpy(dtype="int64", na_value=0))
    # then grouped by kind, each kind's events keeping that order: one stable (radix) sort of small integers,
    # and each kind is a slice; kinds -1 (other) come first
    order = order[np.argsort(kind_rank[order], kind="stable")]
    tix, at, value = tix[order], at[order], vocabulary.encode(events["value"])[order]
    bounds = np.cumsum(np.bincount(kind_rank + 1, minlength=len(EVENT_KINDS) + 1))  # events of a rank below each
    return History({kind: KindEvents(tix[bounds[r]:bounds[r + 1]], at[bounds[r]:bounds[r + 1]],
                                     value[bounds[r]:bounds[r + 1]])
                    for r, kind in enumerate(EVENT_KINDS)})


def kind_ranks(events: pd.DataFrame) -> np.ndarray:
    """Each event's kind as its position in the tie-break order ``EVENT_KINDS`` (-1 for another kind or none).

    One Arrow lookup of every text in the few kinds, without numbering the column's texts first.
    """
    return positions_in(events["kind"], EVENT_KINDS, dtype="int8")  # a byte per event, radix-sorted


def history_order(events: pd.DataFrame, tix: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The permutation ``sorted_history`` sorts ``events`` by: the i-th event of a kind in ``History`` is the
    i-th row of that kind in ``events.take(history_order(...))`` (an explanation maps roles back to rows)."""
    return _event_order(tix, at, kind_ranks(events), events["seq"].to_numpy(dtype="int64", na_value=0))


def _event_order(tix: np.ndarray, at: np.ndarray, kind_rank: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """The permutation that sorts events by (ticket, time, kind order, seq), as one int64 key.

    Sources mostly deliver events already in order; then no sort runs at all.
    """
    if len(tix) == 0:
        return np.arange(0)
    base = int(at.min())
    key = np.multiply(tix, int(at.max()) - base + 1, dtype="int64")  # built in place: no temporary per term
    key += at.astype("int64")
    key -= base
    key *= len(EVENT_KINDS)
    key += kind_rank
    by_seq = None if np.all(seq[1:] >= seq[:-1]) else np.argsort(seq, kind="stable")
    if by_seq is not None:
        key = key[by_seq]
    if np.all(key[1:] >= key[:-1]):
        return np.arange(len(key)) if by_seq is None else by_seq
    order = np.argsort(key, kind="stable")
    return order if by_seq is None else by_seq[order]


def changed_between_non_empty(events: KindEvents, n: int) -> np.ndarray:
    """Per ticket: did the value change from one non-empty value to a different non-empty one."""
    ne = events.non_empty()
    if len(ne) == 0:
        return np.zeros(n, dtype=bool)
    changed = (ne.tix[1:] == ne.tix[:-1]) & (ne.value[1:] != ne.value[:-1])
    return np.bincount(ne.tix[1:][changed], minlength=n) > 0


@dataclass(frozen=True)
class Segments:
    """Status segments, sorted by (tix, start): each holds from its status event until the ticket's next status
    event (``end`` = inf for the current status)."""

    tix: np.ndarray
    start: np.ndarray
    end: np.ndarray
    status: np.ndarray  # the status codes
    reopen_gap: np.ndarray  # RESOLVED or CLOSED before a reopen (KPIS.md 2.2): never counted

    def __len__(self) -> int:
        return len(self.tix)

    def select(self, keep: np.ndarray) -> Segments:
        """The segments where ``keep`` is true."""
        return Segments(self.tix[keep], self.start[keep], self.end[keep], self.status[keep], self.reopen_gap[keep])


@dataclass(frozen=True)
class StatusHistory:
    """What the status events of every ticket say (only meaningful where ``has_status``)."""

    has_status: np.ndarray
    last_status: np.ndarray
    first_resolved_at: np.ndarray
    last_resolved_at: np.ndarray
    reopen_count: np.ndarray
    segments: Segments  # the segments that may be taken off resolution time: pause candidates and reopen gaps


@dataclass(frozen=True)
class StatusFlags:
    """What each status event is (events sorted as in ``KindEvents``)."""

    is_resolution: np.ndarray  # RESOLVED, or CLOSED after a status that is neither RESOLVED nor CLOSED
    is_reopen: np.ndarray  # a change from RESOLVED/CLOSED to a status other than RESOLVED, CLOSED, CANCELLED
    reopen_gap: np.ndarray  # RESOLVED or CLOSED with a later working status of the ticket (KPIS.md 2.2)


def status_flags(events: KindEvents, vocabulary: Vocabulary) -> StatusFlags:
    """Resolutions, reopens and reopen gaps among status events (KPIS.md 2.2, 3)."""
    tix, value = events.tix, events.value
    done = vocabulary.is_one_of(value, sorted(DONE_STATUSES))  # a table lookup per event, not np.isin's sort
    same_as_prev = np.concatenate([[False], tix[1:] == tix[:-1]])
    prev_done = same_as_prev & np.roll(done, 1)
    works = ~(done | (value == vocabulary.code("CANCELLED")))
    return StatusFlags(
        is_resolution=(value == vocabulary.code("RESOLVED")) | ((value == vocabulary.code("CLOSED")) & ~prev_done),
        is_reopen=prev_done & works,
        reopen_gap=done & _later_in_ticket(tix, works),
    )


def status_history(events: KindEvents, n: int, pause_statuses: tuple[str, ...], vocabulary: Vocabulary) -> StatusHistory:
    """Resolutions, reopens and the segments that may pause a ticket (KPIS.md 2.2, 3).

    ``pause_statuses``: every status that pauses some ticket (which ones pause which ticket is its SLA
    policy's business, see kpis.sla); ``segments`` keeps those and the reopen gaps.
    """
    flags = status_flags(events, vocabulary)
    last_status = events.last_value(n)
    currently_done = vocabulary.is_one_of(last_status, sorted(DONE_STATUSES))
    resolutions = events.select(flags.is_resolution)
    candidate = vocabulary.is_one_of(events.value, pause_statuses) | flags.reopen_gap
    return StatusHistory(
        has_status=events.has_any(n),
        last_status=last_status,
        first_resolved_at=np.where(currently_done, resolutions.first_at(n), np.nan),
        last_resolved_at=np.where(currently_done, resolutions.last_at(n), np.nan),
        reopen_count=np.bincount(events.tix[flags.is_reopen], minlength=n),
        segments=_segments(events, flags.reopen_gap).select(candidate),
    )


def all_status_segments(events: KindEvents, vocabulary: Vocabulary) -> Segments:
    """Every status segment of every ticket (``status_history`` keeps only those that may be taken off)."""
    flags = status_flags(events, vocabulary)
    return _segments(events, flags.reopen_gap)


def _later_in_ticket(tix: np.ndarray, flag: np.ndarray) -> np.ndarray:
    """For each event: does a later event of the same ticket have ``flag`` (later: further on in ``tix``'s
    order, the events' sorted order)."""
    if len(tix) == 0:
        return flag
    position = np.arange(len(tix))
    last_flagged = np.full(int(tix.max()) + 1, -1)
    np.maximum.at(last_flagged, tix[flag], position[flag])
    return last_flagged[tix] > position


def _segments(events: KindEvents, reopen_gap: np.ndarray) -> Segments:
    """Every status segment: each holds from its event until the ticket's next status event."""
    return Segments(events.tix, events.at, next_in_ticket(events.tix, events.at), events.value, reopen_gap)


def next_in_ticket(tix: np.ndarray, at: np.ndarray, after_last: float | np.ndarray = np.inf) -> np.ndarray:
    """For rows sorted by ticket (``tix``): each row's next instant ``at`` in its ticket, and ``after_last``
    (one value, or one per row) for a ticket's last row."""
    following = np.empty(len(at))
    following[:] = after_last
    np.copyto(following[:-1], at[1:], where=tix[1:] == tix[:-1])
    return following


@dataclass(frozen=True)
class Pieces:
    """Stretches of tickets' timelines, sorted by (tix, start), in a measure of time that only grows: instants,
    or cumulative business time on each ticket's calendar (where clipping an instant clips its measure).
    ``end`` = inf for a stretch that never ends."""

    tix: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def select(self, keep: np.ndarray) -> Pieces:
        """The stretches where ``keep`` is true."""
        return Pieces(self.tix[keep], self.start[keep], self.end[keep])


def cumulative_bounds(segments: Segments, calendar: CalendarColumn, calendars: CalendarSet) -> Pieces:
    """The segments with their start and end as cumulative business time on their ticket's calendar."""
    of_segment = calendar.take(segments.tix)
    endless = np.isinf(segments.end)
    end = calendars.cumulative(of_segment, np.where(endless, segments.start, segments.end))
    return Pieces(segments.tix, calendars.cumulative(of_segment, segments.start), np.where(endless, np.inf, end))


def paused_seconds(excluded: Pieces, opened_cum: np.ndarray, stop_cum: np.ndarray) -> np.ndarray:
    """Per ticket: the business seconds of its ``excluded`` stretches inside ``[opened, stop)``, all given as
    cumulative business time: the part inside is ``min(end, stop) - max(start, opened)`` where positive."""
    tix = excluded.tix
    inside = np.minimum(excluded.end, stop_cum[tix]) - np.maximum(excluded.start, opened_cum[tix])
    return np.bincount(tix, weights=np.where(inside > 0, inside, 0.0), minlength=len(opened_cum))


def counted_pieces(excluded: Pieces, opened: np.ndarray) -> Pieces:
    """Per ticket of ``excluded``: ``[opened, inf)`` minus its excluded stretches, in time order.

    The pieces between the stretches may be empty (start == end). A ticket whose last excluded stretch
    never ends (its clock stops for good) has no final piece.
    """
    tix = excluded.tix
    first = np.concatenate([[True], tix[1:] != tix[:-1]]) if len(tix) else np.zeros(0, dtype=bool)
    last = np.concatenate([first[1:], [True]]) if len(tix) else first
    start = np.maximum(np.where(first, -np.inf, np.roll(excluded.end, 1)), opened[tix])
    between = Pieces(tix, start, np.maximum(excluded.start, start))
    final_tix, final_start = tix[last], np.maximum(excluded.end[last], opened[tix[last]])
    running = np.isfinite(final_start)
    final = Pieces(final_tix[running], final_start[running], np.full(int(running.sum()), np.inf))
    return _merged(between, final)


def _merged(between: Pieces, final: Pieces) -> Pieces:
    """``between`` (sorted by tix) with each ticket's ``final`` piece placed after its own ones."""
    size = len(between.tix) + len(final.tix)
    at = np.searchsorted(between.tix, final.tix, side="right") + np.arange(len(final.tix))
    slot = np.ones(size, dtype=bool)
    slot[at] = False
    out = Pieces(np.empty(size, dtype=between.tix.dtype), np.empty(size), np.empty(size))
    for name in ("tix", "start", "end"):
        getattr(out, name)[slot] = getattr(between, name)
        getattr(out, name)[at] = getattr(final, name)
    return out
