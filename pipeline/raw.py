"""The raw layer (Parquet ``raw_tickets`` / ``raw_events``) and how a run's reads merge into it.

Tickets (DECISIONS.md D17): per (source, ticket_id) the copy with the newest ``updated_at`` wins, also
against the stored copy: a copy older than the stored one is *superseded* (never written), a copy as old
as the stored one replaces it when its content differs (a *conflict*, the later read wins) and is
superseded silently when it is the same. A source read again because its mapping changed is no
competitor of its own stored copies: its new reading replaces them (D51).

Events (D49): an event is known by its identity. Where the source gives its own id of a change
(``event_id``: an audit, changelog or snapshot key), two events with the same id are one. Otherwise a
ticket's history is a multiset of (source, ticket_id, at, kind, value, actor): an identity found k times
in the stored history and m times in one read is there max(k, m) times after the merge. Each file (each
read) counts on its own, so a history that two exports both hold is one history, and a change that
returns within one timestamp (A -> B -> A) keeps all three events. An event with an id and one without
(stored before the source gave ids) that share the identity and its occurrence are one change too.
Kept events keep their ``seq``; new ones sort after every stored event and after earlier reads' (each
read owns a ``seq`` range, see ``ReadEvents``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kpis.keys import frame_positions, key_hits
from kpis.schema import rows_where
from pipeline.changes import row_changes

__all__ = ["EVENT_IDENTITY", "KEY", "Merged", "RawLayer", "ReadEvents", "TicketMerge", "merge_events",
           "merge_tickets", "stacked"]

KEY = ["source", "ticket_id"]
EVENT_IDENTITY = ["source", "ticket_id", "at", "kind", "value", "actor"]
_ID_IDENTITY = ["source", "ticket_id", "event_id"]


@dataclass(frozen=True)
class ReadEvents:
    """A run's validated events and the read (file, REST pull) each came from.

    Reads own disjoint ``seq`` ranges in read order: read i (from 1) holds
    ``read_starts[i-1] <= seq < read_starts[i]``.
    """

    events: pd.DataFrame
    read_starts: np.ndarray  # int64, ascending: the first seq of each read

    def reads(self) -> np.ndarray:
        """Each event's read, numbered from 1 (0 is the stored history)."""
        seq = self.events["seq"].to_numpy(dtype="int64")
        return np.searchsorted(self.read_starts, seq, side="right").astype("int64")


@dataclass(frozen=True)
class TicketMerge:
    """A run's ticket copies against the stored ones."""

    used: pd.DataFrame  # copies that go into the raw layer: new tickets, newer or conflicting copies
    superseded: pd.DataFrame  # source, ticket_id of the copies a stored one supersedes
    conflicts: pd.DataFrame  # source, ticket_id of the copies that replaced a stored one of the same updated_at


@dataclass(frozen=True)
class Merged:
    """The raw layer after this run: every ticket and event, and what changed."""

    tickets: pd.DataFrame
    events: pd.DataFrame
    changed_keys: pd.DataFrame  # (source, ticket_id) with a ticket copy used or a new event
    changed_events: pd.DataFrame  # the whole merged history of those tickets
    ticket_merge: TicketMerge
    previous: RawLayer  # the layer before this run: what the stored tables were computed from


@dataclass(frozen=True)
class RawLayer:
    """The canonical input kept from earlier runs."""

    tickets: pd.DataFrame
    events: pd.DataFrame

    def merge(self, tickets: pd.DataFrame, events: ReadEvents, reread: frozenset[str] = frozenset()) -> Merged:
        """This run's ``tickets`` (one copy per key) and ``events`` merged into the stored layer.

        ``reread``: sources read again from the start because their mapping changed; their reading
        replaces their stored copies, and the stored histories of the tickets it has events of.
        """
        tickets_merge = merge_tickets(self.tickets, tickets, reread)
        touched = events.events[KEY].drop_duplicates(ignore_index=True)
        replaced = touched[touched["source"].isin(list(reread)).to_numpy()]
        stored = _without(_only(self.events, touched), replaced)
        history, is_new = merge_events(stored, events, _next_seq(self.events))
        used = tickets_merge.used[KEY]
        changed = pd.concat([used, history.loc[is_new, KEY], replaced], ignore_index=True).drop_duplicates(
            ignore_index=True)
        changed_events = stacked([_only(history, changed), _without(_only(self.events, changed), touched)])
        return Merged(
            tickets=stacked([_without(self.tickets, used), tickets_merge.used]),
            events=stacked([_without(self.events, changed), changed_events]),
            changed_keys=changed, changed_events=changed_events, ticket_merge=tickets_merge, previous=self)


# --- tickets ------------------------------------------------------------------------------------------

def merge_tickets(stored: pd.DataFrame, pulled: pd.DataFrame, reread: frozenset[str] = frozenset()) -> TicketMerge:
    """Which of ``pulled`` (one copy per key) replace their stored copy (see the module docstring)."""
    at = _stored_positions(stored, pulled)
    matched = at >= 0
    new_time, old_time = _times(pulled), np.full(len(pulled), np.iinfo("int64").min)
    old_time[matched] = _times(stored)[at[matched]]
    same = np.zeros(len(pulled), dtype=bool)
    candidates = matched & ((new_time == old_time) | pulled["source"].isin(list(reread)).to_numpy())
    same[candidates] = _same_content(pulled[candidates], stored.iloc[at[candidates]])
    is_reread = pulled["source"].isin(list(reread)).to_numpy()
    tie = matched & (new_time == old_time) & ~same & ~is_reread
    use = ~matched | (new_time > old_time) | tie | (is_reread & ~same)
    return TicketMerge(used=pulled[use].reset_index(drop=True),
                       superseded=pulled.loc[~use, KEY].reset_index(drop=True),
                       conflicts=pulled.loc[tie, KEY].reset_index(drop=True))


