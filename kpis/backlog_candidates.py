"""Which tickets can be open at one of a few day ends: the backlog of a night's days reads only those.

A night recomputes a few days of the backlog (``pipeline/backlog_days.py``), usually recent ones. Most
tickets of a long history were closed for good before the first of them: nothing about them changes
after it, and their last state is closed, so every later day end sees them closed. Telling them apart
needs no coded history (the cost of a backlog over the whole history): their opening, resolution and
event times, and the values of their last status events.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kpis.calendar import epoch_seconds
from kpis.keys import ticket_positions
from kpis.status_time import FINAL_STATUSES, LastStatus


def may_be_open(tickets: pd.DataFrame, events: pd.DataFrame, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per ticket: can it be open at one of ``ends`` (ascending epoch seconds)? And per event: is it one of
    such a ticket's?

    A ticket cannot when it opens at or after the last end, or when its opening, resolution and every event
    lie before the first end and its last state is closed: by its last status event (any of several at
    that instant not closing keeps it), or without status events by its status column. Any other ticket
    is kept: this only leaves out tickets the backlog would not count.
    """
    n = len(tickets)
    if not len(ends):
        return np.zeros(n, dtype=bool), np.zeros(len(events), dtype=bool)
    opened = epoch_seconds(tickets["opened_at"])
    tix = ticket_positions(tickets, events) if len(events) else np.zeros(0, dtype="int64")
    at = epoch_seconds(events["at"]) if len(events) else np.zeros(0)
    known = tix >= 0
    moves_late = _moves_from(tickets, opened, ends[0])
    moves_late[tix[known & (at >= ends[0])]] = True
    keep = (opened < ends[-1]) & (moves_late | _last_state_open(tickets, events, tix, at, known))
    return keep, known & keep[np.maximum(tix, 0)]


def _moves_from(tickets: pd.DataFrame, opened: np.ndarray, first_end: float) -> np.ndarray:
    """Per ticket: does its opening or resolution (``resolved_at``, ``closed_at``) lie at or after ``first_end``."""
    resolved, closed = epoch_seconds(tickets["resolved_at"]), epoch_seconds(tickets["closed_at"])
    return (opened >= first_end) | (resolved >= first_end) | (closed >= first_end)  # NaN: no


def _last_state_open(tickets: pd.DataFrame, events: pd.DataFrame, tix: np.ndarray, at: np.ndarray,
                     known: np.ndarray) -> np.ndarray:
    """Per ticket: may its last state be open? One of its status events at their latest instant does not
    close it (``LastStatus``), or it has none and its status column is not a closing one."""
    is_status = known & (events["kind"] == "status").to_numpy(dtype=bool, na_value=False) if len(events) else known
    values = events["value"][is_status] if len(events) else pd.Series([], dtype="str")
    last = LastStatus.of(tix[is_status], at[is_status], values, len(tickets))
    row_open = ~tickets["status"].isin(FINAL_STATUSES).to_numpy(dtype=bool, na_value=False)
    return np.where(last.has_status, last.open, row_open)
