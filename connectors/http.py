"""The one retrying HTTP session every REST connector uses, and the redaction of secrets.

``HttpClient`` wraps a ``requests.Session``:

* every call has a (connect, read) timeout;
* 429, 5xx, connection errors and timeouts are retried with capped exponential backoff and jitter,
  honouring ``Retry-After`` (seconds or an HTTP date); the waits of one call never add up to more
  than ``RetryPolicy.max_total_wait_s`` -- past that the call fails with ``SourceUnreachable``;
* 401/403 raise ``SourceAuthError`` and every other 4xx ``SourceResponseError`` at once;
* a JSON body is checked (content type, then syntax) before it is used -> ``SourceResponseError``;
* secrets never reach a log line or an exception text: the client's secrets, ``Authorization``
  headers, URL user-info and token/password query parameters are replaced by ``***``.

``sleep`` and ``now`` are injectable so that tests never wait for real.
"""

from __future__ import annotations

import base64
import logging
import random
import re
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import requests

from connectors.errors import SourceAuthError, SourceResponseError, SourceUnreachable

__all__ = ["HttpClient", "RetryPolicy", "Redactor", "basic_auth", "bearer_auth", "retry_after_s"]

log = logging.getLogger(__name__)

MASK = "***"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})
_SECRET_PARAMS = re.compile(
    r"(?i)([?&;](?:access_token|api_key|apikey|token|password|passwd|secret|sig|signature|key)=)[^&#\s\"']*")
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/@\s:\"']+:[^/@\s\"']*@")
_AUTH_HEADER = re.compile(r"(?i)((?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?)(?:basic|bearer|token)?\s*[^'\"\s,}]+")


class Redactor:
    """Replaces known secrets and secret-looking URL parts / headers in any text with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def add(self, secret: str | None) -> None:
        """Remember one more secret (e.g. the base64 form of a basic-auth header)."""
        if secret and len(secret) >= 4 and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def __call__(self, text: object) -> str:
        """``text`` with every secret masked."""
        out = str(text)
        for secret in self._secrets:
            out = out.replace(secret, MASK)
        out = _USERINFO.sub(rf"\1{MASK}@", out)
        out = _SECRET_PARAMS.sub(rf"\1{MASK}", out)
        return _AUTH_HEADER.sub(rf"\1{MASK}", out)

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """A copy of ``headers`` fit for a log line."""
        return {k: MASK if k.lower() in ("authorization", "proxy-authorization", "cookie") else self(v)
                for k, v in headers.items()}


class _RedactingFilter(logging.Filter):
    """Masks secrets in the records of a third-party logger (urllib3 logs request URLs at DEBUG)."""

    def __init__(self) -> None:
        super().__init__()
        self.redactors: weakref.WeakSet[Redactor] = weakref.WeakSet()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for redact in [Redactor(), *list(self.redactors)]:
            message = redact(message)
        record.msg, record.args = message, None
        return True


_THIRD_PARTY_FILTER = _RedactingFilter()
_THIRD_PARTY_LOGGERS = ("urllib3.connectionpool",)


def _guard_third_party_logs(redactor: Redactor) -> None:
    """Make urllib3's own log lines go through ``redactor`` too (installed once, on first use)."""
    _THIRD_PARTY_FILTER.redactors.add(redactor)
    for name in _THIRD_PARTY_LOGGERS:
        logger = logging.getLogger(name)
        if _THIRD_PARTY_FILTER not in logger.filters:
            logger.addFilter(_THIRD_PARTY_FILTER)


def basic_auth(username: str, secret: str) -> str:
    """The ``Authorization`` header value for HTTP basic auth."""
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode("ascii")


