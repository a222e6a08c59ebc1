"""Activity-log import (layout = "activity"): a tiny VINST-like process-mining export written by hand.

Case A goes queue -> work -> wait -> resolved -> closed, with a garbage row, a repeated activity, an
ignored activity and a CRM robot ("bot-1") that files the queueing and the closure. Case B's last
row has an impact nobody mapped, so the whole case is rejected. Case C's only row has a broken
timestamp. Case D has only an ignored activity.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from connectors.activity import ActivityOptions, activity_keys, to_batch
from connectors.base import SourceConfig
from connectors.files import FileConnector
from kpis.errors import ConfigError

EXPORT = """\
SR,Status,Sub Status,When,Owner,Team,Impact,Product
A,Queued,Awaiting Assignment,2012-05-01T09:00:00+01:00,bot-1,T1,Medium,PR1
A,Accepted,In Progress,2012-05-01T09:10:00+01:00,ann,T1,Medium,PR1
A,Accepted,In Progress,2012-05-01T09:20:00+01:00,ann,T1,Medium,PR1
A,Unmatched,Unmatched,2012-05-01T09:25:00+01:00,ann,T1,Medium,PR1
A,Accepted,Wait - User,2012-05-01T09:30:00+01:00,ann,T1,Medium,PR1
B,Accepted,In Progress,2012-05-02T08:00:00+01:00,carl,T3,Low,PR2
A,Note,Comment,2012-05-01T09:40:00+01:00,bob,T2,High,PR1
A,Completed,Resolved,2012-05-01T10:00:00+01:00,bob,T2,High,PR1
A,Completed,Closed,2012-05-01T11:00:00+01:00,bot-1,T2,High,PR1
B,Completed,Resolved,2012-05-02T09:00:00+01:00,carl,T3,Huge,PR2
C,Accepted,In Progress,yesterday,dave,T1,Low,PR3
D,Note,Comment,2012-05-03T08:00:00+01:00,dave,T1,Low,PR3
"""


def _source(path: Path, **options: object) -> SourceConfig:
    return SourceConfig(
        name="vinst", kind="csv", path=str(path), layout="activity", timezone="Europe/Brussels",
        default_ticket_type="incident",
        columns={"ticket_id": "SR", "priority": "Impact", "category": "Product"},
        priority_map={"Major": "P1", "High": "P2", "Medium": "P3", "Low": "P4"},
        options={
            "case_column": "SR", "activity_column": "Status", "substatus_column": "Sub Status",
            "timestamp_column": "When", "resource_column": "Owner", "team_column": "Team",
            "activity_status_map": {
                "Queued/Awaiting Assignment": "NEW", "Accepted/In Progress": "IN_PROGRESS",
                "Accepted/Wait - User": "WAITING_CUSTOMER", "Completed/Resolved": "RESOLVED",
                "Completed/Closed": "CLOSED",
            },
            "ignore_activities": ["Note/Comment"],
            "response_activities": ["Accepted/In Progress"],
            "automation_resources": ["bot-.*"],
            **options,
        },
    )


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "vinst.csv"
    path.write_text(EXPORT, encoding="utf-8")
    return path


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def _events(frame: pd.DataFrame) -> list[tuple]:
    rows = frame.sort_values("seq")
    return [(r.ticket_id, r.at, r.kind, None if pd.isna(r.value) else r.value, r.actor) for r in rows.itertuples()]


def test_events_follow_the_activities(export: Path) -> None:
    batch = FileConnector(_source(export)).pull()
    assert _events(batch.events) == [
        # 09:00 local (+01:00) = 08:00 UTC. The robot queues it: a status and a group, no assignee.
        ("A", ts("2012-05-01 08:00"), "group", "T1", "bot-1"),
        ("A", ts("2012-05-01 08:00"), "status", "NEW", "bot-1"),
        # ann takes it: the first response, she is the assignee, work starts.
        ("A", ts("2012-05-01 08:10"), "response", None, "ann"),
        ("A", ts("2012-05-01 08:10"), "assignee", "ann", "ann"),
        ("A", ts("2012-05-01 08:10"), "status", "IN_PROGRESS", "ann"),
        # 08:20 repeats In Progress: no change, no event. 08:25 "Unmatched" is rejected.
        ("A", ts("2012-05-01 08:30"), "status", "WAITING_CUSTOMER", "ann"),
        # The ignored note sets no status, but bob and T2 are who and where it is now.
        ("A", ts("2012-05-01 08:40"), "assignee", "bob", "bob"),
        ("A", ts("2012-05-01 08:40"), "group", "T2", "bob"),
        ("A", ts("2012-05-01 09:00"), "status", "RESOLVED", "bob"),
        # The robot closes it: the actor is the robot, the assignee stays bob.
        ("A", ts("2012-05-01 10:00"), "status", "CLOSED", "bot-1"),
        # D: only an ignored activity, so no status event.
        ("D", ts("2012-05-03 07:00"), "assignee", "dave", "dave"),
        ("D", ts("2012-05-03 07:00"), "group", "T1", "dave"),
    ]


def test_one_ticket_per_case(export: Path) -> None:
    batch = FileConnector(_source(export)).pull()
    tickets = batch.tickets.set_index("ticket_id")
    assert tickets.index.tolist() == ["A", "D"]
    a = tickets.loc["A"]
    assert (a["status"], a["assignee"], a["assignment_group"], a["ticket_type"]) == ("CLOSED", "bob", "T2", "incident")
    assert (a["priority"], a["category"]) == ("P2", "PR1")  # from the case's last row (High)
    assert (a["opened_at"], a["updated_at"]) == (ts("2012-05-01 08:00"), ts("2012-05-01 10:00"))
    assert a["first_response_at"] == ts("2012-05-01 08:10")
    assert (a["resolved_at"], a["closed_at"]) == (ts("2012-05-01 09:00"), ts("2012-05-01 10:00"))
    d = tickets.loc["D"]
    assert (d["status"], d["priority"], d["assignee"]) == ("NEW", "P4", "dave")  # nothing mapped: NEW
    assert pd.isna(d["resolved_at"]) and pd.isna(d["first_response_at"])


def test_every_row_is_used_or_rejected_with_its_reason(export: Path) -> None:
    batch = FileConnector(_source(export)).pull()
    assert batch.rows_read == 12
    reasons = sorted(zip(batch.rejected["ticket_id"], batch.rejected["reason"], strict=True))
    assert reasons == [
        ("A", "unmapped activity 'Unmatched/Unmatched'"),
        ("B", "case rejected: unmapped priority 'Huge'"),  # its last row decides; both rows go
        ("B", "case rejected: unmapped priority 'Huge'"),
        ("C", "unparseable timestamp 'yesterday'"),
    ]
    assert (batch.rejected["row_kind"] == "event").all()
    raw_b = batch.rejected.loc[batch.rejected["ticket_id"] == "B", "raw"]
    assert all('"Owner":"carl"' in r and '"Product":"PR2"' in r for r in raw_b)  # the whole raw rows
    # 12 rows = 8 used (A: 8, D: 1, minus A's garbage row) + 4 rejected.
    assert len(batch.rejected) == 4


def test_assignee_activities_limit_who_counts_as_assignee(export: Path) -> None:
    batch = FileConnector(_source(export, assignee_activities=["Accepted/In Progress"])).pull()
    assignees = batch.events[batch.events["kind"] == "assignee"]
    assert assignees["value"].tolist() == ["ann"]  # bob only wrote a note and resolved
    assert batch.tickets.set_index("ticket_id").loc["A", "assignee"] == "ann"


def test_activity_key_without_substatus() -> None:
    norm = pd.DataFrame({"Activity": ["Take in charge ticket", None], "Sub": ["x", "y"]})
    options = ActivityOptions(case_column="c", activity_column="Activity", timestamp_column="t", status_map={})
    assert activity_keys(norm, options).tolist()[0] == "Take in charge ticket"
    with_sub = ActivityOptions(case_column="c", activity_column="Activity", timestamp_column="t", status_map={},
                               substatus_column="Sub", separator=" / ")
    keys = activity_keys(norm, with_sub)
    assert keys.iloc[0] == "Take in charge ticket / x" and pd.isna(keys.iloc[1])


# A non-canonical status or a bad regular expression is refused when the config is loaded
# (tests/config/test_model.py); what only the file can tell (a column it lacks) is found here.
@pytest.mark.parametrize(("options", "key"), [
    ({"timestamp_column": None}, "timestamp_column"),
    ({"team_column": "Involved ST"}, "team_column"),
])
def test_config_errors_name_the_option(export: Path, options: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        FileConnector(_source(export, **options)).pull()


def test_to_batch_takes_raw_text_frames_directly(export: Path) -> None:
    raw = pd.read_csv(export, dtype=str, keep_default_na=False)
    batch = to_batch(raw, _source(export))
    assert (len(batch.tickets), len(batch.events), len(batch.rejected), batch.rows_read) == (2, 12, 4, 12)
