"""A stateful fake Jira Service Management Cloud site.

Shaped after the REST API v3 documentation:

* ``GET /rest/api/3/field``: the field list with schema types (SLA and request feedback fields);
* ``GET /rest/api/3/search/jql?jql=...&fields=...&maxResults=N&nextPageToken=T``:
  ``{"issues": [...], "nextPageToken": "...", "isLast": bool}``; the JQL understood is
  ``updated >= <ms> [AND updated < <ms>] ORDER BY updated ASC, key ASC``. The token is modelled as a
  search-after position (the sort values of the last issue sent), so an issue updated while the
  pages are read moves behind the cursor and is sent again, and none is skipped;
* ``POST /rest/api/3/changelog/bulkfetch`` with ``{"issueIdsOrKeys", "fieldIds", "maxResults",
  "nextPageToken"}``: ``{"issueChangeLogs": [{"issueId", "changeHistories": [...]}], "nextPageToken"}``.

Times are written the way Jira writes them: ``2026-01-05T10:00:00.000+0800``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from werkzeug import Request, Response

from .base import FakeVendor, json_response

SHANGHAI = timezone(timedelta(hours=8))
FIELDS = [
    {"id": "summary", "name": "Summary", "custom": False, "schema": {"type": "string", "system": "summary"}},
    {"id": "customfield_10030", "name": "Time to resolution", "custom": True,
     "schema": {"type": "sd-servicelevelagreement", "custom": "com.atlassian.servicedesk:sd-sla-field", "customId": 10030}},
    {"id": "customfield_10031", "name": "Time to first response", "custom": True,
     "schema": {"type": "sd-servicelevelagreement", "custom": "com.atlassian.servicedesk:sd-sla-field", "customId": 10031}},
    {"id": "customfield_10002", "name": "Organizations", "custom": True,
     "schema": {"type": "array", "items": "sd-customerorganization",
                "custom": "com.atlassian.servicedesk:sd-customer-organizations", "customId": 10002}},
    {"id": "customfield_10045", "name": "Satisfaction", "custom": True,
     "schema": {"type": "sd-feedback", "custom": "com.atlassian.servicedesk:sd-request-feedback", "customId": 10045}},
    {"id": "customfield_10046", "name": "Satisfaction date", "custom": True,
     "schema": {"type": "datetime", "custom": "com.atlassian.servicedesk:sd-request-feedback-date", "customId": 10046}},
]


def jira_time(when: datetime) -> str:
    """Jira's own format, in the site's timezone: ``2026-01-05T10:00:00.000+0800``."""
    return when.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M:%S.000%z")


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


class FakeJira(FakeVendor):
    """Issues with their changelogs; ``repeat_token`` makes search return the same token forever."""

    def __init__(self, authorization: str) -> None:
        super().__init__(authorization)
        self.issues: dict[str, dict[str, Any]] = {}  # key -> issue
        self.changelogs: dict[str, list[dict[str, Any]]] = {}  # issue id -> histories, oldest first
        self.repeat_token = False
        self.history_ids = 50000  # history ids are unique across the site, as Jira's are

    def route(self, request: Request) -> Response:
        if request.path == "/rest/api/3/field":
            return json_response(FIELDS)
        if request.path == "/rest/api/3/search/jql":
            return self._search(request)
        if request.path == "/rest/api/3/changelog/bulkfetch" and request.method == "POST":
            return self._bulk_changelog(json.loads(request.get_data()))
        return json_response({"errorMessages": ["Not found"]}, 404)

    def _search(self, request: Request) -> Response:
        jql = request.args["jql"]
        m = re.fullmatch(r"updated >= (\d+)(?: AND updated < (\d+))? ORDER BY updated ASC, key ASC", jql)
        if not m:
            return json_response({"errorMessages": [f"cannot parse {jql}"]}, 400)
        low, high = int(m[1]), int(m[2]) if m[2] else None
        rows = [i for i in self.issues.values() if i["_updated_ms"] >= low and (high is None or i["_updated_ms"] < high)]
        rows.sort(key=lambda i: (i["_updated_ms"], int(i["key"].split("-")[1])))
        limit = int(request.args.get("maxResults", 50))
        if "nextPageToken" in request.args:  # a search-after token: the sort values of the last row sent
            after = tuple(int(x) for x in request.args["nextPageToken"].split("."))
            rows = [i for i in rows if (i["_updated_ms"], int(i["key"].split("-")[1])) > after]
        fields = request.args.get("fields", "").split(",")
        page = [{"id": i["id"], "key": i["key"], "self": f"{self.base_url}/rest/api/3/issue/{i['id']}",
                 "fields": {k: v for k, v in i["fields"].items() if k in fields}} for i in rows[:limit]]
        body: dict[str, Any] = {"issues": page, "isLast": limit >= len(rows)}
        if not body["isLast"]:
            last = rows[limit - 1]
            body["nextPageToken"] = "0.0" if self.repeat_token else f"{last['_updated_ms']}.{last['key'].split('-')[1]}"
        return json_response(body)

    def _bulk_changelog(self, body: dict[str, Any]) -> Response:
        ids = [self.issues[k]["id"] if k in self.issues else k for k in body["issueIdsOrKeys"]]
        wanted = set(body.get("fieldIds") or [])
        flat = [(i, h) for i in ids for h in self.changelogs.get(i, [])
                if not wanted or any(item["fieldId"] in wanted for item in h["items"])]
        start = int(body.get("nextPageToken") or 0)
        limit = int(body.get("maxResults", 1000))
        logs: dict[str, list[dict[str, Any]]] = {}
        for issue_id, history in flat[start:start + limit]:
            logs.setdefault(issue_id, []).append(history)
        out: dict[str, Any] = {"issueChangeLogs": [{"issueId": i, "changeHistories": h} for i, h in logs.items()]}
        if start + limit < len(flat):
            out["nextPageToken"] = str(start + limit)
        return json_response(out)

    # --- building data ------------------------------------------------------------------------

    def add(self, n: int, created: datetime, issuetype: str = "Incident", status: str = "Waiting for support",
            priority: str = "Medium", assignee: str | None = None, **extra: Any) -> dict[str, Any]:
        key, issue_id = f"ITSM-{n}", str(10000 + n)
        fields = {"summary": f"Issue {n}", "issuetype": {"name": issuetype}, "status": {"name": status},
                  "priority": {"name": priority}, "created": jira_time(created), "updated": jira_time(created),
                  "resolutiondate": None, "resolution": None,
                  "assignee": {"displayName": assignee, "accountId": f"acc-{assignee}"} if assignee else None,
                  "components": [{"name": "Network"}], **extra}
        issue = {"id": issue_id, "key": key, "fields": fields, "_updated_ms": ms(created)}
        self.issues[key] = issue
        self.changelogs[issue_id] = []
        return issue

    def change(self, key: str, at: datetime, author: str = "Beth", **changes: str | None) -> None:
        """Change fields the way Jira does: the issue, its ``updated`` and one changelog entry."""
        issue = self.issues[key]
        items = []
        for field, new in changes.items():
            old = issue["fields"].get(field)
            old_name = (old or {}).get("name") or (old or {}).get("displayName") if isinstance(old, dict) else None
            items.append({"field": field, "fieldtype": "jira", "fieldId": field, "from": None,
                          "fromString": old_name, "to": None, "toString": new})
            if field == "assignee":
                issue["fields"][field] = {"displayName": new, "accountId": f"acc-{new}"} if new else None
            else:
                issue["fields"][field] = {"name": new}
        self.history_ids += 1
        self.changelogs[issue["id"]].append({"id": str(self.history_ids), "author": {"displayName": author},
                                             "created": jira_time(at), "items": items})
        issue["fields"]["updated"] = jira_time(at)
        issue["_updated_ms"] = ms(at)


def organizations(*names: str) -> list[dict[str, Any]]:
    """An Organizations field value as the platform API returns it: id, name and a servicedeskapi link each."""
    return [{"id": str(i), "name": name, "_links": {"self": f"https://site/rest/servicedeskapi/organization/{i}"}}
            for i, name in enumerate(names, start=1)]


def sla(stop: datetime | None) -> dict[str, Any]:
    """An SLA field value with one completed cycle stopped at ``stop`` (or only an ongoing one)."""
    value: dict[str, Any] = {"id": "2", "name": "Time to first response", "completedCycles": []}
    if stop is not None:
        value["completedCycles"].append({"startTime": {"epochMillis": ms(stop) - 600000},
                                         "stopTime": {"iso8601": jira_time(stop), "epochMillis": ms(stop)},
                                         "breached": False})
    else:
        value["ongoingCycle"] = {"breached": False}
    return value


CLIENTS = {1: ("ACME", "Globex"), 2: ()}  # issue number -> its customer organizations; ACME otherwise
COMPONENTS = {2: [], 3: [{"name": "ERP"}, {"name": "Network"}]}  # issue number -> components; Network otherwise


def sample_site(authorization: str) -> FakeJira:
    """Seven issues; ITSM-3..ITSM-6 share one ``updated`` second; ITSM-1 has a long changelog."""
    jira = FakeJira(authorization)
    t0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
    for n in range(1, 8):
        created = t0 + timedelta(hours=n)
        issuetype = {6: "Service Request", 7: "Change"}.get(n, "Incident")
        jira.add(n, created, issuetype=issuetype, customfield_10031=sla(created + timedelta(minutes=12) if n != 2 else None),
                 customfield_10002=organizations(*CLIENTS.get(n, ("ACME",))),
                 components=COMPONENTS.get(n, [{"name": "Network"}]),
                 customfield_10045={"rating": 4} if n == 1 else None,
                 customfield_10046=jira_time(created + timedelta(days=1)) if n == 1 else None)
        jira.change(f"ITSM-{n}", created + timedelta(minutes=5), assignee="Beth")
        jira.change(f"ITSM-{n}", created + timedelta(minutes=10), status="In Progress")
        tie = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
        jira.change(f"ITSM-{n}", tie if 3 <= n <= 6 else created + timedelta(hours=3), status="Resolved")
    for k in range(150):  # more history than the inline changelog (100) and than one bulk page in tests
        jira.change("ITSM-1", datetime(2026, 1, 5, 5, 0, tzinfo=UTC) + timedelta(seconds=k), priority=["High", "Medium"][k % 2])
    jira.issues["ITSM-1"]["fields"]["resolutiondate"] = jira.issues["ITSM-1"]["fields"]["updated"]
    return jira