def bearer_auth(token: str) -> str:
    """The ``Authorization`` header value for a bearer token."""
    return f"Bearer {token}"


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often one call may be retried."""

    max_attempts: int = 6  # first try included
    backoff_base_s: float = 1.0  # 1, 2, 4, 8 ... seconds before jitter
    backoff_cap_s: float = 60.0  # no single backoff wait is longer
    max_total_wait_s: float = 300.0  # the waits of one call never add up to more
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0

    def backoff_s(self, attempt: int, rand: float) -> float:
        """Wait before retry number ``attempt`` (1-based): capped exponential, jittered to 50-100 %."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1))
        return ceiling * (0.5 + rand / 2)


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` (delta seconds or an HTTP date) -> seconds to wait from ``now``; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class _Retry(Exception):
    """Internal: this attempt failed in a way worth retrying."""

    def __init__(self, reason: str, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s


@dataclass
class _Call:
    """One logical call: its method, URL and the waits spent on it so far."""

    method: str
    url: str
    waited_s: float = 0.0
    attempt: int = 1


class HttpClient:
    """A retrying JSON client for one source. ``calls`` counts the HTTP requests actually sent."""

    def __init__(self, source: str, base_url: str, *, authorization: str | None = None,
                 secrets: Iterable[str] = (), headers: Mapping[str, str] | None = None,
                 policy: RetryPolicy | None = None, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, now: Callable[[], datetime] | None = None,
                 rand: Callable[[], float] = random.random) -> None:
        self.source = source
        self.base_url = base_url.rstrip("/") + "/"
        self.policy = policy or RetryPolicy()
        self.redact = Redactor(secrets)
        _guard_third_party_logs(self.redact)
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": "itsm-kpi"})
        self.session.headers.update(dict(headers or {}))
        if authorization:
            self.session.headers["Authorization"] = authorization
            self.redact.add(authorization.split(" ", 1)[-1])
        self._sleep = sleep
        self._now = now or (lambda: datetime.now(UTC))
        self._rand = rand
        self.calls = 0

    def now(self) -> datetime:
        """The client's clock (injectable): aware UTC."""
        return self._now()

    def url(self, path_or_url: str) -> str:
        """An absolute URL: a path is taken from the base URL, an absolute URL is kept."""
        return urljoin(self.base_url, path_or_url.lstrip("/")) if "://" not in path_or_url else path_or_url

    def get_json(self, path_or_url: str, params: Mapping[str, Any] | None = None) -> tuple[Any, requests.Response]:
        """GET and parse a JSON body -> (data, response)."""
        return self.request_json("GET", path_or_url, params=params)

    def request_json(self, method: str, path_or_url: str, *, params: Mapping[str, Any] | None = None,
                     json_body: Any = None) -> tuple[Any, requests.Response]:
        """Send one call (retried as needed) and return its parsed JSON body and the response."""
        response = self.request(method, path_or_url, params=params, json_body=json_body)
        return self._json(response), response

    def request(self, method: str, path_or_url: str, *, params: Mapping[str, Any] | None = None,
                json_body: Any = None) -> requests.Response:
        """Send one call, retrying 429/5xx/network failures; raise the SourceError that fits."""
        call = _Call(method, self.url(path_or_url))
        while True:
            try:
                return self._attempt(call, params, json_body)
            except _Retry as retry:
                self._wait_or_give_up(call, retry)
                call.attempt += 1

    def _attempt(self, call: _Call, params: Mapping[str, Any] | None, json_body: Any) -> requests.Response:
        self.calls += 1
        timeout = (self.policy.connect_timeout_s, self.policy.read_timeout_s)
        try:
            response = self.session.request(call.method, call.url, params=params, json=json_body, timeout=timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}") from None
        log.debug("source %s: %s %s -> %s", self.source, call.method, self.redact(response.url), response.status_code)
        self._raise_for_status(call, response)
        return response

    def _raise_for_status(self, call: _Call, response: requests.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        if status in RETRY_STATUSES or status >= 500:
            wait = retry_after_s(response.headers.get("Retry-After"), self._now())
            raise _Retry(f"HTTP {status}", wait)
        where = f"{call.method} {url_path(self.redact(response.url or call.url))}"
        detail = self.redact(_snippet(response))
        if status in (401, 403):
            raise SourceAuthError(self.source, f"{where} was refused with HTTP {status}: check the account's "
                                  f"credentials and permissions ({detail})")
        if status == 404:
            error = SourceResponseError(self.source, f"{where} returned HTTP 404 Not Found: check the url and "
                                        f"that the API/table exists for this account ({detail})")
        else:
            error = SourceResponseError(self.source, f"{where} returned HTTP {status} ({detail})")
        error.status = status  # lets a connector tolerate e.g. a 404 for a ticket deleted meanwhile
        raise error

    def _wait_or_give_up(self, call: _Call, retry: _Retry) -> None:
        where = f"{call.method} {url_path(self.redact(call.url))}"
        reason = self.redact(retry.reason)
        policy = self.policy
        wait = retry.wait_s if retry.wait_s is not None else policy.backoff_s(call.attempt, self._rand())
        if call.attempt >= policy.max_attempts:
            raise SourceUnreachable(self.source, f"{where} failed {call.attempt} times, last with {reason}")
        if call.waited_s + wait > policy.max_total_wait_s:
            raise SourceUnreachable(self.source, f"{where} failed with {reason}; waiting {wait:.0f}s more would "
                                    f"exceed the {policy.max_total_wait_s:.0f}s retry budget")
        log.warning("source %s: %s failed with %s; retry %d in %.1fs", self.source, where, reason,
                    call.attempt, wait)
        call.waited_s += wait
        self._sleep(wait)

    def _json(self, response: requests.Response) -> Any:
        where = f"{response.request.method} {url_path(self.redact(response.url))}"
        ctype = response.headers.get("Content-Type", "")
        if "json" not in ctype.lower():
            raise SourceResponseError(self.source, f"{where} answered {ctype or 'no content type'} instead of JSON "
                                      f"(a login page or proxy error?): {self.redact(_snippet(response))}")
        try:
            return response.json()
        except (ValueError, RecursionError) as exc:  # also nested past Python's depth
            raise SourceResponseError(self.source, f"{where} returned malformed JSON ({exc}): "
                                      f"{self.redact(_snippet(response))}") from None


#: Characters of a URL's query an error message keeps: enough to tell the query (a ServiceNow filter, a JQL),
#: short enough for one line and a chat message (a ServiceNow ticket query with its fields is ~1 KB).
QUERY_SHOWN = 120


def url_path(url: str) -> str:
    """The URL without scheme and host, its query cut to ``QUERY_SHOWN`` characters (redact first: a cut
    secret is no longer recognised): shorter messages, and no host credentials."""
    path = re.sub(r"^[a-z][a-z0-9+.-]*://[^/]*", "", url or "", flags=re.I) or "/"
    head, mark, query = path.partition("?")
    return head + mark + query[:QUERY_SHOWN] + ("..." if len(query) > QUERY_SHOWN else "")


def _snippet(response: requests.Response, limit: int = 200) -> str:
    text = " ".join((response.text or "").split())
    return text[:limit] + ("..." if len(text) > limit else "") if text else "empty body"
