"""kpis/keys.py: lookups of multi-column keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from kpis.keys import frame_positions


def test_each_lookup_finds_the_row_with_all_key_columns_equal() -> None:
    keys = pd.DataFrame({"source": ["a", "a", "b"], "ticket_id": ["1", "2", "1"]})
    lookups = pd.DataFrame({"source": ["b", "a", "b", "a"], "ticket_id": ["1", "1", "2", "2"]})

    # b/1 is row 2, a/1 row 0, b/2 nowhere (each column matches some row, the pair none), a/2 row 1
    np.testing.assert_array_equal(frame_positions(keys, lookups), [2, 0, -1, 1])


def test_arrow_tables_with_string_and_large_string_columns_match() -> None:
    keys = pa.table({"grain": pa.array(["day", "week"], pa.large_string()),
                     "period_start": pa.array([1, 2], pa.timestamp("s"))})
    lookups = pa.table({"grain": pa.array(["week", "week"]), "period_start": pa.array([2, 1], pa.timestamp("s"))})

    np.testing.assert_array_equal(frame_positions(keys, lookups), [1, -1])


def test_nothing_to_look_up_or_nothing_to_find() -> None:
    keys = pd.DataFrame({"k": ["x"]})

    assert frame_positions(keys, keys.iloc[:0]).tolist() == []
    assert frame_positions(keys.iloc[:0], keys).tolist() == [-1]
