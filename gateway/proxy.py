"""The forwarding path: a pure-ASGI reverse proxy on aiohttp (measured faster than httpx)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from typing import Any

import aiohttp
import structlog
from prometheus_client import Counter, Histogram
from starlette.types import Message, Receive, Scope, Send

from gateway.public_routes import is_public
from gateway.rate_limit import RateLimiter
from gateway.upstream import UpstreamError, UpstreamPool
from shared.auth import Principal, TokenVerifier
from shared.middleware import new_request_id, valid_request_id
from shared.problems import PROBLEM_JSON, ProblemError, problem_body
from shared.settings import Settings

WEBHOOK_PATH = re.compile(r"/api/postal/v1/partners/([^/]+)/events")
HOP_BY_HOP = {
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailers", b"transfer-encoding", b"upgrade", b"host", b"content-length",
    b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-request-id",
}
RESPONSE_DROP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server",
                 "date", "x-request-id"}
RESPONSE_DROP_BYTES = {h.encode() for h in RESPONSE_DROP}
SERVICES = ("intake", "workflow", "postal", "queue")


def yarl_host(url: str) -> str:
    from yarl import URL

    return str(URL(url).host)


def yarl_port(url: str) -> int:
    from yarl import URL

    return int(URL(url).port or 80)
PROXIED = Counter("gateway_requests_total", "Proxied requests", ["service", "status"])
PROXY_LATENCY = Histogram("gateway_request_duration_seconds", "Proxied latency", ["service"],
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
log = structlog.get_logger("gateway")
_CHILDREN: dict[tuple[str, int], tuple[Any, Any]] = {}


def metric_children(service: str, status: int) -> tuple[Any, Any]:
    """Label lookups cached: they cost more than the increments themselves."""
    key = (service, status)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = (PROXIED.labels(service, status), PROXY_LATENCY.labels(service))
    return found


class Proxy:
    def __init__(self, settings: Settings, verifier: TokenVerifier) -> None:
        self.settings = settings
        self.verifier = verifier
        self.upstreams = {
            "intake": settings.intake_url.rstrip("/"),
            "workflow": settings.workflow_url.rstrip("/"),
            "postal": settings.postal_url.rstrip("/"),
            "queue": settings.queue_url.rstrip("/"),
        }
        self.session: aiohttp.ClientSession | None = None
        self.pools = {name: UpstreamPool(yarl_host(url), yarl_port(url)) for name, url in self.upstreams.items()}
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_limit_storage)
        self.webhook_limiter = RateLimiter(settings.webhook_rate_limit, settings.rate_limit_storage)

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=60,
                                         ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def stop(self) -> None:
        for pool in self.pools.values():
            pool.close()
        if self.session is not None:
            await self.session.close()

    @staticmethod
    def route(path: str) -> tuple[str, str] | None:
        """/api/intake/v1/x -> ("intake", "/v1/x"); /queue/board/1 -> ("queue", "/pages/board/1")."""
        if path.startswith("/api/"):
            svc, _, rest = path[5:].partition("/")
            if svc in SERVICES and (rest == "v1" or rest.startswith("v1/")):
                return svc, "/" + rest
            return None
        if path.startswith("/queue/"):
            return "queue", "/pages/" + path[7:]
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send, target: tuple[str, str]) -> None:
        started = time.perf_counter()
        incoming = None
        client_ip = (scope.get("client") or ("-", 0))[0]
        auth_header = None
        for k, v in scope["headers"]:
            if k == b"x-request-id":
                incoming = v.decode("latin-1")
            elif k == b"authorization":
                auth_header = v.decode("latin-1")
        request_id = incoming if incoming and valid_request_id(incoming) else new_request_id()
        service, upstream_path = target
        status = 500
        try:
            status = await self._forward(scope, receive, send, service, upstream_path,
                                         request_id, client_ip, auth_header)
        except ProblemError as exc:
            status = exc.status
            await send_problem(send, scope, request_id, exc)
        finally:
            requests, latency = metric_children(service, status)
            requests.inc()
            latency.observe(time.perf_counter() - started)
            if self.settings.access_log:
                log.info("proxy", request_id=request_id, method=scope["method"],
                         path=scope["path"], status=status,
                         ms=round((time.perf_counter() - started) * 1000, 2))

    async def _authenticate(self, method: str, path: str, auth_header: str | None) -> Principal | None:
        if auth_header is None:
            if is_public(method, path):
                return None
            raise ProblemError(401, "unauthorized",
                               "Cần đăng nhập: gửi 'Authorization: Bearer <token>' / "
                               "Authentication required: send 'Authorization: Bearer <token>'",
                               headers={"WWW-Authenticate": 'Bearer realm="mot-cua"'})
        scheme, _, token = auth_header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ProblemError(401, "invalid_token",
                               "Chỉ chấp nhận Bearer token / Only Bearer tokens are accepted",
                               headers={"WWW-Authenticate": 'Bearer realm="mot-cua"'})
        return await self.verifier.verify(token.strip())

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, service: str, upstream_path: str,
        request_id: str, client_ip: str, auth_header: str | None,
    ) -> int:
        method = scope["method"]
        principal = await self._authenticate(method, scope["path"], auth_header)
        webhook = WEBHOOK_PATH.fullmatch(scope["path"]) if principal is None else None
        if webhook is not None:  # signed partner deliveries: a partner's own budget, not its proxy IP's
            wait = self.webhook_limiter.check(f"partner:{webhook.group(1)}")
        else:
            wait = self.limiter.check(f"sub:{principal.subject}" if principal else f"ip:{client_ip}")
        if wait is not None:
            raise ProblemError(429, "rate_limited",
                               f"Quá nhiều yêu cầu, thử lại sau {wait} giây / "
                               f"Too many requests; retry in {wait} s",
                               headers={"Retry-After": str(wait)})
        chain = ", ".join(v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for")
        forwarded_for = f"{chain}, {client_ip}" if chain else client_ip
        body = await self._read_body(scope, receive)
        streaming = any(k == b"accept" and b"text/event-stream" in v for k, v in scope["headers"])
        if not streaming and method != "HEAD":
            return await self._forward_fast(scope, send, service, upstream_path, request_id,
                                            forwarded_for, body)
        headers: list[tuple[str, str]] = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
            if k not in HOP_BY_HOP
        ]
        headers += [("x-request-id", request_id), ("x-forwarded-for", forwarded_for),
                    ("x-forwarded-proto", scope.get("scheme", "http"))]
        url = self.upstreams[service] + upstream_path
        qs = scope.get("query_string", b"")
        if qs:
            url += "?" + qs.decode("latin-1")
        timeout = aiohttp.ClientTimeout(
            total=None if streaming else self.settings.gateway_timeout_seconds, connect=5,
        )
        assert self.session is not None
        try:
            async with self.session.request(
                method, url, headers=headers, data=body, allow_redirects=False, timeout=timeout,
            ) as resp:
                out_headers = [(b"x-request-id", request_id.encode())]
                out_headers += [
                    (k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in resp.headers.items() if k.lower() not in RESPONSE_DROP
                ]
                if streaming or (resp.content_length is None and resp.headers.get(
                        "content-type", "").startswith("text/event-stream")):
                    await self._stream(resp, send, receive, out_headers)
                    return resp.status
                payload = await resp.read()
                out_headers.append((b"content-length", str(len(payload)).encode()))
                await send({"type": "http.response.start", "status": resp.status,
                            "headers": out_headers})
                await send({"type": "http.response.body", "body": payload})
                return resp.status
        except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as exc:
            raise ProblemError(503, "upstream_unavailable",
                               f"Dịch vụ {service} chưa sẵn sàng / Service '{service}' is unavailable",
                               headers={"Retry-After": "2"}) from exc
        except TimeoutError as exc:
            raise ProblemError(504, "upstream_timeout",
                               f"Dịch vụ {service} phản hồi quá lâu / Service '{service}' timed out") from exc
        except aiohttp.ClientError as exc:
            raise ProblemError(502, "bad_gateway",
                               f"Phản hồi lỗi từ dịch vụ {service} / Bad response from '{service}'") from exc

    async def _forward_fast(
        self, scope: Scope, send: Send, service: str, upstream_path: str, request_id: str,
        forwarded_for: str, body: bytes | None,
    ) -> int:
        headers = [(k, v) for k, v in scope["headers"] if k not in HOP_BY_HOP]
        headers += [(b"x-request-id", request_id.encode()), (b"x-forwarded-for", forwarded_for.encode()),
                    (b"x-forwarded-proto", scope.get("scheme", "http").encode())]
        target = upstream_path
        qs = scope.get("query_string", b"")
        if qs:
            target += "?" + qs.decode("latin-1")
        try:
            status, resp_headers, payload = await self.pools[service].request(
                scope["method"], target, headers, body, self.settings.gateway_timeout_seconds)
        except (ConnectionRefusedError, TimeoutError, UpstreamError) as exc:
            raise upstream_problem(service, exc) from exc
        out = [(b"x-request-id", request_id.encode())]
        out += [(k, v) for k, v in resp_headers if k not in RESPONSE_DROP_BYTES]
        out.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": payload})
        return status

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        limit = self.settings.gateway_max_body_bytes
        for k, v in scope["headers"]:
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError as exc:
                    raise ProblemError(400, "bad_request", "Content-Length không hợp lệ / Bad Content-Length") from exc
                if declared > limit:
                    raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ProblemError(400, "bad_request", "Kết nối bị ngắt / Client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if not chunks:
            return None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _stream(self, resp: aiohttp.ClientResponse, send: Send, receive: Receive,
                      headers: list[tuple[bytes, bytes]]) -> None:
        """Server-sent events and large bodies: pass chunks on as they come; stop on disconnect."""
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})

        async def pump() -> None:
            async for chunk in resp.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        tasks = [asyncio.create_task(pump()), asyncio.create_task(watch())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
        with contextlib.suppress(OSError, RuntimeError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def upstream_problem(service: str, exc: BaseException) -> ProblemError:
    """503 when the service cannot be reached, 504 when it is too slow, 502 for a broken answer."""
    if isinstance(exc, ConnectionRefusedError):
        return ProblemError(503, "upstream_unavailable",
                            f"Dịch vụ {service} chưa sẵn sàng / Service '{service}' is unavailable",
                            headers={"Retry-After": "2"})
    if isinstance(exc, TimeoutError):
        return ProblemError(504, "upstream_timeout",
                            f"Dịch vụ {service} phản hồi quá lâu / Service '{service}' timed out")
    return ProblemError(502, "bad_gateway",
                        f"Phản hồi lỗi từ dịch vụ {service} / Bad response from '{service}'")


def _too_large(limit: int) -> ProblemError:
    return ProblemError(413, "payload_too_large",
                        f"Nội dung vượt quá {limit} byte / Body larger than {limit} bytes")


def problem_message(scope_path: str, request_id: str, accept_language: str | None,
                    exc: ProblemError) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of a problem answered by the gateway itself (ASGI path and fast path)."""
    body: dict[str, Any] = problem_body(
        exc.status, exc.code, exc.detail, instance=scope_path, request_id=request_id,
        accept_language=accept_language, title=exc.title, errors=exc.errors, extra=exc.extra,
    )
    raw = json.dumps(body, ensure_ascii=False).encode()
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(raw)).encode()),
               (b"x-request-id", request_id.encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]
    return headers, raw


async def send_problem(send: Send, scope: Scope, request_id: str, exc: ProblemError) -> None:
    accept_language = None
    for k, v in scope["headers"]:
        if k == b"accept-language":
            accept_language = v.decode("latin-1")
    headers, raw = problem_message(scope["path"], request_id, accept_language, exc)
    message: Message = {"type": "http.response.start", "status": exc.status, "headers": headers}
    await send(message)
    await send({"type": "http.response.body", "body": raw})
