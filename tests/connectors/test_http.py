"""HttpClient against a real HTTP server on 127.0.0.1: retries, budgets, errors, redaction."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fakes.base import FakeVendor, json_response, serve
from werkzeug import Request, Response

from connectors.errors import SourceAuthError, SourceResponseError, SourceUnreachable
from connectors.http import HttpClient, Redactor, RetryPolicy, basic_auth, bearer_auth, retry_after_s

SECRET = "s3cr3t-T0ken-value"
AUTH = bearer_auth(SECRET)
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


class Echo(FakeVendor):
    def route(self, request: Request) -> Response:
        return json_response({"path": request.path, "args": request.args.to_dict()})


@pytest.fixture
def echo() -> Echo:
    return Echo(AUTH)


@pytest.fixture
def url(echo: Echo) -> Iterator[str]:
    with serve(echo) as base:
        yield base


def client(url: str, waits: list[float], token: str = SECRET, **policy) -> HttpClient:
    return HttpClient("t", url, authorization=bearer_auth(token), secrets=[token], sleep=waits.append,
                      now=lambda: NOW, rand=lambda: 1.0, policy=RetryPolicy(read_timeout_s=0.3, **policy))


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after_s("120", NOW) == 120.0
    assert retry_after_s("Sun, 01 Mar 2026 12:00:45 GMT", NOW) == 45.0
    assert retry_after_s("Sun, 01 Mar 2026 11:00:00 GMT", NOW) == 0.0  # in the past: go now
    assert retry_after_s("soon", NOW) is None and retry_after_s(None, NOW) is None


def test_429_honours_retry_after_seconds(url: str, echo: Echo) -> None:
    echo.fail("429", retry_after="3")
    waits: list[float] = []
    data, _ = client(url, waits).get_json("/x")
    assert data["path"] == "/x" and waits == [3.0]


def test_503_honours_retry_after_http_date(url: str, echo: Echo) -> None:
    echo.fail("503", retry_after="Sun, 01 Mar 2026 12:00:20 GMT")
    waits: list[float] = []
    client(url, waits).get_json("/x")
    assert waits == [20.0]


def test_backoff_is_exponential_and_capped(url: str, echo: Echo) -> None:
    echo.fail("502", times=6)
    waits: list[float] = []
    client(url, waits, max_attempts=7, backoff_base_s=1, backoff_cap_s=5, max_total_wait_s=100).get_json("/x")
    assert waits == [1, 2, 4, 5, 5, 5]  # rand=1.0: the full ceiling, never above the cap


def test_jitter_stays_between_half_and_full() -> None:
    policy = RetryPolicy(backoff_base_s=2, backoff_cap_s=60)
    assert policy.backoff_s(3, 0.0) == 4.0 and policy.backoff_s(3, 1.0) == 8.0


def test_total_wait_budget_stops_retrying(url: str, echo: Echo) -> None:
    echo.fail("503", times=10)
    waits: list[float] = []
    with pytest.raises(SourceUnreachable, match="retry budget"):
        client(url, waits, max_attempts=10, backoff_base_s=4, backoff_cap_s=30, max_total_wait_s=20).get_json("/x")
    assert sum(waits) <= 20 and waits == [4, 8]


def test_timeout_then_success(url: str, echo: Echo) -> None:
    echo.fail("timeout", delay_s=1.0)
    waits: list[float] = []
    data, _ = client(url, waits).get_json("/slow")
    assert data["path"] == "/slow" and len(waits) == 1


def test_connection_refused_is_unreachable_after_retries() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    waits: list[float] = []
    with pytest.raises(SourceUnreachable, match="failed 3 times"):
        client(f"http://127.0.0.1:{port}", waits, max_attempts=3).get_json("/x")
    assert len(waits) == 2


@pytest.mark.parametrize("status, error", [(401, SourceAuthError), (403, SourceAuthError),
                                           (404, SourceResponseError), (400, SourceResponseError)])
def test_4xx_fail_at_once(url: str, echo: Echo, status: int, error: type) -> None:
    echo.fail(str(status))
    waits: list[float] = []
    with pytest.raises(error, match=f"HTTP {status}"):
        client(url, waits).get_json("/x")
    assert waits == [] and echo.count("/x") == 1


def test_html_body_and_malformed_json_are_response_errors(url: str, echo: Echo) -> None:
    echo.fail("html")
    with pytest.raises(SourceResponseError, match="instead of JSON"):
        client(url, []).get_json("/x")
    echo.fail("malformed")
    with pytest.raises(SourceResponseError, match="malformed JSON"):
        client(url, []).get_json("/x")


def test_secrets_never_in_logs_or_errors(url: str, echo: Echo, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo.fail("503", times=2)
    echo.fail("401")
    wrong = "wrong-" + SECRET
    with pytest.raises(SourceAuthError) as err:
        client(url, [], token=wrong).get_json(f"/x?token={wrong}&password=hunter2")
    text = str(err.value) + caplog.text
    assert wrong not in text and SECRET not in text and "hunter2" not in text
    assert "***" in text


def test_redactor_masks_headers_urls_and_known_secrets() -> None:
    r = Redactor(["abcd1234secret"])
    assert r("https://user:pa55@example.com/x") == "https://***@example.com/x"
    assert r("/api?sysparm_limit=5&api_key=XYZ&token=T") == "/api?sysparm_limit=5&api_key=***&token=***"
    assert "abcd1234secret" not in r("body says abcd1234secret")
    assert r("{'Authorization': 'Basic QWxhZGRpbjpvcGVu'}") == "{'Authorization': '***'}"
    assert r.headers({"Authorization": basic_auth("a", "b"), "Accept": "x"}) == {"Authorization": "***", "Accept": "x"}


def test_relative_paths_and_absolute_next_urls(url: str) -> None:
    c = client(url + "/sub", [])
    assert c.url("/api/x") == url + "/sub/api/x"
    assert c.url("http://other/next?a=1") == "http://other/next?a=1"
    assert c.calls == 0


def test_errors_name_the_path_and_cut_a_long_query(url: str, echo: Echo) -> None:
    """A ServiceNow ticket query with its fields is ~1 KB: the one-line error (and a chat's run_failed) keeps
    its first 120 characters. The secret is masked before the cut, so no prefix of it is left either."""
    echo.fail("401")
    fields = "%2C".join(f"field_{i}" for i in range(100))
    with pytest.raises(SourceAuthError) as err:
        client(url, []).get_json(f"/api/now/table/incident?sysparm_fields={fields}&token={SECRET}")
    where = str(err.value).split(" was refused")[0]
    query = f"sysparm_fields={fields}&token=***"  # masked by its name
    assert where.endswith("GET /api/now/table/incident?" + query[:120] + "...")
    echo.fail("401")
    with pytest.raises(SourceAuthError) as err:
        client(url, []).get_json("/x?" + "a" * 110 + f"&q={SECRET}")  # the cut would fall inside the secret
    assert f"GET /x?{'a' * 110}&q=*** was refused" in str(err.value) and SECRET[:5] not in str(err.value)
