"""Posting one alert message to its webhook: the one retrying session (connectors.http), the URL kept secret.

A webhook URL holds its secret (a Slack path, a WeCom or DingTalk ``key``/``access_token``), so it is read
from the environment (``url_env``, or a file named by ``url_env`` + ``_FILE``) and masked wherever it
could show: in log lines, in errors, in ``pipeline_runs``. A post that fails is retried with backoff
(429 honours ``Retry-After``); a chat robot that answers 200 with an error code (``errcode`` != 0) failed too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl, quote_plus, urlsplit

from connectors.errors import SourceError
from connectors.http import HttpClient, RetryPolicy

__all__ = ["AlertPostError", "Webhook", "secret_from_env"]

#: A failing webhook must not hold the nightly job for long.
ALERT_RETRY = RetryPolicy(max_attempts=4, backoff_base_s=1.0, backoff_cap_s=20.0, max_total_wait_s=60.0,
                          connect_timeout_s=10.0, read_timeout_s=30.0)


class AlertPostError(Exception):
    """A post failed after its retries; the message names the alert, never its URL."""


def secret_from_env(name: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The value of ``name``, else the content of the file ``name_FILE`` names (trailing newline removed)."""
    if not name:
        return None
    env = os.environ if env is None else env
    if env.get(name):
        return env[name]
    path = env.get(f"{name}_FILE")
    if path and Path(path).is_file():
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n") or None
    return None


class Webhook:
    """One alert's webhook: posts JSON bodies, signs DingTalk ones when a secret is given."""

    def __init__(self, alert: str, url: str, *, signing_secret: str | None = None,
                 policy: RetryPolicy = ALERT_RETRY, sleep: Callable[[float], None] = time.sleep) -> None:
        self.alert = alert
        self._url = url
        self._signing_secret = signing_secret
        self._client = HttpClient(f"alert {alert}", url, secrets=_url_secrets(url, signing_secret),
                                  policy=policy, sleep=sleep)

    def post(self, body: dict) -> None:
        """Post ``body``; raise AlertPostError (one line, no URL) when it did not go through."""
        try:
            response = self._client.request("POST", self._signed_url(), json_body=body)
        except SourceError as exc:
            raise AlertPostError(self._client.redact(exc)) from None
        _raise_for_robot_error(self.alert, response)

    def _signed_url(self) -> str:
        """DingTalk's signature: ``timestamp`` (ms) and ``sign`` = base64(HMAC-SHA256(secret, "ts\\nsecret"))."""
        if not self._signing_secret:
            return self._url
        timestamp = str(int(time.time() * 1000))
        digest = hmac.new(self._signing_secret.encode(), f"{timestamp}\n{self._signing_secret}".encode(),
                          hashlib.sha256).digest()
        sign = quote_plus(base64.b64encode(digest))
        return f"{self._url}{'&' if '?' in self._url else '?'}timestamp={timestamp}&sign={sign}"


def _raise_for_robot_error(alert: str, response) -> None:
    """WeCom and DingTalk answer HTTP 200 with ``{"errcode": n, "errmsg": ...}``; n != 0 is a failure."""
    if "json" not in response.headers.get("Content-Type", "").lower():
        return
    try:
        body = response.json()
    except ValueError:
        return
    if isinstance(body, dict) and body.get("errcode", 0) not in (0, "0"):
        raise AlertPostError(f"alert {alert}: the webhook refused the message: errcode {body.get('errcode')} "
                             f"({str(body.get('errmsg', ''))[:120]})")


def _url_secrets(url: str, signing_secret: str | None) -> list[str]:
    """Every part of a webhook URL that could carry its secret, to mask in logs and errors."""
    parts = urlsplit(url)
    secrets = [url, parts.path, parts.query, *[value for _, value in parse_qsl(parts.query)]]
    return [s for s in [*secrets, signing_secret or ""] if s and s != "/"]
