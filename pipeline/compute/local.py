"""The local engine: facts computed in this process, one partition at a time when ``partitions`` > 1.

Memory then follows one partition's tickets and events (plus the small broadcast of maintenance tickets
and the facts gathered so far, one row per ticket), not the whole history's intermediate arrays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kpis import compute_facts
from kpis.config import KpiSettings
from kpis.facts import TICKET_COLUMN_OF
from kpis.keys import ticket_keys
from kpis.schema import TICKET_FACT_COLUMNS, conform, repeated_text
from pipeline.compute.partition import facts_events, is_in, named_maintenance, same_values, split, with_causes

log = logging.getLogger(__name__)


#: Fact columns that may hold a column of their ticket, and which: ``TICKET_COLUMN_OF``, and the priority at
#: the response and at the resolution, usually the current one (``kpis.facts`` shares it too).
_TICKET_COLUMN_OF = {**TICKET_COLUMN_OF, "response_priority": "priority", "resolution_priority": "priority"}
#: Fact columns that usually equal another fact column (both metrics match the same policy).
_FACT_TWINS = {"resolution_policy": "response_policy"}


@dataclass(frozen=True)
class PartitionFacts:
    """One partition's facts without the columns that equal its tickets' own (``from_tickets``: fact column
    -> ticket column) or another of its fact columns (``twins``: column -> the column it equals). The
    driver takes those from the input tickets, already in their order, or from the twin once placed, instead
    of stacking and reordering copies (at 10M tickets most of the reordering's time; and less for a Dask
    worker to send back)."""

    facts: pd.DataFrame
    from_tickets: dict[str, str]
    twins: dict[str, str]
    #: text columns with one value in every row (None: missing everywhere), e.g. ``kpi_version``
    constants: dict[str, str | None] = field(default_factory=dict)


def partition_facts(part_tickets: pd.DataFrame, part_events: pd.DataFrame, broadcast: pd.DataFrame,
                    settings: KpiSettings, as_of: pd.Timestamp, approvals: pd.DataFrame | None) -> PartitionFacts:
    """The facts of one partition's tickets, in their order: computed beside the broadcast maintenance
    tickets their incidents name (whose facts are dropped; they belong to their own partition)."""
    read = with_causes(part_tickets, broadcast)
    facts = compute_facts(read, part_events, settings, as_of, approvals)
    if len(read) != len(part_tickets):
        own = ticket_keys(part_tickets["source"], part_tickets["ticket_id"])
        facts = facts[is_in(ticket_keys(facts["source"], facts["ticket_id"]), own)].reset_index(drop=True)
    from_tickets = {column: ticket_column for column, ticket_column in _TICKET_COLUMN_OF.items()
                    if ticket_column in part_tickets and same_values(facts[column], part_tickets[ticket_column])}
    facts = facts.drop(columns=list(from_tickets))
    constants = {name: value for name in facts.columns if (value := _one_text(facts[name])) is not _MANY}
    facts = facts.drop(columns=list(constants))
    twins = {column: twin for column, twin in _FACT_TWINS.items()
             if column in facts and twin in facts and same_values(facts[column], facts[twin])}
    return PartitionFacts(facts.drop(columns=list(twins)), from_tickets, twins, constants)


_MANY = object()  # a column with more than one value


def _one_text(column: pd.Series) -> object:
    """The one value of a non-empty text column (None when missing everywhere), else ``_MANY``."""
    if not isinstance(column.dtype, pd.StringDtype) or not len(column):
        return _MANY
    first = column.iloc[0]
    if pd.isna(first):
        return None if column.isna().all() else _MANY
    return first if column.eq(first).all() else _MANY  # a missing value equals nothing


def in_input_order(parts: list[tuple[np.ndarray, PartitionFacts]], tickets: pd.DataFrame) -> pd.DataFrame:
    """The partitions' facts (with their tickets' positions in the input) stacked back into the order of the
    input ``tickets`` (as ``compute_facts`` gives). A column every partition left to the tickets is the
    input's own column; one that only some left is taken from the input for those partitions."""
    if not parts:
        return conform(pd.DataFrame(), TICKET_FACT_COLUMNS)
    for positions, part in parts:
        if len(part.facts) != len(positions):
            raise AssertionError(f"a partition gave {len(part.facts)} facts rows for {len(positions)} tickets")
    common = _common_items([part.from_tickets for _, part in parts])
    twins = _common_items([part.twins for _, part in parts])
    constants = _common_items([part.constants for _, part in parts])
    frames = [_with_left_columns(part, tickets, p, common, twins, constants) for p, part in parts]
    placed = _InputOrder([p for p, _ in parts])
    parts.clear()  # each partition's column goes as soon as it is placed
    columns = {name: placed.column([frame.pop(name).array for frame in frames]) for name in list(frames[0].columns)}
    columns.update({column: tickets[ticket_column].array for column, ticket_column in common.items()})
    columns.update({column: repeated_text(value, len(tickets)) for column, value in constants.items()})
    columns.update({column: columns[twin] for column, twin in twins.items()})
    # one frame over the arrays as they are: placed ones are new, the tickets' are in input order already
    return conform(pd.DataFrame(columns, copy=False), TICKET_FACT_COLUMNS)


