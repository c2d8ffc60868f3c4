"""Pure-ASGI middleware: request id in and out, access log, Prometheus metrics."""

from __future__ import annotations

import itertools
import os
import re
import time
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency", ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
access_log = structlog.get_logger("access")


_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count(1)


def new_request_id() -> str:
    """Unique, not secret: a random prefix per process and a counter (cheaper than 16 random bytes each)."""
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")


def valid_request_id(value: str | None) -> bool:
    """A caller's id is kept when it is 1-128 visible ASCII characters (it is echoed in headers and logs)."""
    return value is not None and _REQUEST_ID.fullmatch(value) is not None


class RequestContextMiddleware:
    """Binds X-Request-ID (taken from the caller or made) to logs, state and the response."""

    def __init__(self, app: ASGIApp, service: str, access_log_enabled: bool = True) -> None:
        self.app = app
        self.service = service
        self.access_log_enabled = access_log_enabled
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _metrics(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """Label lookups cached per route and status: they cost more than the increments."""
        key = (method, route, status)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = (REQUESTS.labels(self.service, method, route, status),
                                           LATENCY.labels(self.service, method, route))
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and valid_request_id(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500}
        rid = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            requests, latency = self._metrics(method, route_path, status_holder["status"])
            requests.inc()
            latency.observe(elapsed)
            if self.access_log_enabled:
                access_log.info(
                    "request", method=method, path=scope.get("path"),
                    status=status_holder["status"], ms=round(elapsed * 1000, 2),
                )
