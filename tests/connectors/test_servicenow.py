"""ServiceNowConnector against a fake instance on 127.0.0.1 (real HTTP, stateful, faults injected)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fakes.base import serve
from fakes.servicenow import FakeServiceNow, sample_instance

from connectors.base import SourceConfig
from connectors.errors import SourceAuthError, SourceResponseError, SourceUnreachable
from connectors.http import RetryPolicy, basic_auth
from connectors.servicenow import ServiceNowConnector
from kpis.errors import ConfigError

PASSWORD = "sn-S3cret-pw!"
AUTH = basic_auth("kpi_reader", PASSWORD)
FAST = RetryPolicy(max_attempts=4, backoff_base_s=1, backoff_cap_s=8, max_total_wait_s=60, read_timeout_s=0.3)


@pytest.fixture
def instance() -> FakeServiceNow:
    return sample_instance(AUTH)


@pytest.fixture
def url(instance: FakeServiceNow) -> Iterator[str]:
    with serve(instance) as base:
        yield base


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SN_PASSWORD", PASSWORD)


def connector(url: str, waits: list[float] | None = None, **cfg) -> ServiceNowConnector:
    values = {"name": "sn", "kind": "servicenow", "url": url, "username": "kpi_reader",
              "password_env": "SN_PASSWORD", "page_size": 3, "start": "2026-01-01T00:00:00Z", **cfg}
    sleeps = waits if waits is not None else []
    return ServiceNowConnector(SourceConfig(**values), sleep=sleeps.append, policy=FAST, rand=lambda: 0.5)


def ids(batch) -> list[str]:
    return sorted(batch.tickets["ticket_id"])


ALL = sorted([f"INC001000{i}" for i in range(1, 9)] + ["RITM0020001", "CHG0030001"])


def test_every_ticket_once_over_several_pages_with_ties(url: str, instance: FakeServiceNow) -> None:
    batch = connector(url).pull()
    assert ids(batch) == ALL
    assert batch.rejected.empty
    assert batch.cursor == "2026-01-06T10:00:00Z"
    # 8 incidents, 3 per page re-reading 1: offsets 0, 2, 4, 6 -> 4 pages; INC3..6 tie at 10:00.
    assert instance.count("/api/now/table/incident") == 4


def test_full_history_mapped(url: str) -> None:
    batch = connector(url).pull()
    ev = batch.events[batch.events["ticket_id"] == "INC0010001"].sort_values(["at", "seq"])
    got = set(zip(ev["kind"], ev["value"].fillna(""), ev["at"].dt.strftime("%d %H:%M"), strict=True))
    assert got == {
        ("assignee", "david.loo", "01 01:00"), ("status", "NEW", "01 01:00"),  # values before the first change
        ("group", "Network", "01 01:05"), ("assignee", "beth.anglin", "01 01:10"),
        ("status", "IN_PROGRESS", "01 01:20"), ("response", "", "01 01:25"),  # beth's comment, not joe's
        ("status", "RESOLVED", "06 01:00"), ("status", "CLOSED", "06 01:30"),
    }
    kinds = set(ev["kind"])
    assert kinds == {"assignee", "status", "group", "response"}
    t = batch.tickets.set_index("ticket_id")
    assert t.loc["INC0010001", "caused_by"] == "CHG0030001"
    assert t.loc["INC0010001", "status"] == "CLOSED"
    assert t.loc["INC0010003", "first_response_at"] == datetime(2026, 1, 3, 3, 15, tzinfo=UTC)  # task_sla stop
    assert t.loc["INC0010002", "first_response_at"] == datetime(2026, 1, 2, 2, 25, tzinfo=UTC)  # comment
    assert t.loc["CHG0030001", "ticket_type"] == "maintenance"
    assert t.loc["CHG0030001", "planned_end"] == datetime(2026, 1, 3, 16, tzinfo=UTC)
    assert t.loc["CHG0030001", "actual_end"] == datetime(2026, 1, 3, 15, 30, tzinfo=UTC)
    assert t.loc["RITM0020001", ("ticket_type")] == "request"
    assert t.loc["RITM0020001", "status"] == "CLOSED"
    change = batch.events[batch.events["ticket_id"] == "CHG0030001"]
    assert list(change.sort_values("at")["value"]) == ["NEW", "IN_PROGRESS", "CLOSED"]


def test_history_timestamps_and_order(url: str) -> None:
    batch = connector(url).pull()
    ev = batch.events[(batch.events["ticket_id"] == "INC0010001") & (batch.events["kind"] == "status")]
    assert list(ev.sort_values("at")["value"]) == ["NEW", "IN_PROGRESS", "RESOLVED", "CLOSED"]
    assert batch.rows_read == len(batch.tickets) + len(batch.events) + len(batch.rejected)


def test_ticket_updated_between_two_pulls(url: str, instance: FakeServiceNow) -> None:
    sn = connector(url)
    first = sn.pull()
    instance.update("INC0010002", "2026-01-07 11:00:00", state="6")
    since = datetime.fromisoformat(first.cursor) - timedelta(hours=1)  # the pipeline's overlap
    second = sn.pull(since=since)
    assert ids(second) == ["INC0010002", "INC0010003", "INC0010004", "INC0010005", "INC0010006"]
    assert second.cursor == "2026-01-07T11:00:00Z"
    row = second.tickets.set_index("ticket_id").loc["INC0010002"]
    assert row["status"] == "RESOLVED"
    status = second.events[(second.events["ticket_id"] == "INC0010002") & (second.events["kind"] == "status")]
    assert list(status.sort_values("at")["value"]) == ["NEW", "IN_PROGRESS", "RESOLVED"]


def test_ticket_updated_during_a_pull_appears_once_newest(url: str, instance: FakeServiceNow) -> None:
    # After the first incident page, INC0010001 and INC0010002 change: both move to the end and every
    # later row shifts up two places. The overlap notices and the table is read again: nothing skipped.
    def change() -> None:
        instance.update("INC0010001", "2026-01-07 12:00:00", state="2")
        instance.update("INC0010002", "2026-01-07 12:00:01", priority="1")
    instance.on_call("/api/now/table/incident", 2, change)
    batch = connector(url).pull()
    assert ids(batch) == ALL
    t = batch.tickets.set_index("ticket_id")
    assert t.loc["INC0010001", "status"] == "IN_PROGRESS"
    assert t.loc["INC0010002", "priority"] == "P1"
    assert batch.cursor == "2026-01-07T12:00:01Z"


def test_until_bounds_the_window(url: str) -> None:
    batch = connector(url).pull(since=datetime(2026, 1, 6, tzinfo=UTC), until=datetime(2026, 1, 6, 9, tzinfo=UTC))
    assert ids(batch) == ["INC0010001", "INC0010002", "INC0010007", "INC0010008"]


def test_429_with_retry_after_then_success(url: str, instance: FakeServiceNow) -> None:
    instance.fail("429", "/api/now/table/incident", retry_after="7")
    waits: list[float] = []
    batch = connector(url, waits).pull()
    assert ids(batch) == ALL
    assert waits == [7.0]


def test_503_then_success(url: str, instance: FakeServiceNow) -> None:
    instance.fail("503", "/api/now/table/sys_audit", times=2)
    waits: list[float] = []
    batch = connector(url, waits).pull()
    assert ids(batch) == ALL
    assert waits == [0.75, 1.5]  # base 1s, 2s at 75 % jitter
    assert len(batch.events) > 20


def test_timeout_is_retried(url: str, instance: FakeServiceNow) -> None:
    instance.fail("timeout", "/api/now/table/change_request", delay_s=1.0)
    waits: list[float] = []
    assert ids(connector(url, waits).pull()) == ALL
    assert len(waits) == 1


def test_503_forever_is_unreachable(url: str, instance: FakeServiceNow) -> None:
    instance.fail("503", "/api/now/table/incident", times=10)
    with pytest.raises(SourceUnreachable, match="failed 4 times, last with HTTP 503"):
        connector(url).pull()


def test_malformed_json_is_a_clear_error(url: str, instance: FakeServiceNow) -> None:
    instance.fail("malformed", "/api/now/table/incident")
    with pytest.raises(SourceResponseError, match="malformed JSON"):
        connector(url).pull()


def test_html_login_page_is_not_json(url: str, instance: FakeServiceNow) -> None:
    instance.fail("html", "/api/now/table/incident")
    with pytest.raises(SourceResponseError, match="text/html instead of JSON"):
        connector(url).pull()


def test_401_names_the_problem_and_hides_the_password(url: str, monkeypatch, caplog) -> None:
    monkeypatch.setenv("SN_PASSWORD", "wrong-password-123")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceAuthError, match="HTTP 401") as err:
        connector(url).pull()
    assert "wrong-password-123" not in str(err.value) + caplog.text
    assert basic_auth("kpi_reader", "wrong-password-123").split()[1] not in str(err.value) + caplog.text


def test_missing_env_var_is_a_config_error(url: str, monkeypatch) -> None:
    monkeypatch.delenv("SN_PASSWORD")
    with pytest.raises(ConfigError, match="SN_PASSWORD"):
        connector(url)


def test_no_link_header_falls_back_to_offset(monkeypatch) -> None:
    sn = sample_instance(AUTH)
    sn.link_header = False
    with serve(sn) as base:
        assert ids(connector(base).pull()) == ALL


def test_server_limit_below_page_size_is_followed(monkeypatch) -> None:
    sn = sample_instance(AUTH)
    sn.max_limit = 2  # the instance caps sysparm_limit; the Link header still leads on
    with serve(sn) as base:
        assert ids(connector(base, page_size=5).pull()) == ALL


def test_check_reports_unmapped_states_and_writes_nothing(url: str, instance: FakeServiceNow) -> None:
    instance.tables["incident"][0]["state"] = "9"
    problems = connector(url).check()
    assert any("unmapped status '9'" in p for p in problems), problems
    assert all(c.startswith("/api/now/table/") for c in instance.calls)
    assert instance.count("/api/now/table/incident") == 1  # one page only


def test_check_clean_instance(url: str) -> None:
    assert connector(url).check() == []


def test_user_map_overrides_preset(url: str, instance: FakeServiceNow) -> None:
    instance.tables["incident"][0]["state"] = "9"
    batch = connector(url, status_map={"9": "WAITING_CUSTOMER"}).pull()
    assert batch.tickets.set_index("ticket_id").loc["INC0010001", "status"] == "WAITING_CUSTOMER"


def event_rows(batch) -> set[tuple]:
    ev = batch.events
    return set(zip(ev["ticket_id"], ev["kind"], ev["at"], ev["value"].fillna(""), ev["event_id"], strict=True))


def test_event_ids_are_the_sys_ids_of_the_records_read(url: str) -> None:
    batch = connector(url).pull()
    ev = batch.events[batch.events["ticket_id"] == "INC0010001"]
    got = dict(zip(zip(ev["kind"], ev["at"].dt.strftime("%d %H:%M"), strict=True), ev["event_id"], strict=True))
    assert got == {
        ("assignee", "01 01:00"): "initial:assignee", ("status", "01 01:00"): "initial:status",  # before the first change
        ("status", "01 01:20"): "a-i1-1", ("assignee", "01 01:10"): "a-i1-2", ("group", "01 01:05"): "a-i1-3",
        ("response", "01 01:25"): "j1b",  # the sys_journal_field comment that was the response
        ("status", "06 01:00"): "a-i1-4", ("status", "06 01:30"): "a-i1-5",
    }
    sla_response = batch.events[(batch.events["ticket_id"] == "INC0010003") & (batch.events["kind"] == "response")]
    assert list(sla_response["event_id"]) == ["s3"]  # the task_sla record whose stop it is


def test_the_same_history_read_twice_gives_the_same_event_ids(url: str) -> None:
    first, second = connector(url).pull(), connector(url).pull()
    assert first.events["event_id"].notna().all()
    assert event_rows(first) == event_rows(second)
    assert not first.events.duplicated(["ticket_id", "event_id"]).any()


def test_two_changes_in_one_second_get_different_event_ids(url: str, instance: FakeServiceNow) -> None:
    instance.update("INC0010002", "2026-01-07 11:00:00", state="6")
    instance.update("INC0010002", "2026-01-07 11:00:00", state="7")
    ev = connector(url).pull().events
    same_second = ev[(ev["ticket_id"] == "INC0010002") & (ev["at"] == datetime(2026, 1, 7, 11, tzinfo=UTC))]
    assert list(same_second.sort_values("seq")["value"]) == ["RESOLVED", "CLOSED"]
    assert same_second["event_id"].nunique() == 2


def test_client_is_the_company_and_service_the_business_service_else_the_ci(url: str) -> None:
    t = connector(url).pull().tickets.set_index("ticket_id")
    assert t.loc["INC0010001", ["client", "service"]].tolist() == ["ACME", "ERP"]
    assert t.loc["INC0010002", ["client", "service"]].tolist() == ["Globex", "mail-srv01"]  # no business service
    assert t.loc["INC0010003", ["client", "service"]].isna().all()  # empty references
    assert t.loc["RITM0020001", ["client", "service"]].isna().all()  # fields not on the record at all
