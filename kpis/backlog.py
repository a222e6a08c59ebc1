"""The daily backlog (KPIS.md 4.2, ``kpi_backlog``), reconstructed from the history.

For every local date D of the reporting timezone, a ticket is *open at the end of D* (``E`` = the next
local midnight) when it was opened before ``E`` and its status at ``E`` (the last status event before
``E``) is not RESOLVED, CLOSED or CANCELLED. Nobody has to have run the job on that day.

How: a ticket's state (open, engineer, priority, paused) can only change at its own change points (its
opening, its status, assignee and priority events, and for tickets without status events the end of a
resolved one). Between two change points ``(t_k, t_k+1]`` every day end ``E`` sees the same state, the one
set by the events at or before ``t_k``. So each open stretch holds a range of consecutive day ends, and
the counts per (engineer, ticket type, priority) and day are running sums of +1 where a range (or the
part of it in an age bucket, overdue or paused) starts and -1 where it stops; the oldest opening is a
range minimum over the days (a sparse table of blocks of 2^k days). Nothing is expanded into ticket-days,
whose number grows with the history times the open tickets (74M for 1M tickets over a year).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from kpis.aggregate import dense_combinations, local_days
from kpis.backlog_candidates import may_be_open
from kpis.backlog_cells import AGE_COLUMNS, AGE_EDGES_DAYS, BacklogCells
from kpis.backlog_scope import GROUP, BacklogScope, ScopeCells
from kpis.calendar import epoch_seconds, local_midnight
from kpis.change_points import ChangePoints
from kpis.config import KpiSettings
from kpis.keys import ticket_positions
from kpis.schema import DONE_STATUSES, HISTORY_SEED, NO_PRIORITY, STATUSES, UNASSIGNED, rows_where
from kpis.status_time import FINAL_STATUSES, CodedHistory, coded_history
from kpis.step_search import StepSearch
from kpis.timeline import History, next_in_ticket
from kpis.vocabulary import MISSING, Vocabulary

SECONDS_PER_DAY = 86_400.0
#: The ticket and event columns the backlog reads (time in status reads no others): all the ops tables split.
TICKET_COLUMNS_READ = ("source", "ticket_id", "ticket_type", "opened_at", "status", "assignee", "priority",
                       "resolved_at", "closed_at")
EVENT_COLUMNS_READ = ("source", "ticket_id", "at", "kind", "value", "seq")
#: (group, day) cells counted at once: memory follows a run of days' grids, not the ticket-days.
CELLS_PER_CHUNK = 1 << 20


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
                as_of: pd.Timestamp, *, pauses: PauseSets | None = None, days: np.ndarray | None = None,
                history: CodedHistory | None = None, only: BacklogScope | None = None) -> pd.DataFrame:
    """``kpi_backlog`` rows of canonical ``tickets``/``events`` at ``as_of``.

    ``facts``: their ``ticket_facts`` (``excluded_reason`` and ``resolution_due_at`` are read; any order).
    ``pauses``: each ticket's pause statuses, aligned with ``tickets`` (default ``settings.pause_statuses``).
    ``days``: local dates (``datetime64[D]``) to compute; every day from the first opening to ``as_of``'s
    local date when None. Only their day ends are counted, and without ``history`` only the tickets that may
    be open at one of them are read (``kpis.backlog_candidates``): a night's few days cost little.
    ``history``: ``backlog_history(tickets, events)`` when already built (``events`` is then not read).
    ``only``: a night's scope; its days are counted (``days`` is not read) and only the rows it holds are
    returned, the same as those rows of the whole days (``kpis.backlog_scope``).
    """
    return backlog_cells(tickets, events, facts, settings, as_of, pauses=pauses, days=days, history=history,
                         only=only).frame(as_of)


def backlog_cells(tickets: pd.DataFrame, events: pd.DataFrame, facts: pd.DataFrame, settings: KpiSettings,
                  as_of: pd.Timestamp, *, pauses: PauseSets | None = None, days: np.ndarray | None = None,
                  history: CodedHistory | None = None, only: BacklogScope | None = None) -> BacklogCells:
    """``kpi_backlog``'s rows still as numbers (``kpis.backlog_cells``), as partitions hand them over."""
    days = days if only is None else only.days
    tickets = tickets.reset_index(drop=True)
    pauses = pauses or PauseSets.uniform(settings.pause_statuses, len(tickets))
    facts_row = _facts_rows(facts, tickets)
    is_counted = _counted(facts, facts_row)
    calendar = _day_calendar(tickets["opened_at"][is_counted], as_of, settings.reporting_timezone).only(days)
    if days is not None and history is None:  # a night's few days: only the tickets that can count on them
        keep, events_kept = may_be_open(tickets, events, calendar.ends)
        tickets = rows_where(tickets[list(TICKET_COLUMNS_READ)], keep).reset_index(drop=True)  # only the columns read
        events, pauses = rows_where(events[list(EVENT_COLUMNS_READ)], events_kept), pauses.take(keep)
        facts_row, is_counted = facts_row[keep], is_counted[keep]
    coded = history or backlog_history(tickets, events)
    columns = _TicketColumns.of(tickets, coded.vocabulary)
    stretches = _open_stretches(columns, coded, pauses, is_counted)
    counted = CountedTickets(columns.opened, coded.vocabulary.encode(tickets["ticket_type"]),
                             _resolution_due(facts, facts_row))
    spans, keys = _day_spans(stretches, counted, calendar.ends)
    n_groups, groups = len(keys[0]), _group_texts(keys, stretches.vocabulary)
    held = None if only is None else ScopeCells.of(only, calendar.days, groups)
    parts = [_grid_cells(_day_grid(chunk, n_groups, n_days), first,
                         None if held is None else held.run(first, n_days, n_groups))
             for first, n_days, chunk in _day_chunks(spans, n_groups, len(calendar.days))]
    return _stacked_cells(parts, calendar, groups) if parts else BacklogCells.empty()


