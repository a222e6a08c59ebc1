"""A stateful fake Zendesk Support account.

Shaped after the API reference:

* ``GET /api/v2/incremental/tickets/cursor.json?start_time=<s>|cursor=<c>&per_page=N&include=metric_sets``:
  ``{"tickets", "metric_sets", "after_cursor", "after_url", "before_cursor", "end_of_stream"}``; tickets
  in (updated_at, id) order, the cursor a position after the last one sent (nothing skipped, a
  ticket updated meanwhile comes again later); deleted tickets listed with status ``deleted``;
  a ``start_time`` within the last minute is refused with 422 like the real endpoint;
* ``GET /api/v2/tickets/{id}/audits.json?page[size]=N``: ``{"audits", "meta": {"has_more",
  "after_cursor"}, "links": {"next"}}``; 404 for a deleted ticket;
* ``GET /api/v2/users/show_many.json?ids=1,2`` (name and role: ``end-user``, ``agent``, ``admin``),
  ``GET /api/v2/organizations/show_many.json?ids=31,32`` and ``GET /api/v2/groups.json``; an id the
  account does not have is left out of the answer, as the real endpoints do.

Audit and event ids come from one counter, unique across the account like Zendesk's.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from werkzeug import Request, Response

from .base import FakeVendor, json_response

USERS = {1: ("Joe Requester", "end-user"), 2: ("Carol CC", "end-user"), 11: ("Beth Agent", "agent"),
         12: ("Dave Admin", "admin"), -1: ("Zendesk", "admin")}
GROUPS = {21: "Support", 22: "Network"}
ORGANIZATIONS = {31: "ACME", 32: "Globex"}
SERVICE_FIELD = 360000000042  # a custom field naming the business system


def zd_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode(pos: tuple[int, int]) -> str:
    return base64.urlsafe_b64encode(f"{pos[0]}|{pos[1]}".encode()).decode()


def _decode(cursor: str) -> tuple[int, int]:
    a, b = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
    return int(a), int(b)


class FakeZendesk(FakeVendor):
    def __init__(self, authorization: str, now: datetime) -> None:
        super().__init__(authorization)
        self.now = now
        self.tickets: dict[int, dict[str, Any]] = {}
        self.audits: dict[int, list[dict[str, Any]]] = {}
        self.metrics: dict[int, dict[str, Any]] = {}
        self.last_id = 1000  # audit and event ids, unique across the account

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def route(self, request: Request) -> Response:
        path = request.path
        if path == "/api/v2/incremental/tickets/cursor.json":
            return self._export(request)
        if path.startswith("/api/v2/tickets/") and path.endswith("/audits.json"):
            return self._audits(request, int(path.split("/")[4]))
        if path == "/api/v2/users/show_many.json":
            ids = [int(i) for i in request.args["ids"].split(",")]
            return json_response({"users": [{"id": i, "name": USERS[i][0], "role": USERS[i][1]}
                                            for i in ids if i in USERS]})
        if path == "/api/v2/organizations/show_many.json":
            ids = [int(i) for i in request.args["ids"].split(",")]
            return json_response({"organizations": [{"id": i, "name": ORGANIZATIONS[i]}
                                                    for i in ids if i in ORGANIZATIONS]})
        if path == "/api/v2/groups.json":
            return json_response({"groups": [{"id": i, "name": n} for i, n in GROUPS.items()],
                                  "meta": {"has_more": False}, "links": {"next": None}})
        return json_response({"error": "InvalidEndpoint"}, 404)

    def _export(self, request: Request) -> Response:
        if "cursor" in request.args:
            after = _decode(request.args["cursor"])
        else:
            start = int(request.args["start_time"])
            if start > (self.now - timedelta(minutes=1)).timestamp():
                return json_response({"error": "InvalidValue", "description": "Too recent start_time"}, 422)
            after = (start, -1)
        rows = sorted(self.tickets.values(), key=lambda t: (t["_updated"], t["id"]))
        rows = [t for t in rows if (t["_updated"], t["id"]) > after]
        page = rows[:int(request.args.get("per_page", 1000))]
        end = len(page) == len(rows)
        cursor = _encode((page[-1]["_updated"], page[-1]["id"])) if page else _encode(after)
        body = {"tickets": [{k: v for k, v in t.items() if not k.startswith("_")} for t in page],
                "after_cursor": cursor, "before_cursor": None, "end_of_stream": end,
                "after_url": f"{self.base_url}{request.path}?{urlencode({'cursor': cursor})}"}
        if "metric_sets" in request.args.get("include", ""):
            body["metric_sets"] = [self.metrics[t["id"]] for t in page if t["id"] in self.metrics]
        return json_response(body)

    def _audits(self, request: Request, ticket_id: int) -> Response:
        ticket = self.tickets.get(ticket_id)
        if ticket is None or ticket["status"] == "deleted":
            return json_response({"error": "RecordNotFound", "description": "Not found"}, 404)
        size = int(request.args.get("page[size]", 100))
        start = int(request.args.get("page[after]", 0))
        audits = self.audits.get(ticket_id, [])[start:start + size]
        more = start + size < len(self.audits.get(ticket_id, []))
        nxt = f"{self.base_url}{request.path}?{urlencode({'page[size]': size, 'page[after]': start + size})}"
        return json_response({"audits": audits, "meta": {"has_more": more, "after_cursor": str(start + size)},
                              "links": {"next": nxt if more else None}})

    # --- building data ------------------------------------------------------------------------

    def add(self, tid: int, created: datetime, type_: str | None = "incident", priority: str = "normal",
            requester: int = 1, creator: int | None = None, organization: int | None = 31,
            custom_fields: list[dict[str, Any]] | None = None) -> None:
        """A new ticket; ``creator`` (default: the requester) writes its first comment, e.g. an agent on the phone."""
        author = creator if creator is not None else requester
        self.tickets[tid] = {"id": tid, "type": type_, "status": "new", "priority": priority, "subject": f"T{tid}",
                             "requester_id": requester, "submitter_id": author, "assignee_id": None, "group_id": None,
                             "organization_id": organization, "custom_fields": custom_fields or [],
                             "created_at": zd_time(created), "updated_at": zd_time(created),
                             "satisfaction_rating": {"score": "unoffered"}, "_updated": int(created.timestamp())}
        self.audits[tid] = [{"id": self.next_id(), "ticket_id": tid, "created_at": zd_time(created), "author_id": author,
                             "via": {"channel": "web"},
                             "events": [{"id": self.next_id(), "type": "Comment", "public": True, "author_id": author,
                                         "body": "Help"},
                                        {"id": self.next_id(), "type": "Create", "field_name": "status", "value": "new"},
                                        {"id": self.next_id(), "type": "Create", "field_name": "priority",
                                         "value": priority}]}]
        self.metrics[tid] = {"id": tid + 500, "ticket_id": tid, "reopens": 0, "replies": 0, "solved_at": None,
                             "reply_time_in_minutes": {"calendar": None, "business": None}}

    def change(self, tid: int, at: datetime, author: int = 11, channel: str = "web", comment: bool = False,
               public: bool = True, rating: str | None = None, **fields: Any) -> None:
        """An update by ``author``: fields, an optional comment (public or an internal note) or rating, one audit."""
        ticket = self.tickets[tid]
        events: list[dict[str, Any]] = []
        for name, value in fields.items():
            events.append({"id": self.next_id(), "type": "Change", "field_name": name,
                           "value": str(value), "previous_value": None if ticket[name] is None else str(ticket[name])})
            ticket[name] = value
        if comment:
            events.append({"id": self.next_id(), "type": "Comment", "public": public, "author_id": author,
                           "body": "On it"})
        if rating:
            events.append({"id": self.next_id(), "type": "SatisfactionRating", "score": rating,
                           "assignee_id": ticket["assignee_id"]})
            ticket["satisfaction_rating"] = {"id": 7, "score": rating}
        if fields.get("status") == "solved":
            self.metrics[tid]["solved_at"] = zd_time(at)
        self.audits[tid].append({"id": self.next_id(), "ticket_id": tid, "created_at": zd_time(at),
                                 "author_id": author, "via": {"channel": channel}, "events": events})
        ticket["updated_at"], ticket["_updated"] = zd_time(at), int(at.timestamp())


def sample_account(authorization: str, now: datetime) -> FakeZendesk:
    """Seven tickets (5..7 tied on updated_at), a deleted one, a rating, an automation comment."""
    zd = FakeZendesk(authorization, now)
    t0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
    for tid in range(1, 8):
        created = t0 + timedelta(hours=tid)
        zd.add(tid, created, type_=None if tid == 4 else ("question" if tid == 3 else "incident"))
        zd.change(tid, created + timedelta(minutes=2), author=-1, channel="rule", comment=True)  # auto-reply
        zd.change(tid, created + timedelta(minutes=5), status="open", assignee_id=11, group_id=21)
        zd.change(tid, created + timedelta(minutes=9), comment=True)
        end = datetime(2026, 1, 6, 9, 0, tzinfo=UTC) if tid >= 5 else created + timedelta(hours=2)
        zd.change(tid, end, status="solved")
    zd.change(1, datetime(2026, 1, 5, 6, 0, tzinfo=UTC), author=1, channel="web", rating="good")
    zd.add(8, t0, type_="incident")
    zd.tickets[8].update(status="deleted", updated_at=zd_time(t0 + timedelta(hours=1)), _updated=int((t0 + timedelta(hours=1)).timestamp()))
    return zd
