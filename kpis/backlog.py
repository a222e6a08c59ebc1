"""The daily backlog (KPIS.md 4.2, ``kpi_backlog``), reconstructed from the history.

For every local date D of the reporting timezone, a ticket is *open at the end of D* (``E`` = the next
local midnight) when it was opened before ``E`` and its status at ``E`` (the last status event before
``E``) is not RESOLVED, CLOSED or CANCELLED. Nobody has to have run the job on that day.

How: a ticket's state (open, engineer, priority, paused) can only change at its own change points (its
opening, its status, assignee and priority events, and for tickets without status events the end of a
resolved one). Between two change points ``(t_k, t_k+1]`` every day end ``E`` sees the same state, the one
set by the events at or before ``t_k``. So each open stretch is expanded into the day ends it holds (one
row per open ticket-day, never per ticket and calendar day) and the rows are counted per (day, engineer,
ticket type, priority).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from kpis.aggregate import local_days
from kpis.calendar import epoch_seconds, from_epoch_seconds
from kpis.config import KpiSettings
from kpis.keys import positions, ticket_keys
from kpis.schema import (
    BACKLOG_COLUMNS,
    DONE_STATUSES,
    KPI_VERSION,
    STATUSES,
    UNASSIGNED,
    concat_frames,
    conform,
)
from kpis.status_time import FINAL_STATUSES, ticket_history
from kpis.timeline import History, KindEvents
from kpis.vocabulary import MISSING, Vocabulary

NO_PRIORITY = "(none)"
SECONDS_PER_DAY = 86_400.0
#: Lower edges of the age buckets after the first, in days (intervals closed at the lower end).
AGE_EDGES_DAYS = (1.0, 3.0, 7.0, 30.0)
AGE_COLUMNS = ("age_lt_1d", "age_1_3d", "age_3_7d", "age_7_30d", "age_ge_30d")
#: Days expanded and counted at once (memory follows the open ticket-days of one block).
DAYS_PER_BLOCK = 16


@dataclass(frozen=True)
class PauseSets:
    """Which statuses pause each ticket's clock: ``sets[index[i]]`` for ticket ``i`` (aligned with the tickets)."""

    sets: tuple[tuple[str, ...], ...]
    index: np.ndarray

    @classmethod
    def uniform(cls, statuses: tuple[str, ...], n: int) -> PauseSets:
        """Every ticket pauses in ``statuses``."""
        return cls((tuple(statuses),), np.zeros(n, dtype="int64"))

    def take(self, rows: np.ndarray) -> PauseSets:
        """The pause sets of the selected tickets (a mask or positions)."""
        return PauseSets(self.sets, self.index[rows])


def kpi_backlog(tickets: pd.DataFrame, events: pd.DataFrame, facts: pd.DataFrame, settings: KpiSettings,
                as_of: pd.Timestamp, *, pauses: PauseSets | None = None,
                days: np.ndarray | None = None) -> pd.DataFrame:
    """``kpi_backlog`` rows of canonical ``tickets``/``events`` at ``as_of``.

    ``facts``: their ``ticket_facts`` (``excluded_reason`` and ``resolution_due_at`` are read; any order).
    ``pauses``: each ticket's pause statuses, aligned with ``tickets`` (default ``settings.pause_statuses``).
    ``days``: local dates (``datetime64[D]``) to compute; every day from the first opening to ``as_of``'s
    local date when None.
    """
    tickets = tickets.reset_index(drop=True)
    pauses = pauses or PauseSets.uniform(settings.pause_statuses, len(tickets))
    calendar = _day_calendar(tickets, as_of, settings.reporting_timezone)
    facts_row = positions(ticket_keys(facts["source"], facts["ticket_id"]),
                          ticket_keys(tickets["source"], tickets["ticket_id"]))
    counted = _counted(facts, facts_row)
    due = _resolution_due(facts, facts_row)[counted]
    tickets, pauses = tickets[counted].reset_index(drop=True), pauses.take(counted)
    stretches = _open_stretches(tickets, events, pauses)
    wanted = calendar.wanted(days)
    counted = CountedTickets(epoch_seconds(tickets["opened_at"]), stretches.vocabulary.encode(tickets["ticket_type"]),
                             due)
    spans = _day_spans(stretches, calendar.ends)
    frames = [_backlog_frame(stretches, _expand(spans, wanted, block), counted, calendar, as_of)
              for block in _day_blocks(wanted)]
    return concat_frames(frames, BACKLOG_COLUMNS).sort_values(["day", "engineer", "ticket_type", "priority"],
                                                              ignore_index=True)


