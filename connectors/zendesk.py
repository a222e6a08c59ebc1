"""Zendesk Support connector: the incremental ticket export, ticket audits, satisfaction ratings.

Endpoints:

* ``GET /api/v2/incremental/tickets/cursor.json?start_time=<epoch s>&include=metric_sets``, then
  ``?cursor=<after_cursor>`` until ``end_of_stream``; deleted tickets come with status ``deleted``
  (mapped to CANCELLED) and get no audits;
* ``GET /api/v2/tickets/{id}/audits.json`` (cursor paging, ``meta.has_more`` / ``links.next``): the
  whole history of each ticket -- status, assignee, group, priority (and a category custom field
  when ``options.category_field`` names one) -- plus the first public agent comment (first
  response) and the satisfaction rating's time;
* ``GET /api/v2/users/show_many.json?ids=...`` and ``GET /api/v2/groups.json``: ids -> names.

First response = the first public comment by someone other than the requester, not added by a
trigger or automation; without one, ``created_at`` + the metric set's ``reply_time_in_minutes``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, ClassVar

from connectors.errors import SourceResponseError
from connectors.http import basic_auth, bearer_auth
from connectors.options import option
from connectors.paging import CursorExportPaginator, LinksNextPaginator, Request, paginate
from connectors.rest import RawEvent, RawRecord, RestConnector, chunks, format_utc, iso_utc, text

__all__ = ["ZendeskConnector"]

log = logging.getLogger(__name__)

EXPORT_PATH = "/api/v2/incremental/tickets/cursor.json"
AUDITS_PATH = "/api/v2/tickets/{id}/audits.json"
USERS_PATH = "/api/v2/users/show_many.json"
GROUPS_PATH = "/api/v2/groups.json"
# audit event field_name -> canonical kind
AUDIT_KINDS = {"status": "status", "assignee_id": "assignee", "group_id": "group", "priority": "priority"}
AUTOMATION_CHANNELS = ("rule", "system")  # triggers/automations and Zendesk itself
DEFAULT_SCORES = {"good": 5, "bad": 1}  # options.satisfaction_scores adds to or changes these


class ZendeskConnector(RestConnector):
    """``kind = "zendesk"``: an agent's e-mail + API token (``username`` + ``token_env``) or OAuth."""

    kind: ClassVar[str] = "zendesk"

    def authorization(self, cfg: Any, secret: str) -> str:
        """Zendesk API tokens authenticate as ``{email}/token:{token}``; passwords as ``email:password``."""
        if not cfg.username:
            return bearer_auth(secret)
        user = f"{cfg.username}/token" if cfg.token_env and not cfg.password_env else cfg.username
        return basic_auth(user, secret)

    # --- tickets ------------------------------------------------------------------------------

    def ticket_pages(self, since: datetime, until: datetime | None) -> Iterator[list[RawRecord]]:
        latest = self.client.now() - timedelta(seconds=61)  # the export refuses the last minute
        params = {"start_time": int(min(since, latest).timestamp()), "include": "metric_sets",
                  "per_page": self.page_size}
        for page in paginate(self.client, Request(EXPORT_PATH, params), CursorExportPaginator(), "tickets"):
            metrics = {m.get("ticket_id"): m for m in page.data.get("metric_sets") or []}
            yield [self._flatten(t, metrics.get(t.get("id")) or {}) for t in page.records]

    def _flatten(self, ticket: dict[str, Any], metrics: dict[str, Any]) -> RawRecord:
        record: RawRecord = {k: text(ticket.get(k)) for k in ("id", "type", "status", "priority", "assignee_id",
                                                               "group_id", "requester_id")}
        record.update(created_at=iso_utc(ticket.get("created_at")), updated_at=iso_utc(ticket.get("updated_at")),
                      solved_at=iso_utc(metrics.get("solved_at")), reopens=text(metrics.get("reopens")))
        record["_reply_minutes"] = text((metrics.get("reply_time_in_minutes") or {}).get("calendar"))
        record["satisfaction"] = self._score((ticket.get("satisfaction_rating") or {}).get("score"))
        record["category"] = self._custom_field(ticket)
        return record

    def _score(self, score: Any) -> str | None:
        """good/bad -> a number through ``options.satisfaction_scores``; offered/unoffered -> no answer."""
        scores = {**DEFAULT_SCORES, **dict(option(self.mapping, "satisfaction_scores"))}
        return text(scores.get(str(score))) if score is not None else None

    def _custom_field(self, ticket: dict[str, Any]) -> str | None:
        field = option(self.mapping, "category_field")
        if not field:
            return None
        values = {str(f.get("id")): f.get("value") for f in ticket.get("custom_fields") or []}
        return text(values.get(str(field)))

    # --- history ------------------------------------------------------------------------------

    def history(self, records: list[RawRecord]) -> list[RawEvent]:
        audits = {str(r["id"]): self._audits(str(r["id"])) for r in records
                  if r.get("id") and r.get("status") != "deleted"}
        names = self._names(records, audits)
        events: list[RawEvent] = []
        for record in records:
            self._name_record(record, names)
            events += self._ticket_events(record, audits.get(str(record.get("id")), []), names)
        return events

    def _audits(self, ticket_id: str) -> list[dict[str, Any]]:
        request = Request(AUDITS_PATH.format(id=ticket_id), {"page[size]": 100})
        try:
            return [a for page in paginate(self.client, request, LinksNextPaginator(), "audits") for a in page.records]
        except SourceResponseError as err:
            if getattr(err, "status", None) == 404:  # deleted since the export listed it
                log.info("source %s: ticket %s is gone, no history", self.config.name, ticket_id)
                return []
            raise

    def _ticket_events(self, record: RawRecord, audits: list[dict[str, Any]], names: dict[str, str]) -> list[RawEvent]:
        tid = str(record["id"])
        category_field = option(self.mapping, "category_field")
        kinds = {**AUDIT_KINDS, **({str(category_field): "category"} if category_field else {})}
        events: list[RawEvent] = []
        for audit in sorted(audits, key=lambda a: str(a.get("created_at"))):
            at, actor = str(iso_utc(audit.get("created_at"))), text(audit.get("author_id"))
            for ev in audit.get("events") or []:
                kind = kinds.get(str(ev.get("field_name"))) if ev.get("type") in ("Create", "Change") else None
                if kind:
                    new, old = text(ev.get("value")), text(ev.get("previous_value"))
                    if kind in ("assignee", "group"):
                        prefix = kind[0] if kind == "group" else "u"
                        new, old = _name(names, prefix, new), _name(names, prefix, old)
                    events.append(RawEvent(tid, at, kind, new, _name(names, "u", actor), old))
                elif ev.get("type") == "SatisfactionRating":
                    record["satisfaction_at"] = at
            if not record.get("first_response_at") and self._is_response(audit, record):
                record["first_response_at"] = at
        record["first_response_at"] = record.get("first_response_at") or _reply_time(record)
        if record["first_response_at"]:
            events.append(RawEvent(tid, str(record["first_response_at"]), "response", None))
        return events

    @staticmethod
    def _is_response(audit: dict[str, Any], record: RawRecord) -> bool:
        """A public comment by someone other than the requester, not added by a trigger/automation."""
        channel = str(((audit.get("via") or {}).get("channel")) or "")
        return channel not in AUTOMATION_CHANNELS and any(
            ev.get("type") == "Comment" and ev.get("public") and text(ev.get("author_id")) != record.get("requester_id")
            for ev in audit.get("events") or [])

    # --- names --------------------------------------------------------------------------------

    def _names(self, records: list[RawRecord], audits: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
        """``u<id>`` / ``g<id>`` -> name, for every user and group the tickets and their audits mention."""
        users = {r.get("assignee_id") for r in records}
        for audit in (a for audit_list in audits.values() for a in audit_list):
            users.add(text(audit.get("author_id")))
            users |= {text(e.get(k)) for e in audit.get("events") or [] if e.get("field_name") == "assignee_id"
                      for k in ("value", "previous_value")}
        names = self._groups() if any(r.get("group_id") for r in records) else {}
        ids = sorted(u for u in users if u and u.isdigit())
        for batch in chunks(ids, 100):
            data, _ = self.client.get_json(USERS_PATH, {"ids": ",".join(batch)})
            names.update({f"u{u['id']}": str(u.get("name")) for u in data.get("users") or []})
        return names

    def _groups(self) -> dict[str, str]:
        request = Request(GROUPS_PATH, {"page[size]": 100})
        return {f"g{g['id']}": str(g.get("name")) for page in paginate(self.client, request, LinksNextPaginator(), "groups")
                for g in page.records}

    @staticmethod
    def _name_record(record: RawRecord, names: dict[str, str]) -> None:
        record["assignee"] = _name(names, "u", record.get("assignee_id"))
        record["group"] = _name(names, "g", record.get("group_id"))


def _name(names: dict[str, str], prefix: str, value: str | None) -> str | None:
    """The name of user (``u``) or group (``g``) ``value``; the id itself when unknown."""
    return names.get(f"{prefix}{value}", value) if value else value


def _reply_time(record: RawRecord) -> str | None:
    """created_at + the metric set's calendar reply minutes (minute precision), else None."""
    minutes, created = record.get("_reply_minutes"), record.get("created_at")
    if not minutes or not created:
        return None
    return format_utc(datetime.fromisoformat(created) + timedelta(minutes=int(float(minutes))))
