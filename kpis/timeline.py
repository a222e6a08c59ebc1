"""Per-ticket history from the ``events`` frame (KPIS.md 1.2, 2.2, 3).

Everything works on whole columns: events are sorted once by (ticket, at, kind order, seq) and every
question ("last assignee at or before t", "first resolution") is a ``searchsorted`` on a composite
(ticket, time) key or a first/last-per-group reduction. Tickets are numbered ``0..n-1`` (``tix``);
times are float64 epoch seconds with NaN for missing (see kpis.calendar).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kpis.calendar import CalendarSet
from kpis.schema import DONE_STATUSES, EVENT_KINDS

_NOT_REOPEN = np.array(sorted(DONE_STATUSES | {"CANCELLED"}), dtype=object)
_DONE = np.array(sorted(DONE_STATUSES), dtype=object)


@dataclass(frozen=True)
class KindEvents:
    """The events of one kind, sorted by (tix, at, seq); ``value`` holds None for empty values."""

    tix: np.ndarray
    at: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.tix)

    def non_empty(self) -> KindEvents:
        """Only the events with a non-empty value."""
        keep = pd.notna(self.value)
        return KindEvents(self.tix[keep], self.at[keep], self.value[keep])

    def has_any(self, n: int) -> np.ndarray:
        """Per ticket: does it have at least one event of this kind."""
        return np.bincount(self.tix, minlength=n) > 0

    def first_value(self, n: int) -> np.ndarray:
        """Per ticket: the value of its first event (None when it has none)."""
        return _per_ticket(self.tix, self.value, n, first=True)

    def last_value(self, n: int) -> np.ndarray:
        """Per ticket: the value of its last event (None when it has none)."""
        return _per_ticket(self.tix, self.value, n, first=False)

    def first_at(self, n: int) -> np.ndarray:
        """Per ticket: the time of its first event (NaN when it has none)."""
        return _per_ticket(self.tix, self.at, n, first=True, fill=np.nan)

    def value_at(self, query_at: np.ndarray) -> np.ndarray:
        """Per ticket: the value of the last event at or before ``query_at[tix]`` (None when there is none).

        ``query_at`` has one entry per ticket; NaN means "after every event".
        """
        n = len(query_at)
        if len(self) == 0:
            return np.full(n, None, dtype=object)
        q_tix = np.arange(n, dtype="int64")
        base = int(self.at.min())
        span = int(self.at.max()) - base + 2  # offsets -1 .. span-1 stay inside one ticket's slot
        q = np.clip(np.nan_to_num(query_at, nan=np.inf), base - 1, base + span - 1)
        keys = self.tix.astype("int64") * span + (self.at.astype("int64") - base)
        q_keys = q_tix * span + (q.astype("int64") - base)
        i = np.searchsorted(keys, q_keys, side="right") - 1
        hit = (i >= 0) & (self.tix[np.maximum(i, 0)] == q_tix)
        return np.where(hit, self.value[np.maximum(i, 0)], None)


def _per_ticket(tix: np.ndarray, values: np.ndarray, n: int, *, first: bool, fill=None) -> np.ndarray:
    out = np.full(n, fill, dtype=values.dtype if fill is not None else object)
    if len(tix) == 0:
        return out
    if first:
        _, idx = np.unique(tix, return_index=True)
    else:
        _, ridx = np.unique(tix[::-1], return_index=True)
        idx = len(tix) - 1 - ridx
    out[tix[idx]] = values[idx]
    return out


def sort_events(events: pd.DataFrame, tix: np.ndarray, at: np.ndarray) -> pd.DataFrame:
    """Attach ``tix``/``at_s`` and sort by ticket, time, the kind tie-break order and source order."""
    kind_rank = pd.Categorical(events["kind"], categories=list(EVENT_KINDS)).codes
    frame = pd.DataFrame({
        "tix": tix,
        "at_s": at,
        "kind_rank": kind_rank,
        "seq": events["seq"].to_numpy(dtype="int64", na_value=0),
        "kind": events["kind"].to_numpy(dtype=object),
        "value": _none_for_empty(events["value"]),
    })
    return frame.sort_values(["tix", "at_s", "kind_rank", "seq"], kind="stable", ignore_index=True)


def _none_for_empty(values: pd.Series) -> np.ndarray:
    text = values.astype("object")
    text = text.where(text.notna(), None)
    stripped = pd.Series(text, dtype="str").str.strip()
    return stripped.where(stripped.notna() & (stripped != ""), None).to_numpy(dtype=object)


def events_of(sorted_events: pd.DataFrame, kind: str) -> KindEvents:
    """The events of one kind from a frame made by ``sort_events``."""
    rows = sorted_events[sorted_events["kind"].to_numpy() == kind]
    return KindEvents(rows["tix"].to_numpy(), rows["at_s"].to_numpy(dtype="float64"),
                      rows["value"].to_numpy(dtype=object))


def changed_between_non_empty(events: KindEvents, n: int) -> np.ndarray:
    """Per ticket: did the value change from one non-empty value to a different non-empty one."""
    ne = events.non_empty()
    if len(ne) == 0:
        return np.zeros(n, dtype=bool)
    same_ticket = ne.tix[1:] == ne.tix[:-1]
    changed = same_ticket & (ne.value[1:] != ne.value[:-1])
    return np.bincount(ne.tix[1:][changed], minlength=n) > 0


@dataclass(frozen=True)
class StatusHistory:
    """What the status events of every ticket say (only meaningful where ``has_status``)."""

    has_status: np.ndarray
    last_status: np.ndarray
    first_resolved_at: np.ndarray
    last_resolved_at: np.ndarray
    reopen_count: np.ndarray
    segments: pd.DataFrame  # excluded segments: tix, start, end (end = inf for the current status)


def status_history(events: KindEvents, n: int, pause_statuses: tuple[str, ...]) -> StatusHistory:
    """Resolutions, reopens and the pause segments of every ticket (KPIS.md 2.2, 3)."""
    tix, at, value = events.tix, events.at, events.value
    same_as_prev = np.concatenate([[False], tix[1:] == tix[:-1]])
    prev = np.where(same_as_prev, np.roll(value, 1), None)
    prev_done = np.isin(prev, _DONE)
    is_resolution = (value == "RESOLVED") | ((value == "CLOSED") & ~prev_done)
    is_reopen = prev_done & ~np.isin(value, _NOT_REOPEN)
    last_status = events.last_value(n)
    currently_done = np.isin(last_status, _DONE)
    res = KindEvents(tix[is_resolution], at[is_resolution], value[is_resolution])
    return StatusHistory(
        has_status=events.has_any(n),
        last_status=last_status,
        first_resolved_at=np.where(currently_done, res.first_at(n), np.nan),
        last_resolved_at=np.where(currently_done, _per_ticket(res.tix, res.at, n, first=False, fill=np.nan), np.nan),
        reopen_count=np.bincount(tix[is_reopen], minlength=n),
        segments=_excluded_segments(tix, at, value, same_as_prev, pause_statuses),
    )


def _excluded_segments(tix, at, value, same_as_prev, pause_statuses) -> pd.DataFrame:
    """Status segments not counted in resolution time: pauses, and RESOLVED/CLOSED before a reopen."""
    next_same = np.concatenate([same_as_prev[1:], [False]])
    end = np.where(next_same, np.roll(at, -1), np.inf)
    works = (~np.isin(value, _NOT_REOPEN)).astype("int64")
    # works after i within the ticket = ticket total - inclusive running count
    running = _group_cumsum(tix, works)
    total = np.bincount(tix, weights=works, minlength=tix.max() + 1 if len(tix) else 0)
    later_reopen = (total[tix] - running) > 0 if len(tix) else np.zeros(0, dtype=bool)
    excluded = np.isin(value, np.array(pause_statuses, dtype=object)) | (np.isin(value, _DONE) & later_reopen)
    return pd.DataFrame({"tix": tix[excluded], "start": at[excluded], "end": end[excluded]})


def _group_cumsum(tix: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Inclusive running sum of ``values`` within each run of equal ``tix`` (input sorted by tix)."""
    if len(tix) == 0:
        return values
    csum = np.cumsum(values)
    starts = np.concatenate([[True], tix[1:] != tix[:-1]])
    offset = np.where(starts, csum - values, 0)
    return csum - np.maximum.accumulate(offset)


def paused_business_seconds(
    segments: pd.DataFrame,
    opened_at: np.ndarray,
    end_at: np.ndarray,
    calendar_names: np.ndarray,
    calendars: CalendarSet,
) -> np.ndarray:
    """Per ticket: business seconds of its excluded segments inside ``[opened_at, end_at)``."""
    n = len(opened_at)
    if len(segments) == 0:
        return np.zeros(n)
    tix = segments["tix"].to_numpy()
    start = np.maximum(segments["start"].to_numpy(), opened_at[tix])
    end = np.minimum(segments["end"].to_numpy(), end_at[tix])
    inside = end > start  # False where end_at is NaN
    seconds = np.zeros(len(tix))
    seconds[inside] = calendars.business_seconds(calendar_names[tix][inside], start[inside], end[inside])
    return np.bincount(tix, weights=seconds, minlength=n)
