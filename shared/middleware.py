"""Pure-ASGI middleware: request id in and out, the request's deadline, access log, Prometheus metrics.

The deadline: a request runs under `asyncio.timeout` of its budget, the service's own cap
(`REQUEST_TIMEOUT_SECONDS`) or less when the caller says how long it waits (`X-Request-Timeout-Ms`, which
the gateway sends with what is left of its own deadline). When it expires before the answer has begun,
the handler is cancelled: asyncpg cancels the running query in PostgreSQL, the unit of work rolls back,
its connection goes back to the pool, and the caller gets 504 problem+json. Once the answer has begun
(an event stream), the deadline no longer applies.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from typing import Any

import orjson
import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.problems import PROBLEM_JSON, problem_body

REQUESTS = Counter("http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency", ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
access_log = structlog.get_logger("access")
log = structlog.get_logger("deadline")

DEADLINE_HEADER = "X-Request-Timeout-Ms"  # how many more milliseconds the caller waits for the answer
_DEADLINE = DEADLINE_HEADER.lower().encode()
DEADLINE_MARGIN = 0.05  # the service gives up this much earlier, so that its own 504 reaches the caller
TIMED_OUT_TITLE = ("Hết thời gian xử lý", "Request timed out")
TIMED_OUT = ("Yêu cầu không xong trong thời hạn, vui lòng thử lại (với cùng Idempotency-Key) / "
             "The request ran out of time; retry it (with the same Idempotency-Key).")


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


def request_budget(caller_ms: str | None, cap: float | None) -> float | None:
    """Seconds the service may spend: the caller's wait (less a margin) when it says one, within `cap`."""
    if caller_ms is None or not caller_ms.isdigit() or len(caller_ms) > 9:  # absent or not a number: ignored
        return cap
    seconds = int(caller_ms) / 1000 - DEADLINE_MARGIN
    return seconds if cap is None else min(seconds, cap)


class RequestContextMiddleware:
    """Binds X-Request-ID (taken from the caller or made) to logs, state and the response; runs the
    request under its deadline."""

    def __init__(self, app: ASGIApp, service: str, access_log_enabled: bool = True,
                 timeout_seconds: float | None = None) -> None:
        """`timeout_seconds`: the cap per request (0: none); by default the app's `settings.request_timeout_seconds`."""
        self.app = app
        self.service = service
        self.access_log_enabled = access_log_enabled
        self._cap = timeout_seconds
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _timeout_cap(self, scope: Scope) -> float | None:
        if self._cap is None:
            settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
            self._cap = float(getattr(settings, "request_timeout_seconds", 0.0) or 0.0)
        return self._cap or None

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
        incoming = caller_ms = None
        for key, value in scope.get("headers", ()):
            if key == b"x-request-id":
                incoming = value.decode("latin-1")
            elif key == _DEADLINE:
                caller_ms = value.decode("latin-1")
        request_id = incoming if incoming and valid_request_id(incoming) else new_request_id()
        budget = request_budget(caller_ms, self._timeout_cap(scope))
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500}
        rid = request_id.encode()
        deadline = asyncio.timeout(budget)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["started"] = True
                if deadline.when() is not None and not deadline.expired():
                    deadline.reschedule(None)  # the answer has begun: the rest (an event stream) has no deadline
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid)]
            await send(message)

        try:
            try:
                async with deadline:
                    await self.app(scope, receive, send_with_id)
            except TimeoutError:
                if not deadline.expired() or status_holder.get("started"):
                    raise
                status_holder["status"] = 504
                log.warning("request_deadline_expired", path=scope.get("path"), budget=budget)
                await send_timed_out(scope, send, request_id)
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


async def send_timed_out(scope: Scope, send: Send, request_id: str) -> None:
    """504 problem+json: the request's deadline passed before its answer began."""
    body = orjson.dumps(problem_body(
        504, "request_timeout", TIMED_OUT, instance=scope.get("path", ""), request_id=request_id,
        accept_language=_header(scope, b"accept-language"), title=TIMED_OUT_TITLE))
    await send({"type": "http.response.start", "status": 504, "headers": [
        (b"content-type", PROBLEM_JSON.encode()), (b"content-length", b"%d" % len(body)),
        (b"retry-after", b"1"), (b"x-request-id", request_id.encode())]})
    await send({"type": "http.response.body", "body": body})
