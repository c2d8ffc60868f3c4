"""What the gateway forwards and answers: headers, request ids, client address, limits, metrics."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import login
from tests.gateway.conftest import Running, gateway_before
from tests.gateway.fakes import fake_upstream, raw_exchange

pytestmark = pytest.mark.e2e


async def test_headers_forwarded_and_answered(gateway: Running) -> None:
    body = json.dumps({"ho_ten": "Nguyễn Văn An"}, ensure_ascii=False).encode()
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        r = await c.post("/api/workflow/v1/dossiers/H29-1/actions?x=1", content=body, headers=[
            (k.encode(), v.encode()) for k, v in {
                **gateway.auth, "Content-Type": "application/json", "If-Match": '"3"', "X-Request-ID": "req-1",
                "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Real-IP": "10.9.9.9",
                "Forwarded": "for=10.9.9.9", "Connection": "keep-alive, X-Hop", "X-Hop": "secret",
                "X-Note": "Đã nhận"}.items()])
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-1"
    assert r.headers["etag"] == '"7"' and r.headers["x-upstream"] == "fake"
    seen = r.json()
    assert seen["method"] == "POST" and seen["target"] == "/v1/dossiers/H29-1/actions?x=1"
    assert seen["body"].encode("latin-1") == body
    headers = dict(seen["headers"])
    names = [k for k, _ in seen["headers"]]
    assert headers["if-match"] == '"3"' and headers["content-length"] == str(len(body))
    assert headers["content-type"] == "application/json"
    assert headers["x-note"].encode("latin-1").decode() == "Đã nhận"  # the caller's bytes, unchanged
    assert names.count("x-request-id") == 1 and headers["x-request-id"] == "req-1"
    # uvicorn trusts its loopback peer (--forwarded-allow-ips): the client is the one it forwarded
    assert headers["x-forwarded-for"] == "203.0.113.9" and headers["x-forwarded-proto"] == "https"
    for dropped in ("connection", "x-hop", "x-real-ip", "forwarded", "transfer-encoding"):
        assert dropped not in names
    assert headers["host"] == gateway.upstream.url.removeprefix("http://")


async def test_request_ids_are_kept_or_made_and_answered_on_every_route(gateway: Running) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        r = await c.get("/api/intake/v1/ping", headers=[(b"Authorization", f"Bearer {gateway.token}".encode()),
                                                         (b"X-Request-ID", "bad id\u00e9".encode())])
        made = r.headers["x-request-id"]
        assert made.isalnum()
        assert dict(r.json()["headers"])["x-request-id"] == made
        r = await c.get("/healthz", headers={"X-Request-ID": "req-own"})
        assert r.headers["x-request-id"] == "req-own"
        r = await c.get("/api/nosuch/v1/x", headers={"X-Request-ID": "req-404"})
        assert r.status_code == 404 and r.json()["request_id"] == "req-404"
        assert r.headers["x-request-id"] == "req-404"


async def test_head_and_upstream_statuses_pass_through(gateway: Running) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.auth) as c:
        r = await c.head("/api/intake/v1/ping")
        assert r.status_code == 200 and int(r.headers["content-length"]) > 0 and r.content == b""
        assert (await c.get("/api/intake/v1/status/418")).status_code == 418
        r = await c.get("/api/intake/v1/status/204")
        assert r.status_code == 204 and r.content == b""


async def test_browsers_get_cors_and_the_same_forwarding(gateway: Running) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        r = await c.options("/api/intake/v1/dossiers", headers={
            "Origin": "https://app.example.vn", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,idempotency-key"})
        assert r.status_code == 200 and "x-request-id" in r.headers
        assert r.headers["access-control-allow-origin"] in ("*", "https://app.example.vn")
        r = await c.get("/api/intake/v1/ping", headers={**gateway.auth, "Origin": "https://app.example.vn",
                                                         "X-Request-ID": "req-cors"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "req-cors"
        assert "access-control-allow-origin" in r.headers
        assert r.json()["target"] == "/v1/ping"


async def test_refusals_before_forwarding(database_url: str) -> None:
    async with fake_upstream() as up, gateway_before(database_url, up.url, rate_limit="6/minute",
                                                      gateway_max_body_bytes=1000) as url:
        token = await login(url, "congdan", "demo-citizen")
        h = {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
        async with httpx.AsyncClient(base_url=url) as c:
            r = await c.get("/api/intake/v1/dossiers")
            assert r.status_code == 401 and r.json()["code"] == "unauthorized"
            assert r.headers["www-authenticate"].startswith("Bearer")
            r = await c.get("/api/intake/v1/ping", headers={"Authorization": "Basic abc"})
            assert r.status_code == 401 and r.json()["code"] == "invalid_token"
            r = await c.get("/api/intake/v1/ping", headers={"Authorization": "Bearer abc.def.ghi"})
            assert r.status_code == 401 and r.json()["code"] == "invalid_token"
            r = await c.post("/api/intake/v1/dossiers", content=b"x" * 1001, headers=h)
            assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
            assert r.json()["title"].isascii()  # English, as asked
            chunked = await raw_exchange(url, (
                b"POST /api/intake/v1/dossiers HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + token.encode()
                + b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + b"3e9\r\n" + b"x" * 1001 + b"\r\n0\r\n\r\n"), wait=1.0)
            assert chunked.startswith(b"HTTP/1.1 413")
            codes = [(await c.get("/api/intake/v1/ping", headers=h)).status_code for _ in range(6)]
            assert codes.count(429) >= 2
            r = await c.get("/api/intake/v1/ping", headers=h)
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert [s.target for s in up.seen] == ["/v1/ping"] * (codes.count(200))



async def test_unsigned_deliveries_are_held_to_the_address_limit_and_only_accepted_ones_spend_the_partners(
        database_url: str) -> None:
    async with fake_upstream() as up, gateway_before(database_url, up.url, rate_limit="2/minute",
                                                      webhook_rate_limit="3/minute") as url, httpx.AsyncClient(
            base_url=url) as c:
        stranger = {"X-Forwarded-For": "203.0.113.5"}
        partner = {"X-Forwarded-For": "198.51.100.9", "X-Test-Signature": "valid"}
        codes = [(await c.post("/api/postal/v1/partners/vnpost/events", content=b"{}", headers=stranger)
                  ).status_code for _ in range(3)]
        assert codes == [401, 401, 429]  # forged: the address's own limit, as any call without a token
        r = await c.post("/api/postal/v1/partners/made-up/events", content=b"{}", headers=stranger)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1  # naming a partner is no escape
        assert (await c.get("/api/intake/v1/procedures", headers=stranger)).status_code == 429
        # the partner's budget is untouched by the stranger, and its accepted deliveries do not spend
        # its address's budget
        codes = [(await c.post("/api/postal/v1/partners/vnpost/events", content=b"{}", headers=partner)
                  ).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert (await c.get("/api/intake/v1/procedures", headers=partner)).status_code == 200
        assert (await c.post("/api/postal/v1/partners/viettel/events", content=b"{}",
                             headers=partner)).status_code == 200
    assert [s.target for s in up.seen] == ["/v1/partners/vnpost/events"] * 5 + ["/v1/procedures",
                                                                               "/v1/partners/viettel/events"]


async def test_metrics_count_requests_by_service(gateway: Running) -> None:
    admin = await login(gateway.url, "quantri", "demo-admin")
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        await c.get("/api/intake/v1/ping", headers=gateway.auth)
        text = (await c.get("/metrics", headers={"Authorization": f"Bearer {admin}"})).text
    assert 'gateway_requests_total{service="intake",status="200"}' in text
    assert 'gateway_requests_total{service="gateway",status="200"}' in text


async def test_an_unexpected_fault_in_the_gateway_is_a_problem_not_plain_text(
        gateway: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.proxy import Proxy

    def broken(*_args: object) -> None:
        raise RuntimeError("rate limit storage unreachable")

    monkeypatch.setattr(Proxy, "_take_rate", broken)
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        r = await c.get("/api/intake/v1/ping", headers=gateway.auth)
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "internal_error" and gateway.upstream.seen == []
