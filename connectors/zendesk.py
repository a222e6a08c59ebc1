"""Zendesk Support connector: the incremental ticket export, ticket audits, satisfaction ratings.

Endpoints:

* ``GET /api/v2/incremental/tickets/cursor.json?start_time=<epoch s>&include=metric_sets``, then
  ``?cursor=<after_cursor>`` until ``end_of_stream``; deleted tickets come with status ``deleted``
  (mapped to CANCELLED) and get no audits;
* ``GET /api/v2/tickets/{id}/audits.json`` (cursor paging, ``meta.has_more`` / ``links.next``): the
  whole history of each ticket -- status, assignee, group, priority (and a category custom field
  when ``options.category_field`` names one) -- plus the first response and the satisfaction
  rating's time;
* ``GET /api/v2/users/show_many.json?ids=...`` (names and roles), ``GET /api/v2/groups.json`` and
  ``GET /api/v2/organizations/show_many.json?ids=...`` (the client): each id asked once per run.

First response, as Zendesk's first reply time counts it: the first public comment by a user whose
role is agent or admin, other than the comment the ticket was created with, not added by a trigger
or automation (via ``rule``/``system``); without one, ``created_at`` + the metric set's
``reply_time_in_minutes``. Client = the ticket's organization's name; service = the custom field
``options.service_field``. Every event carries ``<audit id>:<event id>`` as ``event_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from connectors.base import SourceConfig
from connectors.errors import SourceResponseError
from connectors.http import basic_auth, bearer_auth
from connectors.options import option
from connectors.paging import CursorExportPaginator, LinksNextPaginator, Request, paginate
from connectors.rest import RawEvent, RawRecord, RestConnector, chunks, format_utc, iso_utc, text

__all__ = ["ZendeskConnector", "ZendeskOptions"]

log = logging.getLogger(__name__)

EXPORT_PATH = "/api/v2/incremental/tickets/cursor.json"
AUDITS_PATH = "/api/v2/tickets/{id}/audits.json"
USERS_PATH = "/api/v2/users/show_many.json"
ORGANIZATIONS_PATH = "/api/v2/organizations/show_many.json"
GROUPS_PATH = "/api/v2/groups.json"
SHOW_MANY_IDS = 100  # show_many answers at most this many ids, in one page
# audit event field_name -> canonical kind
AUDIT_KINDS = {"status": "status", "assignee_id": "assignee", "group_id": "group", "priority": "priority"}
AUTOMATION_CHANNELS = ("rule", "system")  # triggers/automations and Zendesk itself
AGENT_ROLES = ("agent", "admin")  # users whose public comments are replies; end-users' are not
DEFAULT_SCORES = {"good": 5, "bad": 1}
REPLY_TIME_EVENT_ID = "metric_set:reply_time"


@dataclass(frozen=True)
class ZendeskOptions:
    """The ``options`` of a Zendesk source (docs/connectors.md), read in this one place."""

    category_field: str | None = None  # custom field id holding the category
    service_field: str | None = None  # custom field id holding the service (business system)
    satisfaction_scores: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_SCORES))

    @classmethod
    def read(cls, cfg: SourceConfig) -> ZendeskOptions:
        """The options of a source (its entry laid over the preset's), as declared in connectors/options.py."""
        return cls(category_field=text(option(cfg, "category_field")) or None,
                   service_field=text(option(cfg, "service_field")) or None,
                   satisfaction_scores={**DEFAULT_SCORES, **dict(option(cfg, "satisfaction_scores"))})

    @property
    def audit_kinds(self) -> dict[str, str]:
        """Audit ``field_name`` -> canonical event kind, with the category field when one is named."""
        return {**AUDIT_KINDS, **({self.category_field: "category"} if self.category_field else {})}


class ZendeskConnector(RestConnector):
    """``kind = "zendesk"``: an agent's e-mail + API token (``username`` + ``token_env``) or OAuth."""

    kind: ClassVar[str] = "zendesk"

    def __init__(self, cfg: Any, **kwargs: Any) -> None:
        super().__init__(cfg, **kwargs)
        self.zendesk = ZendeskOptions.read(self.mapping)
        # id -> record, kept for the connector's life (one run): each id is asked for once
        self._users: dict[str, dict[str, Any]] = {}
        self._organizations: dict[str, dict[str, Any]] = {}
        self._groups: dict[str, str] | None = None

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
        for page in paginate(self.client, Request(EXPORT_PATH, params), CursorExportPaginator(), "tickets",
                             objects=True):
            metrics = {m.get("ticket_id"): m for m in page.data.get("metric_sets") or []}
            yield [self._flatten(t, metrics.get(t.get("id")) or {}) for t in page.records]

    def _flatten(self, ticket: dict[str, Any], metrics: dict[str, Any]) -> RawRecord:
        record: RawRecord = {k: text(ticket.get(k)) for k in ("id", "type", "status", "priority", "assignee_id",
                                                               "group_id", "requester_id", "organization_id")}
        record.update(created_at=iso_utc(ticket.get("created_at")), updated_at=iso_utc(ticket.get("updated_at")),
                      solved_at=iso_utc(metrics.get("solved_at")), reopens=text(metrics.get("reopens")))
        record["_reply_minutes"] = text((metrics.get("reply_time_in_minutes") or {}).get("calendar"))
        record["satisfaction"] = self._score((ticket.get("satisfaction_rating") or {}).get("score"))
        record["category"] = custom_field(ticket, self.zendesk.category_field)
        record["service"] = custom_field(ticket, self.zendesk.service_field)
        return record

    def _score(self, score: Any) -> str | None:
        """good/bad -> a number through ``options.satisfaction_scores``; offered/unoffered -> no answer."""
        return text(self.zendesk.satisfaction_scores.get(str(score))) if score is not None else None

    # --- history ------------------------------------------------------------------------------

    def history(self, records: list[RawRecord]) -> list[RawEvent]:
        audits = {str(r["id"]): self._audits(str(r["id"])) for r in records
                  if r.get("id") and r.get("status") != "deleted"}
        names = self._names(records, audits)
        events: list[RawEvent] = []
        for record in records:
            _name_record(record, names)
            events += self._ticket_events(record, audits.get(str(record.get("id")), []), names)
        return events

    def _audits(self, ticket_id: str) -> list[dict[str, Any]]:
        request = Request(AUDITS_PATH.format(id=ticket_id), {"page[size]": 100})
        try:
            pages = paginate(self.client, request, LinksNextPaginator(), "audits", objects=True)
            return [a for page in pages for a in page.records]
        except SourceResponseError as err:
            if getattr(err, "status", None) == 404:  # deleted since the export listed it
                log.info("source %s: ticket %s is gone, no history", self.config.name, ticket_id)
                return []
            raise

    def _ticket_events(self, record: RawRecord, audits: list[dict[str, Any]], names: dict[str, str]) -> list[RawEvent]:
        """The ticket's field changes and first response; sets its rating time and first response."""
        tid = str(record["id"])
        ordered = sorted(audits, key=audit_order)
        events = [e for audit in ordered for e in self._change_events(tid, audit, names)]
        rated = [a for a in ordered if any(ev.get("type") == "SatisfactionRating" for ev in a.get("events") or [])]
        if rated:
            record["satisfaction_at"] = iso_utc(rated[-1].get("created_at"))
        response = self._first_response(tid, ordered) or reply_time_response(record)
        if response is not None:
            record["first_response_at"] = response.at
            events.append(response)
        return events

    def _change_events(self, tid: str, audit: dict[str, Any], names: dict[str, str]) -> list[RawEvent]:
        """One event per Create/Change event of a field read, ``event_id`` = ``<audit id>:<event id>``."""
        at, actor = str(iso_utc(audit.get("created_at"))), _name(names, "u", text(audit.get("author_id")))
        kinds = self.zendesk.audit_kinds
        events: list[RawEvent] = []
        for ev in audit.get("events") or []:
            kind = kinds.get(str(ev.get("field_name"))) if ev.get("type") in ("Create", "Change") else None
            if kind is None:
                continue
            new, old = text(ev.get("value")), text(ev.get("previous_value"))
            if kind in ("assignee", "group"):
                prefix = "g" if kind == "group" else "u"
                new, old = _name(names, prefix, new), _name(names, prefix, old)
            events.append(RawEvent(tid, at, kind, new, actor, old, event_id=event_id(audit, ev)))
        return events

    def _first_response(self, tid: str, audits: list[dict[str, Any]]) -> RawEvent | None:
        """The first public agent comment after the ticket's creation, not added by a trigger or automation.

        The comment a ticket is created with never counts (an agent-created ticket is not answered by
        its own description), and neither does an end-user's comment, a CC'd one's included.
        """
        creation = creation_audit(audits)
        for audit in audits:
            channel = str((audit.get("via") or {}).get("channel") or "")
            if audit is creation or channel in AUTOMATION_CHANNELS:
                continue
            for ev in audit.get("events") or []:
                if self._is_agent_reply(audit, ev):
                    return RawEvent(tid, str(iso_utc(audit.get("created_at"))), "response", None,
                                    event_id=event_id(audit, ev))
        return None

    def _is_agent_reply(self, audit: dict[str, Any], ev: dict[str, Any]) -> bool:
        """A public comment whose author's role is agent or admin."""
        if ev.get("type") != "Comment" or not ev.get("public"):
            return False
        author = text(ev.get("author_id")) or text(audit.get("author_id"))
        return (self._users.get(author or "") or {}).get("role") in AGENT_ROLES

    # --- names --------------------------------------------------------------------------------

    def _names(self, records: list[RawRecord], audits: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
        """``u<id>`` / ``g<id>`` / ``o<id>`` -> the name of each user, group and organization mentioned."""
        users = self._show_many(USERS_PATH, "users", mentioned_users(records, audits), self._users)
        names = {f"u{i}": str(u.get("name")) for i, u in users.items() if u.get("name") is not None}
        if any(r.get("group_id") for r in records):
            names.update(self._group_names())
        org_ids = (r.get("organization_id") for r in records)
        orgs = self._show_many(ORGANIZATIONS_PATH, "organizations", org_ids, self._organizations)
        names.update({f"o{i}": str(o.get("name")) for i, o in orgs.items() if o.get("name") not in (None, "")})
        return names

    def _show_many(self, path: str, key: str, ids: Iterable[str | None],
                   known: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """``known`` completed with the records of ``ids`` from a show_many endpoint, 100 ids a call.

        Ids already known are not asked again; an id the account no longer has is remembered as ``{}``.
        """
        wanted = sorted({i for i in ids if i and i.isdigit()} - known.keys(), key=int)
        for batch in chunks(wanted, SHOW_MANY_IDS):
            data, _ = self.client.get_json(path, {"ids": ",".join(batch)})
            known.update({str(item["id"]): item for item in data.get(key) or [] if item.get("id") is not None})
            known.update({i: {} for i in batch if i not in known})
        return known

    def _group_names(self) -> dict[str, str]:
        """``g<id>`` -> group name, read once per run."""
        if self._groups is None:
            request = Request(GROUPS_PATH, {"page[size]": 100})
            self._groups = {f"g{g['id']}": str(g.get("name")) for page in paginate(
                self.client, request, LinksNextPaginator(), "groups", objects=True) for g in page.records}
        return self._groups


def custom_field(ticket: dict[str, Any], field_id: str | None) -> str | None:
    """The value of custom field ``field_id`` (a multi-select's first value); None when absent or empty."""
    if not field_id:
        return None
    values = {str(f.get("id")): f.get("value") for f in ticket.get("custom_fields") or []}
    value = values.get(field_id)
    if isinstance(value, list):
        value = value[0] if value else None
    return text(value) or None


def mentioned_users(records: list[RawRecord], audits: dict[str, list[dict[str, Any]]]) -> set[str | None]:
    """Ids of the assignees, audit authors, comment authors and assignee values of these tickets."""
    users = {r.get("assignee_id") for r in records}
    for audit in (a for audit_list in audits.values() for a in audit_list):
        users.add(text(audit.get("author_id")))
        for ev in audit.get("events") or []:
            if ev.get("type") == "Comment":
                users.add(text(ev.get("author_id")))
            elif ev.get("field_name") == "assignee_id":
                users |= {text(ev.get("value")), text(ev.get("previous_value"))}
    return users


def audit_order(audit: dict[str, Any]) -> tuple[str, int]:
    """Audits oldest first; audits of one second in the order of their ids."""
    audit_id = text(audit.get("id")) or ""
    return str(audit.get("created_at")), int(audit_id) if audit_id.isdigit() else 0


def creation_audit(audits: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The audit that created the ticket: the one holding its Create events, else the oldest."""
    for audit in audits:
        if any(ev.get("type") == "Create" for ev in audit.get("events") or []):
            return audit
    return audits[0] if audits else None


def event_id(audit: dict[str, Any], ev: dict[str, Any]) -> str:
    """``<audit id>:<event id>``: Zendesk's own ids, unique per change and the same on every read."""
    return f"{audit.get('id')}:{ev.get('id')}"


def _name_record(record: RawRecord, names: dict[str, str]) -> None:
    """Assignee and group by name; client = the organization's name (None when it has none or is gone)."""
    record["assignee"] = _name(names, "u", record.get("assignee_id"))
    record["group"] = _name(names, "g", record.get("group_id"))
    record["client"] = names.get(f"o{record.get('organization_id')}") if record.get("organization_id") else None


def _name(names: dict[str, str], prefix: str, value: str | None) -> str | None:
    """The name of user (``u``) or group (``g``) ``value``; the id itself when unknown."""
    return names.get(f"{prefix}{value}", value) if value else value


def reply_time_response(record: RawRecord) -> RawEvent | None:
    """created_at + the metric set's calendar reply minutes (minute precision), else None."""
    minutes, created = record.get("_reply_minutes"), record.get("created_at")
    if not minutes or not created:
        return None
    at = format_utc(datetime.fromisoformat(created) + timedelta(minutes=int(float(minutes))))
    return RawEvent(str(record["id"]), at, "response", None, event_id=REPLY_TIME_EVENT_ID)
