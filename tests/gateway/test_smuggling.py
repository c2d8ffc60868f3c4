"""Request smuggling and response desync through the real gateway (uvicorn, aiohttp's client) in
front of an upstream that records the bytes it gets and can answer what nobody asked for."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.gateway.conftest import Running
from tests.gateway.fakes import raw_get

pytestmark = pytest.mark.e2e


def auth_header(gateway: Running) -> bytes:
    return b"Authorization: Bearer " + gateway.token.encode() + b"\r\n"


@pytest.mark.parametrize("target", [
    b"/api/intake/v1/ping%0d%0aGET%20/v1/dossiers/H29-1%20HTTP/1.1%0d%0aHost:%20x%0d%0a%0d%0a",
    b"/api/intake/v1/ping%0D%0AX-Forwarded-For:%201.2.3.4",
    b"/api/intake/v1/ping%00",
    b"/api/intake/v1/ping%09x",
    b"/api/intake/v1/ping?q=%0d%0aX-Injected:%201",
    b"/api/intake/v1/procedures/x%0a",  # a public route: refused before any token is asked for
])
async def test_encoded_control_characters_are_refused_with_a_problem(gateway: Running, target: bytes) -> None:
    answer = await raw_get(gateway.url, target, auth_header(gateway))
    assert answer.status == 400, answer.head
    assert answer.header(b"content-type") == b"application/problem+json"
    problem = json.loads(answer.body)
    assert problem["code"] == "bad_request" and problem["request_id"].encode() == answer.header(b"x-request-id")
    assert gateway.upstream.seen == []


@pytest.mark.parametrize("target", [
    b"/api/intake/v1/ping\r\nGET /v1/dossiers/H29-1",
    b"/api/intake/v1/a b",
    b"/api/intake/v1/a\tb",
    b"/api/intake/v1/a\x7fb",
    "/api/intake/v1/procedures/Đ".encode(),
])
async def test_raw_control_characters_spaces_and_bytes_beyond_ascii_never_reach_a_service(
        gateway: Running, target: bytes) -> None:
    """uvicorn's parser refuses these lines itself (400) before the gateway sees a request."""
    answer = await raw_get(gateway.url, target, auth_header(gateway))
    assert answer.status == 400
    assert gateway.upstream.seen == []


async def test_a_fragment_is_never_forwarded(gateway: Running) -> None:
    answer = await raw_get(gateway.url, b"/api/intake/v1/ping?q=1#x%0d%0aEvil: 1", auth_header(gateway))
    assert answer.status in (200, 400)
    assert all("#" not in seen.target and "Evil" not in seen.target for seen in gateway.upstream.seen)


async def test_an_encoded_question_mark_stays_in_the_path(gateway: Running) -> None:
    answer = await raw_get(gateway.url, b"/api/intake/v1/procedures%3Fadmin=1", auth_header(gateway))
    assert answer.status == 200 and json.loads(answer.body)["target"] == "/v1/procedures%3Fadmin=1"
    answer = await raw_get(gateway.url, b"/api/intake/v1/a%3Fb?c=d", auth_header(gateway))
    assert json.loads(answer.body)["target"] == "/v1/a%3Fb?c=d"
    assert [seen.target for seen in gateway.upstream.seen] == ["/v1/procedures%3Fadmin=1", "/v1/a%3Fb?c=d"]


async def test_non_ascii_paths_pass_percent_encoded_and_the_service_answers(gateway: Running) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        r = await c.get("/api/intake/v1/status/404/%C4%90")  # no token: 401, never a 500
        assert r.status_code == 401
        r = await c.get("/api/intake/v1/procedures/%C4%90")  # public route
        assert r.status_code == 200 and r.json()["target"] == "/v1/procedures/%C4%90"
        r = await c.get("/api/intake/v1/status/404/%C4%90%E1%BB%85", headers=gateway.auth)
        assert r.status_code == 404 and r.json()["target"] == "/v1/status/404/%C4%90%E1%BB%85"
        r = await c.get("/api/intake/v1/x", params={"q": "Nguyễn Văn An"}, headers=gateway.auth)
        assert r.json()["target"] == "/v1/x?q=Nguy%E1%BB%85n+V%C4%83n+An"


async def test_an_encoded_prefix_is_not_a_route(gateway: Running) -> None:
    answer = await raw_get(gateway.url, b"/api/%69ntake/v1/ping", auth_header(gateway))
    assert answer.status == 404 and json.loads(answer.body)["code"] == "not_found"
    assert gateway.upstream.seen == []


@pytest.mark.parametrize("path", ["/api/intake/v1/unsolicited", "/api/intake/v1/pipelined"])
async def test_an_answer_nobody_asked_for_never_reaches_the_next_caller(gateway: Running, path: str) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        first = await c.get(path, headers=gateway.auth)
        assert first.status_code == 200 and first.json() == {"mine": True}
        await asyncio.sleep(0.2)  # the unsolicited answer lands on the idle pooled connection
        for _ in range(3):
            nxt = await c.get("/api/intake/v1/ping", headers=gateway.auth)
            assert nxt.status_code == 200 and nxt.json()["target"] == "/v1/ping", nxt.text
    poisoned = gateway.upstream.seen[0].connection
    assert all(seen.connection != poisoned for seen in gateway.upstream.seen[1:])
    assert [seen.target for seen in gateway.upstream.seen] == [path.removeprefix("/api/intake")] + ["/v1/ping"] * 3


async def test_a_clean_connection_is_kept_alive(gateway: Running) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        for _ in range(5):
            assert (await c.get("/api/intake/v1/ping", headers=gateway.auth)).status_code == 200
    assert {seen.connection for seen in gateway.upstream.seen} == {1}
