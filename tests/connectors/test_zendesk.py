"""ZendeskConnector against a fake Zendesk account on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from fakes.base import serve
from fakes.zendesk import SERVICE_FIELD, FakeZendesk, sample_account

from connectors.base import SourceConfig
from connectors.errors import SourceAuthError, SourceResponseError
from connectors.http import RetryPolicy, basic_auth
from connectors.zendesk import ZendeskConnector

TOKEN = "zd-api-token-6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv"
AUTH = basic_auth("kpi@example.com/token", TOKEN)
NOW = datetime(2026, 1, 8, 12, 0, tzinfo=UTC)
FAST = RetryPolicy(max_attempts=4, backoff_base_s=1, backoff_cap_s=8, max_total_wait_s=60, read_timeout_s=0.3)
ALL = [str(n) for n in range(1, 9)]


@pytest.fixture
def account() -> FakeZendesk:
    return sample_account(AUTH, NOW)


@pytest.fixture
def url(account: FakeZendesk) -> Iterator[str]:
    with serve(account) as base:
        yield base


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZD_TOKEN", TOKEN)


def connector(url: str, waits: list[float] | None = None, now: datetime = NOW, **cfg) -> ZendeskConnector:
    values = {"name": "zd", "kind": "zendesk", "url": url, "username": "kpi@example.com", "token_env": "ZD_TOKEN",
              "page_size": 3, "start": "2026-01-01T00:00:00Z", **cfg}
    return ZendeskConnector(SourceConfig(**values), sleep=(waits if waits is not None else []).append,
                            policy=FAST, rand=lambda: 0.5, now=lambda: now)


def ids(batch) -> list[str]:
    return sorted(batch.tickets["ticket_id"], key=int)


def test_every_ticket_once_with_history(url: str, account: FakeZendesk) -> None:
    batch = connector(url).pull()
    assert ids(batch) == ALL
    assert batch.rejected.empty
    assert batch.cursor == "2026-01-06T09:00:00Z"
    assert account.count("/api/v2/incremental/tickets/cursor.json") == 3  # 8 tickets, 3 a page, 5..7 tied
    assert account.count("/audits.json") == 7  # not for the deleted ticket
    t = batch.tickets.set_index("ticket_id")
    assert t.loc["8", "status"] == "CANCELLED"
    assert t.loc["1", "assignee"] == "Beth Agent" and t.loc["1", "assignment_group"] == "Support"
    assert t.loc["3", "ticket_type"] == "request" and t.loc["4", "ticket_type"] == "request"  # question, none
    assert t.loc["1", "resolved_at"] == datetime(2026, 1, 5, 4, 0, tzinfo=UTC)
    ev = batch.events[batch.events["ticket_id"] == "2"].sort_values(["at", "seq"])
    got = list(zip(ev["kind"], ev["value"].fillna(""), ev["at"].dt.strftime("%H:%M"), strict=True))
    assert got == [("status", "NEW", "03:00"), ("priority", "P3", "03:00"),  # source order within an audit
                   ("status", "IN_PROGRESS", "03:05"), ("assignee", "Beth Agent", "03:05"), ("group", "Support", "03:05"),
                   ("response", "", "03:09"),  # the agent's comment; not the requester's, not the trigger's
                   ("status", "RESOLVED", "05:00")]


def test_satisfaction_scored_and_timed(url: str) -> None:
    t = connector(url).pull().tickets.set_index("ticket_id")
    assert t.loc["1", "satisfaction"] == "5"
    assert t.loc["1", "satisfaction_at"] == datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
    assert t.loc["2", "satisfaction"] is None or t.loc["2", "satisfaction"] != t.loc["2", "satisfaction"]


def test_ticket_updated_between_two_pulls(url: str, account: FakeZendesk) -> None:
    zd = connector(url)
    first = zd.pull()
    account.change(2, datetime(2026, 1, 7, 8, 0, tzinfo=UTC), status="open")  # reopened
    second = zd.pull(since=datetime.fromisoformat(first.cursor) - timedelta(minutes=10))
    assert ids(second) == ["2", "5", "6", "7"]
    assert second.tickets.set_index("ticket_id").loc["2", "status"] == "IN_PROGRESS"
    status = second.events[(second.events["ticket_id"] == "2") & (second.events["kind"] == "status")]
    assert list(status.sort_values("at")["value"]) == ["NEW", "IN_PROGRESS", "RESOLVED", "IN_PROGRESS"]


def test_ticket_updated_during_a_pull_appears_once_newest(url: str, account: FakeZendesk) -> None:
    account.on_call("/api/v2/incremental/tickets/cursor.json", 2,
                    lambda: account.change(1, datetime(2026, 1, 7, tzinfo=UTC), status="closed"))
    batch = connector(url).pull()
    assert ids(batch) == ALL
    assert batch.tickets.set_index("ticket_id").loc["1", "status"] == "CLOSED"
    assert batch.cursor == "2026-01-07T00:00:00Z"


def test_start_time_is_kept_out_of_the_last_minute(url: str) -> None:
    batch = connector(url).pull(since=NOW - timedelta(seconds=5))
    assert batch.tickets.empty and batch.cursor is None


def test_429_503_and_timeout_end_in_success(url: str, account: FakeZendesk) -> None:
    account.fail("429", "/api/v2/incremental/tickets/cursor.json", retry_after="10")
    account.fail("503", "/audits.json")
    account.fail("timeout", "/api/v2/users/show_many.json", delay_s=1.0)
    waits: list[float] = []
    assert ids(connector(url, waits).pull()) == ALL
    assert waits == [10.0, 0.75, 0.75]


def test_malformed_json(url: str, account: FakeZendesk) -> None:
    account.fail("malformed", "/api/v2/incremental/tickets/cursor.json")
    with pytest.raises(SourceResponseError, match="malformed JSON"):
        connector(url).pull()


def test_401_without_the_token(url: str, monkeypatch, caplog) -> None:
    monkeypatch.setenv("ZD_TOKEN", "zd-wrong-token-000000")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceAuthError, match="HTTP 401") as err:
        connector(url).pull()
    text = str(err.value) + caplog.text
    assert "zd-wrong-token-000000" not in text
    assert basic_auth("kpi@example.com/token", "zd-wrong-token-000000").split()[1] not in text


def test_ticket_deleted_between_export_and_audits(url: str, account: FakeZendesk) -> None:
    account.on_call("/api/v2/tickets/3/audits.json", 1, lambda: account.tickets[3].update(status="deleted"))
    batch = connector(url).pull()
    assert ids(batch) == ALL
    assert (batch.events["ticket_id"] == "3").sum() == 0


def test_check_reports_unmapped_values(url: str, account: FakeZendesk) -> None:
    account.tickets[8]["status"] = "archived"
    problems = connector(url).check()
    assert any("unmapped status 'archived'" in p for p in problems), problems
    assert account.count("/api/v2/incremental/tickets/cursor.json") == 1


def event_rows(batch) -> set[tuple]:
    ev = batch.events
    return set(zip(ev["ticket_id"], ev["kind"], ev["at"], ev["value"].fillna(""), ev["event_id"], strict=True))


def test_event_ids_are_audit_id_and_event_id(url: str, account: FakeZendesk) -> None:
    at = datetime(2026, 1, 7, 8, 0, tzinfo=UTC)
    account.change(2, at, status="pending", priority="high")  # one audit, two changes in one second
    account.change(2, at, assignee_id=12)  # another audit in the same second
    ev = connector(url).pull().events
    ev = ev[ev["ticket_id"] == "2"]
    create, _, _, reply, _, both, other = account.audits[2]  # created, trigger, open, reply, solved, ours
    ids = {(k, t.strftime("%H:%M")): i for k, t, i in zip(ev["kind"], ev["at"], ev["event_id"], strict=True)}
    assert ids[("status", "03:00")] == f"{create['id']}:{create['events'][1]['id']}"  # the Create event
    assert ids[("response", "03:09")] == f"{reply['id']}:{reply['events'][0]['id']}"  # the agent's comment
    assert ids[("status", "08:00")] == f"{both['id']}:{both['events'][0]['id']}"
    assert ids[("priority", "08:00")] == f"{both['id']}:{both['events'][1]['id']}"
    assert ids[("assignee", "08:00")] == f"{other['id']}:{other['events'][0]['id']}"
    assert not ev["event_id"].duplicated().any()


def test_the_same_audits_read_twice_give_the_same_event_ids(url: str) -> None:
    first, second = connector(url).pull(), connector(url).pull()
    assert first.events["event_id"].notna().all()
    assert event_rows(first) == event_rows(second)


def test_a_response_from_the_metric_set_has_a_stable_id(url: str, account: FakeZendesk) -> None:
    account.add(9, datetime(2026, 1, 5, 10, 0, tzinfo=UTC))  # no agent comment in its audits
    account.metrics[9]["reply_time_in_minutes"] = {"calendar": 42, "business": 42}
    ev = connector(url).pull().events
    response = ev[(ev["ticket_id"] == "9") & (ev["kind"] == "response")]
    assert list(zip(response["at"], response["event_id"], strict=True)) == [
        (datetime(2026, 1, 5, 10, 42, tzinfo=UTC), "metric_set:reply_time")]


def test_client_is_the_organization_name_and_service_a_custom_field(url: str, account: FakeZendesk) -> None:
    created = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    account.add(9, created, organization=32, custom_fields=[{"id": SERVICE_FIELD, "value": "erp"}])
    account.add(10, created, organization=None, custom_fields=[{"id": SERVICE_FIELD, "value": None}])
    account.add(11, created, organization=99)  # an organization deleted since: show_many leaves it out
    t = connector(url, options={"service_field": SERVICE_FIELD}).pull().tickets.set_index("ticket_id")
    assert t.loc["9", ["client", "service"]].tolist() == ["Globex", "erp"]
    assert t.loc["1", "client"] == "ACME" and pd.isna(t.loc["1", "service"])  # no such custom field on it
    assert t.loc["10", ["client", "service"]].isna().all()
    assert pd.isna(t.loc["11", "client"])


def test_organizations_and_users_are_read_in_bulk_once_per_run(url: str, account: FakeZendesk) -> None:
    zd = connector(url)
    zd.pull()
    account.change(2, datetime(2026, 1, 7, 8, 0, tzinfo=UTC), status="open")
    zd.pull(since=datetime(2026, 1, 7, tzinfo=UTC))
    assert account.count("/api/v2/organizations/show_many.json") == 1  # 8 tickets, 1 organization: one call
    assert account.count("/api/v2/users/show_many.json") == 1  # the second pull knows every user already
    assert account.count("/api/v2/groups.json") == 1


def first_responses(batch) -> dict[str, datetime]:
    t = batch.tickets.set_index("ticket_id")
    return {tid: t.loc[tid, "first_response_at"] for tid in t.index}


def test_the_comment_an_agent_creates_a_ticket_with_is_not_its_response(url: str, account: FakeZendesk) -> None:
    created = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    account.add(9, created, requester=1, creator=11)  # Beth files Joe's phone call: her comment opens it
    account.change(9, created + timedelta(minutes=30), author=11, comment=True)
    batch = connector(url).pull()
    assert first_responses(batch)["9"] == created + timedelta(minutes=30)  # not 0: the first LATER public reply
    response = batch.events[(batch.events["ticket_id"] == "9") & (batch.events["kind"] == "response")]
    assert list(response["at"]) == [created + timedelta(minutes=30)]


def test_only_public_comments_by_agents_or_admins_are_responses(url: str, account: FakeZendesk) -> None:
    created = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    account.add(9, created, requester=1)
    account.change(9, created + timedelta(minutes=5), author=11, comment=True, public=False)  # internal note
    account.change(9, created + timedelta(minutes=10), author=2, channel="email", comment=True)  # Carol, CC'd end-user
    account.change(9, created + timedelta(minutes=40), author=12, comment=True)  # Dave, an admin
    assert first_responses(connector(url).pull())["9"] == created + timedelta(minutes=40)
