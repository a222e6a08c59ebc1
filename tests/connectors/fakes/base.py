"""What every fake vendor shares: a real HTTP server, auth, fault injection and a call log."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


@dataclass
class Fault:
    """One injected failure, used once by the first request whose path contains ``path``."""

    kind: str  # "429", "503", "timeout", "malformed", "html", "401", "404"
    path: str = ""
    retry_after: str | None = None
    delay_s: float = 1.0


class FakeVendor:
    """A WSGI handler: checks the Authorization header, injects faults, then routes."""

    def __init__(self, authorization: str) -> None:
        self.authorization = authorization
        self.faults: list[Fault] = []
        self.calls: list[str] = []
        self.base_url = ""
        self.hooks: list[tuple[str, int, Callable[[], None]]] = []

    def on_call(self, path: str, n: int, action: Callable[[], None]) -> None:
        """Run ``action`` just before answering the ``n``-th request whose path contains ``path``."""
        self.hooks.append((path, n, action))

    def fail(self, kind: str, path: str = "", times: int = 1, **kw: Any) -> None:
        """Make the next ``times`` matching requests fail with ``kind``."""
        self.faults += [Fault(kind, path, **kw) for _ in range(times)]

    def __call__(self, request: Request) -> Response:
        self.calls.append(request.full_path)
        for path, n, action in self.hooks:
            if path in request.full_path and self.count(path) == n:
                action()
        fault = self._take_fault(request)
        if fault is not None:
            return self._fault_response(fault)
        if request.headers.get("Authorization") != self.authorization:
            return json_response({"error": {"message": "User Not Authenticated"}}, 401)
        return self.route(request)

    def route(self, request: Request) -> Response:
        raise NotImplementedError

    def _take_fault(self, request: Request) -> Fault | None:
        for i, fault in enumerate(self.faults):
            if fault.path in request.full_path:
                return self.faults.pop(i)
        return None

    def _fault_response(self, fault: Fault) -> Response:
        if fault.kind == "timeout":
            time.sleep(fault.delay_s)
            return json_response({}, 200)
        if fault.kind == "malformed":
            return Response('{"result": [{"number": "INC', status=200, content_type="application/json")
        if fault.kind == "html":
            return Response("<html><body>Instance hibernating</body></html>", 200, content_type="text/html")
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        body = {"error": {"message": f"injected {fault.kind}"}}
        return json_response(body, int(fault.kind), headers)

    def count(self, pattern: str) -> int:
        """How many calls so far had ``pattern`` in their path."""
        return sum(1 for c in self.calls if pattern in c)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {}, content_type="application/json")


@contextmanager
def serve(handler: Callable[[Request], Response]) -> Iterator[str]:
    """Run ``handler`` on a real threaded HTTP server on 127.0.0.1; yield its base URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is noise here
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.expect_request(re.compile(".*")).respond_with_handler(handler)
    server.start()
    try:
        base = server.url_for("/").rstrip("/")
        if isinstance(handler, FakeVendor):
            handler.base_url = base
        yield base
    finally:
        server.clear()
        server.stop()
