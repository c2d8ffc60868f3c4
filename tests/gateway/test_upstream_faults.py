"""One deadline for connect, send and answer; a request sent at most once; capped buffering;
the board's event stream passed on as it comes (recognised by route)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from scripts.stack import free_port
from tests.conftest import login
from tests.gateway.conftest import Running, gateway_before
from tests.gateway.fakes import fake_upstream, unaccepting_port

pytestmark = pytest.mark.e2e

DEADLINE = 0.5
MARGIN = 0.4


def assert_problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code and r.json()["request_id"] == r.headers["x-request-id"]


async def timed(c: httpx.AsyncClient, method: str, path: str, **kw: object) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    r = await c.request(method, path, **kw)  # type: ignore[arg-type]
    return r, time.monotonic() - started


async def test_an_upstream_that_never_answers_is_a_504_at_the_deadline(gateway: Running) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        r, took = await timed(c, "GET", "/api/intake/v1/silent", headers=gateway.auth)
        assert_problem(r, 504, "upstream_timeout")
        assert DEADLINE - 0.05 <= took < DEADLINE + MARGIN
        # headers then half the body, then silence: the deadline covers the answer too
        r, took = await timed(c, "GET", "/api/intake/v1/stall", headers=gateway.auth)
        assert_problem(r, 504, "upstream_timeout")
        assert took < DEADLINE + MARGIN
        # asking for an event stream does not lift the deadline on a route that is not one
        r, took = await timed(c, "GET", "/api/intake/v1/silent",
                              headers={**gateway.auth, "Accept": "text/event-stream"})
        assert_problem(r, 504, "upstream_timeout")
        assert took < DEADLINE + MARGIN


@pytest.fixture
async def hanging_gateway(database_url: str) -> AsyncIterator[tuple[str, str]]:
    """intake's and queue's ports never accept a connection; postal's port is closed."""
    async with fake_upstream() as up, unaccepting_port() as port, gateway_before(
            database_url, up.url, intake_url=f"http://127.0.0.1:{port}", queue_url=f"http://127.0.0.1:{port}",
            postal_url=f"http://127.0.0.1:{free_port()}") as url:
        yield url, await login(url, "congdan", "demo-citizen")


async def test_an_upstream_that_never_accepts_is_a_504_and_a_closed_one_a_503(
        hanging_gateway: tuple[str, str]) -> None:
    url, token = hanging_gateway
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
        r, took = await timed(c, "POST", "/api/intake/v1/dossiers", content=b"{}")
        assert_problem(r, 504, "upstream_timeout")
        assert DEADLINE - 0.05 <= took < DEADLINE + MARGIN
        r = await c.get("/api/postal/v1/ping")
        assert_problem(r, 503, "upstream_unavailable")
        assert r.headers["retry-after"] == "2"
        # the board's stream has no deadline for its events, but one for reaching the service
        r, took = await timed(c, "GET", "/api/queue/v1/offices/PBD/board/stream")
        assert_problem(r, 504, "upstream_timeout")
        assert DEADLINE - 0.05 <= took < DEADLINE + MARGIN


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "GET"])
async def test_a_request_is_never_sent_twice_when_the_upstream_drops_it(gateway: Running, method: str) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.auth) as c:
        assert (await c.get("/api/intake/v1/ping")).status_code == 200  # a pooled connection to reuse
        r = await c.request(method, "/api/intake/v1/close", content=b'{"so_ban": 1}')
        assert_problem(r, 502, "bad_gateway")
        r = await c.request(method, "/api/intake/v1/close", content=b'{"so_ban": 1}')  # on a new connection
        assert_problem(r, 502, "bad_gateway")
    assert [seen.target for seen in gateway.upstream.seen] == ["/v1/ping", "/v1/close", "/v1/close"]
    assert gateway.upstream.seen[1].connection == gateway.upstream.seen[0].connection


async def test_small_answers_are_read_whole_and_large_ones_streamed(gateway: Running) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.auth) as c:
        r = await c.get("/api/intake/v1/big/1000")
        assert r.status_code == 200 and r.content == b"x" * 1000 and r.headers["content-length"] == "1000"
        size = 3 * 1024 * 1024  # over the gateway's buffer: passed on in chunks, length kept
        r = await c.get(f"/api/intake/v1/big/{size}")
        assert r.status_code == 200 and len(r.content) == size and r.headers["content-length"] == str(size)


async def test_a_large_answer_is_passed_on_before_it_is_complete(database_url: str) -> None:
    """The upstream sends 1.5 MiB of a 3 MiB answer and stalls: the caller already has the first
    part, and the deadline then cuts the answer (its connection ends short, never 'complete')."""
    async with fake_upstream() as up, gateway_before(database_url, up.url, gateway_timeout_seconds=1.5) as url:
        token = await login(url, "congdan", "demo-citizen")
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c, c.stream(
                "GET", "/api/intake/v1/bigstall") as r:
            assert r.status_code == 200 and r.headers["content-length"] == str(3 * 1024 * 1024)
            got = 0
            with pytest.raises(httpx.RemoteProtocolError):
                async for chunk in r.aiter_raw():
                    got += len(chunk)
            assert got == 1536 * 1024


async def test_the_board_stream_is_recognised_by_route_and_has_no_answer_deadline(gateway: Running) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as c:  # public route, no Accept header
        started = time.monotonic()
        async with c.stream("GET", "/api/queue/v1/offices/PBD/board/stream") as r:
            assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
            events = []
            async for line in r.aiter_lines():
                if line.startswith("id: "):
                    events.append(int(line[4:]))
                if time.monotonic() - started > DEADLINE * 3:
                    break
    assert len(events) >= 10 and events == list(range(len(events)))
    await asyncio.sleep(0.3)  # the caller left: the gateway closes the upstream stream too
    assert gateway.upstream.writers[-1].is_closing()
