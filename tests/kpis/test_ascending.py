"""Helpers for ascending arrays (kpis/ascending.py)."""

from __future__ import annotations

import numpy as np

from kpis.ascending import distinct_ascending


def test_distinct_ascending_keeps_the_first_of_each_run() -> None:
    values = np.array([-1, -1, 0, 4, 4, 4, 9], dtype="int32")
    found = distinct_ascending(values)
    assert found.tolist() == [-1, 0, 4, 9]
    assert found.dtype == np.int32
    assert distinct_ascending(np.array([7])).tolist() == [7]
    assert distinct_ascending(np.array([], dtype="int64")).tolist() == []
