"""ServiceNow Table API connector: incidents, requested items and changes, with history.

Endpoints (all ``GET /api/now/table/<table>``, ``sysparm_display_value=false`` so every time is the
stored UTC ``YYYY-MM-DD HH:MM:SS`` and every choice its stored value):

* tickets: ``incident``, ``sc_req_item`` (requests), ``change_request`` (maintenance), each queried
  ``sys_updated_on>=<since>^ORDERBYsys_updated_on^ORDERBYsys_id`` and paged by the ``Link`` header
  (offset when a proxy strips it) -- there is no 10,000-row stop;
* history: ``sys_audit`` bounded by ``documentkeyIN<sys_ids>``, the audited fields and
  ``sys_created_on`` >= the oldest ticket's creation; reference values (users, groups) resolved
  through ``sys_user`` / ``sys_user_group``;
* first response: the stop of the ticket's response ``task_sla``, else the first customer-visible
  comment (``sys_journal_field`` element ``comments``) by someone other than the caller and not by
  an automation account. The legacy ``made_sla`` flag is never read.

References are dot-walked to their display field rather than read with ``sysparm_display_value=true``
(which would also turn every time into the account's local display format): ``company.name`` is the
client, ``business_service.name`` (else ``cmdb_ci.name``) the service. Every event carries the sys_id
of the record it came from (``sys_audit`` row, ``task_sla``, ``sys_journal_field``) as ``event_id``.

``state`` values of ``sc_req_item`` and ``change_request`` mean other things than the incident's,
so they are qualified with their table (``change_request:3``) before the status map sees them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

from connectors.options import option
from connectors.paging import OffsetPaginator, OverlappingLinkPaginator, Request, paginate
from connectors.rest import RawEvent, RawRecord, RestConnector, chunks, format_utc, iso_utc, text

__all__ = ["ServiceNowConnector"]

log = logging.getLogger(__name__)

TABLE_PATH = "/api/now/table/{table}"
TICKET_FIELDS = (
    "sys_id", "number", "sys_class_name", "state", "priority", "opened_at", "sys_created_on", "sys_updated_on",
    "resolved_at", "closed_at", "assigned_to.user_name", "assignment_group.name", "reopen_count",
    "reassignment_count", "category", "close_code", "start_date", "end_date", "work_end", "caused_by.number",
    "caller_id.user_name", "company.name", "business_service.name", "cmdb_ci.name",
)
TIMESTAMP_FIELDS = ("opened_at", "sys_created_on", "sys_updated_on", "resolved_at", "closed_at", "start_date",
                    "end_date", "work_end")
# sys_audit fieldname -> canonical event kind
AUDIT_KINDS = {"state": "status", "assigned_to": "assignee", "assignment_group": "group",
               "priority": "priority", "category": "category"}
# reference fields whose audited sys_id is resolved to a name: fieldname -> (table, name field)
REFERENCES = {"assigned_to": ("sys_user", "user_name"), "assignment_group": ("sys_user_group", "name")}


def sn_time(when: datetime) -> str:
    """An aware datetime -> ServiceNow's stored format ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    return format_utc(when).replace("T", " ").rstrip("Z")


def affected_service(record: RawRecord) -> str | None:
    """The ticket's business service (``business_service``), else its configuration item (``cmdb_ci``)."""
    return record.get("business_service.name") or record.get("cmdb_ci.name") or None


def qualified_state(table: str, state: str | None) -> str | None:
    """Incident states stay as they are; other tables' states get their table name in front."""
    if state in (None, "") or table == "incident":
        return state
    return f"{table}:{state}"