def _day_blocks(wanted: np.ndarray) -> list[tuple[int, int]]:
    """Ranges ``[first, end)`` of ``DAYS_PER_BLOCK`` day positions holding a wanted day: the open ticket-days
    are expanded and counted one block at a time, so memory follows a block, not the whole history."""
    starts = range(0, len(wanted), DAYS_PER_BLOCK)
    return [(d, d + DAYS_PER_BLOCK) for d in starts if wanted[d:d + DAYS_PER_BLOCK].any()]


@dataclass(frozen=True)
class DayCalendar:
    """The local dates a backlog covers and the UTC instant each one ends (its next local midnight)."""

    days: np.ndarray  # datetime64[D], ascending
    ends: np.ndarray  # float64 epoch seconds

    def wanted(self, days: np.ndarray | None) -> np.ndarray:
        """Which of ``self.days`` to compute (all when ``days`` is None)."""
        if days is None:
            return np.ones(len(self.days), dtype=bool)
        return np.isin(self.days, np.asarray(days).astype("datetime64[D]"))


def _day_calendar(tickets: pd.DataFrame, as_of: pd.Timestamp, timezone: str) -> DayCalendar:
    """Every local date from the first ticket's opening to ``as_of``'s, with its end instant."""
    opened = tickets["opened_at"].dropna()
    if opened.empty:
        return DayCalendar(np.empty(0, dtype="datetime64[D]"), np.empty(0))
    first = local_days(pd.Series([opened.min()]), timezone)[0]
    last = local_days(pd.Series([pd.Timestamp(as_of)]), timezone)[0]
    days = np.arange(first, last + np.timedelta64(1, "D"), dtype="datetime64[D]")
    tz = ZoneInfo(timezone)
    ends = np.array([_next_midnight(d.item(), tz) for d in days], dtype="float64")  # one per day, not per ticket
    return DayCalendar(days, ends)


def _next_midnight(day: date, tz: ZoneInfo) -> float:
    """The UTC instant of the local midnight that ends ``day`` (``zoneinfo`` with fold=0, as calendars do)."""
    following = datetime.combine(day + timedelta(days=1), datetime.min.time())
    return following.replace(tzinfo=tz).timestamp()


def _counted(facts: pd.DataFrame, facts_row: np.ndarray) -> np.ndarray:
    """Tickets the backlog counts: every one with facts that is not excluded as out of scope."""
    out_of_scope = facts["excluded_reason"].eq("out_of_scope").to_numpy(dtype=bool, na_value=False)
    return (facts_row >= 0) & ~np.append(out_of_scope, False)[facts_row]


def _resolution_due(facts: pd.DataFrame, facts_row: np.ndarray) -> np.ndarray:
    """Each ticket's ``resolution_due_at`` in epoch seconds (NaN when none)."""
    if "resolution_due_at" not in facts or not len(facts_row):
        return np.full(len(facts_row), np.nan)
    return epoch_seconds(facts["resolution_due_at"])[np.maximum(facts_row, 0)]


@dataclass(frozen=True)
class Stretches:
    """Stretches ``(start, end]`` of ticket time in which every day end sees the same open state."""

    tix: np.ndarray
    start: np.ndarray
    end: np.ndarray  # +inf for a ticket's last stretch
    engineer: np.ndarray  # vocabulary codes
    priority: np.ndarray
    paused: np.ndarray
    vocabulary: Vocabulary


def _open_stretches(tickets: pd.DataFrame, events: pd.DataFrame, pauses: PauseSets) -> Stretches:
    """The stretches in which each ticket is open, with its engineer, priority and pause state there."""
    vocabulary = Vocabulary()
    for text in (UNASSIGNED, NO_PRIORITY, *STATUSES):
        vocabulary.add(text)
    history = ticket_history(tickets, events, vocabulary)
    columns = _TicketColumns.of(tickets, vocabulary)
    tix, at = _change_points(history, columns)
    status = _values_at(history["status"], tix, at)
    has_status = history["status"].has_any(len(tickets))[tix]
    is_open = np.where(has_status, (status == MISSING) | ~np.isin(status, vocabulary.codes(FINAL_STATUSES)),
                       columns.open_without_events(tix, at, vocabulary))
    status = np.where(has_status, status, columns.status[tix])
    end = np.concatenate([np.where(tix[1:] == tix[:-1], at[1:], np.inf), [np.inf]]) if len(tix) else at
    keep = is_open & (end > at)
    return Stretches(
        tix=tix[keep], start=at[keep], end=end[keep],
        engineer=_fallback(_values_at(history["assignee"].non_empty(), tix, at), columns.assignee[tix],
                           vocabulary.code(UNASSIGNED))[keep],
        priority=_fallback(_values_at(history["priority"].non_empty(), tix, at), columns.priority[tix],
                           vocabulary.code(NO_PRIORITY))[keep],
        paused=_is_paused(status, pauses.index[tix], pauses.sets, vocabulary)[keep],
        vocabulary=vocabulary,
    )


