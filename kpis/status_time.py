"""Time in status (KPIS.md 3.1, ``ticket_status_time``): where each ticket waited, and for how long.

A ticket's status segments run from each status event to the ticket's next status event. The last
segment runs to ``as_of`` while its status is open (not RESOLVED, CLOSED or CANCELLED) and its event lies
before ``as_of``; otherwise it is left out (a finished ticket does not keep counting). Segments are summed
per (ticket, status) in calendar seconds and in business seconds on the ticket's own calendar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from kpis.aggregate import dense_groups
from kpis.calendar import CalendarColumn, CalendarSet, epoch_seconds
from kpis.keys import key_order, ticket_positions
from kpis.schema import DONE_STATUSES, STATUS_TIME_COLUMNS, conform, stamp_run
from kpis.timeline import History, KindEvents, next_in_ticket, sorted_history
from kpis.vocabulary import Vocabulary

#: Statuses whose last segment does not run on to ``as_of``.
FINAL_STATUSES = (*sorted(DONE_STATUSES), "CANCELLED")


def ticket_history(tickets: pd.DataFrame, events: pd.DataFrame, vocabulary: Vocabulary) -> History:
    """The events of ``tickets`` sorted and split by kind, with ``tix`` = the ticket's row in ``tickets``.

    Events of tickets not in ``tickets`` are ignored.
    """
    if not len(events):
        return sorted_history(events, np.empty(0, dtype="int64"), np.empty(0), vocabulary)
    tix = ticket_positions(tickets, events)
    known = tix >= 0
    events = events[known] if not known.all() else events
    return sorted_history(events, tix[known].astype("int64"), epoch_seconds(events["at"]), vocabulary)


@dataclass(frozen=True)
class CodedHistory:
    """``ticket_history`` of a tickets frame with the vocabulary its values are coded in: built once, it
    serves both the time in status and the backlog of the same tickets."""

    history: History
    vocabulary: Vocabulary


def coded_history(tickets: pd.DataFrame, events: pd.DataFrame, seed: tuple[str, ...] = ()) -> CodedHistory:
    """The history of ``tickets`` (their rows as ``tix``) in a new vocabulary that codes ``seed`` first."""
    vocabulary = Vocabulary()
    for text in seed:
        vocabulary.add(text)
    return CodedHistory(ticket_history(tickets, events, vocabulary), vocabulary)


@dataclass(frozen=True)
class LastStatus:
    """Per ticket ``0..n-1``: whether it has a status event, the instant of its latest ones (-inf: none),
    and whether one of those latest events leaves it open (a missing value does; FINAL_STATUSES close)."""

    has_status: np.ndarray
    latest_at: np.ndarray  # epoch seconds
    open: np.ndarray

    @classmethod
    def of(cls, tix: np.ndarray, at: np.ndarray, value: pd.Series, n: int) -> LastStatus:
        """From status events: their ticket numbers, epoch seconds and values."""
        closing = value.isin(FINAL_STATUSES).to_numpy(dtype=bool, na_value=False)
        latest = np.full(n, -np.inf)
        np.maximum.at(latest, tix, at)
        still_open = np.zeros(n, dtype=bool)
        still_open[tix[(at == latest[tix]) & ~closing]] = True
        has_status = np.zeros(n, dtype=bool)
        has_status[tix] = True
        return cls(has_status, latest, still_open)


def segment_ends(status: KindEvents, as_of_s: float, vocabulary: Vocabulary) -> np.ndarray:
    """Where each status segment ends: the ticket's next status event, else ``as_of`` for an open status
    whose event lies before it, else its own start (a segment of length 0: left out)."""
    if not len(status):
        return np.empty(0)
    still_open = ~vocabulary.is_one_of(status.value, FINAL_STATUSES) & (status.at < as_of_s)
    return next_in_ticket(status.tix, status.at, np.where(still_open, as_of_s, status.at))


def ticket_status_time(tickets: pd.DataFrame, events: pd.DataFrame, calendars: CalendarSet,
                       calendar: CalendarColumn, as_of: pd.Timestamp, *,
                       history: CodedHistory | None = None) -> pd.DataFrame:
    """``ticket_status_time`` rows for every ticket of ``tickets`` that has status events, in key order.

    ``calendar``: each ticket's calendar (its resolution policy's, else the default), aligned with ``tickets``.
    ``history``: ``coded_history(tickets, events)`` when already built (``events`` is then not read).
    """
    history = history or coded_history(tickets, events)
    vocabulary, status = history.vocabulary, history.history["status"]
    group, first = _ticket_status_groups(tickets, vocabulary, status)
    as_of_s = float(pd.Timestamp(as_of).timestamp())
    sums = _status_sums(status, group, len(first), calendars, calendar.take(status.tix), as_of_s, vocabulary)
    # the per-segment arrays are gone before the rows are built, whose columns reuse their pages (D117)
    del group
    return _status_time_frame(tickets, vocabulary, status, first, sums, as_of)


def _status_sums(status: KindEvents, group: np.ndarray, n: int, calendars: CalendarSet,
                 calendar: CalendarColumn, as_of_s: float, vocabulary: Vocabulary) -> dict[str, np.ndarray]:
    """Per (ticket, status) group 0..n-1 (each segment's ``group``): its entries, and its segments' calendar
    and business seconds summed (int64). ``calendar``: each segment's calendar."""
    end = segment_ends(status, as_of_s, vocabulary)
    business_s = calendars.business_seconds(calendar, status.at, end) if len(status) else end.copy()
    business_sum = _whole(np.bincount(group, weights=business_s, minlength=n))
    del business_s
    calendar_s = np.subtract(end, status.at, out=end)  # the ends are not read again
    return {"entries": np.bincount(group, minlength=n).astype("int64", copy=False),
            "calendar_s": _whole(np.bincount(group, weights=calendar_s, minlength=n)), "business_s": business_sum}


def _whole(seconds: np.ndarray) -> np.ndarray:
    """Sums of whole seconds as int64: exact in float64 whatever the order of the segments, rounded in place
    only against float noise."""
    seconds = seconds.astype("float64", copy=False)  # bincount of no segments gives int64
    return np.rint(seconds, out=seconds).astype("int64")


def _ticket_status_groups(tickets: pd.DataFrame, vocabulary: Vocabulary,
                          status: KindEvents) -> tuple[np.ndarray, np.ndarray]:
    """Each segment's (ticket, status) group, numbered in the table's key order (source, ticket_id, status
    text), and one segment of each group: the rank key (ticket rank x statuses + status rank) spans about as
    many values as there are segments, so a lookup table numbers it, with no sort and no string per row."""
    if not len(status):
        return np.empty(0, dtype="int64"), np.empty(0, dtype="int64")
    status_rank, n_statuses = _status_ranks(vocabulary, status.value)
    key = _ticket_ranks(tickets, status.tix)[status.tix]
    key *= n_statuses
    key += status_rank[status.value + 1]
    group, distinct = dense_groups(key)
    first = np.empty(len(distinct), dtype="int64")
    first[group] = np.arange(len(key))  # any segment of a group names its ticket and status
    return group, first


def _ticket_ranks(tickets: pd.DataFrame, tix: np.ndarray) -> np.ndarray:
    """Per ticket row, its rank by (source, ticket_id) among the tickets in ``tix`` (sorted; others: 0).
    Arrow ranks them: no Python string per ticket."""
    present = tix[np.concatenate([[True], tix[1:] != tix[:-1]])]
    by_key = key_order([pa.array(tickets[name].array.take(present), from_pandas=True)
                        for name in ("source", "ticket_id")])
    ranks = np.zeros(len(tickets), dtype="int64")
    ranks[present[by_key]] = np.arange(len(present))
    return ranks


def _status_ranks(vocabulary: Vocabulary, codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Per status code + 1 (codes run from -1), its rank by text (missing last) among ``codes``' values; and
    how many there are."""
    present = np.unique(codes)
    texts = vocabulary.decode(present).tolist()
    by_text = sorted(range(len(present)), key=lambda i: (pd.isna(texts[i]), str(texts[i])))
    ranks = np.zeros(int(present.max(initial=0)) + 2, dtype="int64")
    ranks[present[by_text] + 1] = np.arange(len(present))
    return ranks, len(present)


def _status_time_frame(tickets: pd.DataFrame, vocabulary: Vocabulary, status: KindEvents, first: np.ndarray,
                       sums: dict[str, np.ndarray], as_of: pd.Timestamp) -> pd.DataFrame:
    rows = status.tix[first]
    frame = pd.DataFrame({
        "source": tickets["source"].array.take(rows),  # Arrow takes: no Python string per row
        "ticket_id": tickets["ticket_id"].array.take(rows),
        "status": vocabulary.decode(status.value[first]).array,
        "entries": sums["entries"], "calendar_s": sums["calendar_s"], "business_s": sums["business_s"],
    }, copy=False)
    return conform(stamp_run(frame, as_of), STATUS_TIME_COLUMNS)