class ServiceNowConnector(RestConnector):
    """``kind = "servicenow"``: reads the Table API with a read-only integration account."""

    kind: ClassVar[str] = "servicenow"

    # --- tickets ------------------------------------------------------------------------------

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(option(self.mapping, "tables"))

    def _table_request(self, table: str, query: str, fields: tuple[str, ...]) -> Request:
        params = {"sysparm_query": query, "sysparm_fields": ",".join(fields),
                  "sysparm_display_value": "false", "sysparm_exclude_reference_link": "true",
                  "sysparm_limit": self.page_size}
        return Request(TABLE_PATH.format(table=table), params)

    def _rows(self, table: str, query: str, fields: tuple[str, ...],
              overlap: int = 0) -> Iterator[list[dict[str, Any]]]:
        """Pages of one table query, following the Link header (offset if the header is missing)."""
        fallback = OffsetPaginator(self.page_size, "sysparm_offset", "sysparm_limit")
        paginator = OverlappingLinkPaginator(overlap, "sysparm_offset", fallback)
        request = self._table_request(table, query, fields)
        for page in paginate(self.client, request, paginator, "result", objects=True):
            yield page.records

    @property
    def overlap(self) -> int:
        """Rows each ticket page re-reads of the page before (see ``OverlappingLinkPaginator``)."""
        configured = option(self.mapping, "page_overlap")
        wanted = max(1, self.page_size // 10) if configured is None else int(configured)
        return max(0, min(wanted, self.page_size - 1))

    def ticket_pages(self, since: datetime, until: datetime | None) -> Iterator[list[RawRecord]]:
        query = f"sys_updated_on>={sn_time(since)}"
        if until is not None:
            query += f"^sys_updated_on<{sn_time(until)}"
        query += "^ORDERBYsys_updated_on^ORDERBYsys_id"
        for table in self.tables:
            for rows in self._table_pages(table, query):
                yield [self._flatten(table, row) for row in rows]

    def _table_pages(self, table: str, query: str) -> Iterator[list[dict[str, Any]]]:
        """Ticket pages of one table; read again once when rows may have been skipped."""
        for attempt in (1, 2):
            anchor, gap = None, False
            for rows in self._rows(table, query, TICKET_FIELDS, self.overlap):
                ids = [row.get("sys_id") for row in rows]
                gap = gap or (anchor is not None and anchor not in ids)
                anchor = ids[-1] if ids else anchor
                yield rows
            if not gap:
                return
            log.warning("source %s: %s changed faster than it could be paged (more than %d rows per page "
                        "moved); %s", self.config.name, table, self.overlap,
                        "reading it again" if attempt == 1 else "raise options.page_overlap if this repeats")

    def _flatten(self, table: str, row: dict[str, Any]) -> RawRecord:
        record: RawRecord = {key: text(value) for key, value in row.items()}
        for key in TIMESTAMP_FIELDS:
            record[key] = iso_utc(record.get(key))
        record["sys_class_name"] = record.get("sys_class_name") or table
        record["state"] = qualified_state(table, record.get("state"))
        record["service"] = affected_service(record)
        record["_table"] = table
        return record

    # --- history ------------------------------------------------------------------------------

    def history(self, records: list[RawRecord]) -> list[RawEvent]:
        by_sys_id = {r["sys_id"]: r for r in records if r.get("sys_id")}
        if not by_sys_id:
            return []
        audits = self._audits(by_sys_id)
        names = self._reference_names(audits)
        events = [e for a in audits if (e := self._audit_event(a, by_sys_id, names)) is not None]
        responses = self._first_responses(by_sys_id)
        for sys_id, (at, event_id) in responses.items():
            by_sys_id[sys_id]["first_response_at"] = at
            events.append(RawEvent(str(by_sys_id[sys_id]["number"]), at, "response", None, event_id=event_id))
        return events

    def _id_batches(self, ids: list[str]) -> Iterator[str]:
        for batch in chunks(sorted(ids), int(option(self.mapping, "id_batch"))):
            yield ",".join(batch)

    def _audits(self, by_sys_id: dict[str, RawRecord]) -> list[dict[str, Any]]:
        """Every audited change of the interesting fields of these tickets, oldest first."""
        oldest = min((r.get("sys_created_on") or r.get("opened_at") or "") for r in by_sys_id.values())
        bound = f"^sys_created_on>={oldest.replace('T', ' ').rstrip('Z')}" if oldest else ""
        fields = ",".join(AUDIT_KINDS)
        rows: list[dict[str, Any]] = []
        for ids in self._id_batches(list(by_sys_id)):
            query = f"documentkeyIN{ids}^fieldnameIN{fields}{bound}^ORDERBYsys_created_on^ORDERBYrecord_checkpoint"
            for page in self._rows("sys_audit", query, ("sys_id", "documentkey", "tablename", "fieldname", "oldvalue",
                                                        "newvalue", "sys_created_on", "user", "record_checkpoint")):
                rows += page
        return rows

    def _reference_names(self, audits: list[dict[str, Any]]) -> dict[str, str]:
        """sys_id -> user name / group name for the reference values found in the audits."""
        names: dict[str, str] = {}
        for field, (table, name_field) in REFERENCES.items():
            ids = {v for a in audits if a.get("fieldname") == field for v in (a.get("oldvalue"), a.get("newvalue")) if v}
            for batch in self._id_batches(sorted(ids)):
                for page in self._rows(table, f"sys_idIN{batch}", ("sys_id", name_field)):
                    names.update({row["sys_id"]: text(row.get(name_field)) or row["sys_id"] for row in page})
        return names

    def _audit_event(self, audit: dict[str, Any], by_sys_id: dict[str, RawRecord],
                     names: dict[str, str]) -> RawEvent | None:
        record = by_sys_id.get(str(audit.get("documentkey")))
        kind = AUDIT_KINDS.get(str(audit.get("fieldname")))
        if record is None or kind is None:
            return None
        table = str(audit.get("tablename") or record.get("_table"))
        new, old = text(audit.get("newvalue")), text(audit.get("oldvalue"))
        if kind == "status":
            new, old = qualified_state(table, new), qualified_state(table, old)
        elif audit.get("fieldname") in REFERENCES:
            new, old = names.get(new or "", new), names.get(old or "", old)
        return RawEvent(str(record["number"]), str(iso_utc(audit.get("sys_created_on"))), kind, new,
                        text(audit.get("user")), old, event_id=text(audit.get("sys_id")))

    # --- first response -----------------------------------------------------------------------

    def _first_responses(self, by_sys_id: dict[str, RawRecord]) -> dict[str, tuple[str, str | None]]:
        """sys_id -> (first response, its event id): the response SLA's stop, else the first comment to the caller.

        The event id is the sys_id of the ``task_sla`` or ``sys_journal_field`` record it was read from.
        """
        found = self._comment_responses(by_sys_id)
        found.update(self._sla_responses(list(by_sys_id)))
        return found

    def _sla_responses(self, ids: list[str]) -> dict[str, tuple[str, str | None]]:
        found: dict[str, tuple[str, str | None]] = {}
        for batch in self._id_batches(ids):
            query = f"taskIN{batch}^sla.target=response^stage!=cancelled^end_timeISNOTEMPTY^ORDERBYend_time^ORDERBYsys_id"
            for page in self._rows("task_sla", query, ("sys_id", "task", "end_time", "stage", "sla.target")):
                for row in page:
                    found.setdefault(str(row.get("task")), (str(iso_utc(row.get("end_time"))), text(row.get("sys_id"))))
        return found

    def _comment_responses(self, by_sys_id: dict[str, RawRecord]) -> dict[str, tuple[str, str | None]]:
        automation = {u.lower() for u in option(self.mapping, "automation_users")}
        found: dict[str, tuple[str, str | None]] = {}
        for batch in self._id_batches(list(by_sys_id)):
            query = f"element_idIN{batch}^element=comments^ORDERBYsys_created_on^ORDERBYsys_id"
            fields = ("sys_id", "element_id", "sys_created_on", "sys_created_by")
            for page in self._rows("sys_journal_field", query, fields):
                for row in page:
                    sys_id, author = str(row.get("element_id")), str(row.get("sys_created_by") or "")
                    caller = (by_sys_id.get(sys_id) or {}).get("caller_id.user_name")
                    if author.lower() in automation or author == caller:
                        continue
                    found.setdefault(sys_id, (str(iso_utc(row.get("sys_created_on"))), text(row.get("sys_id"))))
        return found