@dataclass(frozen=True)
class _TicketColumns:
    """The ticket columns the backlog reads, as codes and epoch seconds."""

    opened: np.ndarray
    status: np.ndarray
    assignee: np.ndarray
    priority: np.ndarray
    resolved_end: np.ndarray  # resolved_at, else closed_at (NaN when neither)

    @classmethod
    def of(cls, tickets: pd.DataFrame, vocabulary: Vocabulary) -> _TicketColumns:
        resolved = epoch_seconds(tickets["resolved_at"])
        return cls(opened=epoch_seconds(tickets["opened_at"]), status=vocabulary.encode(tickets["status"]),
                   assignee=vocabulary.encode(tickets["assignee"]), priority=vocabulary.encode(tickets["priority"]),
                   resolved_end=np.where(np.isnan(resolved), epoch_seconds(tickets["closed_at"]), resolved))

    def open_without_events(self, tix: np.ndarray, at: np.ndarray, vocabulary: Vocabulary) -> np.ndarray:
        """Open by the status column: not done nor cancelled, or done but not yet at its resolution time."""
        status = self.status[tix]
        done = np.isin(status, vocabulary.codes(sorted(DONE_STATUSES)))
        never_done = ~np.isin(status, vocabulary.codes(FINAL_STATUSES))
        return never_done | (done & (at < self.resolved_end[tix]))


def _change_points(history: History, columns: _TicketColumns) -> tuple[np.ndarray, np.ndarray]:
    """Per ticket, sorted and distinct: its opening, then every later instant its state can change at."""
    kinds = [history["status"], history["assignee"].non_empty(), history["priority"]]
    n = len(columns.opened)
    no_status = ~history["status"].has_any(n)
    ends = np.flatnonzero(no_status & np.isfinite(columns.resolved_end))
    tix = np.concatenate([np.arange(n), *[k.tix for k in kinds], ends]).astype("int64")
    at = np.concatenate([columns.opened, *[k.at for k in kinds], columns.resolved_end[ends]])
    keep = np.isfinite(at) & (at >= columns.opened[tix])
    tix, at = tix[keep], at[keep]
    order = np.lexsort((at, tix))
    tix, at = tix[order], at[order]
    distinct = np.concatenate([[True], (tix[1:] != tix[:-1]) | (at[1:] != at[:-1])]) if len(tix) else tix.astype(bool)
    return tix[distinct], at[distinct]


