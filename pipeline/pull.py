"""Reading the sources for one run: which reads each source gets, and the run's validated batch.

A file source is read one file at a time (``FileConnector.pull_each``), a REST source in one pull; each
read keeps its own ``seq`` range (``pipeline.raw.ReadEvents``), so the merge can tell a history two
exports both hold from a change that repeats.

A source is read *whole* (every file, or a REST pull from its ``start``) on its first run, by a backfill
of files, and when its mapping settings changed since its stored rows were read (``remapped``, D51):
then its rejections replace all of its earlier ones, and its mapping settings are recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from connectors.base import Batch
from connectors.validate import validate_batch
from kpis.schema import (
    EVENT_COLUMNS,
    REJECTED_COLUMNS,
    TICKET_COLUMNS,
    concat_frames,
    empty_events,
    empty_rejected,
    empty_tickets,
)
from pipeline.raw import KEY, ReadEvents

__all__ = ["Pulled", "SourceReading", "rejected_tickets", "stacked", "validated"]


@dataclass(frozen=True)
class SourceReading:
    """How one source is read this run."""

    name: str
    remapped: tuple[str, ...] = ()  # mapping settings changed since its stored rows were read
    whole: bool = False  # every file / from ``start``: its rejections are replaced
    record: str | None = None  # mapping settings to record for it (``pipeline.fingerprints``), when they moved


@dataclass
class Pulled:
    """Everything read from the sources in this run, validated."""

    tickets: pd.DataFrame  # one copy per (source, ticket_id): the newest of the run
    events: ReadEvents
    rejected: pd.DataFrame
    superseded: pd.DataFrame  # source, ticket_id, conflict: copies a newer (or later) one of the run superseded
    cursors: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rows_read: dict[str, int] = field(default_factory=dict)  # per source
    readings: dict[str, SourceReading] = field(default_factory=dict)  # per source read

    @classmethod
    def empty(cls) -> Pulled:
        """Nothing read yet: sources are added with ``add_source``, the validated rows with ``with_rows``."""
        return cls(empty_tickets(), ReadEvents(empty_events(), np.zeros(0, dtype="int64")), empty_rejected(),
                   pd.DataFrame({"source": [], "ticket_id": [], "conflict": []}))

    def add_source(self, reading: SourceReading, reads: list[Batch]) -> None:
        """Record what one source delivered: its reads' counts, cursor and files."""
        self.readings[reading.name] = reading
        self.rows_read[reading.name] = sum(b.rows_read for b in reads)
        cursors = [b.cursor for b in reads if b.cursor]
        if cursors:
            self.cursors[reading.name] = cursors[-1]
        self.files[reading.name] = tuple(key for b in reads for key in b.files_read)

    def with_rows(self, tickets: pd.DataFrame, events: ReadEvents, rejected: pd.DataFrame,
                  superseded: pd.DataFrame) -> Pulled:
        """This record with the run's validated rows."""
        return replace(self, tickets=tickets, events=events, rejected=rejected, superseded=superseded)

    def remapped(self) -> frozenset[str]:
        """Sources read again because their mapping changed: their reading replaces their stored rows."""
        return frozenset(name for name, r in self.readings.items() if r.remapped)

    def whole(self) -> list[str]:
        """Sources read whole this run."""
        return [name for name, r in self.readings.items() if r.whole]


def stacked(batches: Iterable[Batch]) -> tuple[pd.DataFrame, ReadEvents, pd.DataFrame]:
    """(tickets, events, rejected) of several reads, in read order; each read's events get their own
    ``seq`` range, in the order of their source ``seq``."""
    tickets, events, rejected, starts = [], [], [], []
    next_seq = 0
    for batch in batches:  # one per file or pull: a handful, not one per ticket
        starts.append(next_seq)
        tickets.append(batch.tickets)
        rejected.append(batch.rejected)
        seq = batch.events["seq"].astype("Int64")  # a missing seq stays missing: validation rejects it
        if seq.notna().any():
            events.append(batch.events.assign(seq=seq - seq.min() + next_seq))
            next_seq += int(seq.max() - seq.min()) + 1
        elif len(batch.events):
            events.append(batch.events)
    read = ReadEvents(concat_frames(events, EVENT_COLUMNS), np.asarray(starts, dtype="int64"))
    return concat_frames(tickets, TICKET_COLUMNS), read, concat_frames(rejected, REJECTED_COLUMNS)


def validated(tickets: pd.DataFrame, events: ReadEvents, rejected: pd.DataFrame, *, known: pd.DataFrame,
              satisfaction_map: Mapping[str, float]) -> tuple[pd.DataFrame, ReadEvents, pd.DataFrame, pd.DataFrame]:
    """``connectors.validate.validate_batch`` keeping each event's read: (tickets, events, rejected, superseded)."""
    out = validate_batch(tickets, events.events, rejected, known_tickets=known, satisfaction_map=satisfaction_map)
    return out.tickets, ReadEvents(out.events, events.read_starts), out.rejected, out.superseded


def rejected_tickets(rejected: pd.DataFrame, tickets: pd.DataFrame) -> int:
    """Rejected ticket rows whose ticket has no usable copy in the run (a bad row of a ticket that was
    read fine elsewhere, e.g. one snapshot of many, rejects a row, not a ticket)."""
    rows = rejected[(rejected["row_kind"] == "ticket").to_numpy()]
    found = rows[KEY].merge(tickets[KEY].drop_duplicates(), on=KEY, how="left", indicator=True)
    return int((found["_merge"] == "left_only").sum())
