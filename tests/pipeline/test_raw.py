"""pipeline.raw: merging a run's reads into the raw layer, event by event and copy by copy.

Events of ticket T, source s, written as (at minute, kind, value, actor); each read is one file or pull.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kpis.schema import EVENT_COLUMNS, TICKET_COLUMNS, conform
from pipeline.raw import RawLayer, ReadEvents, merge_events, merge_tickets, stacked

T0 = pd.Timestamp("2026-07-06T02:00Z")


def events(*rows: tuple, start: int = 0) -> pd.DataFrame:
    """(minute, kind, value, actor[, event_id]) -> canonical events of ticket T, seq from ``start``."""
    frame = pd.DataFrame([{"source": "s", "ticket_id": "T", "at": T0 + pd.Timedelta(minutes=r[0]), "kind": r[1],
                           "value": r[2], "actor": r[3], "event_id": r[4] if len(r) > 4 else None,
                           "seq": start + i} for i, r in enumerate(rows)])
    return conform(frame, EVENT_COLUMNS)


def reads(*parts: pd.DataFrame) -> ReadEvents:
    """Several reads, each with its own seq range (as pipeline.pull.stacked makes them)."""
    starts, frames, next_seq = [], [], 0
    for part in parts:
        starts.append(next_seq)
        frames.append(part.assign(seq=np.arange(len(part)) + next_seq))
        next_seq += len(part)
    return ReadEvents(conform(pd.concat(frames, ignore_index=True), EVENT_COLUMNS), np.asarray(starts))


def changes(history: pd.DataFrame) -> list[tuple]:
    """The history in the order the KPIs read it (at, then seq: one kind here), as (minute, value)."""
    ordered = history.sort_values(["at", "seq"])
    return [(int((r.at - T0).total_seconds() // 60), r.value) for r in ordered.itertuples()]


FLIP = [(1, "group", "G72", "u868"), (1, "group", "G25", "u868"), (1, "group", "G72", "u868")]
NONE = conform(pd.DataFrame(), EVENT_COLUMNS)


def test_a_change_that_returns_within_one_instant_is_kept_every_time() -> None:
    history, new = merge_events(NONE, reads(events(*FLIP)), next_seq=0)
    assert changes(history) == [(1, "G72"), (1, "G25"), (1, "G72")]
    assert new.tolist() == [True, True, True]


def test_an_identity_found_k_times_stored_and_m_times_read_is_there_max_k_m_times() -> None:
    stored = events(*FLIP)  # G72 twice, G25 once
    # the same history again, and a read holding G72 three times (a third flip back) and G25 once
    history, new = merge_events(stored, reads(events(*FLIP), events(*FLIP, (1, "group", "G25", "u868"),
                                                                     (1, "group", "G72", "u868"))), next_seq=10)
    assert sorted(changes(history)) == sorted([(1, "G72")] * 3 + [(1, "G25")] * 2)
    assert int(new.sum()) == 2  # the third G72 and the second G25 are new; the stored rows are kept
    assert history.loc[~new, "seq"].tolist() == [0, 1, 2]


def test_two_reads_of_one_history_in_one_run_are_one_history() -> None:
    """A backfill reads two daily exports that both hold T's history: per read, not per run."""
    history, _ = merge_events(NONE, reads(events(*FLIP), events(*FLIP)), next_seq=0)
    assert changes(history) == [(1, "G72"), (1, "G25"), (1, "G72")]


def test_new_events_sort_after_the_stored_ones_and_after_earlier_reads() -> None:
    stored = events((5, "status", "NEW", "sys"))
    history, _ = merge_events(stored, reads(events((5, "status", "IN_PROGRESS", "a")),
                                            events((5, "status", "RESOLVED", "a"))), next_seq=1)
    assert changes(history) == [(5, "NEW"), (5, "IN_PROGRESS"), (5, "RESOLVED")]
    assert history["seq"].tolist() == [0, 1, 2]


def test_the_sources_own_id_names_a_change() -> None:
    """Same id: one change, whatever its content; different ids: two changes, even with equal content."""
    stored = events((1, "group", "G72", "u", "a1"))
    read = events((1, "group", "G72", "u", "a1"), (1, "group", "G72", "u", "a2"), (2, "group", "G9", "u", "a1"))
    history, new = merge_events(stored, reads(read), next_seq=1)
    assert history["event_id"].tolist() == ["a1", "a2"]
    assert new.tolist() == [False, True]


def test_ids_given_later_match_the_stored_events_that_had_none() -> None:
    """A connector that starts filling event_id re-sends a history stored without ids: nothing doubles."""
    stored = events(*FLIP)
    with_ids = events(*[(*r, f"h{i}") for i, r in enumerate(FLIP)])
    history, new = merge_events(stored, reads(with_ids), next_seq=3)
    assert changes(history) == [(1, "G72"), (1, "G25"), (1, "G72")]
    assert not new.any()


def ticket(updated: str | None, **fields: str) -> dict:
    return {"source": "s", "ticket_id": "T", "ticket_type": "incident", "status": "IN_PROGRESS",
            "opened_at": T0, "updated_at": pd.Timestamp(updated) if updated else pd.NaT, **fields}


