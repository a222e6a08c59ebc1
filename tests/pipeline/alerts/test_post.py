"""Posting alerts to real webhooks on 127.0.0.1: retries, robot error codes, DingTalk signing, a secret URL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import time
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipeline.alerts.deliver import Message, deliver, enabled
from pipeline.alerts.post import AlertPostError, RetryPolicy, Webhook
from pipeline.settings import AlertSettings

TOKEN = "s3cr3t-webhook-token-0042"
FAST = RetryPolicy(max_attempts=3, backoff_base_s=0.0, backoff_cap_s=0.0, max_total_wait_s=30, read_timeout_s=1.0)


class Robot:
    """A chat robot: records bodies, answers with a queue of (status, body, headers) then 200 errcode 0."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.queries: list[dict] = []
        self.answers: list[tuple[int, dict | str, dict]] = []

    def __call__(self, request: Request) -> Response:
        self.bodies.append(json.loads(request.get_data(as_text=True)))
        self.queries.append(dict(request.args))
        status, body, headers = self.answers.pop(0) if self.answers else (200, {"errcode": 0, "errmsg": "ok"}, {})
        text = body if isinstance(body, str) else json.dumps(body)
        return Response(text, status=status, headers=headers, content_type="application/json")


@pytest.fixture
def robot(httpserver: HTTPServer) -> tuple[Robot, str]:
    handler = Robot()
    httpserver.expect_request(f"/hook/{TOKEN}").respond_with_handler(handler)
    return handler, httpserver.url_for(f"/hook/{TOKEN}") + f"?key={TOKEN}"


def _waits() -> tuple[list[float], object]:
    waits: list[float] = []
    return waits, waits.append


def test_a_429_waits_for_retry_after_then_goes_through(robot) -> None:
    handler, url = robot
    handler.answers = [(429, {"errcode": 45009}, {"Retry-After": "2"}), (503, "{}", {})]
    waits, sleep = _waits()
    Webhook("desk", url, policy=FAST, sleep=sleep).post({"msgtype": "markdown"})
    assert len(handler.bodies) == 3 and waits[0] == 2.0


def test_a_robot_error_code_is_a_failure_that_names_the_alert_not_the_url(robot) -> None:
    handler, url = robot
    handler.answers = [(200, {"errcode": 93000, "errmsg": "invalid webhook url"}, {})]
    with pytest.raises(AlertPostError) as failure:
        Webhook("desk", url, policy=FAST).post({})
    assert "desk" in str(failure.value) and "93000" in str(failure.value) and TOKEN not in str(failure.value)


def test_persistent_5xx_and_an_unreachable_host_fail_without_showing_the_url(robot, caplog) -> None:
    handler, url = robot
    handler.answers = [(500, "{}", {})] * 3
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AlertPostError) as failure:
        Webhook("desk", url, policy=FAST, sleep=lambda s: None).post({})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/hook/{TOKEN}"
    with pytest.raises(AlertPostError) as unreachable:
        Webhook("desk", closed, policy=FAST, sleep=lambda s: None).post({})
    # the fake server's own access log (werkzeug) shows the path it was called on; ours never does
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug"))
    for text in (str(failure.value), str(unreachable.value), ours):
        assert TOKEN not in text


def test_a_webhook_that_hangs_times_out(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(1.5)
        return Response("{}", content_type="application/json")
    httpserver.expect_request("/slow").respond_with_handler(slow)
    started = time.monotonic()
    with pytest.raises(AlertPostError, match="desk"):
        Webhook("desk", httpserver.url_for("/slow"), policy=FAST, sleep=lambda s: None).post({})
    assert time.monotonic() - started < 10


def test_dingtalk_posts_are_signed_with_the_secret(robot) -> None:
    handler, url = robot
    Webhook("desk", url, signing_secret="SEC-abc", policy=FAST).post({"msgtype": "markdown"})
    query = handler.queries[0]
    expected = base64.b64encode(hmac.new(b"SEC-abc", f"{query['timestamp']}\nSEC-abc".encode(), hashlib.sha256).digest())
    assert unquote_plus(query["sign"]) == expected.decode() or query["sign"] == expected.decode()
    assert abs(int(query["timestamp"]) / 1000 - time.time()) < 60


def test_deliver_posts_each_message_and_skips_an_alert_without_its_url(robot, tmp_path: Path, caplog) -> None:
    handler, url = robot
    (tmp_path / "hook").write_text(url + "\n")
    rules = [AlertSettings(name="desk", url_env="DESK_HOOK", format="wecom"), AlertSettings(name="lost", url_env="NOT_SET")]
    items = [{"source": "hd", "ticket_id": "T1", "engineer": "ann", "metric": "resolution", "policy": None, "due_at": None}]
    to_post = [Message("desk", "breached", items, {"msgtype": "markdown", "markdown": {"content": "x"}}),
               Message("lost", "breached", items, {})]
    env = {"DESK_HOOK_FILE": str(tmp_path / "hook")}
    assert [rule.name for rule in enabled(rules, env)] == ["desk"]
    outcome = deliver(rules, to_post, env=env)
    assert (outcome.sent, outcome.failed) == (1, 0)
    assert handler.bodies == [{"msgtype": "markdown", "markdown": {"content": "x"}}]
    assert outcome.posted_items == [{"alert": "desk", "kind": "breached", "source": "hd", "ticket_id": "T1",
                                     "metric": "resolution"}]
    assert "alert lost is disabled" in caplog.text and "NOT_SET" in caplog.text
