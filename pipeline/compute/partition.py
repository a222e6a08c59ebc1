"""Tickets split into partitions by a stable hash of ``(source, ticket_id)`` (CONTRACT.md, Compute).

The hash is SipHash-2-4 with the 16-byte key ``PARTITION_HASH_KEY`` over the UTF-8 bytes of
``source + "\\x1f" + ticket_id`` (the ticket key of ``kpis.keys``), then mixed by splitmix64's finaliser
(``h ^= h >> 30; h *= 0xBF58476D1CE4E5B9; h ^= h >> 27; h *= 0x94D049BB133111EB; h ^= h >> 31``, mod 2**64),
exactly as ``pandas.util.hash_array`` computes it (``pipeline.compute.siphash`` computes it without a Python
object per key); the partition is that number modulo ``partitions``.
It depends on nothing but the key's text, so every process and machine puts a ticket in the same
partition (Python's ``hash`` is salted per process and is not used). tests/pipeline/test_compute_partition.py
checks it against SipHash and the finaliser written out in the test, and pins a few keys' partitions.

A partition holds its tickets and their events (an event goes with its ticket, found by an Arrow join
of the keys; an event of no known ticket, which nothing reads, goes nowhere). The one rule that reads
another ticket, the induced incident (KPIS.md 3: an incident whose ``caused_by`` names a maintenance
ticket of the same source), travels explicitly: the maintenance tickets that some ``caused_by`` names are
broadcast, and each partition reads those its own incidents name beside its tickets (their facts are
computed with them and dropped).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.util import hash_array

from kpis.facts import EVENT_COLUMNS_READ
from kpis.keys import ticket_keys, ticket_row_positions
from pipeline.compute.siphash import siphash24

PARTITION_HASH_KEY = "itsm-kpi:part:v1"  # SipHash-2-4 key: 16 ASCII bytes; changing it moves every ticket


def key_hashes(source: pd.Series, ticket_id: pd.Series) -> np.ndarray:
    """SipHash-2-4 (key ``PARTITION_HASH_KEY``) of each ticket key ``source \\x1f ticket_id`` (uint64)."""
    return _hashes(ticket_keys(source, ticket_id))


def _hashes(keys: pa.Array) -> np.ndarray:
    if keys.null_count:  # no ticket key is missing; should one be, pandas hashes it as it would
        return hash_array(keys.to_numpy(zero_copy_only=False).astype(object), encoding="utf8",
                          hash_key=PARTITION_HASH_KEY, categorize=False)
    return _finalised(siphash24(keys, PARTITION_HASH_KEY.encode()))


def _finalised(hashes: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place (uint64 arithmetic wraps mod 2**64), as ``hash_array`` applies it."""
    hashes ^= hashes >> np.uint64(30)
    hashes *= np.uint64(0xBF58476D1CE4E5B9)
    hashes ^= hashes >> np.uint64(27)
    hashes *= np.uint64(0x94D049BB133111EB)
    hashes ^= hashes >> np.uint64(31)
    return hashes


def partition_of(source: pd.Series, ticket_id: pd.Series, partitions: int) -> np.ndarray:
    """The partition (0 .. ``partitions`` - 1) of each ticket ``(source, ticket_id)``."""
    return _partition_of_keys(ticket_keys(source, ticket_id), partitions)


def _partition_of_keys(keys: pa.Array, partitions: int, hashes: np.ndarray | None = None) -> np.ndarray:
    """The partition of each key; ``hashes``: the keys' hashes when known already."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    if partitions == 1:
        return np.zeros(len(keys), dtype="int64")
    return ((_hashes(keys) if hashes is None else hashes) % np.uint64(partitions)).astype("int64")


def same_values(one: pd.Series, other: pd.Series) -> bool:
    """Whether two columns hold the same values row for row (missing where the other is missing) in the same
    dtype; positions, not index labels."""
    return one.dtype == other.dtype and one.array.equals(other.array)


@dataclass(frozen=True)
class Partition:
    """One partition's tickets (with their positions in the whole input) and their events."""

    number: int
    positions: np.ndarray  # where each of ``tickets``' rows stands in the input, to restore its order
    tickets: pd.DataFrame
    events: pd.DataFrame


