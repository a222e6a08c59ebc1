"""A stateful fake ServiceNow instance: the Table API over in-memory tables.

Shaped after the Table API documentation: ``GET /api/now/table/{table}`` with ``sysparm_query``
(``^``-separated conditions: ``>=``, ``<``, ``=``, ``!=``, ``IN``, ``ISNOTEMPTY``, ``ORDERBY``),
``sysparm_fields``, ``sysparm_limit``, ``sysparm_offset``; the body is ``{"result": [...]}`` and
the next page is announced in a ``Link`` header (``rel="next"``). Stored values are returned as
they are (``sysparm_display_value=false``): times ``YYYY-MM-DD HH:MM:SS`` UTC, choices as numbers.
Dot-walked fields (``assigned_to.user_name``) are stored flat under their dotted name.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from werkzeug import Request, Response

from .base import FakeVendor, json_response

_COND = re.compile(r"^(?P<field>[\w.]+?)(?P<op>>=|<=|!=|=|<|>|IN|ISNOTEMPTY)(?P<value>.*)$")


def _matches(row: dict[str, Any], cond: str) -> bool:
    m = _COND.match(cond)
    if not m:
        raise ValueError(f"fake ServiceNow cannot read condition {cond!r}")
    value = str(row.get(m["field"]) or "")
    target = m["value"]
    return {
        ">=": lambda: value >= target, "<=": lambda: value <= target, ">": lambda: value > target,
        "<": lambda: value < target, "=": lambda: value == target, "!=": lambda: value != target,
        "IN": lambda: value in target.split(","), "ISNOTEMPTY": lambda: value != "",
    }[m["op"]]()


def run_query(rows: list[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """Filter and order ``rows`` by an encoded query."""
    conds = [c for c in query.split("^") if c and not c.startswith("ORDERBY")]
    order = [c[len("ORDERBY"):] for c in query.split("^") if c.startswith("ORDERBY")]
    out = [r for r in rows if all(_matches(r, c) for c in conds)]
    return sorted(out, key=lambda r: tuple(str(r.get(f) or "") for f in order))


class FakeServiceNow(FakeVendor):
    """Tables of rows; ``max_limit`` caps ``sysparm_limit`` like the instance property does."""

    def __init__(self, authorization: str, max_limit: int = 10000, link_header: bool = True) -> None:
        super().__init__(authorization)
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.max_limit = max_limit
        self.link_header = link_header

    def route(self, request: Request) -> Response:
        m = re.fullmatch(r"/api/now/table/(\w+)", request.path)
        if not m:
            return json_response({"error": {"message": "Invalid table"}}, 404)
        rows = run_query(self.tables.get(m[1], []), request.args.get("sysparm_query", ""))
        limit = min(int(request.args.get("sysparm_limit", 10000)), self.max_limit)
        offset = int(request.args.get("sysparm_offset", 0))
        page = [self._project(r, request.args.get("sysparm_fields")) for r in rows[offset:offset + limit]]
        headers = {"X-Total-Count": str(len(rows))}
        if self.link_header:
            headers["Link"] = self._links(request, offset, limit, len(rows))
        return json_response({"result": page}, 200, headers)

    @staticmethod
    def _project(row: dict[str, Any], fields: str | None) -> dict[str, Any]:
        if not fields:
            return dict(row)
        return {f: row.get(f, "") for f in fields.split(",") if f in row or "." not in f}

    def _links(self, request: Request, offset: int, limit: int, total: int) -> str:
        def link(rel: str, at: int) -> str:
            args = {**request.args.to_dict(), "sysparm_offset": str(at), "sysparm_limit": str(limit)}
            return f'<{self.base_url}{request.path}?{urlencode(args)}>;rel="{rel}"'
        parts = [link("first", 0)]
        if offset + limit < total:
            parts.append(link("next", offset + limit))
        parts.append(link("last", max(0, (total - 1) // limit * limit)))
        return ",".join(parts)

    # --- building data ------------------------------------------------------------------------

    def add(self, table: str, **row: Any) -> dict[str, Any]:
        self.tables.setdefault(table, []).append(row)
        return row

    def audit(self, sys_id: str, table: str, field: str, old: str, new: str, at: str, user: str = "admin") -> None:
        n = sum(1 for a in self.tables.get("sys_audit", []) if a["documentkey"] == sys_id) + 1
        self.add("sys_audit", sys_id=f"a-{sys_id}-{n}", documentkey=sys_id, tablename=table, fieldname=field,
                 oldvalue=old, newvalue=new, sys_created_on=at, user=user, record_checkpoint=str(n))

    def update(self, number: str, at: str, **changes: Any) -> None:
        """Change a ticket the way the instance would: fields, sys_updated_on and sys_audit rows."""
        for table, rows in self.tables.items():
            for row in rows:
                if row.get("number") == number:
                    for field, value in changes.items():
                        audited = field.split(".")[0] if field.split(".")[0] in (
                            "state", "priority", "category", "assigned_to", "assignment_group") else None
                        if audited and "." not in field:
                            self.audit(row["sys_id"], table, field, row.get(field, ""), value, at)
                        row[field] = value
                    row["sys_updated_on"] = at
                    return
        raise KeyError(number)


USERS = {"u-beth": "beth.anglin", "u-dave": "david.loo", "u-abel": "abel.tuter"}
GROUPS = {"g-net": "Network", "g-svc": "Service Desk"}


def sample_instance(authorization: str) -> FakeServiceNow:
    """Eight incidents, a requested item and a change, with audits, SLAs and comments.

    Incidents INC0010003..INC0010006 share one ``sys_updated_on`` so a page of 3 splits the tie.
    """
    sn = FakeServiceNow(authorization)
    for sys_id, name in USERS.items():
        sn.add("sys_user", sys_id=sys_id, user_name=name)
    for sys_id, name in GROUPS.items():
        sn.add("sys_user_group", sys_id=sys_id, name=name)
    sn.add("change_request", sys_id="c1", number="CHG0030001", sys_class_name="change_request", state="3",
           priority="3", opened_at="2026-01-02 01:00:00", sys_created_on="2026-01-02 01:00:00",
           sys_updated_on="2026-01-04 09:00:00", closed_at="2026-01-04 09:00:00", close_code="successful",
           start_date="2026-01-03 14:00:00", end_date="2026-01-03 16:00:00", work_end="2026-01-03 15:30:00",
           **{"assigned_to.user_name": "abel.tuter", "assignment_group.name": "Network", "category": ""})
    sn.audit("c1", "change_request", "state", "", "-5", "2026-01-02 01:00:00")
    sn.audit("c1", "change_request", "state", "-5", "-1", "2026-01-03 14:00:00")
    sn.audit("c1", "change_request", "state", "-1", "3", "2026-01-04 09:00:00")
    for i in range(1, 9):
        _incident(sn, i)
    sn.add("sc_req_item", sys_id="r1", number="RITM0020001", sys_class_name="sc_req_item", state="3",
           priority="4", opened_at="2026-01-05 08:00:00", sys_created_on="2026-01-05 08:00:00",
           sys_updated_on="2026-01-05 12:00:00", closed_at="2026-01-05 12:00:00",
           **{"assigned_to.user_name": "david.loo", "assignment_group.name": "Service Desk",
              "caller_id.user_name": "joe.user"})
    sn.audit("r1", "sc_req_item", "state", "1", "3", "2026-01-05 12:00:00")
    return sn


# incident number -> (company, business service, configuration item), dot-walked names; "" = empty reference
SERVICES = {1: ("ACME", "ERP", "erp-db01"), 2: ("Globex", "", "mail-srv01"), 3: ("", "", "")}


def _incident(sn: FakeServiceNow, i: int) -> None:
    sys_id = f"i{i}"
    company, business_service, ci = SERVICES.get(i, ("ACME", "Email", ""))
    opened = f"2026-01-0{min(i, 4)} 0{i}:00:00"
    updated = "2026-01-06 10:00:00" if 3 <= i <= 6 else f"2026-01-06 0{i}:30:00"
    state = "7" if i % 2 else "2"
    sn.add("incident", sys_id=sys_id, number=f"INC001000{i}", sys_class_name="incident", state=state,
           priority=str((i % 4) + 1), opened_at=opened, sys_created_on=opened, sys_updated_on=updated,
           resolved_at=f"2026-01-06 0{i}:00:00" if state == "7" else "", closed_at=updated if state == "7" else "",
           reopen_count="0", reassignment_count="1", category="network", close_code="Solved (Permanently)",
           **{"assigned_to.user_name": "beth.anglin", "assignment_group.name": "Network",
              "caused_by.number": "CHG0030001" if i == 1 else "", "caller_id.user_name": "joe.user",
              "company.name": company, "business_service.name": business_service, "cmdb_ci.name": ci})
    sn.audit(sys_id, "incident", "state", "1", "2", opened.replace(":00:00", ":20:00"))
    sn.audit(sys_id, "incident", "assigned_to", "u-dave", "u-beth", opened.replace(":00:00", ":10:00"))
    sn.audit(sys_id, "incident", "assignment_group", "", "g-net", opened.replace(":00:00", ":05:00"))
    if state == "7":
        sn.audit(sys_id, "incident", "state", "2", "6", f"2026-01-06 0{i}:00:00")
        sn.audit(sys_id, "incident", "state", "6", "7", updated)
    if i % 3 == 0:
        sn.add("task_sla", sys_id=f"s{i}", task=sys_id, stage="completed", end_time=opened.replace(":00:00", ":15:00"),
               **{"sla.target": "response"})
    sn.add("sys_journal_field", sys_id=f"j{i}a", element_id=sys_id, element="comments", name="incident",
           sys_created_on=opened.replace(":00:00", ":01:00"), sys_created_by="joe.user", value="It is broken")
    sn.add("sys_journal_field", sys_id=f"j{i}b", element_id=sys_id, element="comments", name="incident",
           sys_created_on=opened.replace(":00:00", ":25:00"), sys_created_by="beth.anglin", value="Looking")
