"""Reading the same data twice (issue #28), through the CLI on real CSV exports, SQLite and Parquet.

- a change that returns within one timestamp (A -> B -> A, by one person, in a minute-resolution export)
  is three changes, not a duplicate: the ticket stays with A;
- a maintenance ticket read again alone keeps the incidents it induced;
- a ticket read again (daily exports repeating open tickets, a late file with an older copy) is
  superseded, not rejected, and an older copy never overwrites a newer stored one;
- a status added to ``status_map`` after a rejection brings the rejected row back on the next run;
- the summary counts tickets read = used + superseded + rejected, each apart.

Local times are Asia/Shanghai (ops_helpers.at); every expected value is worked out in the comments.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from ops_helpers import (
    DAY1_AS_OF,
    DAY2_AS_OF,
    DAY3_AS_OF,
    _ticket,
    assert_same,
    at,
    cli,
    runs,
    snapshot,
    sql_rows,
    write_config,
    write_export,
)

D = "2026-07-06"  # a Monday


def setup(tmp_path: Path, name: str = "nightly") -> tuple[Path, Path]:
    """An export folder and the config of a store reading it (SQLite + Parquet under tmp_path)."""
    exports = tmp_path / "exports"
    config = write_config(tmp_path, f"sqlite:///{tmp_path / name}.sqlite", sources={"helpdesk": exports},
                          store=tmp_path / name)
    return exports, config


def night(config: Path, as_of: pd.Timestamp = DAY1_AS_OF, *args: str) -> None:
    assert cli("run", "--config", str(config), "--as-of", as_of.isoformat(), *args) == 0


def facts(config: Path) -> pd.DataFrame:
    return sql_rows(config, "ticket_facts").set_index("ticket_id")


def event(tid: str, when: str, kind: str, value: str | None, actor: str = "调度") -> dict:
    return dict(ticket_id=tid, at=at(D, when), kind=kind, value=value or "", actor=actor)


# --- a change that returns within one timestamp ------------------------------------------------------

FLIP = [
    event("INC1", "09:00", "status", "NEW", "系统"),
    event("INC1", "09:00", "group", "运维组"),
    # at 10:00 one dispatcher moves the ticket to 桌面组, to 网络组 and back to 桌面组, and its assignee
    # from 王芳 to 张伟 and back: the file order says which came last
    event("INC1", "10:00", "group", "桌面组"),
    event("INC1", "10:00", "assignee", "王芳"),
    event("INC1", "10:00", "group", "网络组"),
    event("INC1", "10:00", "assignee", "张伟"),
    event("INC1", "10:00", "group", "桌面组"),
    event("INC1", "10:00", "assignee", "王芳"),
    event("INC1", "10:30", "status", "IN_PROGRESS", "王芳"),
    event("INC1", "11:00", "status", "RESOLVED", "王芳"),
]
INC1 = _ticket("INC1", at(D, "09:00"), status="RESOLVED", resolved_at=at(D, "11:00"), updated_at=at(D, "11:00"),
               assignee="王芳", assignment_group="桌面组")


def test_a_group_and_an_assignee_that_return_within_one_instant_keep_the_ticket(tmp_path: Path) -> None:
    exports, config = setup(tmp_path)
    write_export(exports, "2026-07-31", [INC1], FLIP)
    night(config)

    inc1 = facts(config).loc["INC1"]
    # the last group and assignee events at or before the resolution (11:00) are the third of each at 10:00
    assert (inc1["team"], inc1["engineer"]) == ("桌面组", "王芳")
    assert inc1["reassigned"]  # 运维组 -> 桌面组 -> 网络组 -> 桌面组
    assert len(sql_rows(config, "ticket_facts")) == 1
    raw = snapshot(config)[("parquet", "raw_events")]
    assert len(raw) == len(FLIP)  # every change kept once


def test_the_same_history_sent_again_the_next_night_is_one_history(tmp_path: Path) -> None:
    """Night 2's export repeats INC1's whole history and adds its closure: the nights equal one run over
    both files, and nothing of the history doubles (a doubled flip would still end on 桌面组, but a doubled
    RESOLVED would move the resolution, so the resolution time is checked too)."""
    exports, config = setup(tmp_path)
    write_export(exports, "2026-07-31", [INC1], FLIP)
    night(config, DAY1_AS_OF)
    closed = {**INC1, "status": "CLOSED", "closed_at": at(D, "18:00"), "updated_at": at(D, "18:00")}
    write_export(exports, "2026-08-01", [closed], [*FLIP, event("INC1", "18:00", "status", "CLOSED", "系统")])
    night(config, DAY2_AS_OF)

    (tmp_path / "fresh").mkdir()
    fresh_exports, fresh = setup(tmp_path / "fresh", "fresh")
    for name in ("2026-07-31", "2026-08-01"):
        for sub in ("tickets", "events"):
            (fresh_exports / sub).mkdir(parents=True, exist_ok=True)
            (fresh_exports / sub / f"{name}.csv").write_bytes((exports / sub / f"{name}.csv").read_bytes())
    night(fresh, DAY2_AS_OF)

    assert_same(snapshot(config), snapshot(fresh))
    inc1 = facts(config).loc["INC1"]
    assert (inc1["team"], inc1["resolved_at"], inc1["reopen_count"]) == ("桌面组", pd.Timestamp(at(D, "11:00")), 0)
    assert len(snapshot(config)[("parquet", "raw_events")]) == len(FLIP) + 1


def test_resolve_reopen_resolve_at_one_instant_leaves_the_ticket_resolved(tmp_path: Path) -> None:
    """RESOLVED, IN_PROGRESS, RESOLVED at 11:00 (a minute-resolution export): the ticket is resolved at
    11:00, and the reopen between is a reopen (KPIS.md 3: RESOLVED to a working status)."""
    exports, config = setup(tmp_path)
    history = [event("INC1", "09:00", "status", "NEW", "系统"),
               event("INC1", "09:10", "status", "IN_PROGRESS", "王芳"),
               event("INC1", "11:00", "status", "RESOLVED", "王芳"),
               event("INC1", "11:00", "status", "IN_PROGRESS", "王芳"),
               event("INC1", "11:00", "status", "RESOLVED", "王芳")]
    write_export(exports, "2026-07-31", [INC1], history)
    night(config)

    inc1 = facts(config).loc["INC1"]
    assert inc1["status"] == "RESOLVED"
    assert inc1["resolved_at"] == pd.Timestamp(at(D, "11:00"))
    assert (inc1["reopen_count"], inc1["reopened"]) == (1, True)
    # P3 incident, 16 business hours: opened 09:00, resolved 11:00 on a Monday: 2 h, met
    assert inc1["resolution_sla"] == "met"


# --- a maintenance ticket read again alone --------------------------------------------------------------

def _maintenance(tid: str, day: str, engineer: str, **fields: str) -> dict:
    return _ticket(tid, at(day, "10:00"), ticket_type="maintenance", category="补丁", planned_start=at(day, "20:00"),
                   planned_end=at(day, "22:00"), actual_end=at(day, "21:00"), resolved_at=at(day, "21:00"),
                   closed_at=at(day, "21:00"), updated_at=at(day, "21:00"), assignee=engineer,
                   assignment_group="系统组", close_code="successful", **fields)


def _incidents(cause: str, first_day: int) -> list[dict]:
    """Six incidents caused by ``cause`` on six July days; every third one still open at night 2."""
    out = []
    for i in range(6):
        day = f"2026-07-{first_day + i:02d}"
        still_open = i % 3 == 0
        out.append(_ticket(f"I-{cause}-{i}", at(day, "09:00"), caused_by=cause, assignee="王芳",
                           assignment_group="桌面组", first_response_at=at(day, "09:10"),
                           status="IN_PROGRESS" if still_open else "CLOSED",
                           resolved_at="" if still_open else at(day, "10:00"), updated_at=at(day, "10:00")))
    return out


def test_a_maintenance_ticket_read_again_alone_keeps_every_induced_incident(tmp_path: Path) -> None:
    """CHG1 (陈静) and CHG2 (赵磊) each caused six incidents in July; four of the twelve are still open, so
    every night recomputes them. Night 2 reads CHG1 again, unchanged but for a newer updated_at: July still
    counts 6 + 6 = 12 induced incidents, 6 for each engineer, as a run over both files does."""
    exports, config = setup(tmp_path)
    chg1, chg2 = _maintenance("CHG1", "2026-07-01", "陈静"), _maintenance("CHG2", "2026-07-01", "赵磊")
    write_export(exports, "2026-07-31", [chg1, chg2, *_incidents("CHG1", 2), *_incidents("CHG2", 10)], [])
    night(config, DAY1_AS_OF)
    write_export(exports, "2026-08-01", [{**chg1, "updated_at": at("2026-08-01", "09:00")}], [])
    night(config, DAY2_AS_OF)

    month = sql_rows(config, "kpi_engineer")
    month = month[(month["grain"] == "month") & (month["period_start"] == pd.Timestamp("2026-07-01"))]
    induced = month.groupby("engineer")["induced_incidents"].sum()
    assert induced.sum() == 12
    assert (induced["陈静"], induced["赵磊"]) == (6, 6)
    assert facts(config)["induced_incident"].sum() == 12


# --- a ticket read again is superseded, not rejected ------------------------------------------------------

def _open_ticket(i: int, **fields: str) -> dict:
    return _ticket(f"T{i}", at("2026-07-01", f"{9 + i:02d}:00"), **{
        "status": "IN_PROGRESS", "assignee": "王芳", "assignment_group": "桌面组",
        "first_response_at": at("2026-07-01", f"{9 + i:02d}:10"), "updated_at": at("2026-07-01", f"{9 + i:02d}:10"),
        **fields})


def test_three_daily_exports_of_the_same_tickets_are_superseded_copies_not_rejections(tmp_path: Path) -> None:
    """Each day's export repeats the five open tickets: on 07-02 T0 was resolved (a newer copy) and the
    others came again unchanged; on 07-03 T1 was reassigned (newer) and T2 came again with the same
    updated_at but another assignee (a conflict: the later file wins)."""
    exports, config = setup(tmp_path)
    day1 = [_open_ticket(i) for i in range(5)]
    day2 = [{**day1[0], "status": "RESOLVED", "resolved_at": at("2026-07-02", "09:00"),
             "updated_at": at("2026-07-02", "09:00")}, *day1[1:]]
    day3 = [day2[0], {**day1[1], "assignee": "张伟", "updated_at": at("2026-07-03", "09:00")},
            {**day1[2], "assignee": "李娜"}, *day1[3:]]
    for name, rows in (("2026-07-01", day1), ("2026-07-02", day2), ("2026-07-03", day3)):
        write_export(exports, name, rows, [])
    code = cli("backfill", "--from", "2026-07-01", "--to", "2026-07-31", "--config", str(config),
               "--as-of", DAY1_AS_OF.isoformat())

    assert code == 0
    assert len(sql_rows(config, "rejected_rows")) == 0
    run = runs(config).iloc[-1]
    # 15 copies read: 5 used (the newest of each ticket), 10 superseded (T2's 07-03 copy won a tie: 1 conflict)
    assert (run["rows_read"], run["rows_rejected"], run["rows_superseded"], run["conflicts_settled"]) == (15, 0, 10, 1)
    t = facts(config)
    assert (t.loc["T0", "status"], t.loc["T1", "engineer"], t.loc["T2", "engineer"]) == ("RESOLVED", "张伟", "李娜")


def test_the_summary_line_counts_read_used_superseded_and_rejected_apart(tmp_path: Path, capsys) -> None:
    exports, config = setup(tmp_path)
    day1 = [_open_ticket(i) for i in range(3)]
    write_export(exports, "2026-07-01", day1, [])
    write_export(exports, "2026-07-02", [*day1, {**day1[0], "ticket_id": "BAD", "status": "搁置"}], [])
    night(config)

    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("itsm-kpi run"))
    # 7 ticket rows: 3 used, 3 superseded (07-02 repeats 07-01 unchanged), 1 rejected (an unmapped status)
    assert "7 tickets read (3 used, 3 superseded, 1 rejected), 1 rows rejected" in line


def test_an_older_copy_read_later_does_not_overwrite_the_stored_newer_one(tmp_path: Path) -> None:
    """Night 1 reads 07-02's export (T0 resolved); 07-01's export, with T0 still open, arrives late and is
    read on night 2: the stored copy is newer, so the late one is superseded."""
    exports, config = setup(tmp_path)
    t0 = _open_ticket(0)
    resolved = {**t0, "status": "RESOLVED", "resolved_at": at("2026-07-02", "09:00"),
                "updated_at": at("2026-07-02", "09:00")}
    write_export(exports, "2026-07-02", [resolved], [])
    night(config, DAY1_AS_OF)
    write_export(exports, "2026-07-01", [t0], [])
    night(config, DAY2_AS_OF)

    assert facts(config).loc["T0", "status"] == "RESOLVED"
    run = runs(config).iloc[-1]
    assert (run["rows_read"], run["rows_superseded"], run["rows_written"]) == (1, 1, 0)


# --- a fixed mapping brings the rejected rows back ------------------------------------------------------------

def test_a_status_added_to_the_map_brings_the_rejected_row_back(tmp_path: Path, capsys) -> None:
    exports, config = setup(tmp_path)
    pending = _open_ticket(1, status="Pending Vendor")
    write_export(exports, "2026-07-31", [_open_ticket(0), pending], [])
    night(config, DAY1_AS_OF)
    assert sql_rows(config, "rejected_rows")["reason"].tolist() == ["unmapped status 'Pending Vendor'"]
    assert "T1" not in facts(config).index

    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace(f'events_path = "{exports / "events"}"\n',
                                   f'events_path = "{exports / "events"}"\n'
                                   'status_map = { "Pending Vendor" = "WAITING_THIRD_PARTY" }\n'), encoding="utf-8")
    capsys.readouterr()
    night(config, DAY2_AS_OF)  # no new file

    assert facts(config).loc["T1", "status"] == "WAITING_THIRD_PARTY"
    assert len(sql_rows(config, "rejected_rows")) == 0  # its rejection is cleared
    out, err = capsys.readouterr()
    line = next(x for x in out.splitlines() if x.startswith("itsm-kpi run"))
    # both rows read again: T1 is new (used), T0 is the stored copy again (superseded)
    assert "2 tickets read (1 used, 1 superseded, 0 rejected)" in line
    assert "read again from the start: helpdesk (status_map changed)" in line
    warnings = [json.loads(x)["message"] for x in err.splitlines() if x.startswith('{"time"')]
    assert any("helpdesk: status_map changed" in m for m in warnings), warnings
    night(config, DAY3_AS_OF)  # the mapping is recorded: the next night reads only new files
    assert runs(config).iloc[-1]["rows_read"] == 0


def test_a_snapshot_row_rejected_among_good_ones_is_a_row_not_a_ticket(tmp_path: Path, capsys) -> None:
    """Two tickets in three snapshot rows, one of them unmappable (state -100, as in the UCI log): two
    tickets read, one row rejected (the summary used to count that row as a third ticket)."""
    folder = tmp_path / "audit"
    folder.mkdir()
    (folder / "audit.csv").write_text(
        "number,state,opened_at,updated_at,mod\n"
        "INC1,New,2026-07-01T09:00:00+08:00,2026-07-01T09:00:00+08:00,0\n"
        "INC1,-100,2026-07-01T09:00:00+08:00,2026-07-01T09:05:00+08:00,1\n"
        "INC2,New,2026-07-01T10:00:00+08:00,2026-07-01T10:00:00+08:00,0\n", encoding="utf-8")
    _, config = setup(tmp_path)
    text = config.read_text(encoding="utf-8")
    start = text.index("[[sources]]")
    end = text.index("[[scorecard]]")
    config.write_text(text[:start] + f'''[[sources]]
name = "audit"
kind = "csv"
path = "{folder}"
layout = "snapshot"
default_ticket_type = "incident"
columns = {{ ticket_id = "number", status = "state" }}
status_map = {{ "New" = "NEW" }}
options = {{ order_by = "mod" }}

''' + text[end:], encoding="utf-8")
    night(config)

    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("itsm-kpi run"))
    assert "2 tickets read, 1 rows rejected" in line