def facts_events(events: pd.DataFrame) -> pd.DataFrame:
    """The event columns the facts read (``kpis.facts.EVENT_COLUMNS_READ``): all that is split for them and
    shipped to a partition (two text columns of every event less to copy, and to pickle for a Dask worker)."""
    return events[[column for column in EVENT_COLUMNS_READ if column in events]]


def split(tickets: pd.DataFrame, events: pd.DataFrame, partitions: int,
          by_ticket: TicketPartitions | None = None) -> Iterator[Partition]:
    """The non-empty partitions of ``tickets`` and ``events``, in partition order, built one at a time
    (one stable sort of each frame by partition; each partition's rows are taken when it is yielded). An
    event goes with its ticket; events of no ticket in ``tickets`` (which no computation reads) go nowhere.
    ``by_ticket``: ``TicketPartitions.of(tickets, partitions)`` when the caller has it already."""
    by_ticket = by_ticket or TicketPartitions.of(tickets, partitions)
    if by_ticket.partitions != partitions:
        raise ValueError(f"by_ticket splits into {by_ticket.partitions} partitions, not {partitions}")
    ticket_rows, event_rows = by_ticket.rows(), by_ticket.rows_of(events)
    for number, rows in enumerate(ticket_rows):
        if not len(rows):
            continue
        yield Partition(number, rows, tickets.iloc[rows].reset_index(drop=True),
                        events.iloc[event_rows[number]].reset_index(drop=True))


@dataclass(frozen=True)
class TicketPartitions:
    """Each ticket's partition, hashed once; the rows of other frames keyed by ticket follow their ticket's
    (an Arrow hash join of the keys instead of hashing every event's key again)."""

    keys: pa.Array
    partition: np.ndarray
    partitions: int

    @classmethod
    def of(cls, tickets: pd.DataFrame, partitions: int) -> TicketPartitions:
        """The partitions of ``tickets`` (``source``/``ticket_id`` columns) among ``partitions``."""
        source, ticket_id = tickets["source"], tickets["ticket_id"]
        keys, hashes = (_LAST_SPLIT.keys_and_hashes(source, ticket_id) if partitions > 1
                        else (ticket_keys(source, ticket_id), None))  # one partition: nothing to hash
        return cls(keys, _partition_of_keys(keys, partitions, hashes), partitions)

    @cached_property
    def _rows(self) -> list[np.ndarray]:
        return _rows_by_partition(self.partition, self.partitions)

    def rows(self) -> list[np.ndarray]:
        """Each partition's ticket rows (ascending): sorted once, however often asked for."""
        return self._rows

    def rows_of(self, frame: pd.DataFrame) -> list[np.ndarray]:
        """Each partition's rows of ``frame`` (``source``/``ticket_id`` columns; ascending): those of its
        tickets. A row whose ticket is not among the tickets is in none."""
        ticket = ticket_row_positions(self.keys, frame["source"], frame["ticket_id"])
        known = ticket >= 0
        part = np.full(len(frame), self.partitions, dtype="int64")
        part[known] = self.partition[ticket[known]]
        return _rows_by_partition(part, self.partitions)


class _LastSplit:
    """The keys and hashes of the tickets split last, while those tickets' key columns live.

    A run splits the same tickets twice, for the facts and for the ops tables, and hashing 10M keys takes
    ~5 s. The columns are recognised by their Arrow arrays (immutable): the same array objects, or arrays over
    the same buffers (``_same_arrays``); weak references to the arrays seen make sure those buffers are still
    theirs, not a later array's at a freed one's address, and the hashes go when the columns do. One tuple
    is read and replaced whole, so runs in threads see a whole entry or none.
    """

    def __init__(self) -> None:
        self._last: tuple[weakref.ref, weakref.ref, pa.Array, np.ndarray] | None = None

    def keys_and_hashes(self, source: pd.Series, ticket_id: pd.Series) -> tuple[pa.Array, np.ndarray]:
        """The ticket keys of ``source``/``ticket_id`` and their hashes (``key_hashes``)."""
        sources, ticket_ids = _arrow_array(source), _arrow_array(ticket_id)
        last = self._last
        known = sources is not None and ticket_ids is not None
        if known and last is not None and _same_arrays(last[0](), sources) and _same_arrays(last[1](), ticket_ids):
            return last[2], last[3]
        keys = ticket_keys(source, ticket_id)
        hashes = _hashes(keys)
        if known:
            self._last = (weakref.ref(sources, self._forget), weakref.ref(ticket_ids, self._forget), keys, hashes)
        return keys, hashes

    def _forget(self, _: weakref.ref) -> None:
        self._last = None


