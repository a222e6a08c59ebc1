"""Ticket keys ``(source, ticket_id)`` as one Arrow string column, and fast lookups of keys by position."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_SEPARATOR = "\x1f"  # ASCII unit separator: cannot occur in a source name


def ticket_keys(source: pd.Series, ticket_id: pd.Series) -> pa.Array:
    """One string per row identifying the ticket across sources."""
    return row_keys(pd.DataFrame({"source": source.astype("str").array, "ticket_id": ticket_id.astype("str").array}))


def row_keys(frame: pd.DataFrame) -> pa.Array:
    """One string per row joining all of ``frame``'s columns (any type, cast to text by Arrow)."""
    return join_keys([pa.array(frame[c], from_pandas=True) for c in frame.columns])


def join_keys(columns: list[pa.Array | pa.ChunkedArray]) -> pa.Array:
    """One string per row joining Arrow ``columns`` as ``row_keys`` does (``ticket_keys`` of an Arrow table)."""
    parts = [pc.cast(c, pa.large_string()) for c in columns]
    parts = [p.combine_chunks() if isinstance(p, pa.ChunkedArray) else p for p in parts]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, pa.scalar(_SEPARATOR, type=pa.large_string()))


def positions(keys: pa.Array, lookups: pa.Array) -> np.ndarray:
    """For each lookup, the position of the equal key in ``keys`` (-1 when there is none)."""
    found = pc.index_in(lookups, value_set=keys)
    return np.asarray(found.fill_null(-1), dtype="int64")