@dataclass(frozen=True)
class DayCalendar:
    """The local dates a backlog covers and the UTC instant each one ends (its next local midnight).

    The dates need not be consecutive: a stretch holds the day positions whose ends lie in it, whichever
    days those are."""

    days: np.ndarray  # datetime64[D], ascending
    ends: np.ndarray  # float64 epoch seconds

    def only(self, days: np.ndarray | None) -> DayCalendar:
        """The calendar of those of ``days`` it covers (itself when ``days`` is None)."""
        if days is None:
            return self
        wanted = np.isin(self.days, np.asarray(days).astype("datetime64[D]"))
        return DayCalendar(self.days[wanted], self.ends[wanted])


def _day_calendar(opened_at: pd.Series, as_of: pd.Timestamp, timezone: str) -> DayCalendar:
    """Every local date from the first opening in ``opened_at`` to ``as_of``'s, with its end instant."""
    opened = opened_at.dropna()
    if opened.empty:
        return DayCalendar(np.empty(0, dtype="datetime64[D]"), np.empty(0))
    first = local_days(pd.Series([opened.min()]), timezone)[0]
    last = local_days(pd.Series([pd.Timestamp(as_of)]), timezone)[0]
    days = np.arange(first, last + np.timedelta64(1, "D"), dtype="datetime64[D]")
    ends = np.array([local_midnight(d.item() + timedelta(days=1), timezone).timestamp() for d in days],
                    dtype="float64")  # one per day, not per ticket
    return DayCalendar(days, ends)


def _facts_rows(facts: pd.DataFrame, tickets: pd.DataFrame) -> np.ndarray:
    """Each ticket's row in ``facts`` (-1: none)."""
    return ticket_positions(facts, tickets)


def _counted(facts: pd.DataFrame, facts_row: np.ndarray) -> np.ndarray:
    """Tickets the backlog counts: every one with facts that is not excluded as out of scope."""
    out_of_scope = facts["excluded_reason"].eq("out_of_scope").to_numpy(dtype=bool, na_value=False)
    return (facts_row >= 0) & ~np.append(out_of_scope, False)[facts_row]


def _resolution_due(facts: pd.DataFrame, facts_row: np.ndarray) -> np.ndarray:
    """Each ticket's ``resolution_due_at`` in epoch seconds (NaN when none)."""
    if "resolution_due_at" not in facts:
        return np.full(len(facts_row), np.nan)
    return np.append(epoch_seconds(facts["resolution_due_at"]), np.nan)[facts_row]  # -1 (no facts): the NaN


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


def backlog_history(tickets: pd.DataFrame, events: pd.DataFrame) -> CodedHistory:
    """The history the backlog reads (the statuses coded first, see ``_is_paused``); time in status can
    share it."""
    return coded_history(tickets, events, seed=HISTORY_SEED)


