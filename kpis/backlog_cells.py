"""The daily backlog (KPIS.md 4.2) while it is still numbers, and how the backlogs of partitions combine.

``kpis.backlog`` counts a set of tickets' backlog as one entry per (day, group) cell, a group being an
(engineer, ticket type, priority) whose texts are kept once, apart from the cells. A partition hands its
cells over in this form (DECISIONS.md D109): the driver adds the partitions' counts up and takes the oldest
of their openings cell by cell, on integer keys, and decodes the texts of the combined cells once. Adding up
frames instead decoded every partition's texts and then grouped them again (9 s of the 10M run's 29 s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kpis.aggregate import dense_combinations
from kpis.backlog_scope import GROUP
from kpis.calendar import from_epoch_seconds
from kpis.schema import BACKLOG_COLUMNS, concat_frames, conform, empty_frame, stamp_run
from kpis.vocabulary import Vocabulary

#: Lower edges of the age buckets after the first, in days (intervals closed at the lower end).
AGE_EDGES_DAYS = (1.0, 3.0, 7.0, 30.0)
AGE_COLUMNS = ("age_lt_1d", "age_1_3d", "age_3_7d", "age_7_30d", "age_ge_30d")
#: The backlog columns that add up across disjoint sets of tickets.
SUMMED_COLUMNS = ("open_count", *AGE_COLUMNS, "overdue_count", "paused_count")


@dataclass(frozen=True)
class BacklogCells:
    """A backlog's rows as numbers, in key order (day, then group): per cell its day, its group (a row of
    ``groups``, whose texts are in key order) and its ``SUMMED_COLUMNS`` counts and oldest opening."""

    groups: pd.DataFrame  # the GROUP columns' texts, one row per group number
    day: np.ndarray  # datetime64[D]
    group: np.ndarray  # int64
    counts: dict[str, np.ndarray]  # int64 per SUMMED_COLUMNS name
    oldest: np.ndarray  # epoch seconds

    @classmethod
    def empty(cls) -> BacklogCells:
        """A backlog without rows."""
        groups = empty_frame(BACKLOG_COLUMNS)[GROUP]
        return cls(groups, np.empty(0, dtype="datetime64[D]"), np.empty(0, dtype="int64"),
                   {name: np.empty(0, dtype="int64") for name in SUMMED_COLUMNS}, np.empty(0))

    def __len__(self) -> int:
        return len(self.day)

    def frame(self, as_of: pd.Timestamp) -> pd.DataFrame:
        """The ``kpi_backlog`` rows of the cells, stamped with the run's ``as_of``."""
        if not len(self):
            return conform(empty_frame(BACKLOG_COLUMNS), BACKLOG_COLUMNS)
        frame = pd.DataFrame({
            "day": self.day.astype("datetime64[s]"),
            **{name: self.groups[name].array.take(self.group) for name in GROUP},
            "oldest_opened_at": from_epoch_seconds(self.oldest),
            **self.counts,
        })
        return conform(stamp_run(frame, as_of), BACKLOG_COLUMNS)


def combine_backlogs(parts: list[BacklogCells]) -> BacklogCells:
    """One backlog from the backlogs of disjoint sets of tickets (partitions): per (day, engineer, ticket
    type, priority) the counts add up and the oldest opening is the oldest of the parts'.

    Each part's groups are numbered in one numbering of all the parts' groups, in key order, so each part's
    cell keys (day x groups + group) ascend; a stable sort merges those runs, and the cells of one key are
    added up with ``reduceat``.
    """
    parts = [part for part in parts if len(part)]
    if len(parts) <= 1:
        return parts[0] if parts else BacklogCells.empty()
    groups, numbers = _all_groups([part.groups for part in parts])
    width = len(groups)
    keys = np.concatenate([part.day.astype("int64") * width + number[part.group]
                           for part, number in zip(parts, numbers, strict=True)])
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = np.flatnonzero(np.append(True, keys[1:] != keys[:-1]))
    keys = keys[starts]

    def merged(values: list[np.ndarray], reduce: np.ufunc) -> np.ndarray:
        return reduce.reduceat(np.concatenate(values)[order], starts)

    return BacklogCells(
        groups, (keys // width).astype("datetime64[D]"), keys % width,
        {name: merged([part.counts[name] for part in parts], np.add) for name in SUMMED_COLUMNS},
        merged([part.oldest for part in parts], np.minimum),
    )


def _all_groups(groups: list[pd.DataFrame]) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """The distinct groups of all ``groups`` frames in key order (texts in code point order, missing last, as
    ``Vocabulary.ranks`` orders them), and per frame each of its rows' number among them."""
    stacked = concat_frames(groups, {name: BACKLOG_COLUMNS[name] for name in GROUP})
    vocabulary = Vocabulary()
    codes = [vocabulary.encode(stacked[name]) for name in GROUP]
    ranks = vocabulary.ranks()  # after every text is in
    number, firsts = dense_combinations([ranks[column] for column in codes], len(stacked))
    ends = np.cumsum([len(frame) for frame in groups])
    return stacked.take(firsts).reset_index(drop=True), np.split(number, ends[:-1])
