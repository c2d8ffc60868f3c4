"""The gateway's fast protocol (gateway/fast.py) answers exactly as its ASGI path does.

A real uvicorn server with `GatewayProtocol` runs in the test's loop in front of an echo upstream
that answers with what it received, so the request each path forwards can be compared. The
first request with a new token takes the ASGI path (it verifies the token); the same request
again takes the fast path: a spy on the fast path's answer counts which one ran.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from gateway.app import create_app
from gateway.fast import GatewayProtocol
from scripts.stack import free_port
from shared.settings import Settings
from tests.conftest import login

pytestmark = pytest.mark.e2e


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Upstream that answers with the request it got; /v1/slow is slow, /v1/status/N answers N."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path: str = scope["path"]
    if path == "/v1/slow":
        await asyncio.sleep(3)
    status = int(path.rsplit("/", 1)[1]) if path.startswith("/v1/status/") else 200
    seen = {"method": scope["method"], "path": path, "query": scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]], "body": body.decode()}
    raw = json.dumps(seen).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
        (b"etag", b'"7"'), (b"x-upstream", b"echo")]})
    await send({"type": "http.response.body", "body": raw})


@dataclass
class Running:
    url: str
    fast: list[int] = field(default_factory=list)


async def _serve(app: Any, port: int, **kw: Any) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on", **kw))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            return server, task
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    raise AssertionError("server did not start")


@asynccontextmanager
async def running_gateway(database_url: str, monkeypatch: pytest.MonkeyPatch, **uvicorn_options: Any,
                          ) -> AsyncIterator[Running]:
    """A gateway on GatewayProtocol in front of the echo upstream (postal points at a closed port)."""
    upstream_port, dead_port, port = free_port(), free_port(), free_port()
    upstream, upstream_task = await _serve(echo, upstream_port, http="httptools")
    up = f"http://127.0.0.1:{upstream_port}"
    settings = Settings(database_url=database_url, environment="test", access_log=False,
                        intake_url=up, workflow_url=up, queue_url=up,
                        postal_url=f"http://127.0.0.1:{dead_port}",
                        gateway_timeout_seconds=1.0, gateway_max_body_bytes=1000, rate_limit="40/minute")
    running = Running(f"http://127.0.0.1:{port}")
    original = GatewayProtocol._answer

    def spy(self: GatewayProtocol, cycle: Any, result: Any, exc: Any) -> None:
        running.fast.append(1)
        original(self, cycle, result, exc)

    monkeypatch.setattr(GatewayProtocol, "_answer", spy)
    server, task = await _serve(create_app(settings), port, http=GatewayProtocol, **uvicorn_options)
    try:
        yield running
    finally:
        server.should_exit = upstream.should_exit = True
        await task
        await upstream_task


@pytest.fixture
async def gateway(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    async with running_gateway(database_url, monkeypatch) as running:
        yield running


Send_ = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]


async def both_paths(gw: Running, send: Send_) -> tuple[httpx.Response, httpx.Response]:
    """The same request through the ASGI path (new token) and then the fast path (same token)."""
    token = await login(gw.url, "canbo.phuong", "demo-officer")
    async with httpx.AsyncClient(base_url=gw.url) as c:
        before = len(gw.fast)
        slow = await send(c, token)
        assert len(gw.fast) == before, "a token seen for the first time must take the ASGI path"
        fast = await send(c, token)
        assert len(gw.fast) == before + 1, "the same token again must take the fast path"
    return slow, fast


def _same_response(a: httpx.Response, b: httpx.Response, echoed: bool = False) -> None:
    """Same status, headers and body; an echo differs only by the token it carried."""
    assert a.status_code == b.status_code
    drop = {"date", "content-length"} if echoed else {"date"}
    assert sorted((k, v) for k, v in a.headers.items() if k not in drop) == sorted(
        (k, v) for k, v in b.headers.items() if k not in drop)
    if echoed:
        assert _without_token(a.json()) == _without_token(b.json())
    else:
        assert a.content == b.content


def _without_token(seen: dict[str, Any]) -> dict[str, Any]:
    return {**seen, "headers": sorted((k, v) for k, v in seen["headers"] if k != "authorization")}


async def test_get_and_post_forward_the_same_request_and_answer_the_same(gateway: Running) -> None:
    def get(c: httpx.AsyncClient, token: str) -> Awaitable[httpx.Response]:
        return c.get("/api/intake/v1/dossiers?status=received&q=Nguy%E1%BB%85n", headers={
            "Authorization": f"Bearer {token}", "X-Request-ID": "req-fast-1", "Connection": "keep-alive",
            "Accept-Language": "vi"})

    slow, fast = await both_paths(gateway, get)
    assert fast.status_code == 200 and fast.headers["x-request-id"] == "req-fast-1"
    assert fast.headers["etag"] == '"7"' and fast.headers["x-upstream"] == "echo"
    seen = fast.json()
    assert seen["path"] == "/v1/dossiers" and seen["query"] == "status=received&q=Nguy%E1%BB%85n"
    names = [k for k, _ in seen["headers"]]
    assert "connection" not in names and names.count("x-request-id") == 1
    assert dict(seen["headers"])["x-forwarded-for"] == "127.0.0.1"
    assert dict(seen["headers"])["x-forwarded-proto"] == "http"
    _same_response(slow, fast, echoed=True)

    body = json.dumps({"ho_ten": "Nguyễn Văn An", "so_ban": 2}, ensure_ascii=False).encode()

    def post(c: httpx.AsyncClient, token: str) -> Awaitable[httpx.Response]:
        return c.post("/api/workflow/v1/dossiers/H29-1/actions", content=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json", "If-Match": '"3"',
            "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Request-ID": "req-fast-2"})

    slow, fast = await both_paths(gateway, post)
    for r in (slow, fast):
        seen = r.json()
        assert seen["method"] == "POST" and seen["body"] == body.decode()
        headers = dict(seen["headers"])
        assert headers["if-match"] == '"3"' and headers["content-length"] == str(len(body))
        # uvicorn trusts its loopback peer: the client it names is the one that peer forwarded.
        assert headers["x-forwarded-for"] == "203.0.113.9, 203.0.113.9"
        assert headers["x-forwarded-proto"] == "https"
    _same_response(slow, fast, echoed=True)


async def test_upstream_failures_are_the_same_problems_on_both_paths(gateway: Running) -> None:
    for path, status, code in (("/api/postal/v1/ping", 503, "upstream_unavailable"),
                               ("/api/intake/v1/slow", 504, "upstream_timeout")):
        def get(c: httpx.AsyncClient, token: str, path: str = path, rid: str = f"req-{status}",
                ) -> Awaitable[httpx.Response]:
            return c.get(path, headers={"Authorization": f"Bearer {token}", "Accept-Language": "en",
                                        "X-Request-ID": rid})

        slow, fast = await both_paths(gateway, get)
        _same_response(slow, fast)
        problem = fast.json()
        assert fast.status_code == status and fast.headers["content-type"] == "application/problem+json"
        assert problem["code"] == code and problem["status"] == status
        assert problem["request_id"] == f"req-{status}" and problem["instance"] == path
        assert problem["title"].isascii()  # the English title, as Accept-Language asked
    token = await login(gateway.url, "canbo.phuong", "demo-officer")
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        up = await c.get("/api/intake/v1/status/418", headers={"Authorization": f"Bearer {token}"})
    assert up.status_code == 418  # an upstream's own status passes through


async def test_known_caller_over_the_body_limit_or_the_rate_limit_gets_the_asgi_problems(gateway: Running) -> None:
    token = await login(gateway.url, "canbo.phuong", "demo-officer")
    h = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        assert (await c.get("/api/intake/v1/ping", headers=h)).status_code == 200
        fast = len(gateway.fast)
        big = await c.post("/api/intake/v1/dossiers", content=b"x" * 1001, headers=h)
        assert big.status_code == 413 and big.json()["code"] == "payload_too_large"
        assert len(gateway.fast) == fast
        codes = [(await c.get("/api/intake/v1/ping", headers=h)).status_code for _ in range(45)]
    assert codes.count(200) < 40 and codes[-1] == 429


async def _raw_exchange(url: str, data: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    await writer.drain()
    got = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 2):
            got += chunk
    except TimeoutError:
        pass
    writer.close()
    return got


async def test_pipelined_requests_are_answered_in_order_and_http10_closes(gateway: Running) -> None:
    token = await login(gateway.url, "canbo.phuong", "demo-officer")
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        await c.get("/api/intake/v1/ping", headers={"Authorization": f"Bearer {token}"})

    def request(path: str, version: str = "1.1", extra: str = "") -> bytes:
        return (f"GET {path} HTTP/{version}\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{extra}\r\n").encode()

    got = await _raw_exchange(gateway.url, b"".join(request(f"/api/intake/v1/n{i}") for i in range(3)))
    assert got.count(b"HTTP/1.1 200 OK") == 3
    order = [got.index(f'"path": "/v1/n{i}"'.encode()) for i in range(3)]
    assert order == sorted(order)

    got = await _raw_exchange(gateway.url, request("/api/intake/v1/old", "1.0"))
    head = got.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 200") and b"connection: close" in head


async def test_uvicorn_concurrency_limit_keeps_every_request_on_the_asgi_path(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_gateway(database_url, monkeypatch, limit_concurrency=50) as gw:
        token = await login(gw.url, "canbo.phuong", "demo-officer")
        async with httpx.AsyncClient(base_url=gw.url) as c:
            codes = [(await c.get("/api/intake/v1/ping", headers={"Authorization": f"Bearer {token}"})).status_code
                     for _ in range(3)]
        assert codes == [200, 200, 200] and gw.fast == []