def _values_at(events: KindEvents, tix: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For each query (ticket, instant): the value of the ticket's last event at or before it (-1: none)."""
    if not len(events) or not len(tix):
        return np.full(len(tix), MISSING, dtype="int64")
    base = min(float(events.at.min()), float(at.min()))
    span = int(max(float(events.at.max()), float(at.max())) - base) + 1
    keys = events.tix.astype("int64") * span + (events.at - base).astype("int64")
    queries = tix * span + (at - base).astype("int64")
    i = np.searchsorted(keys, queries, side="right") - 1
    ic = np.maximum(i, 0)
    hit = (i >= 0) & (events.tix[ic] == tix)
    return np.where(hit, events.value[ic], MISSING).astype("int64")


def _fallback(values: np.ndarray, column: np.ndarray, default: int) -> np.ndarray:
    out = np.where(values == MISSING, column, values)
    return np.where(out == MISSING, default, out)


def _is_paused(status: np.ndarray, pause_index: np.ndarray, sets: tuple[tuple[str, ...], ...],
               vocabulary: Vocabulary) -> np.ndarray:
    """Whether ``status`` is one of its ticket's pause statuses (a (pause set x status code) table)."""
    width = int(max(vocabulary.codes(list(STATUSES)).max(), 0)) + 1  # statuses were added first
    table = np.zeros((len(sets), width), dtype=bool)
    for i, statuses in enumerate(sets):
        codes = vocabulary.codes(list(statuses))
        table[i, codes[(codes >= 0) & (codes < width)]] = True
    valid = (status >= 0) & (status < width)
    return valid & table[pause_index, np.where(valid, status, 0)]


@dataclass(frozen=True)
class TicketDays:
    """One row per open ticket and day end: the stretch it belongs to and the day's position."""

    stretch: np.ndarray
    day: np.ndarray


def _day_spans(stretches: Stretches, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per stretch ``(start, end]``, the positions ``[lo, hi)`` of the days whose end lies inside it."""
    return np.searchsorted(ends, stretches.start, side="right"), np.searchsorted(ends, stretches.end, side="right")


def _expand(spans: tuple[np.ndarray, np.ndarray], wanted: np.ndarray, block: tuple[int, int]) -> TicketDays:
    """Every (stretch, day) with the day's end inside the stretch (``spans``, from ``_day_spans``), for the
    wanted days whose position lies in ``block`` = ``[first, end)``."""
    lo, hi = np.maximum(spans[0], block[0]), np.minimum(spans[1], block[1])
    count = np.maximum(hi - lo, 0)
    stretch = np.repeat(np.arange(len(count)), count)
    offset = np.arange(len(stretch)) - np.repeat(np.cumsum(count) - count, count)
    day = lo[stretch] + offset
    keep = wanted[day] if len(day) else np.zeros(0, dtype=bool)
    return TicketDays(stretch[keep], day[keep])


@dataclass(frozen=True)
class CountedTickets:
    """Per counted ticket (aligned with its ``tix``): opening (epoch s), ticket type code, resolution due (s)."""

    opened: np.ndarray
    ticket_type: np.ndarray
    due: np.ndarray


def _backlog_frame(stretches: Stretches, rows: TicketDays, tickets: CountedTickets, calendar: DayCalendar,
                   as_of: pd.Timestamp) -> pd.DataFrame:
    """Count the open ticket-days per (day, engineer, ticket type, priority)."""
    vocabulary = stretches.vocabulary
    tix = stretches.tix[rows.stretch]
    end = calendar.ends[rows.day]
    opened, due = tickets.opened[tix], tickets.due
    keys = (rows.day, stretches.engineer[rows.stretch], tickets.ticket_type[tix], stretches.priority[rows.stretch])
    group, firsts = _groups(keys)
    size = len(firsts)
    age_days = (end - opened) / SECONDS_PER_DAY
    buckets = np.bincount(group * len(AGE_COLUMNS) + np.searchsorted(AGE_EDGES_DAYS, age_days, side="right"),
                          minlength=size * len(AGE_COLUMNS)).reshape(size, len(AGE_COLUMNS))
    frame = pd.DataFrame({
        "day": calendar.days[rows.day[firsts]].astype("datetime64[s]"),
        "engineer": vocabulary.decode(keys[1][firsts]),
        "ticket_type": vocabulary.decode(keys[2][firsts]),
        "priority": vocabulary.decode(keys[3][firsts]),
        "open_count": np.bincount(group, minlength=size),
        **{name: buckets[:, i] for i, name in enumerate(AGE_COLUMNS)},
        "oldest_opened_at": from_epoch_seconds(_group_min(group, opened, size)),
        "overdue_count": np.bincount(group, weights=due[tix] < end, minlength=size).astype("int64"),
        "paused_count": np.bincount(group, weights=stretches.paused[rows.stretch], minlength=size).astype("int64"),
    })
    frame["as_of"] = pd.Timestamp(as_of).tz_convert("UTC")
    frame["kpi_version"] = KPI_VERSION
    return conform(frame, BACKLOG_COLUMNS).sort_values(["day", "engineer", "ticket_type", "priority"],
                                                       ignore_index=True)


def _groups(keys: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A group number per row for the distinct key tuples, and one row of each group."""
    if not len(keys[0]):
        return np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64")
    combined = np.zeros(len(keys[0]), dtype="int64")
    for key in keys:  # small non-negative ranges (day positions of a block, vocabulary codes): no hashing
        key = key.astype("int64")
        low = int(key.min())
        combined = combined * (int(key.max()) - low + 1) + (key - low)
    _, firsts, group = np.unique(combined, return_index=True, return_inverse=True)
    return group.ravel(), firsts


def _group_min(group: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """The smallest value of each group (groups ``0 .. size - 1``, each with a row); a hash aggregation, no sort."""
    if not size:
        return values[:0]
    return pd.Series(values).groupby(group, sort=True).min().to_numpy(dtype=values.dtype)