def _stored_positions(stored: pd.DataFrame, pulled: pd.DataFrame) -> np.ndarray:
    """For each pulled copy, the position of its ticket's stored copy (-1: new). The stored keys are first
    narrowed column by column (``key_hits``): a night's few thousand copies against a million stored ones."""
    candidates = np.flatnonzero(key_hits(stored[KEY], pulled[KEY]))
    if not len(candidates):
        return np.full(len(pulled), -1, dtype="int64")
    found = frame_positions(stored[KEY].iloc[candidates], pulled[KEY])
    return np.where(found >= 0, candidates[np.maximum(found, 0)], -1)


def _times(tickets: pd.DataFrame) -> np.ndarray:
    """``updated_at`` as integers; a missing one is the smallest (the oldest copy)."""
    return pd.DatetimeIndex(tickets["updated_at"]).asi8


def _same_content(new: pd.DataFrame, old: pd.DataFrame) -> np.ndarray:
    """Row by row: does ``new`` equal ``old`` (aligned, one row per key) in every column."""
    new, old = new.reset_index(drop=True), old.reset_index(drop=True)
    differ = row_changes(new, old, KEY).rows
    return ~key_hits(new[KEY], differ[KEY])


# --- events -------------------------------------------------------------------------------------------

def merge_events(stored: pd.DataFrame, read: ReadEvents, next_seq: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The union of ``stored`` (the stored history of the tickets read) and ``read``, each change once.

    Returns (the merged history, which of its rows are new). New events' ``seq`` is moved past
    ``next_seq`` so they sort after every stored event.
    """
    seq = read.events["seq"]
    new = read.events.assign(seq=pd.array(seq.to_numpy(dtype="int64") + next_seq, dtype=seq.dtype))  # as stored
    frame = stacked([stored, new])
    reads = np.concatenate([np.zeros(len(stored), dtype="int64"), read.reads()])
    keep = _first_of_each_change(frame, reads)
    return rows_where(frame, keep).reset_index(drop=True), (reads > 0)[keep]


def _first_of_each_change(frame: pd.DataFrame, reads: np.ndarray) -> np.ndarray:
    """The rows to keep: the first of each source id, then the first of each (identity, occurrence)."""
    has_id = frame["event_id"].notna().to_numpy()
    keep = np.ones(len(frame), dtype=bool)
    keep[has_id] = ~frame.loc[has_id, _ID_IDENTITY].duplicated().to_numpy()
    several = keep & _in_several_reads(frame, reads, keep)
    if several.any():
        keep[several] = _first_occurrences(frame[several], reads[several], has_id[several])
    return keep


def _in_several_reads(frame: pd.DataFrame, reads: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows of tickets whose ``rows`` come from more than one read (only those can repeat a change)."""
    ticket = frame.groupby(KEY, sort=False, dropna=False).ngroup().to_numpy()
    spread = pd.Series(reads[rows]).groupby(ticket[rows]).nunique()
    return spread.reindex(ticket, fill_value=1).to_numpy() > 1


def _first_occurrences(frame: pd.DataFrame, reads: np.ndarray, has_id: np.ndarray) -> np.ndarray:
    """Keep the first row of each (identity, occurrence within its read), rows in read order; a later row
    is one change with the first unless both carry (different) source ids."""
    identity = frame.groupby(EVENT_IDENTITY, sort=False, dropna=False).ngroup().to_numpy()
    nth = pd.DataFrame({"identity": identity, "read": reads}).groupby(["identity", "read"], sort=False).cumcount()
    change = pd.DataFrame({"identity": identity, "nth": nth.to_numpy()})
    first = ~change.duplicated().to_numpy()
    first_has_id = pd.Series(has_id).groupby([change["identity"], change["nth"]], sort=False).transform("first")
    return first | (has_id & first_has_id.to_numpy(dtype=bool))


# --- helpers ------------------------------------------------------------------------------------------

def stacked(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """``pd.concat(frames, ignore_index=True)``, without a copy when only one frame has rows and every frame has
    its columns and types: pandas copies every number and time column even beside an empty frame, and a
    first run's stored layer is empty (at 10M tickets the pulled layer's times would be held twice)."""
    full = [frame for frame in frames if len(frame)]
    if len(full) == 1 and all(frame.dtypes.equals(full[0].dtypes) for frame in frames):
        return full[0].reset_index(drop=True)
    return pd.concat(frames, ignore_index=True)


def _next_seq(events: pd.DataFrame) -> int:
    return int(events["seq"].max()) + 1 if len(events) else 0


def _without(frame: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    return rows_where(frame, ~key_hits(frame[KEY], keys[KEY])) if len(keys) else frame


def _only(frame: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    return rows_where(frame, key_hits(frame[KEY], keys[KEY]))
