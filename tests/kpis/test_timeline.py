"""kpis/timeline.py: each event's place in the tie-break order of kinds (KPIS.md 1.2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kpis.schema import EVENT_KINDS
from kpis.timeline import kind_ranks


@pytest.mark.parametrize("dtype", ["str", object, "category"])
def test_a_kind_ranks_by_its_place_in_the_tie_break_order_and_anything_else_is_minus_one(dtype) -> None:
    # EVENT_KINDS = response, assignee, group, priority, category, status: status is 5, assignee 1;
    # an unknown kind, a kind with a blank around it and a missing kind are none of them
    kinds = pd.Series(["status", "assignee", "comment", " status", None, "response"], dtype=dtype)

    assert kind_ranks(pd.DataFrame({"kind": kinds})).tolist() == [5, 1, -1, -1, -1, 0]
    assert EVENT_KINDS[5] == "status" and EVENT_KINDS[1] == "assignee"


def test_no_events_and_no_kinds_at_all() -> None:
    assert kind_ranks(pd.DataFrame({"kind": pd.Series([], dtype="str")})).tolist() == []
    ranks = kind_ranks(pd.DataFrame({"kind": pd.Series([None, np.nan], dtype=object)}))
    assert ranks.tolist() == [-1, -1] and ranks.dtype == np.int8  # a byte per event: the kinds are radix-sorted
