"""Helpers for arrays already in ascending order (sorted keys, positions, change points).

Low in the house: the timeline's change points and the aggregates' percentiles both use it, and neither
imports the other.
"""

from __future__ import annotations

import numpy as np


def distinct_ascending(values: np.ndarray) -> np.ndarray:
    """The distinct values of ascending ``values``. ``np.unique`` hashes them first: 0.7 s for 1M distinct
    integers here, against a few milliseconds for this one comparison of neighbours."""
    if len(values) == 0:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]
