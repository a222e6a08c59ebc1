"""A table's next full version, written batch by batch: the live rows kept, then the new ones."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from kpis.keys import key_hits

_KEEP = "__keep"


@dataclass(frozen=True)
class TableVersion:
    """The rows of ``live`` that ``kept`` marks (every one when None), then ``added``: what a table's next
    version holds, in that order.

    Written as a stream of batches (``reader``), the kept rows are filtered batch by batch on their way to the
    files and never copied whole: a night keeps 99% of 10M facts, and copying them first (an anti-join) took
    5.5-6.2 s of the 11.6-12.2 s their rewrite took; filtered as they are written, the rewrite took 6.4-6.7 s.
    """

    live: pa.Table
    kept: np.ndarray | None
    added: pa.Table

    @classmethod
    def of(cls, live: pa.Table, removed: list[pa.Table], added: pa.Table) -> TableVersion:
        """``live`` without the rows that match a row of any ``removed`` table on that table's columns (a
        missing value matches nothing, as in a join), then ``added``."""
        hit = np.zeros(live.num_rows, dtype=bool)
        for table in removed:
            if table.num_rows and live.num_rows:
                hit |= key_hits(live.select(table.column_names), table.drop_null())
        return cls(live, ~hit if hit.any() else None, added)

    @property
    def schema(self) -> pa.Schema:
        """The live table's schema, which the added rows take."""
        return self.live.schema

    @property
    def num_rows(self) -> int:
        """The rows the version holds: those kept, then those added."""
        kept = self.live.num_rows if self.kept is None else int(np.count_nonzero(self.kept))
        return kept + self.added.num_rows

    def reader(self) -> pa.RecordBatchReader:
        """The rows, batch by batch (the added rows take the live schema: same columns and types)."""
        added = (pa.RecordBatch.from_arrays(batch.columns, schema=self.schema) for batch in self.added.to_batches())
        return pa.RecordBatchReader.from_batches(self.schema, itertools.chain(self._kept_batches(), added))

    def to_table(self) -> pa.Table:
        """The rows as one table."""
        return self.reader().read_all()

    def _kept_batches(self) -> Iterator[pa.RecordBatch]:
        if self.kept is None:
            yield from self.live.to_batches()
            return
        marked = self.live.append_column(_KEEP, pa.array(self.kept))
        # a scan of the table in memory filters its batches in parallel and yields them in order
        yield from ds.dataset(marked).scanner(columns=self.live.column_names, filter=pc.field(_KEEP)).to_batches()
