"""Paginators driven by the one loop, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes.base import FakeVendor, json_response, serve
from werkzeug import Request, Response

from connectors.errors import SourceResponseError
from connectors.http import HttpClient, bearer_auth
from connectors.paging import (
    CursorExportPaginator,
    LinkHeaderPaginator,
    LinksNextPaginator,
    NextPageTokenPaginator,
    OffsetPaginator,
    OverlappingLinkPaginator,
    paginate,
)
from connectors.paging import (
    Request as PageRequest,
)

AUTH = bearer_auth("paging-token")
ROWS = list(range(10))


class Pages(FakeVendor):
    """Ten rows served in the shapes the paginators read; ``stuck`` repeats the first cursor."""

    stuck = False
    body: object = None  # what /shape answers (a raw text when str)

    def route(self, request: Request) -> Response:
        a = request.args
        if request.path == "/shape":
            if isinstance(self.body, str):
                return Response(self.body, content_type="application/json")
            return json_response(self.body)
        if request.path == "/link":
            off, lim = int(a.get("offset", 0)), int(a.get("limit", 4))
            nxt = off if self.stuck else off + lim
            headers = {"Link": f'<{self.base_url}/link?offset={nxt}&limit={lim}>; rel="next"'} if off + lim < 10 else {}
            return json_response({"result": ROWS[off:off + lim]}, headers=headers)
        if request.path == "/offset":
            off, lim = int(a.get("startAt", 0)), int(a.get("maxResults", 4))
            return json_response({"values": ROWS[off:off + lim], "total": 10, "isLast": off + lim >= 10})
        if request.path == "/token":
            pos = 0 if self.stuck else int(a.get("nextPageToken", 0))
            done = pos + 4 >= 10
            return json_response({"issues": ROWS[pos:pos + 4], "isLast": done, **({} if done else {"nextPageToken": str(pos + 4)})})
        if request.path == "/export":
            pos = int(a.get("cursor", 0))
            nxt = 0 if self.stuck else pos + 4
            return json_response({"tickets": ROWS[pos:pos + 4], "after_cursor": str(nxt), "end_of_stream": pos + 4 >= 10})
        if request.path == "/links":
            pos = int(a.get("after", 0))
            more = pos + 4 < 10
            return json_response({"items": ROWS[pos:pos + 4], "meta": {"has_more": more},
                                  "links": {"next": f"{self.base_url}/links?after={pos + 4}" if more else None}})
        return json_response({}, 404)


@pytest.fixture
def pages() -> Pages:
    return Pages(AUTH)


@pytest.fixture
def client(pages: Pages) -> Iterator[HttpClient]:
    with serve(pages) as base:
        yield HttpClient("p", base, authorization=AUTH, sleep=lambda s: None)


def rows(client: HttpClient, path: str, params: dict, paginator, key: str) -> list[int]:
    return [r for page in paginate(client, PageRequest(path, params), paginator, key) for r in page.records]


def test_link_header(client: HttpClient) -> None:
    assert rows(client, "/link", {"limit": 4}, LinkHeaderPaginator(), "result") == ROWS


def test_overlapping_link_rereads_the_boundary(client: HttpClient, pages: Pages) -> None:
    got = rows(client, "/link", {"offset": 0, "limit": 4}, OverlappingLinkPaginator(1, "offset"), "result")
    assert got == [0, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9]  # 3 and 6 read twice, nothing skipped


def test_offset_with_total(client: HttpClient) -> None:
    paginator = OffsetPaginator(4, "startAt", "maxResults", total_key="total")
    assert rows(client, "/offset", {"maxResults": 4}, paginator, "values") == ROWS


def test_next_page_token(client: HttpClient) -> None:
    assert rows(client, "/token", {}, NextPageTokenPaginator(), "issues") == ROWS


def test_cursor_export(client: HttpClient) -> None:
    assert rows(client, "/export", {"start_time": 0}, CursorExportPaginator(), "tickets") == ROWS


def test_links_next(client: HttpClient) -> None:
    assert rows(client, "/links", {}, LinksNextPaginator(), "items") == ROWS


@pytest.mark.parametrize("path, paginator, key", [
    ("/link", LinkHeaderPaginator(), "result"),
    ("/token", NextPageTokenPaginator(), "issues"),
    ("/export", CursorExportPaginator(), "tickets"),
])
def test_a_repeated_cursor_is_a_loop(client: HttpClient, pages: Pages, path: str, paginator, key: str) -> None:
    pages.stuck = True
    with pytest.raises(SourceResponseError, match="pagination loop"):
        rows(client, path, {"limit": 4} if path == "/link" else {}, paginator, key)
    assert pages.count(path) <= 3


def test_max_pages_stops_early(client: HttpClient, pages: Pages) -> None:
    pages_read = list(paginate(client, PageRequest("/token", {}), NextPageTokenPaginator(), "issues", max_pages=1))
    assert len(pages_read) == 1 and pages.count("/token") == 1


@pytest.mark.parametrize(("body", "expected"), [
    ({"result": "oops"}, "/shape answered a string where an array of records under 'result' was expected"),
    ({"error": {"message": "Invalid table"}, "status": "failure"}, '/shape answered an error: {"error": {"message"'),
    (None, "/shape answered null, not an object holding 'result'"),
    ([{"a": 1}], "/shape answered an array, not an object holding 'result'"),
    ({"result": [{"sys_id": "1"}, 5]}, "/shape: record 2 of the page is a number, not an object"),
    ("[" * 100_000 + "]" * 100_000, "malformed JSON"),  # nested past Python's depth
])
def test_a_body_without_an_array_of_records_fails_the_source(client: HttpClient, pages: Pages, body,
                                                             expected: str) -> None:
    """Not "0 tickets read" (an error answered with HTTP 200), nor a crash on the first record: the source
    fails with one line (exit 3)."""
    pages.body = body
    with pytest.raises(SourceResponseError) as caught:
        list(paginate(client, PageRequest("/shape", {}), LinkHeaderPaginator(), "result", objects=True))
    assert expected in str(caught.value)


def test_a_body_without_its_records_key_and_without_an_error_holds_no_records(client: HttpClient,
                                                                              pages: Pages) -> None:
    pages.body = {"count": 0}
    assert rows(client, "/shape", {}, LinkHeaderPaginator(), "result") == []