def _common_items(mappings: list[dict[str, str]]) -> dict[str, str]:
    """The (key, value) pairs every one of ``mappings`` holds."""
    return dict(set.intersection(*(set(mapping.items()) for mapping in mappings)))


#: Arrays a partition's rows are written straight into at their input positions (numpy-backed underneath).
_SCATTERED = (pd.arrays.DatetimeArray, pd.arrays.IntegerArray, pd.arrays.BooleanArray, pd.arrays.FloatingArray)


class _InputOrder:
    """Puts the partitions' columns back into the input's order (``positions``: each partition's rows' places).

    Numbers and times are written at their places (one pass, no stacked copy); texts are stacked with Arrow
    and taken in input order (pandas' concat and take of Arrow strings are ~4x slower); anything else is
    stacked and taken by pandas."""

    def __init__(self, positions: list[np.ndarray]) -> None:
        self.positions = positions
        self.size = sum(len(p) for p in positions)

    @cached_property
    def order(self) -> np.ndarray:
        return np.argsort(np.concatenate(self.positions), kind="stable")

    def column(self, arrays: list) -> pd.api.extensions.ExtensionArray | np.ndarray:
        first = arrays[0]
        if any(array.dtype != first.dtype for array in arrays):
            return self._stacked(arrays)
        if isinstance(first, _SCATTERED):
            out = type(first)._empty((self.size,), dtype=first.dtype)
            for array, at in zip(arrays, self.positions, strict=True):
                out[at] = array
            return out
        if isinstance(first.dtype, pd.StringDtype) and first.dtype.storage == "pyarrow":
            chunks = [pc.cast(chunk, pa.large_string()) for array in arrays for chunk in array.__arrow_array__().chunks]
            return pd.array(pa.concat_arrays(chunks).take(pa.array(self.order)), dtype=first.dtype)
        return self._stacked(arrays)

    def _stacked(self, arrays: list) -> pd.api.extensions.ExtensionArray:
        return pd.concat([pd.Series(array) for array in arrays], ignore_index=True).array.take(self.order)


def _with_left_columns(part: PartitionFacts, tickets: pd.DataFrame, positions: np.ndarray, common: dict[str, str],
                       twins: dict[str, str], constants: dict[str, str | None]) -> pd.DataFrame:
    """A partition's facts with the columns it left that not every partition left (``common``, ``twins``,
    ``constants``) put back: from the input ``tickets`` at ``positions``, as their value, or as their twin."""
    facts = part.facts.assign(
        **{column: tickets[ticket_column].take(positions).array
           for column, ticket_column in part.from_tickets.items() if column not in common},
        **{column: repeated_text(value, len(positions)) for column, value in part.constants.items() if column not in constants})
    return facts.assign(**{column: facts[twin].array for column, twin in part.twins.items() if column not in twins})


def local_facts(tickets: pd.DataFrame, events: pd.DataFrame, settings: KpiSettings, as_of: pd.Timestamp,
                approvals: pd.DataFrame | None = None, *, partitions: int = 1) -> pd.DataFrame:
    """``compute_facts`` of ``tickets``/``events``, partition by partition when ``partitions`` > 1."""
    if partitions == 1 or not len(tickets):
        return compute_facts(tickets, events, settings, as_of, approvals)
    broadcast = named_maintenance(tickets)
    parts = []
    for part in split(tickets, facts_events(events), partitions):  # only the positions are kept: each copy goes
        parts.append((part.positions, partition_facts(part.tickets, part.events, broadcast, settings, as_of,
                                                      approvals)))
    log.info("computed the facts of %d tickets in %d partitions (%d maintenance tickets broadcast)",
             len(tickets), len(parts), len(broadcast))
    return in_input_order(parts, tickets)
