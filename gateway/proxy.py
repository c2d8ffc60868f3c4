"""The forwarding path: a pure-ASGI reverse proxy on aiohttp's client (one session per process).

For each proxied request, in order: the target is checked (400), the token verified (401), the
caller's rate limit taken (429), the body read (413); then one exchange with the service under one
deadline covering connect, send and answer (504), with problems for upstream faults (502/503).
The service is told that deadline (`X-Request-Timeout-Ms`, shared/middleware.py) and gives up on its
side in time: a request the gateway has answered 504 holds no query or pool connection in the service.

- The target is the caller's still-encoded path, checked in `gateway.targets`.
- A request is sent at most once: aiohttp would re-send a GET, HEAD, OPTIONS, PUT or DELETE once
  when its kept-alive connection drops before the answer (`send_once` stops that), and a request
  that may have reached the service is never sent again; the caller gets a 502.
- A kept-alive connection that received bytes while idle is closed, never reused (see
  `IdleCheckedConnector`).
- Answers up to `BUFFER_LIMIT` bytes are read whole and sent with their length; longer or
  unsized ones are passed on chunk by chunk, still under the deadline. The board's event stream
  (recognised by its route, not by the caller's Accept header) is passed on without a deadline
  once its headers have arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable

import aiohttp
import orjson
import structlog
from aiohttp import ClientRequest, ClientResponse
from aiohttp.connector import Connection
from aiohttp.tracing import Trace
from starlette.types import Receive, Scope, Send
from yarl import URL

from gateway.public_routes import is_public
from gateway.rate_limit import RateLimiter, WebhookLimits
from gateway.targets import upstream_target
from shared.auth import Principal, TokenVerifier
from shared.middleware import DEADLINE_HEADER
from shared.problems import PROBLEM_JSON, ProblemError, problem_body
from shared.settings import Settings

EVENT_STREAM_ROUTE = re.compile(rb"/api/queue/v1/offices/[^/]+/board/stream/?")
WEBHOOK_PATH = re.compile(r"/api/postal/v1/partners/([^/]+)/events/?")


# Never forwarded as the caller sent them: hop-by-hop headers (RFC 9110 7.6.1), the framing
# (aiohttp writes its own), the host, and what the gateway itself states about the request.
REQUEST_DROP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"proxy-connection",
    b"te", b"trailer", b"transfer-encoding", b"upgrade", b"host", b"content-length", b"expect",
    b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-real-ip",
    b"x-request-id", DEADLINE_HEADER.lower().encode(),
})
RESPONSE_DROP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding",
    b"upgrade", b"content-length", b"server", b"date", b"x-request-id",
})
NO_BODY_STATUSES = frozenset({204, 304})

BUFFER_LIMIT = 1024 * 1024  # answers up to this size are read whole; longer ones are streamed
IDLE_SECONDS = 4.0  # below uvicorn's default keep-alive (5 s): the service never closes a connection we pick
STREAM_CHUNK = 64 * 1024
log = structlog.get_logger("gateway")


class IdleCheckedConnector(aiohttp.TCPConnector):
    """aiohttp's connector, but a pooled connection that received anything while idle is closed.

    aiohttp parses bytes that arrive on an idle kept-alive connection and queues them as the
    answer to the next request sent on it (aio-libs/aiohttp#13656): one caller would receive an
    answer meant for nobody, or for someone else. Such a connection reports `should_close`.
    """

    async def connect(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109
    ) -> Connection:
        while True:
            conn = await super().connect(req, traces, timeout)
            protocol = conn.protocol
            if protocol is None or not protocol.should_close:
                return conn
            conn.close()


class AnswerCut(Exception):
    """The service failed while its answer was being passed on: the caller's connection is cut short."""


class UpstreamDropped(aiohttp.ClientError):
    """The service closed the connection before answering a request that must not be re-sent."""


async def send_once(req: ClientRequest, handler: aiohttp.ClientHandlerType) -> ClientResponse:
    """Client middleware: a connection dropped before the answer is an error, never a re-send
    (aiohttp re-sends only on these two errors and stops at any other `ClientError`)."""
    try:
        return await handler(req)
    except aiohttp.ClientConnectorError:
        raise  # not connected: nothing was sent, and aiohttp does not retry it either
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise UpstreamDropped(str(exc)) from exc



def problem_message(path: str, request_id: str, accept_language: str | None,
                    exc: ProblemError) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of a problem the gateway answers itself."""
    body = orjson.dumps(problem_body(
        exc.status, exc.code, exc.detail, instance=path, request_id=request_id,
        accept_language=accept_language, title=exc.title, errors=exc.errors, extra=exc.extra,
    ))
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", b"%d" % len(body)),
               (b"x-request-id", request_id.encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (exc.headers or {}).items()]
    return headers, body


async def send_problem(send: Send, scope: Scope, request_id: str, exc: ProblemError) -> None:
    accept_language = None
    for name, value in scope["headers"]:
        if name == b"accept-language":
            accept_language = value.decode("latin-1")
    headers, body = problem_message(scope["path"], request_id, accept_language, exc)
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def upstream_problem(service: str, exc: BaseException) -> ProblemError:
    """503 when the service cannot be reached, 504 when it is too slow, 502 for a broken answer."""
    if isinstance(exc, TimeoutError):
        return ProblemError(504, "upstream_timeout",
                            f"Dịch vụ {service} phản hồi quá lâu / Service '{service}' timed out")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ProblemError(503, "upstream_unavailable",
                            f"Dịch vụ {service} chưa sẵn sàng / Service '{service}' is unavailable",
                            headers={"Retry-After": "2"})
    return ProblemError(502, "bad_gateway",
                        f"Phản hồi lỗi từ dịch vụ {service} / Bad response from '{service}'")


def _too_large(limit: int) -> ProblemError:
    return ProblemError(413, "payload_too_large",
                        f"Nội dung vượt quá {limit} byte / Body larger than {limit} bytes")


def _header_text(value: bytes) -> str:
    """aiohttp writes header values as UTF-8: decode so that the bytes on the wire stay the caller's."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


class Proxy:
    """Authenticates, rate-limits and forwards one request; answers the status it sent."""

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
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_limit_storage)
        self.webhook_limits = WebhookLimits(
            self.limiter, RateLimiter(settings.webhook_rate_limit, settings.rate_limit_storage))
        deadline = settings.gateway_timeout_seconds
        self.deadline = deadline
        self.deadline_header = (DEADLINE_HEADER, str(round(deadline * 1000)))  # the service's time to answer
        self.timeout = aiohttp.ClientTimeout(total=deadline)
        self.stream_timeout = aiohttp.ClientTimeout(total=None, connect=deadline)

    async def start(self) -> None:
        connector = IdleCheckedConnector(limit=0, limit_per_host=0, keepalive_timeout=IDLE_SECONDS,
                                         ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=self.timeout, trust_env=False, middlewares=(send_once,),
        )

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send, target: tuple[str, bytes],
                       request_id: str) -> int:
        try:
            return await self._forward(scope, receive, send, target, request_id)
        except ProblemError as exc:
            await send_problem(send, scope, request_id, exc)
            return exc.status
        except AnswerCut:
            log.warning("answer_cut", request_id=request_id, service=target[0], path=scope["path"])
            raise
        except Exception:
            log.exception("proxy_error", request_id=request_id, service=target[0], path=scope["path"])
            await send_problem(send, scope, request_id, ProblemError(
                500, "internal_error", "Đã có lỗi, vui lòng thử lại / Something went wrong; please retry."))
            return 500

    async def _authenticate(self, method: str, path: str, authorization: bytes | None) -> Principal | None:
        if authorization is None:
            if is_public(method, path):
                return None
            raise ProblemError(401, "unauthorized",
                               "Cần đăng nhập: gửi 'Authorization: Bearer <token>' / "
                               "Authentication required: send 'Authorization: Bearer <token>'",
                               headers={"WWW-Authenticate": 'Bearer realm="mot-cua"'})
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ProblemError(401, "invalid_token",
                               "Chỉ chấp nhận Bearer token / Only Bearer tokens are accepted",
                               headers={"WWW-Authenticate": 'Bearer realm="mot-cua"'})
        return self.verifier.cached(token) or await self.verifier.verify(token)

    def _take_rate(self, webhook: re.Match[str] | None, principal: Principal | None, scope: Scope) -> None:
        if webhook is not None:  # partner deliveries: the sender's address first, then the partner's budget
            wait = self.webhook_limits.before(webhook.group(1), client_host(scope))
        elif principal is not None:
            wait = self.limiter.check(f"sub:{principal.subject}")
        else:
            wait = self.limiter.check(f"ip:{client_host(scope)}")
        if wait is not None:
            raise ProblemError(429, "rate_limited",
                               f"Quá nhiều yêu cầu, thử lại sau {wait} giây / "
                               f"Too many requests; retry in {wait} s",
                               headers={"Retry-After": str(wait)})

    async def _forward(self, scope: Scope, receive: Receive, send: Send, target: tuple[str, bytes],
                       request_id: str) -> int:
        service, upstream_path = target
        upstream_url = self.upstreams[service] + upstream_target(upstream_path, scope.get("query_string", b""))
        method: str = scope["method"]
        authorization = declared_length = connection = None
        headers: list[tuple[str, str]] = []
        for name, value in scope["headers"]:
            if name in REQUEST_DROP:
                if name == b"content-length":
                    declared_length = value
                elif name == b"connection":
                    connection = value
                continue
            if name == b"authorization":
                authorization = value
            headers.append((name.decode("latin-1"), _header_text(value)))
        if connection is not None:
            headers = without_connection_options(headers, connection)
        headers += [("x-request-id", request_id), ("x-forwarded-for", client_host(scope)),
                    ("x-forwarded-proto", scope.get("scheme", "http")), self.deadline_header]
        path: str = scope["path"]
        principal = await self._authenticate(method, path, authorization)
        webhook = WEBHOOK_PATH.fullmatch(path) if principal is None else None  # a partner's delivery
        self._take_rate(webhook, principal, scope)
        body = await self._read_body(receive, declared_length)
        url = URL(upstream_url, encoded=True)
        if service == "queue" and EVENT_STREAM_ROUTE.fullmatch(scope.get("raw_path") or b"") is not None:
            return await self._stream(method, url, headers, body, service, request_id, send, receive)
        status = await self._exchange(method, url, headers, body, service, request_id, send)
        if webhook is not None:
            self.webhook_limits.after(webhook.group(1), client_host(scope), status)
        return status

    async def _exchange(self, method: str, url: URL, headers: list[tuple[str, str]], body: bytes | None,
                        service: str, request_id: str, send: Send) -> int:
        assert self.session is not None
        started = False
        try:
            async with self.session.request(
                method, url, headers=headers, data=body, allow_redirects=False,
            ) as resp:
                status = resp.status
                out = answer_headers(resp.raw_headers, request_id)
                length = resp.content_length
                if method == "HEAD" or status in NO_BODY_STATUSES or status < 200:
                    if length is not None and method == "HEAD":
                        out.append((b"content-length", b"%d" % length))
                    started = True
                    await send({"type": "http.response.start", "status": status, "headers": out})
                    await send({"type": "http.response.body", "body": b""})
                elif length is not None and length <= BUFFER_LIMIT:
                    payload = await resp.read()
                    out.append((b"content-length", b"%d" % len(payload)))
                    started = True
                    await send({"type": "http.response.start", "status": status, "headers": out})
                    await send({"type": "http.response.body", "body": payload})
                else:
                    if length is not None:
                        out.append((b"content-length", b"%d" % length))
                    started = True
                    await send({"type": "http.response.start", "status": status, "headers": out})
                    async for chunk in resp.content.iter_chunked(STREAM_CHUNK):
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b""})
                return status
        except (TimeoutError, aiohttp.ClientError) as exc:
            if started:  # the answer is under way: it can only be cut short, never completed
                raise AnswerCut(service) from exc
            raise upstream_problem(service, exc) from exc

    async def _stream(self, method: str, url: URL, headers: list[tuple[str, str]], body: bytes | None,
                      service: str, request_id: str, send: Send, receive: Receive) -> int:
        """An event stream: the deadline covers connect, send and the answer's headers, not the events."""
        assert self.session is not None
        try:
            async with asyncio.timeout(self.deadline):
                resp = await self.session.request(
                    method, url, headers=headers, data=body, allow_redirects=False,
                    timeout=self.stream_timeout)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise upstream_problem(service, exc) from exc
        try:
            out = answer_headers(resp.raw_headers, request_id)
            await send({"type": "http.response.start", "status": resp.status, "headers": out})

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
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(OSError, RuntimeError):
                await send({"type": "http.response.body", "body": b""})
            return resp.status
        finally:
            resp.close()  # a stream is never finished: its connection is closed, not pooled

    async def _read_body(self, receive: Receive, declared_length: bytes | None) -> bytes | None:
        limit = self.settings.gateway_max_body_bytes
        if declared_length is not None:
            if not declared_length.isdigit():
                raise ProblemError(400, "bad_request", "Content-Length không hợp lệ / Bad Content-Length")
            if int(declared_length) > limit:
                raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ProblemError(400, "bad_request", "Kết nối bị ngắt / Client disconnected")
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if not chunks:
            return None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def client_host(scope: Scope) -> str:
    """The caller's address as the server resolved it (uvicorn applies trusted proxies' X-Forwarded-For)."""
    client = scope.get("client")
    return str(client[0]) if client else "-"


def without_connection_options(headers: list[tuple[str, str]], connection: bytes) -> list[tuple[str, str]]:
    """Headers named in the caller's Connection header are hop-by-hop too."""
    named = {token.strip().lower() for token in connection.decode("latin-1").split(",")}
    return [(k, v) for k, v in headers if k not in named]


def answer_headers(raw: Iterable[tuple[bytes, bytes]], request_id: str) -> list[tuple[bytes, bytes]]:
    out = [(b"x-request-id", request_id.encode())]
    for name, value in raw:
        lowered = name.lower()
        if lowered not in RESPONSE_DROP:
            out.append((lowered, value))
    return out
