"""The backlog as numbers, and how the backlogs of disjoint sets of tickets combine (CONTRACT.md, Compute)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kpis.backlog_cells import SUMMED_COLUMNS, BacklogCells, combine_backlogs
from kpis.schema import BACKLOG_COLUMNS, conform, empty_frame

AS_OF = pd.Timestamp("2026-03-06T04:00Z")


def _cells(groups: list[tuple[str | None, str | None, str]], rows: list[tuple[str, int, tuple, str]]) -> BacklogCells:
    """Cells by hand: per row (day, group number, the SUMMED_COLUMNS counts, oldest opening)."""
    texts = pd.DataFrame(groups, columns=["engineer", "ticket_type", "priority"], dtype="str")
    counts = np.array([row[2] for row in rows], dtype="int64").reshape(len(rows), len(SUMMED_COLUMNS))
    return BacklogCells(
        groups=texts, day=np.array([row[0] for row in rows], dtype="datetime64[D]"),
        group=np.array([row[1] for row in rows], dtype="int64"),
        counts={name: counts[:, i] for i, name in enumerate(SUMMED_COLUMNS)},
        oldest=np.array([pd.Timestamp(row[3]).timestamp() for row in rows]))


def _rows(frame: pd.DataFrame) -> list[tuple]:
    return [(r.day.strftime("%m-%d"), r.engineer, r.ticket_type, r.priority,
             tuple(getattr(r, name) for name in SUMMED_COLUMNS), r.oldest_opened_at.strftime("%m-%d %H:%M"))
            for r in frame.itertuples()]


#                    open <1d 1-3d 3-7d 7-30d >=30d overdue paused
A = _cells([("alice", "incident", "P2"), ("carol", "request", "P1")], [
    ("2026-03-04", 0, (2, 1, 1, 0, 0, 0, 1, 0), "2026-03-02T10:00Z"),
    ("2026-03-05", 1, (1, 1, 0, 0, 0, 0, 0, 1), "2026-03-05T01:00Z"),
])
B = _cells([("alice", "incident", "P2"), ("bob", "incident", "P2")], [
    ("2026-03-04", 0, (1, 0, 0, 1, 0, 0, 0, 1), "2026-02-27T08:00Z"),
    ("2026-03-04", 1, (1, 1, 0, 0, 0, 0, 0, 0), "2026-03-04T01:00Z"),
    ("2026-03-05", 0, (1, 0, 0, 1, 0, 0, 0, 0), "2026-02-27T08:00Z"),
])


def test_a_cell_in_both_parts_adds_up_and_keeps_the_oldest_opening() -> None:
    got = _rows(combine_backlogs([A, B]).frame(AS_OF))
    assert got == [
        # alice on 03-04 in both: open 2 + 1; <1d 1 + 0; 1-3d 1 + 0; 3-7d 0 + 1; overdue 1 + 0; paused 0 + 1;
        # the oldest of 03-02 10:00 and 02-27 08:00
        ("03-04", "alice", "incident", "P2", (3, 1, 1, 1, 0, 0, 1, 1), "02-27 08:00"),
        ("03-04", "bob", "incident", "P2", (1, 1, 0, 0, 0, 0, 0, 0), "03-04 01:00"),  # B's only
        ("03-05", "alice", "incident", "P2", (1, 0, 0, 1, 0, 0, 0, 0), "02-27 08:00"),  # B's only
        ("03-05", "carol", "request", "P1", (1, 1, 0, 0, 0, 0, 0, 1), "03-05 01:00"),  # A's group 1, after alice
    ]


def test_the_combination_does_not_depend_on_the_parts_order() -> None:
    pd.testing.assert_frame_equal(combine_backlogs([B, A]).frame(AS_OF), combine_backlogs([A, B]).frame(AS_OF),
                                  check_exact=True)


def test_groups_are_numbered_in_key_order_across_parts_with_a_missing_type_last() -> None:
    """'Zoe' sorts before 'alice' (code point order, as pandas sorts), and a missing ticket type after
    every type, so each part's cells still come out in key order after renumbering."""
    one = _cells([("Zoe", "request", "P1"), ("alice", None, "P1")], [
        ("2026-03-04", 0, (1, 1, 0, 0, 0, 0, 0, 0), "2026-03-04T00:00Z"),
        ("2026-03-04", 1, (1, 1, 0, 0, 0, 0, 0, 0), "2026-03-04T02:00Z")])
    two = _cells([("alice", "incident", "P1")], [("2026-03-04", 0, (1, 1, 0, 0, 0, 0, 0, 0), "2026-03-04T03:00Z")])
    frame = combine_backlogs([two, one]).frame(AS_OF)
    assert [(r.engineer, r.ticket_type) for r in frame.itertuples()] == [
        ("Zoe", "request"), ("alice", "incident"), ("alice", np.nan)]


def test_one_part_is_itself_and_empty_parts_are_left_out() -> None:
    assert combine_backlogs([BacklogCells.empty(), A, BacklogCells.empty()]) is A
    assert not len(combine_backlogs([]))


def test_an_empty_backlog_is_the_empty_table() -> None:
    expected = conform(empty_frame(BACKLOG_COLUMNS), BACKLOG_COLUMNS)
    pd.testing.assert_frame_equal(BacklogCells.empty().frame(AS_OF), expected, check_exact=True)


def test_the_frame_is_the_table_with_the_run_stamped() -> None:
    frame = A.frame(AS_OF)
    assert list(frame.columns) == list(BACKLOG_COLUMNS)
    assert (frame["as_of"] == AS_OF).all()
    assert frame["day"].tolist() == [pd.Timestamp("2026-03-04"), pd.Timestamp("2026-03-05")]
    assert frame["engineer"].tolist() == ["alice", "carol"]
