"""Snapshot import (layout = "snapshot"): a tiny ServiceNow-like audit export written out by hand.

Every row is a full copy of the ticket after one update. The file is deliberately awkward: two
updates of INC1 share a minute and come in the wrong file order (sys_mod_count decides), INC2's rows
interleave with INC1's, one INC2 row is garbage ("-100"), INC3 has nothing but garbage and INC4's
only row has no update time.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from connectors.base import SourceConfig
from connectors.files import FileConnector
from connectors.snapshot import change_events, last_snapshots, order_snapshots, to_batch
from kpis.errors import ConfigError

HEADER = "number,state,priority,assigned_to,group,category,opened_at,updated_at,updated_by,mod,reopen_count,reassignment_count"
ROWS = """\
INC1,New,3 - Moderate,?,G1,Cat A,1/3/2016 09:00,1/3/2016 09:05,u1,0,0,0
INC1,Active,2 - High,R1,G1,Cat A,1/3/2016 09:00,1/3/2016 09:30,u2,2,0,0
INC1,New,3 - Moderate,R1,G1,?,1/3/2016 09:00,1/3/2016 09:30,u2,1,0,0
INC2,-100,4 - Low,R2,G1,Cat C,1/3/2016 08:00,1/3/2016 08:30,u9,0,0,0
INC2,Closed,4 - Low,R2,G1,Cat C,1/3/2016 08:00,2/3/2016 08:00,u9,1,0,0
INC1,Resolved,2 - High,?,G2,Cat B,1/3/2016 09:00,1/3/2016 10:00,u3,3,0,1
INC1,Closed,2 - High,?,G2,Cat B,1/3/2016 09:00,5/3/2016 10:00,u4,4,0,1
INC3,-100,4 - Low,?,G1,Cat C,1/3/2016 07:00,1/3/2016 07:00,u9,0,0,0
INC4,New,4 - Low,?,G1,Cat C,1/3/2016 07:00,?,u9,0,0,0
"""


def _source(path: Path, **options: object) -> SourceConfig:
    return SourceConfig(
        name="sn", kind="csv", path=str(path), layout="snapshot", timezone="UTC",
        timestamp_format="%d/%m/%Y %H:%M", default_ticket_type="incident",
        columns={"ticket_id": "number", "status": "state", "assignee": "assigned_to", "assignment_group": "group",
                 "updated_at": "updated_at"},
        status_map={"New": "NEW", "Active": "IN_PROGRESS", "Resolved": "RESOLVED", "Closed": "CLOSED"},
        priority_map={"1 - Critical": "P1", "2 - High": "P2", "3 - Moderate": "P3", "4 - Low": "P4"},
        options={"order_by": "mod", "actor_column": "updated_by", **options},
    )


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "audit.csv"
    path.write_text(HEADER + "\n" + ROWS, encoding="utf-8")
    return path


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def _events(batch_events: pd.DataFrame) -> list[tuple]:
    rows = batch_events.sort_values("seq")
    return [(r.ticket_id, r.at, r.kind, None if pd.isna(r.value) else r.value, r.actor)
            for r in rows.itertuples()]


def test_events_are_the_changes_between_consecutive_snapshots(export: Path) -> None:
    batch = FileConnector(_source(export)).pull()
    assert _events(batch.events) == [
        # INC1, first snapshot (09:05): its starting values; assignee '?' is no value, so no event.
        ("INC1", ts("2016-03-01 09:05"), "group", "G1", "u1"),
        ("INC1", ts("2016-03-01 09:05"), "priority", "P3", "u1"),
        ("INC1", ts("2016-03-01 09:05"), "category", "Cat A", "u1"),
        ("INC1", ts("2016-03-01 09:05"), "status", "NEW", "u1"),
        # mod 1 (third line of the file, same minute as mod 2): R1 assigned; category '?' is
        # "not known", so Cat A carries on and nothing is emitted.
        ("INC1", ts("2016-03-01 09:30"), "assignee", "R1", "u2"),
        # mod 2: priority up, work starts.
        ("INC1", ts("2016-03-01 09:30"), "priority", "P2", "u2"),
        ("INC1", ts("2016-03-01 09:30"), "status", "IN_PROGRESS", "u2"),
        # mod 3: resolved by another group; the assignee was removed (an empty assignee is a state).
        ("INC1", ts("2016-03-01 10:00"), "assignee", None, "u3"),
        ("INC1", ts("2016-03-01 10:00"), "group", "G2", "u3"),
        ("INC1", ts("2016-03-01 10:00"), "category", "Cat B", "u3"),
        ("INC1", ts("2016-03-01 10:00"), "status", "RESOLVED", "u3"),
        ("INC1", ts("2016-03-05 10:00"), "status", "CLOSED", "u4"),
        # INC2 keeps its one good snapshot (the "-100" row is rejected): its values, as of then.
        ("INC2", ts("2016-03-02 08:00"), "assignee", "R2", "u9"),
        ("INC2", ts("2016-03-02 08:00"), "group", "G1", "u9"),
        ("INC2", ts("2016-03-02 08:00"), "priority", "P4", "u9"),
        ("INC2", ts("2016-03-02 08:00"), "category", "Cat C", "u9"),
        ("INC2", ts("2016-03-02 08:00"), "status", "CLOSED", "u9"),
    ]
    assert batch.events["seq"].tolist() == list(range(17))
    assert (batch.events["source"] == "sn").all()


def test_each_event_carries_its_snapshot_key_and_kind_as_event_id(export: Path) -> None:
    """The snapshot's update time and ``order_by`` value (the source's own key of the update) name its
    changes, so the same snapshot read again gives the same ids; two updates in one minute differ."""
    batch = FileConnector(_source(export)).pull()
    ids = batch.events.set_index(["ticket_id", "kind", "at"])["event_id"].to_dict()
    assert ids[("INC1", "assignee", ts("2016-03-01 09:30"))] == "2016-03-01T09:30:00Z#1/assignee"
    assert ids[("INC1", "status", ts("2016-03-01 09:30"))] == "2016-03-01T09:30:00Z#2/status"
    assert ids[("INC1", "status", ts("2016-03-05 10:00"))] == "2016-03-05T10:00:00Z#4/status"
    assert batch.events["event_id"].is_unique
    again = FileConnector(_source(export)).pull()
    assert again.events["event_id"].tolist() == batch.events["event_id"].tolist()
    # without a key (no options.order_by) nothing names the snapshots: the events have no id
    cfg = _source(export)
    keyless = FileConnector(SourceConfig(**{**cfg.__dict__, "options": {"actor_column": "updated_by"}})).pull()
    assert keyless.events["event_id"].isna().all()


def test_ticket_is_the_last_snapshot(export: Path) -> None:
    batch = FileConnector(_source(export)).pull()
    tickets = batch.tickets.set_index("ticket_id")
    assert tickets.index.tolist() == ["INC1", "INC2"]  # order of first appearance
    inc1 = tickets.loc["INC1"]
    assert (inc1["status"], inc1["priority"], inc1["assignment_group"], inc1["category"]) == ("CLOSED", "P2", "G2", "Cat B")
    assert pd.isna(inc1["assignee"])
    assert inc1["opened_at"] == ts("2016-03-01 09:00")
    assert inc1["updated_at"] == ts("2016-03-05 10:00")
    assert (inc1["reopen_count"], inc1["reassignment_count"]) == (0, 1)  # counters of the last row
    assert tickets.loc["INC2", "status"] == "CLOSED"


def test_every_row_is_used_or_rejected_with_its_reason(export: Path) -> None:
    batch = FileConnector(_source(export)).pull()
    assert batch.rows_read == 9
    rejected = batch.rejected.sort_values("ticket_id")
    assert rejected["ticket_id"].tolist() == ["INC2", "INC3", "INC4"]
    assert rejected["reason"].tolist()[:2] == ["unmapped status '-100'"] * 2
    assert rejected["reason"].iloc[2].startswith("missing updated_at")
    assert '"number":"INC4"' in rejected["raw"].iloc[2]  # the whole raw row, as read
    # INC3 (only garbage) and INC4 (no update time) exist only as rejected rows.
    assert set(batch.tickets["ticket_id"]) == {"INC1", "INC2"}
    assert not set(batch.events["ticket_id"]) - {"INC1", "INC2"}


def test_response_at_first_snapshot_in_a_response_status(export: Path) -> None:
    batch = FileConnector(_source(export, response_statuses=["IN_PROGRESS"])).pull()
    response = batch.events[batch.events["kind"] == "response"]
    assert _events(response) == [("INC1", ts("2016-03-01 09:30"), "response", None, "u2")]
    # It sorts before the other events of its snapshot (kind order), after the earlier snapshot's.
    inc1 = batch.events[batch.events["ticket_id"] == "INC1"].sort_values("seq")
    assert inc1["kind"].tolist()[5:8] == ["response", "priority", "status"]
    assert batch.tickets.set_index("ticket_id").loc["INC1", "first_response_at"] == ts("2016-03-01 09:30")


def test_missing_option_column_is_a_config_error(export: Path) -> None:
    with pytest.raises(ConfigError, match="options.order_by"):
        FileConnector(_source(export, order_by="sys_mod_count")).pull()


# --- the pure steps on canonical frames -----------------------------------------------------------

def _rows(*rows: tuple) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["ticket_id", "updated_at", "status", "assignee", "assignment_group",
                                        "priority", "category"])
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
    return frame


def test_order_snapshots_groups_tickets_then_time_then_tiebreak_then_file_order() -> None:
    rows = _rows(
        ("B", "2016-01-01 10:00", "NEW", None, None, None, None),   # 0
        ("A", "2016-01-01 11:00", "NEW", None, None, None, None),   # 1
        ("B", "2016-01-01 09:00", "NEW", None, None, None, None),   # 2
        ("B", "2016-01-01 10:00", "NEW", None, None, None, None),   # 3: same time as 0, lower tie-break
        ("B", "2016-01-01 10:00", "NEW", None, None, None, None),   # 4: same time and tie-break as 0
    )
    ordered = order_snapshots(rows, pd.Series(["5", "0", "0", "4", "5"]))
    assert ordered.index.tolist() == [2, 3, 0, 4, 1]  # B first (seen first): 09:00, then tie 4, then 5 by file order


def test_order_by_values_that_are_not_numbers_sort_last() -> None:
    rows = _rows(*[("A", "2016-01-01 10:00", "NEW", None, None, None, None)] * 3)
    assert order_snapshots(rows, pd.Series(["x", "2", "1"])).index.tolist() == [2, 1, 0]


def test_change_events_carry_unknown_values_but_not_unassignment() -> None:
    ordered = _rows(
        ("A", "2016-01-01 09:00", "NEW", "R1", None, "P3", "C1"),
        ("A", "2016-01-01 10:00", "NEW", None, None, None, None),   # priority/category unknown; R1 removed
        ("A", "2016-01-01 11:00", "NEW", "R1", None, "P3", "C1"),   # R1 back; P3/C1 never left
    )
    events = change_events(ordered)
    assert [(e.kind, e.value) for e in events.itertuples()] == [
        ("assignee", "R1"), ("priority", "P3"), ("category", "C1"), ("status", "NEW"),
        ("assignee", None),
        ("assignee", "R1"),
    ]
    assert events["at"].tolist() == [ts("2016-01-01 09:00")] * 4 + [ts("2016-01-01 10:00"), ts("2016-01-01 11:00")]


def test_last_snapshots_keeps_each_tickets_last_row() -> None:
    ordered = _rows(
        ("B", "2016-01-01 09:00", "NEW", None, None, None, None),
        ("B", "2016-01-01 10:00", "CLOSED", None, None, None, None),
        ("A", "2016-01-01 09:00", "IN_PROGRESS", None, None, None, None),
    )
    assert last_snapshots(ordered)[["ticket_id", "status"]].values.tolist() == [["B", "CLOSED"], ["A", "IN_PROGRESS"]]


def test_to_batch_takes_raw_text_frames_directly(export: Path) -> None:
    raw = pd.read_csv(export, dtype=str, keep_default_na=False)
    batch = to_batch(raw, _source(export))
    assert (len(batch.tickets), len(batch.events), len(batch.rejected), batch.rows_read) == (2, 17, 3, 9)
