"""Paginators: small classes that read a response and change the next request, driven by one loop.

A paginator has three parts (the dlt shape): ``update_state(response, data)`` looks at a page,
``has_next`` says whether there is another, ``update_request(request)`` turns the request into the
request for the next page. ``paginate`` drives any of them and stops with ``SourceResponseError``
when a next request repeats an earlier one (a token or URL seen before): a loop, not more data.

    LinkHeaderPaginator     RFC 8288 ``Link: <...>; rel="next"`` (ServiceNow Table API)
    OverlappingLinkPaginator  the same, each page re-reading the last rows of the one before
    OffsetPaginator         offset/limit parameters (ServiceNow without Link, Jira startAt/maxResults)
    NextPageTokenPaginator  a token in the body, ``isLast`` (Jira ``/rest/api/3/search/jql``, bulk changelog)
    CursorExportPaginator   ``after_cursor`` until ``end_of_stream`` (Zendesk incremental export)
    LinksNextPaginator      ``meta.has_more`` + ``links.next`` (Zendesk cursor pagination)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from connectors.errors import SourceResponseError
from connectors.http import HttpClient, url_path
from connectors.lines import json_kind

__all__ = [
    "CursorExportPaginator",
    "LinkHeaderPaginator",
    "LinksNextPaginator",
    "NextPageTokenPaginator",
    "OffsetPaginator",
    "OverlappingLinkPaginator",
    "Page",
    "Paginator",
    "Request",
    "paginate",
]

log = logging.getLogger(__name__)


@dataclass
class Request:
    """What the next call sends: method, path or URL, query parameters and an optional JSON body."""

    url: str
    params: dict[str, Any] = field(default_factory=dict)
    method: str = "GET"
    json: dict[str, Any] | None = None

    def fingerprint(self) -> str:
        """A stable text that is equal for equal requests (loop detection)."""
        return json.dumps([self.method, self.url, self.params, self.json], sort_keys=True, default=str)


@dataclass
class Page:
    """One page: its records, the parsed body and the response (headers, URL)."""

    records: list[Any]
    data: Any
    response: requests.Response


class Paginator:
    """Base class: one page only. Subclasses override the three methods."""

    has_next: bool = False

    def update_state(self, response: requests.Response, data: Any, records: list[Any]) -> None:
        """Look at a page just read and decide ``has_next``."""
        self.has_next = False

    def update_request(self, request: Request) -> None:
        """Turn ``request`` into the request for the next page."""


class OffsetPaginator(Paginator):
    """``offset`` += ``limit`` until a short page (or ``total`` / ``isLast`` in the body say the end)."""

    def __init__(self, limit: int, offset_param: str = "offset", limit_param: str = "limit",
                 offset: int = 0, total_key: str | None = None) -> None:
        self.limit, self.offset = limit, offset
        self.offset_param, self.limit_param, self.total_key = offset_param, limit_param, total_key

    def update_state(self, response: requests.Response, data: Any, records: list[Any]) -> None:
        self.offset += len(records)
        total = data.get(self.total_key) if self.total_key and isinstance(data, dict) else None
        is_last = isinstance(data, dict) and data.get("isLast") is True
        self.has_next = len(records) >= self.limit and not is_last and (total is None or self.offset < total)

    def update_request(self, request: Request) -> None:
        request.params[self.offset_param] = self.offset
        request.params[self.limit_param] = self.limit


class LinkHeaderPaginator(Paginator):
    """Follows ``Link: <url>; rel="next"``; the next URL carries every parameter.

    With ``offset_fallback``, a full page from a server (or proxy) that sent no ``Link`` header at all
    goes on by offset instead of silently ending after the first page.
    """

    def __init__(self, offset_fallback: OffsetPaginator | None = None) -> None:
        self.next_url: str | None = None
        self.fallback = offset_fallback
        self.by_offset = False

    def update_state(self, response: requests.Response, data: Any, records: list[Any]) -> None:
        self.next_url = response.links.get("next", {}).get("url")
        self.by_offset = self.fallback is not None and "Link" not in response.headers
        if self.by_offset:
            self.fallback.update_state(response, data, records)
            self.has_next = self.fallback.has_next
        else:
            self.has_next = bool(self.next_url) and bool(records)

    def update_request(self, request: Request) -> None:
        if self.by_offset:
            self.fallback.update_request(request)
        else:
            request.url, request.params = str(self.next_url), {}


class OverlappingLinkPaginator(LinkHeaderPaginator):
    """A Link-header paginator whose next page starts ``overlap`` rows early.

    Offset pages over a table that changes while it is read skip rows: a row updated meanwhile moves
    to the end of an ``ORDER BY updated`` result and every later row shifts one place up, so the row
    at the page boundary is never seen. Re-reading ``overlap`` rows per page absorbs up to ``overlap``
    such moves; the caller checks that the previous page's last row reappears (see ``ServiceNowConnector``).
    """

    def __init__(self, overlap: int, offset_param: str, offset_fallback: OffsetPaginator | None = None) -> None:
        super().__init__(offset_fallback)
        self.overlap, self.offset_param = overlap, offset_param

    def update_request(self, request: Request) -> None:
        super().update_request(request)
        if self.overlap <= 0:
            return
        if self.by_offset and self.fallback is not None:
            step_back = max(0, int(request.params.get(self.offset_param, 0)) - self.overlap)
            self.fallback.offset = step_back
            request.params[self.offset_param] = step_back
            return
        parts = urlsplit(request.url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query = [(k, str(max(0, int(v) - self.overlap)) if k == self.offset_param else v) for k, v in query]
        request.url = urlunsplit(parts._replace(query=urlencode(query)))


class NextPageTokenPaginator(Paginator):
    """A ``nextPageToken`` in the body goes back as a parameter (or JSON field) until ``isLast``/no token."""

    def __init__(self, token_key: str = "nextPageToken", param: str = "nextPageToken", in_body: bool = False) -> None:
        self.token_key, self.param, self.in_body = token_key, param, in_body
        self.token: str | None = None

    def update_state(self, response: requests.Response, data: Any, records: list[Any]) -> None:
        self.token = data.get(self.token_key) if isinstance(data, dict) else None
        self.has_next = bool(self.token) and not (isinstance(data, dict) and data.get("isLast") is True)

    def update_request(self, request: Request) -> None:
        if self.in_body:
            request.json = {**(request.json or {}), self.param: self.token}
        else:
            request.params[self.param] = self.token


class CursorExportPaginator(Paginator):
    """Zendesk incremental export: ``cursor=<after_cursor>`` until ``end_of_stream``; the start time is dropped."""

    def __init__(self, cursor_key: str = "after_cursor", param: str = "cursor", drop: tuple[str, ...] = ("start_time",)) -> None:
        self.cursor_key, self.param, self.drop = cursor_key, param, drop
        self.cursor: str | None = None

    def update_state(self, response: requests.Response, data: Any, records: list[Any]) -> None:
        self.cursor = data.get(self.cursor_key) if isinstance(data, dict) else None
        self.has_next = bool(self.cursor) and not data.get("end_of_stream", True)

    def update_request(self, request: Request) -> None:
        for name in self.drop:
            request.params.pop(name, None)
        request.params[self.param] = self.cursor


class LinksNextPaginator(Paginator):
    """Zendesk cursor pagination: ``links.next`` while ``meta.has_more``."""

    def __init__(self) -> None:
        self.next_url: str | None = None

    def update_state(self, response: requests.Response, data: Any, records: list[Any]) -> None:
        body = data if isinstance(data, dict) else {}
        meta = body.get("meta") or {}
        self.next_url = (body.get("links") or {}).get("next")
        self.has_next = bool(meta.get("has_more")) and bool(self.next_url)

    def update_request(self, request: Request) -> None:
        request.url, request.params = str(self.next_url), {}


def records_at(key: str | None) -> Callable[[Any], list[Any]]:
    """A function that takes the records list out of a body (``None``: the body is the list)."""
    def select(data: Any) -> list[Any]:
        value = data if key is None else (data.get(key) if isinstance(data, dict) else None)
        return list(value or [])
    return select


def paginate(client: HttpClient, request: Request, paginator: Paginator, records_key: str | None,
             max_pages: int | None = None, *, objects: bool = False) -> Iterator[Page]:
    """Yield every page of ``request``; a repeated next request, or a body without an array of records
    (of objects, with ``objects``), raises ``SourceResponseError``."""
    select = records_at(records_key)
    seen = {request.fingerprint()}
    pages = 0
    while True:
        data, response = client.request_json(request.method, request.url, params=request.params or None,
                                             json_body=request.json)
        _check_body(client, request, data, records_key, objects)
        page = Page(select(data), data, response)
        paginator.update_state(response, data, page.records)
        yield page
        pages += 1
        if not paginator.has_next or (max_pages is not None and pages >= max_pages):
            return
        paginator.update_request(request)
        _check_loop(client, request, seen)


#: Keys under which the vendors' APIs put an error in a body they answer with HTTP 200 (ServiceNow, Zendesk: error;
#: Jira: errorMessages).
_ERROR_KEYS = ("error", "errorMessages", "errors")


def _check_body(client: HttpClient, request: Request, data: Any, key: str | None, objects: bool) -> None:
    """``SourceResponseError`` unless ``data`` holds the records as an array of objects (under ``key``; a body
    without ``key`` and without an error is taken as no records): a changed API or an error answered with
    HTTP 200 fails the source (exit 3) instead of passing as "0 tickets read" or stopping the run on a bug."""
    where = url_path(client.redact(request.url))
    if key is not None and isinstance(data, dict):
        if key not in data:
            errors = {k: data[k] for k in _ERROR_KEYS if data.get(k)}
            if errors:
                raise SourceResponseError(client.source, f"{where} answered an error: {json.dumps(errors)[:300]}")
            return
        data = data[key]
    elif key is not None:
        raise SourceResponseError(client.source, f"{where} answered {json_kind(data)}, not an object holding {key!r}")
    if data is None and key is not None:
        return
    if not isinstance(data, list):
        raise SourceResponseError(client.source, f"{where} answered {json_kind(data)} where an array of records "
                                  f"{'under ' + repr(key) + ' ' if key else ''}was expected")
    wrong = next((i for i, record in enumerate(data, start=1) if not isinstance(record, dict)), None) if objects else None
    if wrong is not None:
        raise SourceResponseError(client.source, f"{where}: record {wrong} of the page is {json_kind(data[wrong - 1])}, "
                                  "not an object")


def _check_loop(client: HttpClient, request: Request, seen: set[str]) -> None:
    key = request.fingerprint()
    if key in seen:
        raise SourceResponseError(client.source, f"pagination loop: the next page of {client.redact(request.url)} "
                                  "repeats a page already read (same cursor/token/URL); stopping")
    seen.add(key)