def _same_arrays(seen: pa.ChunkedArray | None, array: pa.ChunkedArray) -> bool:
    """Whether ``array`` is ``seen`` (alive), or views exactly its memory: the same buffers, offsets and lengths
    chunk by chunk (pandas 3.0's ``reset_index`` wraps the same buffers in a new array). While ``seen``
    lives its buffers cannot be freed, so equal addresses are the same bytes."""
    if seen is None or seen is array:
        return seen is array
    if seen.num_chunks != array.num_chunks or len(seen) != len(array):
        return False
    return all(one.offset == other.offset and len(one) == len(other) and _addresses(one) == _addresses(other)
               for one, other in zip(seen.chunks, array.chunks, strict=True))


def _addresses(chunk: pa.Array) -> list[int | None]:
    return [None if buffer is None else buffer.address for buffer in chunk.buffers()]


def _arrow_array(column: pd.Series) -> pa.ChunkedArray | None:
    """The Arrow array behind a pandas ``str`` column (None for other columns)."""
    to_arrow = getattr(column.array, "__arrow_array__", None)
    array = to_arrow() if to_arrow is not None and isinstance(column.dtype, pd.StringDtype) else None
    return array if isinstance(array, pa.ChunkedArray) else None


_LAST_SPLIT = _LastSplit()


def _rows_by_partition(part: np.ndarray, partitions: int) -> list[np.ndarray]:
    """Row numbers (ascending) per partition number ``0 .. partitions - 1``; other numbers are left out."""
    small = np.int16 if partitions < np.iinfo(np.int16).max else np.int64
    order = np.argsort(part.astype(small), kind="stable")  # 16-bit numbers: numpy's radix sort, ~5x faster
    bounds = np.searchsorted(part[order], np.arange(partitions + 1), side="left")
    return [order[bounds[i]:bounds[i + 1]] for i in range(partitions)]


def named_maintenance(tickets: pd.DataFrame) -> pd.DataFrame:
    """The broadcast: maintenance tickets that some ticket's ``caused_by`` names (same source)."""
    named = tickets[tickets["caused_by"].notna().to_numpy()]
    is_maintenance = (tickets["ticket_type"] == "maintenance").fillna(False).to_numpy(dtype=bool)
    if not len(named) or not is_maintenance.any():
        return tickets.iloc[:0]
    maintenance = tickets[is_maintenance]
    hit = is_in(ticket_keys(maintenance["source"], maintenance["ticket_id"]),
                 ticket_keys(named["source"], named["caused_by"]))
    return maintenance[hit].reset_index(drop=True)


def with_causes(part_tickets: pd.DataFrame, broadcast: pd.DataFrame) -> pd.DataFrame:
    """``part_tickets`` and, after them, the broadcast maintenance tickets their ``caused_by`` names that
    are not among them (read so the induced-incident fact sees them; their own facts are dropped)."""
    if not len(broadcast):
        return part_tickets
    own = ticket_keys(part_tickets["source"], part_tickets["ticket_id"])
    named = part_tickets[part_tickets["caused_by"].notna().to_numpy()]
    wanted = ticket_keys(named["source"], named["caused_by"])
    keys = ticket_keys(broadcast["source"], broadcast["ticket_id"])
    extra = broadcast[is_in(keys, wanted) & ~is_in(keys, own)]
    if not len(extra):
        return part_tickets
    return pd.concat([part_tickets, extra], ignore_index=True)


def is_in(keys: pa.Array, value_set: pa.Array) -> np.ndarray:
    return np.asarray(pc.is_in(keys, value_set=value_set).to_numpy(zero_copy_only=False), dtype=bool)
