"""Jira Service Management (Cloud) connector: issues by JQL, full changelogs, SLA and feedback fields.

Endpoints:

* ``GET /rest/api/3/field`` once per connector: finds the SLA fields by their schema type
  (``com.atlassian.servicedesk:sd-sla-field``, e.g. "Time to first response") and the request
  feedback (satisfaction) fields, whatever their ``customfield_NNNNN`` ids are on this site;
* ``GET /rest/api/3/search/jql`` with ``updated >= <epoch ms> ORDER BY updated ASC`` and
  ``nextPageToken`` / ``isLast`` paging;
* ``POST /rest/api/3/changelog/bulkfetch`` for the complete changelog of up to 1,000 issues per
  call (the changelog inlined by ``expand=changelog`` is cut at 100 entries, newest first).

First response = the stop time of the first completed cycle of the "Time to first response" SLA;
satisfaction = the request feedback rating (1..5) and its date; client = the first of the request's
customer organizations (the JSM Organizations field, found by type like the SLA fields: its value
already names each organization, so ``/rest/servicedeskapi/organization`` is never called);
service = the first component.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

from connectors.options import option
from connectors.paging import NextPageTokenPaginator, Request, paginate
from connectors.rest import (
    RawEvent,
    RawRecord,
    RestConnector,
    chunks,
    epoch_ms_iso,
    iso_utc,
    parse_when,
    text,
)

__all__ = ["JiraConnector"]

log = logging.getLogger(__name__)

FIELDS_PATH = "/rest/api/3/field"
SEARCH_PATH = "/rest/api/3/search/jql"
CHANGELOG_PATH = "/rest/api/3/changelog/bulkfetch"
SLA_TYPE = "com.atlassian.servicedesk:sd-sla-field"
FEEDBACK_TYPE = "com.atlassian.servicedesk:sd-request-feedback"
FEEDBACK_DATE_TYPE = "com.atlassian.servicedesk:sd-request-feedback-date"
ORGANIZATIONS_TYPE = "com.atlassian.servicedesk:sd-customer-organizations"
BASE_FIELDS = ("issuetype", "status", "priority", "created", "updated", "resolutiondate", "resolution",
               "assignee", "components")
# changelog fieldId -> canonical event kind (the group field is added from options)
CHANGE_KINDS = {"status": "status", "assignee": "assignee", "priority": "priority", "components": "category"}
BULK_ISSUES = 1000  # the bulk changelog endpoint takes at most this many issues per call


def epoch_ms(when: datetime) -> int:
    """An aware datetime -> milliseconds since the epoch (JQL accepts them for date fields)."""
    return int(when.timestamp() * 1000)


def name_of(value: Any) -> str | None:
    """The readable name of a Jira field value: an object's name/displayName/value, a list's first."""
    if isinstance(value, list):
        return name_of(value[0]) if value else None
    if isinstance(value, dict):
        for key in ("name", "displayName", "value"):
            if value.get(key) is not None:
                return text(value[key])
        return None
    return text(value)


def sla_first_stop(value: Any) -> str | None:
    """The stop time of an SLA field's first completed cycle (ISO 8601 UTC), else None."""
    cycles = (value or {}).get("completedCycles") or [] if isinstance(value, dict) else []
    stops = [c.get("stopTime", {}).get("epochMillis") for c in cycles if isinstance(c, dict)]
    stops = [s for s in stops if s is not None]
    return epoch_ms_iso(min(stops)) if stops else None


