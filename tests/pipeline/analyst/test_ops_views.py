"""The analyst views over kpi_breakdown, ticket_status_time and kpi_backlog, through ``itsm-kpi query`` on
both engines, on two hand-made tickets (Asia/Shanghai; office hours Mon-Fri 09:00-12:00, 13:30-18:00).

A (王芳, 桌面组): opened Thu 07-30 09:00, waits on the customer 10:00-12:00, resolved and closed at 14:00.
B (张伟, 网络组): opened Fri 07-31 09:00, waits on the customer from 09:30, still waiting at as_of
(Sat 08-01 01:15). Both incidents, P3, category 网络, no client.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ops_helpers import DAY1_AS_OF, _ticket, at, cli, write_config, write_export


def _export() -> tuple[list[dict], list[dict]]:
    a = _ticket("A", at("2026-07-30", "09:00"), assignee="王芳", assignment_group="桌面组",
                first_response_at=at("2026-07-30", "09:10"), resolved_at=at("2026-07-30", "14:00"),
                closed_at=at("2026-07-30", "14:00"), updated_at=at("2026-07-30", "14:00"))
    b = _ticket("B", at("2026-07-31", "09:00"), assignee="张伟", assignment_group="网络组", status="WAITING_CUSTOMER",
                first_response_at=at("2026-07-31", "09:30"), updated_at=at("2026-07-31", "09:30"))

    def ev(tid: str, day: str, hhmm: str, value: str) -> dict:
        return dict(ticket_id=tid, at=at(day, hhmm), kind="status", value=value, actor="x")

    events = [ev("A", "2026-07-30", "09:00", "NEW"), ev("A", "2026-07-30", "10:00", "WAITING_CUSTOMER"),
              ev("A", "2026-07-30", "12:00", "IN_PROGRESS"), ev("A", "2026-07-30", "14:00", "RESOLVED"),
              ev("A", "2026-07-30", "14:00", "CLOSED"),
              ev("B", "2026-07-31", "09:00", "NEW"), ev("B", "2026-07-31", "09:30", "WAITING_CUSTOMER")]
    return [a, b], events


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ops-views")
    write_export(tmp / "exports", "2026-07-31", *_export())
    path = write_config(tmp, f"sqlite:///{tmp / 'kpi.sqlite'}", sources={"helpdesk": tmp / "exports"})
    assert cli("run", "--config", str(path), "--as-of", DAY1_AS_OF.isoformat()) == 0
    return path


def _query(config: Path, engine: str, sql: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    capsys.readouterr()
    assert cli("query", "--config", str(config), "--engine", engine, "--json", sql) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


@pytest.mark.parametrize("engine", ["parquet", "sql"])
def test_time_waiting_on_the_customer_per_team(config: Path, engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _query(config, engine, "SELECT team, SUM(calendar_h) AS calendar_h, SUM(business_h) AS business_h "
                                  "FROM v_status_time WHERE status = 'WAITING_CUSTOMER' GROUP BY team ORDER BY team",
                  capsys)
    # A: Thu 10:00-12:00 = 2 h, all office hours. B: Fri 09:30 -> as_of Sat 01:15 = 15.75 h; office hours
    # Fri 09:30-12:00 (2.5 h) + 13:30-18:00 (4.5 h) = 7 h
    assert rows == [{"team": "桌面组", "calendar_h": 2.0, "business_h": 2.0},
                    {"team": "网络组", "calendar_h": 15.75, "business_h": 7.0}]


@pytest.mark.parametrize("engine", ["parquet", "sql"])
def test_the_latest_backlog_by_age(config: Path, engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _query(config, engine, "SELECT day, engineer, open_count, age_lt_1d, age_1_3d, paused_count "
                                  "FROM v_backlog_latest", capsys)
    # as_of's local date is 08-01; at its end (08-02 00:00) only B is open, opened 39 h before: 1 to 3 days,
    # and waiting on the customer, a pause status
    assert rows == [{"day": "2026-08-01", "engineer": "张伟", "open_count": 1, "age_lt_1d": 0, "age_1_3d": 1,
                     "paused_count": 1}]


@pytest.mark.parametrize("engine", ["parquet", "sql"])
def test_a_breakdown_members_month(config: Path, engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _query(config, engine, "SELECT dimension, member, opened_count, resolved_count, ticket_types "
                                  "FROM v_breakdown_month WHERE dimension IN ('category', 'client') "
                                  "ORDER BY dimension", capsys)
    # July: both opened (A and B), A resolved; one ticket type (incident); no client: the member '(none)'
    assert rows == [{"dimension": "category", "member": "网络", "opened_count": 2, "resolved_count": 1, "ticket_types": 1},
                    {"dimension": "client", "member": "(none)", "opened_count": 2, "resolved_count": 1,
                     "ticket_types": 1}]
