"""Which computed rows differ from the stored ones: a nightly run writes only those.

Rows are matched on their table's key; a matched row counts as changed when any compared column
differs (nulls equal nulls, everything else by value). ``as_of`` is not compared: a row whose numbers
did not move keeps the ``as_of`` of the run that last changed it (DECISIONS.md D20).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kpis.keys import frame_positions

IGNORED = ("as_of",)


@dataclass(frozen=True)
class RowChanges:
    """What to write to make the stored rows equal the new ones."""

    rows: pd.DataFrame  # rows of ``new`` that are new or differ from their stored row
    before: pd.DataFrame  # the stored versions of the changed rows (those that had one)
    gone: pd.DataFrame  # key columns of stored rows that have no row in ``new``


def row_changes(new: pd.DataFrame, stored: pd.DataFrame, key: list[str]) -> RowChanges:
    """Compare ``new`` with ``stored`` (same columns and dtypes) row by row on ``key``."""
    new_pos, stored_pos = _align(new[key], stored[key])
    matched = (new_pos >= 0) & (stored_pos >= 0)
    differs = np.ones(len(new_pos), dtype=bool)
    differs[matched] = ~_same_rows(new, stored, new_pos[matched], stored_pos[matched])
    write = (new_pos >= 0) & differs
    return RowChanges(
        rows=new.take(np.sort(new_pos[write])).reset_index(drop=True),
        before=stored.take(np.sort(stored_pos[write & matched])).reset_index(drop=True),
        gone=stored[key].take(np.sort(stored_pos[new_pos < 0])).reset_index(drop=True),
    )


def _align(new_keys: pd.DataFrame, stored_keys: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of positions (new, stored) with equal keys; -1 on the side that has no such key."""
    stored_of_new = frame_positions(stored_keys, new_keys)
    matched = np.zeros(len(stored_keys), dtype=bool)
    matched[stored_of_new[stored_of_new >= 0]] = True
    unmatched_stored = np.flatnonzero(~matched)
    return (np.concatenate([np.arange(len(new_keys)), np.full(len(unmatched_stored), -1)]),
            np.concatenate([stored_of_new, unmatched_stored]))


def _same_rows(new: pd.DataFrame, stored: pd.DataFrame, new_pos: np.ndarray, stored_pos: np.ndarray) -> np.ndarray:
    same = np.ones(len(new_pos), dtype=bool)
    every_new = _every_row(new_pos, len(new))  # as when every new row has a stored one: no copy of them
    for column in new.columns:
        if column not in IGNORED:
            same &= _same_values(new[column] if every_new else new[column].take(new_pos),
                                 stored[column].take(stored_pos))
    return same


def _every_row(positions: np.ndarray, n: int) -> bool:
    """Whether ``positions`` are 0..n-1 in order."""
    return len(positions) == n and bool((positions == np.arange(n)).all())


def _same_values(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality where two nulls (NaN, NaT, NA) are equal too."""
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    equal = (a == b).fillna(False).to_numpy(dtype=bool)
    return equal | (a.isna().to_numpy() & b.isna().to_numpy())