class JiraConnector(RestConnector):
    """``kind = "jira"``: Jira Service Management Cloud, email + API token (basic) or a bearer token."""

    kind: ClassVar[str] = "jira"
    _fields: dict[str, str] | None = None

    # --- field discovery ----------------------------------------------------------------------

    @property
    def fields(self) -> dict[str, str]:
        """role -> field id for ``first_response``, ``satisfaction``, ``satisfaction_at``, ``organizations``."""
        if self._fields is None:
            data, _ = self.client.get_json(FIELDS_PATH)
            self._fields = self._discover(data if isinstance(data, list) else [])
        return self._fields

    def _discover(self, fields: list[dict[str, Any]]) -> dict[str, str]:
        wanted_sla = str(option(self.mapping, "first_response_sla")).lower()
        found: dict[str, str] = {}
        for field in fields:
            custom = (field.get("schema") or {}).get("custom")
            if custom == SLA_TYPE and str(field.get("name", "")).lower() == wanted_sla:
                found["first_response"] = field["id"]
            elif custom == FEEDBACK_TYPE:
                found.setdefault("satisfaction", field["id"])
            elif custom == FEEDBACK_DATE_TYPE:
                found.setdefault("satisfaction_at", field["id"])
            elif custom == ORGANIZATIONS_TYPE:
                found.setdefault("organizations", field["id"])
        log.debug("source %s: Jira fields found: %s", self.config.name, found)
        return found

    def extra_checks(self) -> list[str]:
        missing = {"first_response": f'the "{option(self.mapping, "first_response_sla")}" SLA field',
                   "satisfaction": "the request feedback (satisfaction) field",
                   "organizations": "the Organizations (customer organizations) field"}
        return [f"{what} was not found in {FIELDS_PATH}: that column stays empty"
                for role, what in missing.items() if role not in self.fields]

    # --- tickets ------------------------------------------------------------------------------

    @property
    def group_field(self) -> str | None:
        return option(self.mapping, "group_field")

    def _jql(self, since: datetime, until: datetime | None) -> str:
        jql = f"updated >= {epoch_ms(since)}"
        if until is not None:
            jql += f" AND updated < {epoch_ms(parse_when(until))}"
        if option(self.mapping, "jql"):
            jql += f" AND ({option(self.mapping, 'jql')})"
        return jql + " ORDER BY updated ASC, key ASC"

    def ticket_pages(self, since: datetime, until: datetime | None) -> Iterator[list[RawRecord]]:
        extra = [f for f in (*self.fields.values(), self.group_field) if f]
        params = {"jql": self._jql(since, until), "fields": ",".join((*BASE_FIELDS, *extra)),
                  "maxResults": self.page_size}
        for page in paginate(self.client, Request(SEARCH_PATH, params), NextPageTokenPaginator(), "issues", objects=True):
            yield [self._flatten(issue) for issue in page.records]

    def _flatten(self, issue: dict[str, Any]) -> RawRecord:
        f = issue.get("fields") or {}
        roles = self.fields
        record: RawRecord = {name: name_of(f.get(name)) for name in ("issuetype", "status", "priority",
                                                                       "assignee", "components", "resolution")}
        record.update(id=text(issue.get("id")), key=text(issue.get("key")), created=iso_utc(f.get("created")),
                      updated=iso_utc(f.get("updated")), resolutiondate=iso_utc(f.get("resolutiondate")))
        record["group"] = name_of(f.get(self.group_field)) if self.group_field else None
        record["first_response_at"] = sla_first_stop(f.get(roles.get("first_response", "")))
        feedback = f.get(roles.get("satisfaction", ""))
        record["satisfaction"] = text(feedback.get("rating")) if isinstance(feedback, dict) else text(feedback)
        record["satisfaction_at"] = iso_utc(f.get(roles.get("satisfaction_at", "")))
        record["organization"] = name_of(f.get(roles.get("organizations", "")))
        return record

    # --- history ------------------------------------------------------------------------------

    def history(self, records: list[RawRecord]) -> list[RawEvent]:
        keys = {str(r["id"]): str(r["key"]) for r in records if r.get("id") and r.get("key")}
        kinds = {**CHANGE_KINDS, **({self.group_field: "group"} if self.group_field else {})}
        events: list[RawEvent] = []
        for batch in chunks(sorted(keys), BULK_ISSUES):
            for log_entry in self._changelogs(batch, list(kinds)):
                key = keys.get(str(log_entry.get("issueId")))
                for history in log_entry.get("changeHistories") or []:
                    events += self._history_events(key, history, kinds) if key else []
        response_id = f"sla:{self.fields.get('first_response')}"
        events += [RawEvent(str(r["key"]), str(r["first_response_at"]), "response", None, event_id=response_id)
                   for r in records if r.get("first_response_at") and r.get("key")]
        return events

    def _changelogs(self, issue_ids: list[str], field_ids: list[str]) -> Iterator[dict[str, Any]]:
        size = int(option(self.mapping, "changelog_page_size"))
        body = {"issueIdsOrKeys": issue_ids, "fieldIds": field_ids, "maxResults": size}
        request = Request(CHANGELOG_PATH, method="POST", json=body)
        for page in paginate(self.client, request, NextPageTokenPaginator(in_body=True), "issueChangeLogs", objects=True):
            yield from page.records

    @staticmethod
    def _history_events(key: str, history: dict[str, Any], kinds: dict[str, str]) -> list[RawEvent]:
        """One event per item of a changelog history whose field is read, ``event_id`` = ``<history id>:<item index>``."""
        at = str(iso_utc(history.get("created")))
        actor = name_of(history.get("author"))
        return [RawEvent(key, at, kinds[item.get("fieldId") or item.get("field")], text(item.get("toString")),
                         actor, text(item.get("fromString")), event_id=f"{history.get('id')}:{index}")
                for index, item in enumerate(history.get("items") or [])
                if (item.get("fieldId") or item.get("field")) in kinds]
