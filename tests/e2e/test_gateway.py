"""The gateway with the four services behind it, as real processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest

from scripts.stack import ROOT, Stack, free_port
from shared.db import Database
from shared.settings import Settings
from tests.conftest import client_token, login
from tests.gateway.fakes import raw_get
from tests.postal.helpers import ev, know_dossier, shipment_body, signed

pytestmark = pytest.mark.e2e


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code and body["request_id"] == r.headers["x-request-id"]
    return body


@pytest.mark.smoke
async def test_ready_with_every_upstream(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as c:
        r = await c.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"intake": "ok", "workflow": "ok", "postal": "ok", "queue": "ok",
                                  "gateway": "ok"}


@pytest.mark.smoke
async def test_token_then_call_each_service_through_the_gateway(stack: Stack) -> None:
    token = await login(stack.gateway_url, "canbo.phuong", "demo-officer")
    async with httpx.AsyncClient(base_url=stack.gateway_url) as c:
        for svc in ("intake", "workflow", "postal", "queue"):
            r = await c.get(f"/api/{svc}/v1/ping", headers={"Authorization": f"Bearer {token}",
                                                             "X-Request-ID": f"req-{svc}"})
            assert r.status_code == 200, r.text
            assert r.json() == {"status": "ok", "subject": "canbo.phuong", "role": "officer"}
            assert r.headers["x-request-id"] == f"req-{svc}"
    partner = await client_token(stack.gateway_url, "vnpost", "demo-vnpost-secret")
    assert partner.count(".") == 2


@pytest.mark.smoke
async def test_public_catalog_needs_no_token(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as c:
        r = await c.get("/api/intake/v1/procedures", params={"q": "dang ky khai sinh"})
        assert r.status_code == 200 and r.json()[0]["name"] == "Đăng ký khai sinh"
        r = await c.get("/api/intake/v1/calendar/due", params={
            "procedure_code": "1.001193", "agency_code": "000.00.21.H29",
            "received_at": "2026-03-02T14:59:00+07:00"})
        assert r.status_code == 200 and r.json()["due_at"] == "2026-03-02T17:00:00+07:00"


async def test_identity_provider_refusals(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as c:
        r = await c.post("/api/auth/v1/token", data={"grant_type": "password", "username": "canbo.phuong",
                                                     "password": "wrong"})
        assert problem(r, 400, "invalid_grant")["error"] == "invalid_grant"
        r = await c.post("/api/auth/v1/token", data={"grant_type": "client_credentials",
                                                     "client_id": "vnpost", "client_secret": "nope"})
        problem(r, 401, "bad_request")
        r = await c.post("/api/auth/v1/token", data={"grant_type": "implicit"})
        problem(r, 400, "bad_request")
        jwks = (await c.get("/.well-known/jwks.json")).json()
        assert jwks["keys"] and jwks["keys"][0]["alg"] == "RS256" and "d" not in jwks["keys"][0]


async def test_gateway_refuses_bad_tokens_and_bad_requests(stack: Stack, make_token: Any) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as c:
        problem(await c.get("/api/workflow/v1/dossiers"), 401, "unauthorized")
        problem(await c.get("/api/workflow/v1/ping", headers={"Authorization": "Bearer abc.def.ghi"}),
                401, "invalid_token")
        # signed by a key the gateway does not know (the test suite's own key)
        problem(await c.get("/api/workflow/v1/ping",
                            headers={"Authorization": f"Bearer {make_token('admin')}"}), 401, "invalid_token")
        problem(await c.get("/api/nosuchservice/v1/x"), 404, "not_found")
        token = await login(stack.gateway_url, "congdan", "demo-citizen")
        h = {"Authorization": f"Bearer {token}"}
        problem(await c.get("/api/intake/v1/definitely-not-a-route", headers=h), 404, "not_found")
        big = b"x" * (21 * 1024 * 1024)
        problem(await c.post("/api/intake/v1/dossiers", content=big, headers=h), 413, "payload_too_large")
        problem(await c.get("/api/workflow/v1/admin/jobs/failed", headers=h), 403, "forbidden")


async def test_smuggling_through_the_gateway_gets_400_or_the_callers_own_answer(stack: Stack) -> None:
    """The reproduction from issue 19: a citizen's path carrying a second request for a dossier."""
    citizen = await login(stack.gateway_url, "congdan", "demo-citizen")
    officer = await login(stack.gateway_url, "canbo.phuong", "demo-officer")
    smuggled = (b"/api/intake/v1/ping%20HTTP/1.1%0d%0aHost:%20intake%0d%0a%0d%0a"
                b"GET%20/v1/dossiers?limit=1%20HTTP/1.1%0d%0aX-Forwarded-For:%201.2.3.4%0d%0a")
    for _ in range(3):
        answer = await raw_get(stack.gateway_url, smuggled, f"Authorization: Bearer {citizen}\r\n".encode())
        assert answer.status == 400 and answer.header(b"content-type") == b"application/problem+json"
    async with httpx.AsyncClient(base_url=stack.gateway_url) as c:
        for _ in range(10):  # the next callers, on whatever pooled connection: their own answers
            r = await c.get("/api/intake/v1/ping", headers={"Authorization": f"Bearer {officer}"})
            assert r.status_code == 200 and r.json()["subject"] == "canbo.phuong", r.text