def _open_stretches(columns: _TicketColumns, coded: CodedHistory, pauses: PauseSets,
                    counted: np.ndarray) -> Stretches:
    """The stretches in which each ``counted`` ticket is open, with its engineer, priority and pause state."""
    history, vocabulary = coded.history, coded.vocabulary
    points = _change_points(history, columns)
    tix, at = points.tix, points.at
    status = points.values(0)
    has_status = history["status"].has_any(len(columns.opened))[tix]
    is_open = np.where(has_status, (status == MISSING) | ~vocabulary.is_one_of(status, FINAL_STATUSES),
                       columns.open_without_events(tix, at, vocabulary))
    end = next_in_ticket(tix, at)  # a stretch lasts until the ticket's next point, for ever after its last
    kept = np.flatnonzero(is_open & (end > at) & counted[tix])
    # the rest is read for the kept points only: as few arrays as long as all the points as can be
    kept_tix, start, end = tix[kept], at[kept], end[kept]
    status = np.where(has_status[kept], status[kept], columns.status[kept_tix])
    del has_status, is_open
    return Stretches(
        tix=kept_tix, start=start, end=end,
        engineer=_fallback(points.values(1)[kept], columns.assignee[kept_tix], vocabulary.code(UNASSIGNED)),
        priority=_fallback(points.values(2, non_empty=True)[kept], columns.priority[kept_tix],
                           vocabulary.code(NO_PRIORITY)),
        paused=_is_paused(status, pauses, kept_tix, vocabulary),
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
        done = vocabulary.is_one_of(status, sorted(DONE_STATUSES))
        never_done = ~vocabulary.is_one_of(status, FINAL_STATUSES)
        return never_done | (done & (at < self.resolved_end[tix]))


def _change_points(history: History, columns: _TicketColumns) -> ChangePoints:
    """Each ticket's opening and every later instant its state can change at, with the values the status
    (0), non-empty assignee (1) and priority (2) events hold at each (``kpis.change_points``)."""
    kinds = (history["status"], history["assignee"].non_empty(), history["priority"])
    no_status = ~history["status"].has_any(len(columns.opened))
    ends = np.flatnonzero(no_status & np.isfinite(columns.resolved_end))
    return ChangePoints.of(columns.opened, kinds, ends, columns.resolved_end[ends])


def _fallback(values: np.ndarray, column: np.ndarray, default: int) -> np.ndarray:
    out = np.where(values == MISSING, column, values)
    return np.where(out == MISSING, default, out)


def _is_paused(status: np.ndarray, pauses: PauseSets, tix: np.ndarray, vocabulary: Vocabulary) -> np.ndarray:
    """Whether ``status`` is one of the pause statuses of its ticket (``tix``): a lookup in a (pause set x
    status code) table, flattened; with one pause set for every ticket, the status alone picks the entry."""
    width = int(max(vocabulary.codes(list(STATUSES)).max(), 0)) + 1  # statuses were added first
    table = np.zeros((len(pauses.sets), width), dtype=bool)
    for i, statuses in enumerate(pauses.sets):
        codes = vocabulary.codes(list(statuses))
        table[i, codes[(codes >= 0) & (codes < width)]] = True
    valid = (status >= 0) & (status < width)
    entry = np.where(valid, status, 0)
    if len(pauses.sets) > 1:
        entry += pauses.index[tix] * width
    return valid & table.reshape(-1)[entry]


@dataclass(frozen=True)
class CountedTickets:
    """Per ticket (aligned with the tickets, so with ``tix``): opening (epoch s), ticket type code, resolution
    due (epoch s, NaN when none). Only counted tickets have stretches, so only theirs are read."""

    opened: np.ndarray
    ticket_type: np.ndarray
    due: np.ndarray


@dataclass(frozen=True)
class DaySpans:
    """The open stretches that hold a day end, with the group (engineer, ticket type, priority) each counts in
    and its ticket's opening, and the day positions it covers: ``bounds[:, 0]`` to ``bounds[:, HI]`` (the
    days whose end lies in it, ``[lo, hi)``), cut where the ticket reaches each age edge (``bounds[:, k]`` to
    ``bounds[:, k + 1]`` is age bucket k), and ``bounds[:, OVERDUE]``, the first day it counts as overdue."""

    group: np.ndarray
    bounds: np.ndarray  # (spans, len(AGE_COLUMNS) + 2) day positions
    opened: np.ndarray  # epoch s
    paused: np.ndarray

    def take(self, rows: np.ndarray) -> DaySpans:
        return DaySpans(self.group[rows], self.bounds[rows], self.opened[rows], self.paused[rows])


#: Columns of ``DaySpans.bounds``: the last day position of the span (exclusive), and where overdue starts.
HI, OVERDUE = len(AGE_COLUMNS), len(AGE_COLUMNS) + 1


def _day_spans(stretches: Stretches, tickets: CountedTickets, ends: np.ndarray) -> tuple[DaySpans, tuple]:
    """The stretches holding a day end, and each group's key codes (engineer, type, priority). Groups are
    numbered in the order of their decoded keys, so cells come out in the table's key order."""
    day_ends = StepSearch.of(ends)
    lo = day_ends.count(stretches.start, side="right")
    hi = day_ends.count(stretches.end, side="right")
    held = lo < hi
    tix = stretches.tix[held]
    keys = (stretches.engineer[held], tickets.ticket_type[tix], stretches.priority[held])
    ranks = stretches.vocabulary.ranks()
    group, firsts = dense_combinations([ranks[key] for key in keys], len(tix))  # in the texts' order: the table's
    lo, hi, opened = lo[held], hi[held], tickets.opened[tix]
    overdue_from = np.clip(day_ends.count(tickets.due[tix], side="right"), lo, hi)  # NaN due: never
    bounds = np.stack([lo, *(_age_reached(opened, lo, hi, edge, day_ends) for edge in AGE_EDGES_DAYS), hi,
                       overdue_from], axis=1)
    return DaySpans(group, bounds, opened, stretches.paused[held]), tuple(key[firsts] for key in keys)


def _day_chunks(spans: DaySpans, n_groups: int, n_days: int) -> Iterator[tuple[int, int, DaySpans]]:
    """Runs of consecutive days ``(first day, number of days, spans)`` of at most ``CELLS_PER_CHUNK``
    (group, day) cells (at least one day), each with the spans that cover it, cut to it and counted from its
    first day: the day grids of one run are what the counting holds in memory at once. Runs follow one
    another, so their cells come out in day order."""
    if not len(spans.group):
        return
    per_chunk = max(1, CELLS_PER_CHUNK // (2 * n_groups))  # (the oldest opening's table is ~log2(days) grids)
    if per_chunk >= n_days:
        yield 0, n_days, spans
        return
    for first in range(0, n_days, per_chunk):
        end = min(first + per_chunk, n_days)
        chunk = spans.take(np.flatnonzero((spans.bounds[:, 0] < end) & (spans.bounds[:, HI] > first)))
        yield first, end - first, DaySpans(chunk.group, np.clip(chunk.bounds, first, end) - first, chunk.opened,
                                           chunk.paused)


@dataclass(frozen=True)
class DayGrid:
    """Per (day, group) of a run of days, day-major (a grid's cells in the table's key order): the backlog's
    counts and the oldest opening (+inf: none), each a (days, groups) grid."""

    buckets: tuple[np.ndarray, ...]  # one grid per age bucket (AGE_COLUMNS)
    overdue: np.ndarray
    paused: np.ndarray
    oldest: np.ndarray

    @property
    def open_count(self) -> np.ndarray:
        total = self.buckets[0].copy()
        for bucket in self.buckets[1:]:
            total += bucket
        return total


def _day_grid(spans: DaySpans, n_groups: int, n_days: int) -> DayGrid:
    """Count a run's spans per (day, group) without expanding them into ticket-days: a span adds +1 at
    its first day and -1 after its last, and a running sum along the days gives the counts. Age bucket k
    ends where bucket k + 1 starts, so each bound's steps are counted once for both."""
    group, bounds, paused = spans.group, spans.bounds, spans.paused
    lo, hi = bounds[:, 0], bounds[:, HI]
    buckets, starts = [], _day_steps(group, lo, n_groups, n_days)
    for k in range(len(AGE_COLUMNS)):
        stops = _day_steps(group, bounds[:, k + 1], n_groups, n_days)
        buckets.append(_running_from_steps(starts - stops, n_groups, n_days))
        starts = stops  # the last bucket's stops are at hi
    return DayGrid(
        buckets=tuple(buckets),
        overdue=_running_from_steps(_day_steps(group, bounds[:, OVERDUE], n_groups, n_days) - starts, n_groups,
                                    n_days),
        paused=_running(group[paused], lo[paused], hi[paused], n_groups, n_days),
        oldest=_range_min(group, lo, hi, spans.opened, n_groups, n_days),
    )


def _age_reached(opened: np.ndarray, lo: np.ndarray, hi: np.ndarray, edge_days: float,
                 day_ends: StepSearch) -> np.ndarray:
    """Per span, the first day position (clipped to ``[lo, hi]``) whose end finds the ticket ``edge_days``
    old, the age being ``(day end - opened) / 86400 >= edge``: the first day end at or after ``opened + edge``.

    Openings and day ends are whole seconds (KPIS.md truncates timestamps to them; ``epoch_seconds`` floors),
    and so is every edge: the sums and differences are exact in float64, and the division's rounding never
    crosses the edge (a second less is ~1e-5 days, far above a float's step near 30)."""
    return np.clip(day_ends.count(opened + edge_days * SECONDS_PER_DAY, side="left"), lo, hi)


def _running(group: np.ndarray, start: np.ndarray, stop: np.ndarray, n_groups: int, n_days: int) -> np.ndarray:
    """How many ``[start, stop)`` day ranges of each group hold each day: a (n_days, n_groups) grid."""
    steps = _day_steps(group, start, n_groups, n_days) - _day_steps(group, stop, n_groups, n_days)
    return _running_from_steps(steps, n_groups, n_days)


def _day_steps(group: np.ndarray, day: np.ndarray, n_groups: int, n_days: int) -> np.ndarray:
    """How many of the ranges of each group start (or stop) at each day position 0..n_days, flat day-major."""
    return np.bincount(day * n_groups + group, minlength=(n_days + 1) * n_groups)


def _running_from_steps(steps: np.ndarray, n_groups: int, n_days: int) -> np.ndarray:
    """The (n_days, n_groups) grid of the running sums of flat day-major ``steps`` along the days."""
    return _summed_along_days(steps.reshape(n_days + 1, n_groups))[:n_days]


def _summed_along_days(grid: np.ndarray) -> np.ndarray:
    """The running sum of a (days, groups) grid along the days, in place: one vectorised step per day (each a
    contiguous row; numpy's ``cumsum`` along axis 0 strides down the columns, ~5x slower)."""
    for day in range(1, len(grid)):
        np.add(grid[day - 1], grid[day], out=grid[day])
    return grid


def _range_min(group: np.ndarray, lo: np.ndarray, hi: np.ndarray, values: np.ndarray, n_groups: int,
               n_days: int) -> np.ndarray:
    """Per (day, group): the smallest value of the group's ``[lo, hi)`` day ranges holding the day (+inf: none).

    A range of L days is covered by two blocks of 2^k days, k = floor(log2 L), one from each end. Each block
    (level k, first day, group) keeps the minimum of the ranges it covers; then, from the top level down, each
    block hands its minimum to the two blocks of half its days it is made of, until the blocks are days (a
    sparse table, written to rather than read): two ``minimum.at`` over the ranges, and a few passes over a
    (levels, days, groups) table. Ranges are never empty (``lo < hi``)."""
    level = np.frexp(hi - lo)[1] - 1  # floor(log2 L), exact for whole numbers
    levels = int(level.max(initial=0)) + 1
    table = np.full((levels, n_days, n_groups), np.inf)
    flat = table.reshape(-1)
    block = level * (n_days * n_groups) + group
    np.minimum.at(flat, block + lo * n_groups, values)
    np.minimum.at(flat, block + (hi - np.left_shift(1, level)) * n_groups, values)
    for k in range(levels - 1, 0, -1):
        fit, half = n_days - (1 << k) + 1, 1 << (k - 1)  # blocks of level k that lie inside the days
        for first in (0, half):
            below = table[k - 1, first:first + fit]
            np.minimum(below, table[k, :fit], out=below)
    return table[0]


def _grid_cells(grid: DayGrid, first: int, held: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One entry per (day, group) of a run of days from ``first`` with a ticket open at the day's end (and
    held by ``held``, a (days, groups) mask, when given): day positions, group numbers, counts and the oldest
    opening, ordered by day and then group."""
    counts = grid.open_count
    kept = counts > 0 if held is None else (counts > 0) & held
    day, group = np.nonzero(kept)
    return {
        "day": first + day, "group": group, "open_count": counts[kept],
        **{name: bucket[kept] for name, bucket in zip(AGE_COLUMNS, grid.buckets, strict=True)},
        "overdue_count": grid.overdue[kept], "paused_count": grid.paused[kept], "oldest": grid.oldest[kept],
    }


def _stacked_cells(parts: list[dict[str, np.ndarray]], calendar: DayCalendar, groups: pd.DataFrame) -> BacklogCells:
    """The runs' cells as one backlog in key order (day, engineer, ticket type, priority): each run's cells
    are in that order (``_day_spans`` numbers the groups in their texts' order) and the runs follow one
    another."""
    cells = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return BacklogCells(groups=groups, day=calendar.days[cells.pop("day")], group=cells.pop("group"),
                        oldest=cells.pop("oldest"), counts=cells)


def _group_texts(keys: tuple[np.ndarray, ...], vocabulary: Vocabulary) -> pd.DataFrame:
    """The groups' (engineer, ticket type, priority) texts, one row per group number."""
    return pd.DataFrame({name: vocabulary.decode(key) for name, key in zip(GROUP, keys, strict=True)})
