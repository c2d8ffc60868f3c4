"""The gateway's hot path as uvicorn's HTTP protocol with a shortcut (`--http gateway.fast:GatewayProtocol`).

A proxied request whose bearer token this process has already verified, with a plain body, is
forwarded from the parser's callbacks: no ASGI scope, task, middleware or per-header checks, and
the upstream's answer is written back from the upstream parser's callback. In `make bench` the
ASGI path cost about 0.28 ms of gateway CPU per proxied request.

Everything else takes uvicorn's ASGI path unchanged, through the same `Proxy`: the first request
with a new token (it verifies and caches it), public routes, browsers (CORS), streams, HEAD,
`Expect: 100-continue`, chunked or oversized bodies, a rate-limited caller (answered 429 there),
pipelined requests, the gateway's own routes, and every request when uvicorn runs with
`--limit-concurrency` or `--root-path`. Both paths send the same headers upstream and
answer with the same problems.
"""

from __future__ import annotations

import time
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gateway.app import Gateway
from gateway.proxy import (
    HOP_BY_HOP,
    RESPONSE_DROP_BYTES,
    Proxy,
    log,
    metric_children,
    problem_message,
    upstream_problem,
)
from gateway.upstream import Result, UpstreamPool
from shared.auth import Principal
from shared.middleware import new_request_id, valid_request_id


class _NoEvent:
    def set(self) -> None:
        """uvicorn sets its cycle's event on disconnect; nothing waits on a fast request."""


class _FastCycle:
    """What uvicorn's protocol reads of a request in flight (`response_complete`, `keep_alive`...)."""

    __slots__ = ("body", "disconnected", "keep_alive", "message_event", "method", "path", "pool", "request_id",
                 "response_complete", "service", "started", "target", "upstream_headers")
    method: str
    path: bytes
    pool: UpstreamPool
    request_id: bytes
    service: str
    target: str
    upstream_headers: list[tuple[bytes, bytes]]

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive
        self.response_complete = False
        self.disconnected = False
        self.message_event = _NoEvent()
        self.body = bytearray()
        self.started = time.perf_counter()


def find_gateway(app: Any) -> tuple[Gateway | None, ProxyHeadersMiddleware | None]:
    """The Gateway under uvicorn's and our own ASGI wrappers, and uvicorn's proxy-headers layer if on."""
    proxy_headers = None
    for _ in range(10):
        if isinstance(app, ProxyHeadersMiddleware):
            proxy_headers = app
        if isinstance(app, Gateway):
            return app, proxy_headers
        app = getattr(app, "app", None)
    return None, proxy_headers


class GatewayProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with proxied requests of known callers forwarded directly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gateway, self.proxy_headers = find_gateway(self.app)

    def on_message_begin(self) -> None:
        # The ASGI scope is built only when the request takes the ASGI path (see _to_asgi).
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def on_headers_complete(self) -> None:
        cycle = self._fast_cycle() if self.gateway is not None else None
        if cycle is None:
            self._to_asgi()
            return
        self.cycle = cycle  # type: ignore[assignment]

    def _to_asgi(self) -> None:
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers
        super().on_headers_complete()

    def _fast_cycle(self) -> _FastCycle | None:
        """A cycle for the shortcut, or None when anything about the request needs the ASGI path."""
        current = self.cycle
        if (current is not None and not current.response_complete) or self.pipeline or self.expect_100_continue:
            return None
        if self.limit_concurrency is not None or self.root_path:  # uvicorn's own handling of those options
            return None
        parser = self.parser
        method = parser.get_method()
        if method == b"HEAD" or parser.should_upgrade():
            return None
        path, _, query = self.url.partition(b"?")
        if b"%" in path:  # routing needs the decoded path; the query is forwarded as it came
            return None
        target = Proxy.route(path.decode("latin-1"))
        if target is None:
            return None
        assert self.gateway is not None
        proxy = self.gateway.proxy
        principal: Principal | None = None
        request_id = forwarded_for = forwarded_proto = None
        for name, value in self.headers:
            if name == b"authorization":
                if value[:7].lower() != b"bearer ":
                    return None
                principal = proxy.verifier.cached(value[7:].strip().decode("latin-1"))
            elif name == b"content-length":
                if not value.isdigit() or int(value) > proxy.settings.gateway_max_body_bytes:
                    return None
            elif name == b"x-request-id":
                request_id = value
            elif name == b"x-forwarded-for":
                forwarded_for = forwarded_for + b", " + value if forwarded_for else value
            elif name == b"x-forwarded-proto":
                forwarded_proto = value
            elif name in (b"transfer-encoding", b"origin") or (name == b"accept" and b"text/event-stream" in value):
                return None
        if principal is None or proxy.limiter.check(f"sub:{principal.subject}") is not None:
            return None
        cycle = _FastCycle(parser.get_http_version() != "1.0" and parser.should_keep_alive())
        service, upstream_path = target
        cycle.service = service
        cycle.pool = proxy.pools[service]
        cycle.path = path
        cycle.target = upstream_path + ("?" + query.decode("latin-1") if query else "")
        if request_id is None or not valid_request_id(request_id.decode("latin-1")):
            request_id = new_request_id().encode()
        cycle.request_id = request_id
        client, scheme = self._client_and_scheme(forwarded_for, forwarded_proto)
        cycle.upstream_headers = [(k, v) for k, v in self.headers if k not in HOP_BY_HOP] + [
            (b"x-request-id", request_id),
            (b"x-forwarded-for", forwarded_for + b", " + client if forwarded_for else client),
            (b"x-forwarded-proto", scheme),
        ]
        cycle.method = method.decode("ascii")
        return cycle

    def _client_and_scheme(self, forwarded_for: bytes | None, forwarded_proto: bytes | None) -> tuple[bytes, bytes]:
        """The client address and scheme the ASGI path sees once uvicorn's proxy-headers layer ran."""
        client = self.client[0] if self.client else "-"
        scheme: str = self.scheme or "http"
        trusted = self.proxy_headers.trusted_hosts if self.proxy_headers is not None else None
        if trusted is not None and client in trusted:
            if forwarded_proto is not None and forwarded_proto.strip() in (b"http", b"https", b"ws", b"wss"):
                scheme = forwarded_proto.strip().decode()
            if forwarded_for is not None:
                host, _port = trusted.get_trusted_client_address(forwarded_for.decode("latin-1"))
                client = host or client
        return client.encode(), scheme.encode()

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if isinstance(cycle, _FastCycle):
            cycle.body += body
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if not isinstance(cycle, _FastCycle):
            super().on_message_complete()
            return
        pool = cycle.pool
        payload = pool.encode(cycle.method, cycle.target, cycle.upstream_headers, bytes(cycle.body) or None)
        assert self.gateway is not None
        timeout = self.gateway.proxy.settings.gateway_timeout_seconds

        def answered(result: Result | None, exc: BaseException | None) -> None:
            self._answer(cycle, result, exc)

        pool.start(payload, timeout, answered)

    def _answer(self, cycle: _FastCycle, result: Result | None, exc: BaseException | None) -> None:
        if result is not None:
            status, upstream_headers, payload = result
            headers = [h for h in upstream_headers if h[0] not in RESPONSE_DROP_BYTES]
        else:
            assert exc is not None
            problem = upstream_problem(cycle.service, exc)
            status = problem.status
            accept_language = next((v.decode("latin-1") for k, v in cycle.upstream_headers
                                    if k == b"accept-language"), None)
            headers, payload = problem_message(cycle.path.decode("latin-1"), cycle.request_id.decode(),
                                               accept_language, problem)
            headers = [h for h in headers if h[0] not in (b"content-length", b"x-request-id")]
        self._write(cycle, status, headers, payload)
        requests, latency = metric_children(cycle.service, status)
        requests.inc()
        elapsed = time.perf_counter() - cycle.started
        latency.observe(elapsed)
        assert self.gateway is not None
        if self.gateway.settings.access_log:
            log.info("proxy", request_id=cycle.request_id.decode(), method=cycle.method,
                     path=cycle.path.decode("latin-1"), status=status, ms=round(elapsed * 1000, 2))

    def _write(self, cycle: _FastCycle, status: int, headers: list[tuple[bytes, bytes]], payload: bytes) -> None:
        cycle.response_complete = True
        if cycle.disconnected or self.transport.is_closing():
            return
        out = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            out += [name, b": ", value, b"\r\n"]
        out += [b"x-request-id: ", cycle.request_id, b"\r\n"]
        for name, value in headers:
            out += [name, b": ", value, b"\r\n"]
        out.append(b"content-length: %d\r\n" % len(payload))
        if not cycle.keep_alive:
            out.append(b"connection: close\r\n")
        out += [b"\r\n", payload]
        self.transport.write(b"".join(out))
        if cycle.keep_alive:
            self.on_response_complete()
        else:
            self.transport.close()