@pytest.mark.parametrize("path", [
    "/api/intake/v1/procedures/%C4%90",
    "/api/intake/v1/procedures/%C4%90%E1%BB%85/x",
    "/api/intake/v1/procedures%3Fq=khai",
    "/api/intake/v1/agencies/%25%32%35",
    "/api/intake/v1/procedures/%FF%FE",
    "/api/intake/v1/procedures/..%2F..%2Fadmin",
    "/api/workflow/v1/public/%F0%9F%98%80",
    "/api/queue/v1/offices/%C4%90/board",
    "/queue/board/%C4%90",
])
async def test_odd_path_characters_never_give_a_5xx(stack: Stack, path: str) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as c:
        r = await c.get(path)
    assert r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if path.startswith("/api/intake/v1/procedures"):  # never the list of procedures; 401 off the public routes
        assert r.status_code in (401, 404)


async def test_board_stream_through_the_gateway(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as c, c.stream(
            "GET", "/api/queue/v1/offices/PBD/board/stream") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if line.startswith("data:"):
                break


async def test_cors_preflight_for_the_mobile_app(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as c:
        r = await c.options("/api/intake/v1/dossiers", headers={
            "Origin": "https://app.example.vn", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,idempotency-key"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", "https://app.example.vn")


async def test_merged_openapi_has_every_service(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as c:
        doc = (await c.get("/openapi.json")).json()
        docs_page = await c.get("/docs")
    paths = doc["paths"]
    assert "/api/auth/v1/token" in paths
    for svc in ("intake", "workflow", "postal", "queue"):
        assert f"/api/{svc}/v1/ping" in paths
    assert docs_page.status_code == 200 and "/docs-static/swagger-ui-bundle.js" in docs_page.text


def _spawn_gateway(stack: Stack, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    full_env = {**stack.env(), **env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, *Stack.uvicorn_args("gateway.app:create_app", port)],
                            env=full_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}"


async def _wait_up(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as c:
        for _ in range(100):
            try:
                await c.get("/healthz")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise AssertionError("gateway did not start")


async def test_dead_upstream_is_503_and_rate_limit_is_429(stack: Stack) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    proc, url = _spawn_gateway(stack, POSTAL_URL=dead, RATE_LIMIT="5/minute",
                               ACCESS_LOG="false")
    try:
        await _wait_up(url)
        token = await login(url, "canbo.phuong", "demo-officer")
        h = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url) as c:
            problem(await c.get("/api/postal/v1/ping", headers=h), 503, "upstream_unavailable")
            codes = [(await c.get("/api/intake/v1/ping", headers=h)).status_code for _ in range(6)]
            assert 429 in codes
            r = await c.get("/api/intake/v1/ping", headers=h)
            body = problem(r, 429, "rate_limited")
            assert int(r.headers["retry-after"]) >= 1 and "giây" in body["detail"]
            ready = await c.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["postal"] == "unreachable"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_partner_deliveries_spend_the_partners_budget_only_when_accepted(stack: Stack,
                                                                              settings: Settings) -> None:
    """Signed deliveries the postal service accepts count on the partner's budget, not the sender's address;
    forged ones are held to the address's own limit, whichever partner they name."""
    proc, url = _spawn_gateway(stack, RATE_LIMIT="3/minute", WEBHOOK_RATE_LIMIT="8/minute", ACCESS_LOG="false")
    try:
        await _wait_up(url)
        db = Database(settings)
        shipment = shipment_body(tracking_number=f"EE{uuid.uuid4().hex[:9].upper()}VN")
        await know_dossier(db, shipment["dossier_code"])
        await db.dispose()
        officer = await login(stack.gateway_url, "canbo.phuong", "demo-officer")
        async with httpx.AsyncClient(base_url=url) as c:
            r = await c.post("/api/postal/v1/shipments", json=shipment, headers={
                "Authorization": f"Bearer {officer}", "Idempotency-Key": uuid.uuid4().hex})
            assert r.status_code == 201, r.text
            stranger = {"X-Forwarded-For": "203.0.113.5"}
            forged = [(await c.post("/api/postal/v1/partners/VNPOST/events", content=b"{}", headers=stranger)
                       ).status_code for _ in range(4)]
            assert forged == [401, 401, 401, 429]  # the address's own 3
            other = await c.post("/api/postal/v1/partners/OTHER/events", content=b"{}", headers=stranger)
            assert other.status_code == 429  # naming another partner gives no fresh budget
            accepted = []
            for _ in range(10):
                body, headers = signed([ev(shipment["tracking_number"], "picked_up", 1)])
                r = await c.post("/api/postal/v1/partners/VNPOST/events", content=body, headers={
                    **headers, "Content-Type": "application/json", "X-Forwarded-For": "198.51.100.9"})
                accepted.append(r.status_code)
            assert all(200 <= s < 300 for s in accepted[:8]), accepted  # beyond an address's 3 a minute
            assert accepted[8:] == [429, 429]  # the partner's 8, untouched by the stranger
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_compose_file_is_valid() -> None:
    import shutil

    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        cli = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        cli = ["docker-compose"]
    else:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    res = subprocess.run([*cli, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr


def test_compose_file_runs_every_process() -> None:
    """Structural check that works without the docker CLI (the CLI check above runs where it exists)."""
    import yaml

    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"postgres", "migrate", "gateway", "intake", "workflow", "postal", "queue", "worker"} <= set(services)
    for name in ("gateway", "intake", "workflow", "postal", "queue"):
        assert "healthcheck" in services[name]
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert services["gateway"]["ports"] == ["8000:8000"]
