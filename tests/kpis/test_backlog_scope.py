"""A night's backlog scope as cells of one computation (kpis/backlog_scope.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kpis.backlog_scope import BacklogScope, ScopeCells

DAYS = np.array(["2026-03-02", "2026-03-03", "2026-03-05"], dtype="datetime64[D]")  # 03-04 not computed
GROUPS = pd.DataFrame({"engineer": ["ann", "bob", "bob"], "ticket_type": ["incident", "incident", None],
                       "priority": ["P1", "P1", "P2"]})


def _scope(cells: list[tuple], recent: list[str] = ()) -> BacklogScope:
    frame = pd.DataFrame(cells, columns=["day", "engineer", "ticket_type", "priority"])
    frame["day"] = pd.to_datetime(frame["day"]).astype("datetime64[s]")
    recent_days = np.array(recent, dtype="datetime64[D]")
    return BacklogScope(np.union1d(frame["day"].to_numpy().astype("datetime64[D]"), recent_days), recent_days, frame)


def test_cells_become_day_positions_and_group_numbers() -> None:
    """bob/P1 on 03-03 is day position 1, group 1; ann/P1 on 03-05 is position 2, group 0. A cell on a day
    not computed (03-04), of an unknown group (cleo) or with a missing ticket type (group 2 has one, but a
    missing value matches nothing) is no cell of this computation."""
    scope = _scope([("2026-03-03", "bob", "incident", "P1"), ("2026-03-05", "ann", "incident", "P1"),
                    ("2026-03-04", "ann", "incident", "P1"), ("2026-03-02", "cleo", "incident", "P1"),
                    ("2026-03-02", "bob", None, "P2")])
    held = ScopeCells.of(scope, DAYS, GROUPS)
    assert sorted(zip(held.day.tolist(), held.group.tolist(), strict=True)) == [(1, 1), (2, 0)]
    assert held.recent.tolist() == [False, False, False]


def test_a_run_of_days_holds_its_recent_days_whole_and_its_own_cells() -> None:
    """Days 1..2 as a run: day 1 (03-03) holds bob's cell only; day 2 (03-05) is recent, every group."""
    scope = _scope([("2026-03-03", "bob", "incident", "P1"), ("2026-03-02", "ann", "incident", "P1")],
                   recent=["2026-03-05"])
    held = ScopeCells.of(scope, DAYS, GROUPS).run(1, 2, 3)
    assert held.tolist() == [[False, True, False], [True, True, True]]
    whole = ScopeCells.of(scope, DAYS, GROUPS).run(0, 3, 3)
    assert whole.tolist() == [[True, False, False], [False, True, False], [True, True, True]]


def test_no_cells_or_no_groups_hold_only_the_recent_days() -> None:
    scope = _scope([], recent=["2026-03-02"])
    assert ScopeCells.of(scope, DAYS, GROUPS).run(0, 3, 3).tolist() == [[True] * 3, [False] * 3, [False] * 3]
    held = ScopeCells.of(_scope([("2026-03-03", "bob", "incident", "P1")]), DAYS, GROUPS.iloc[:0])
    assert held.run(0, 3, 0).shape == (3, 0)


def test_holds_matches_the_cells_and_every_row_of_the_recent_days() -> None:
    scope = _scope([("2026-03-03", "bob", "incident", "P1")], recent=["2026-03-05"])
    rows = pd.DataFrame({"day": pd.to_datetime(["2026-03-03", "2026-03-03", "2026-03-05", "2026-03-02"]),
                         "engineer": ["bob", "ann", "zed", "bob"], "ticket_type": ["incident"] * 4,
                         "priority": ["P1", "P1", "P9", "P1"]})
    assert scope.holds(rows).tolist() == [True, False, True, False]
