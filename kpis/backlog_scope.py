"""The part of the daily backlog (KPIS.md 4.2, ``kpi_backlog``) a night recomputes (DECISIONS.md D95, D98).

A night (``pipeline/backlog_days.py``) needs every row of its ``recent`` days and the rows of the ``cells``
(day, engineer, ticket type, priority) in which the changed tickets count differently; nothing else can
have moved. ``kpi_backlog`` counts whole days (a cell sums over all the tickets open in it), but it need not
turn every counted cell of those days into a row: ``ScopeCells`` marks, per run of days, the (day, group)
cells the scope holds, so only those become rows. They are exactly the rows ``BacklogScope.holds`` keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from kpis.keys import frame_positions, key_hits
from kpis.schema import TABLE_KEYS

#: A backlog row's key: the cell of one day and group.
CELL = list(TABLE_KEYS["kpi_backlog"])
#: The group part of a cell.
GROUP = CELL[1:]


@dataclass(frozen=True)
class BacklogScope:
    """Which backlog rows a night recomputes: every row of the ``recent`` days and the rows of ``cells``
    (the backlog's key columns); ``days`` are the local dates holding either (``datetime64[D]``, sorted)."""

    days: np.ndarray
    recent: np.ndarray  # datetime64[D]
    cells: pd.DataFrame

    def holds(self, rows: pd.DataFrame | pa.Table) -> np.ndarray:
        """Which backlog ``rows`` (a frame, or an Arrow table as stored) lie in the scope."""
        day = np.asarray(rows["day"]).astype("datetime64[D]")
        return np.isin(day, self.recent) | key_hits(rows.select(CELL) if isinstance(rows, pa.Table) else rows[CELL],
                                                    self.cells)


@dataclass(frozen=True)
class ScopeCells:
    """A scope's cells as positions in one backlog computation: the day positions whose every cell it
    holds (``recent``, a mask over the days), and each of its other cells' (day position, group number)."""

    recent: np.ndarray
    day: np.ndarray
    group: np.ndarray

    @classmethod
    def of(cls, scope: BacklogScope, days: np.ndarray, groups: pd.DataFrame) -> ScopeCells:
        """``scope``'s cells among ``days`` (the computation's local dates, ascending) and ``groups`` (its
        groups' engineer, ticket type and priority texts, one row per group number). A cell whose key misses
        a value matches nothing, as in ``BacklogScope.holds``."""
        days = np.asarray(days).astype("datetime64[D]")
        recent = np.isin(days, np.asarray(scope.recent).astype("datetime64[D]"))
        cells = scope.cells
        if not len(cells) or not len(days) or not len(groups):
            return cls(recent, np.empty(0, dtype="int64"), np.empty(0, dtype="int64"))
        group = frame_positions(groups, cells[GROUP])
        day_of_cell = np.asarray(cells["day"]).astype("datetime64[D]")
        position = np.searchsorted(days, day_of_cell)
        found = (group >= 0) & (position < len(days))
        found[found] = days[position[found]] == day_of_cell[found]
        return cls(recent, position[found], group[found])

    def run(self, first: int, n_days: int, n_groups: int) -> np.ndarray:
        """The (day, group) cells held among the days ``first`` .. ``first + n_days - 1``: an (n_days,
        n_groups) mask."""
        held = np.zeros((n_days, n_groups), dtype=bool)
        held[self.recent[first:first + n_days]] = True
        inside = (self.day >= first) & (self.day < first + n_days)
        held[self.day[inside] - first, self.group[inside]] = True
        return held