def tickets(*rows: dict) -> pd.DataFrame:
    return conform(pd.DataFrame(list(rows)), TICKET_COLUMNS)


def test_the_stored_copy_wins_over_an_older_one_and_ties_go_to_the_new_read() -> None:
    stored = tickets(ticket("2026-07-06T05:00Z", assignee="amy"))
    cases = {  # pulled copy -> (used, superseded, conflict)
        "newer": (ticket("2026-07-06T06:00Z", assignee="ben"), (1, 0, 0)),
        "older": (ticket("2026-07-06T04:00Z", assignee="ben"), (0, 1, 0)),
        "no time": (ticket(None, assignee="ben"), (0, 1, 0)),
        "same copy": (ticket("2026-07-06T05:00Z", assignee="amy"), (0, 1, 0)),
        "same time, other content": (ticket("2026-07-06T05:00Z", assignee="ben"), (1, 0, 1)),
    }
    for name, (pulled, expected) in cases.items():
        merge = merge_tickets(stored, tickets(pulled))
        assert (len(merge.used), len(merge.superseded), len(merge.conflicts)) == expected, name


def test_a_remapped_source_replaces_its_stored_copies_and_histories() -> None:
    """Its mapping changed: its new reading is no competitor of its old one, even if older by updated_at."""
    raw = RawLayer(tickets(ticket("2026-07-06T05:00Z", status="ON_HOLD")),
                   events((1, "status", "ON_HOLD", "u")))
    read = events((1, "status", "WAITING_THIRD_PARTY", "u"))
    merged = raw.merge(tickets(ticket("2026-07-06T04:00Z", status="WAITING_THIRD_PARTY")), reads(read),
                       reread=frozenset({"s"}))
    assert merged.tickets["status"].tolist() == ["WAITING_THIRD_PARTY"]
    assert merged.events["value"].tolist() == ["WAITING_THIRD_PARTY"]
    assert merged.changed_keys.values.tolist() == [["s", "T"]]


def test_a_first_run_uses_every_copy() -> None:
    merge = merge_tickets(tickets().iloc[:0], tickets(ticket("2026-07-06T05:00Z"), {**ticket(None), "ticket_id": "U"}))
    assert (len(merge.used), len(merge.superseded)) == (2, 0)


def _times_of(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].array._ndarray  # the datetime column's own numpy buffer


def test_a_first_merge_holds_the_read_layer_once() -> None:
    """Nothing stored yet: the merged layer is the read one, row for row, and its time columns are the read's
    own arrays (pandas' concat beside an empty frame would copy every number and time column: at 10M tickets
    the pulled layer's times held twice)."""
    read_tickets = tickets(ticket("2026-07-06T05:00Z"), {**ticket("2026-07-06T04:00Z"), "ticket_id": "U"})
    read_events = events((1, "status", "NEW", "u"), (2, "status", "IN_PROGRESS", "u"))
    merged = RawLayer(read_tickets.iloc[:0], NONE).merge(read_tickets, reads(read_events))
    pd.testing.assert_frame_equal(merged.tickets, read_tickets)
    pd.testing.assert_frame_equal(merged.events, read_events)  # seq 0, 1: nothing stored before them
    assert np.shares_memory(_times_of(merged.tickets, "opened_at"), _times_of(read_tickets, "opened_at"))
    assert np.shares_memory(_times_of(merged.events, "at"), _times_of(read_events, "at"))
    assert np.shares_memory(_times_of(merged.changed_events, "at"), _times_of(read_events, "at"))


def test_a_later_merge_stacks_the_stored_and_the_new() -> None:
    """Something stored: the layer is the stored rows not replaced, then the used copies (a real stack)."""
    stored = tickets(ticket("2026-07-06T05:00Z", assignee="amy"), {**ticket("2026-07-06T05:00Z"), "ticket_id": "U"})
    read = tickets(ticket("2026-07-06T06:00Z", assignee="ben"))
    merged = RawLayer(stored, NONE).merge(read, reads(NONE))
    assert merged.tickets["ticket_id"].tolist() == ["U", "T"]
    assert merged.tickets["assignee"].fillna("-").tolist() == ["-", "ben"]
    assert merged.tickets.dtypes.equals(stored.dtypes)


def test_stacked_is_pandas_concat() -> None:
    """Same rows, columns and types as ``pd.concat(..., ignore_index=True)``, with or without empty frames,
    also when an empty frame's types differ (then it is concat itself)."""
    full = pd.DataFrame({"a": pd.array([1, 2], dtype="Int64"), "t": pd.to_datetime(["2026-01-01", "2026-01-02"])},
                        index=[5, 7])
    empty = full.iloc[:0]
    other_types = pd.DataFrame({"a": pd.Series([], dtype="float64"), "t": pd.Series([], dtype="object")})
    for frames in ([empty, full], [full, empty], [full], [empty, empty], [full, full], [other_types, full],
                   [full, other_types, empty]):
        pd.testing.assert_frame_equal(stacked(frames), pd.concat(frames, ignore_index=True))
