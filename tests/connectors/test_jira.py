"""JiraConnector against a fake Jira Service Management site on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from fakes.base import serve
from fakes.jira import FIELDS, FakeJira, sample_site

from connectors.base import SourceConfig
from connectors.errors import SourceAuthError, SourceResponseError, SourceUnreachable
from connectors.http import RetryPolicy, basic_auth
from connectors.jira import JiraConnector

TOKEN = "ATATT3xFfGF0-jira-api-token"
AUTH = basic_auth("kpi@example.com", TOKEN)
FAST = RetryPolicy(max_attempts=4, backoff_base_s=1, backoff_cap_s=8, max_total_wait_s=60, read_timeout_s=0.3)
ALL = [f"ITSM-{n}" for n in range(1, 8)]


@pytest.fixture
def site() -> FakeJira:
    return sample_site(AUTH)


@pytest.fixture
def url(site: FakeJira) -> Iterator[str]:
    with serve(site) as base:
        yield base


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIRA_TOKEN", TOKEN)


def connector(url: str, waits: list[float] | None = None, policy: RetryPolicy = FAST, **cfg) -> JiraConnector:
    values = {"name": "jsm", "kind": "jira", "url": url, "username": "kpi@example.com", "token_env": "JIRA_TOKEN",
              "page_size": 3, "start": "2026-01-01T00:00:00Z", "options": {"changelog_page_size": 50}, **cfg}
    return JiraConnector(SourceConfig(**values), sleep=(waits if waits is not None else []).append,
                         policy=policy, rand=lambda: 0.5)


def ids(batch) -> list[str]:
    return sorted(batch.tickets["ticket_id"], key=lambda k: int(k.split("-")[1]))


def test_every_issue_once_with_full_changelog(url: str, site: FakeJira) -> None:
    batch = connector(url).pull()
    assert ids(batch) == ALL
    assert batch.rejected.empty
    assert batch.cursor == "2026-01-06T09:00:00Z"
    assert site.count("/rest/api/3/search/jql") == 3  # 7 issues, 3 a page; ITSM-3..6 tie across pages
    assert site.count("/rest/api/3/changelog/bulkfetch") == 4  # 171 histories, 50 a page
    ev = batch.events[batch.events["ticket_id"] == "ITSM-1"]
    assert (ev["kind"] == "priority").sum() == 150 + 1  # every change plus the value before the first
    status = ev[ev["kind"] == "status"].sort_values("at")
    assert list(status["value"]) == ["IN_PROGRESS", "IN_PROGRESS", "RESOLVED"]  # Waiting for support, In Progress
    assert status["at"].iloc[0] == datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # initial value at creation


def test_sla_and_feedback_fields_found_by_type(url: str) -> None:
    batch = connector(url).pull()
    t = batch.tickets.set_index("ticket_id")
    assert t.loc["ITSM-1", "first_response_at"] == datetime(2026, 1, 5, 2, 12, tzinfo=UTC)
    assert t.loc["ITSM-1", "satisfaction"] == "4"
    assert t.loc["ITSM-1", "satisfaction_at"] == datetime(2026, 1, 6, 2, 0, tzinfo=UTC)
    assert t.loc["ITSM-1", "opened_at"] == datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # from +0800 text
    assert pd.isna(t.loc["ITSM-2", "first_response_at"])  # SLA still running: no completed cycle
    assert t.loc["ITSM-6", "ticket_type"] == "request"
    assert t.loc["ITSM-7", "ticket_type"] == "maintenance"
    responses = batch.events[batch.events["kind"] == "response"]
    assert sorted(responses["ticket_id"]) == sorted(set(ALL) - {"ITSM-2"}, key=str)


def test_issue_updated_between_two_pulls(url: str, site: FakeJira) -> None:
    jira = connector(url)
    first = jira.pull()
    site.change("ITSM-2", datetime(2026, 1, 7, 8, 0, tzinfo=UTC), status="Waiting for customer")
    second = jira.pull(since=datetime.fromisoformat(first.cursor) - timedelta(minutes=10))
    assert ids(second) == ["ITSM-2", "ITSM-3", "ITSM-4", "ITSM-5", "ITSM-6"]
    assert second.tickets.set_index("ticket_id").loc["ITSM-2", "status"] == "WAITING_CUSTOMER"
    status = second.events[(second.events["ticket_id"] == "ITSM-2") & (second.events["kind"] == "status")]
    assert list(status.sort_values("at")["value"]) == ["IN_PROGRESS", "IN_PROGRESS", "RESOLVED", "WAITING_CUSTOMER"]
    assert second.cursor == "2026-01-07T08:00:00Z"


def test_issue_updated_during_a_pull_appears_once_newest(url: str, site: FakeJira) -> None:
    site.on_call("/rest/api/3/search/jql", 2, lambda: site.change("ITSM-1", datetime(2026, 1, 7, tzinfo=UTC),
                                                                  status="Closed"))
    batch = connector(url).pull()
    assert ids(batch) == ALL
    assert batch.tickets.set_index("ticket_id").loc["ITSM-1", "status"] == "CLOSED"


def test_429_with_http_date_retry_after(url: str, site: FakeJira) -> None:
    site.fail("429", "/rest/api/3/search/jql", retry_after="Wed, 21 Oct 2026 07:28:30 GMT")
    waits: list[float] = []
    jira = JiraConnector(SourceConfig(name="jsm", kind="jira", url=url, username="kpi@example.com",
                                      token_env="JIRA_TOKEN", page_size=3, start="2026-01-01T00:00:00Z"),
                         sleep=waits.append, policy=FAST, now=lambda: datetime(2026, 10, 21, 7, 28, 0, tzinfo=UTC))
    assert ids(jira.pull()) == ALL
    assert waits == [30.0]


def test_503_then_success_on_the_changelog(url: str, site: FakeJira) -> None:
    site.fail("503", "/rest/api/3/changelog/bulkfetch")
    waits: list[float] = []
    batch = connector(url, waits).pull()
    assert ids(batch) == ALL and waits == [0.75]
    assert (batch.events["kind"] == "priority").sum() == 151


def test_timeout_then_success(url: str, site: FakeJira) -> None:
    site.fail("timeout", "/rest/api/3/search/jql", delay_s=1.0)
    assert ids(connector(url).pull()) == ALL


def test_retry_after_beyond_the_budget_fails_fast(url: str, site: FakeJira) -> None:
    site.fail("429", "/rest/api/3/search/jql", retry_after="3600")
    waits: list[float] = []
    # a read timeout that a loaded machine cannot hit: a retried slow answer would be a wait of its own
    patient = dataclasses.replace(FAST, read_timeout_s=30)
    with pytest.raises(SourceUnreachable, match="exceed the 60s retry budget"):
        connector(url, waits, policy=patient).pull()
    assert waits == []


def test_malformed_json(url: str, site: FakeJira) -> None:
    site.fail("malformed", "/rest/api/3/changelog/bulkfetch")
    with pytest.raises(SourceResponseError, match="malformed JSON"):
        connector(url).pull()


def test_401_is_an_auth_error_without_the_token(url: str, monkeypatch, caplog) -> None:
    monkeypatch.setenv("JIRA_TOKEN", "ATATT-wrong-token-xyz")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceAuthError) as err:
        connector(url).pull()
    text = str(err.value) + caplog.text
    assert "ATATT-wrong-token-xyz" not in text
    assert basic_auth("kpi@example.com", "ATATT-wrong-token-xyz").split()[1] not in text


def test_repeated_page_token_is_a_loop(url: str, site: FakeJira) -> None:
    site.repeat_token = True
    with pytest.raises(SourceResponseError, match="pagination loop"):
        connector(url).pull()


def test_check_reports_unmapped_status_and_type(url: str, site: FakeJira) -> None:
    site.issues["ITSM-1"]["fields"]["status"] = {"name": "Awaiting parts"}
    site.issues["ITSM-2"]["fields"]["issuetype"] = {"name": "Problem"}
    problems = connector(url).check()
    assert any("unmapped status 'Awaiting parts'" in p for p in problems), problems
    assert any("unmapped type 'Problem'" in p for p in problems), problems
    assert site.count("/rest/api/3/search/jql") == 1


def test_check_reports_missing_sla_field(url: str, site: FakeJira) -> None:
    problems = connector(url, options={"first_response_sla": "Time to acknowledge"}).check()
    assert problems == ['the "Time to acknowledge" SLA field was not found in /rest/api/3/field: that column stays empty']


def event_rows(batch) -> set[tuple]:
    ev = batch.events
    return set(zip(ev["ticket_id"], ev["kind"], ev["at"], ev["value"].fillna(""), ev["event_id"], strict=True))


def test_event_ids_are_history_id_and_item_index(url: str, site: FakeJira) -> None:
    at = datetime(2026, 1, 7, 8, 0, tzinfo=UTC)
    site.change("ITSM-2", at, status="Waiting for customer", assignee="Dave")  # one history, two items
    site.change("ITSM-2", at, priority="High")  # another history in the same second
    two_items, other = (h["id"] for h in site.changelogs["10002"][-2:])
    ev = connector(url).pull().events
    ev = ev[ev["ticket_id"] == "ITSM-2"]
    same_second = set(zip(ev.loc[ev["at"] == at, "kind"], ev.loc[ev["at"] == at, "event_id"], strict=True))
    assert same_second == {("status", f"{two_items}:0"), ("assignee", f"{two_items}:1"), ("priority", f"{other}:0")}
    assert not ev["event_id"].duplicated().any()
    assert set(ev.loc[ev["at"] == datetime(2026, 1, 5, 3, 0, tzinfo=UTC), "event_id"]) == {
        "initial:status", "initial:priority"}  # the values before their first change, at creation


def test_the_same_changelog_read_twice_gives_the_same_event_ids(url: str) -> None:
    first, second = connector(url).pull(), connector(url).pull()
    assert first.events["event_id"].notna().all()
    assert event_rows(first) == event_rows(second)
    responses = first.events[first.events["kind"] == "response"]
    assert set(responses["event_id"]) == {"sla:customfield_10031"}  # the SLA field whose first cycle stop it is


def test_client_is_the_first_organization_and_service_the_first_component(url: str, site: FakeJira) -> None:
    del site.issues["ITSM-4"]["fields"]["customfield_10002"]  # a request type without the Organizations field
    t = connector(url).pull().tickets.set_index("ticket_id")
    assert t.loc["ITSM-1", ["client", "service"]].tolist() == ["ACME", "Network"]  # shared with ACME and Globex
    assert t.loc["ITSM-3", ["client", "service"]].tolist() == ["ACME", "ERP"]  # components ERP, Network
    assert t.loc["ITSM-2", ["client", "service"]].isna().all()  # no organization, no component
    assert pd.isna(t.loc["ITSM-4", "client"])
    assert site.count("/rest/servicedeskapi") == 0  # the field names the organizations: no extra call


def test_check_reports_a_site_without_the_organizations_field(url: str, monkeypatch) -> None:
    monkeypatch.setattr("fakes.jira.FIELDS", [f for f in FIELDS if f["name"] != "Organizations"])
    assert connector(url).check() == [
        "the Organizations (customer organizations) field was not found in /rest/api/3/field: that column stays empty"]
    assert connector(url).pull().tickets["client"].isna().all()
