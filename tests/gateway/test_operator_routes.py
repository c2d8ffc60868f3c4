"""What the gateway shows only to operators: its Prometheus metrics, and no service's own /metrics."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import login
from tests.gateway.conftest import Running, gateway_before
from tests.gateway.fakes import fake_upstream, raw_get

pytestmark = pytest.mark.e2e


async def test_metrics_need_the_metrics_token_or_an_admin(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_TOKEN", "scrape-secret-1")
    async with fake_upstream() as up, gateway_before(database_url, up.url) as url, httpx.AsyncClient(
            base_url=url) as c:
        r = await c.get("/metrics")
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "gateway_requests_total" not in r.text
        citizen = await login(url, "congdan", "demo-citizen")
        r = await c.get("/metrics", headers={"Authorization": f"Bearer {citizen}"})
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        r = await c.get("/metrics", headers={"Authorization": "Bearer scrape-secret-2"})
        assert r.status_code == 401 and r.json()["code"] == "invalid_token"
        r = await c.get("/metrics", headers={"Authorization": "Basic c2NyYXBlLXNlY3JldC0x"})
        assert r.status_code == 401
        r = await c.get("/metrics", headers={"Authorization": "Bearer scrape-secret-1"})
        assert r.status_code == 200 and "gateway_requests_total" in r.text
        assert r.headers["content-type"].startswith("text/plain")
        admin = await login(url, "quantri", "demo-admin")
        r = await c.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200 and "gateway_requests_total" in r.text


async def test_without_a_metrics_token_only_admins_read_metrics(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    async with fake_upstream() as up, gateway_before(database_url, up.url) as url, httpx.AsyncClient(
            base_url=url) as c:
        assert (await c.get("/metrics")).status_code == 401
        assert (await c.get("/metrics", headers={"Authorization": "Bearer anything"})).status_code == 401
        admin = await login(url, "quantri", "demo-admin")
        assert (await c.get("/metrics", headers={"Authorization": f"Bearer {admin}"})).status_code == 200


@pytest.mark.parametrize("target", [
    b"/api/intake/metrics", b"/api/intake/v1/../metrics", b"/api/intake/v1/%2e%2e/metrics",
    b"/api/intake/v1/%2E%2E/metrics", b"/api/workflow/v1/./../readyz", b"/queue/../metrics",
    b"/api/postal/v1/partners/../../metrics",
])
async def test_no_path_reaches_a_services_own_metrics(gateway: Running, target: bytes) -> None:
    for headers in (b"", b"Authorization: Bearer " + gateway.token.encode() + b"\r\n"):
        r = await raw_get(gateway.url, target, headers)
        assert r.status in (400, 404), r
        assert b"problem+json" in (r.header(b"content-type") or b"")
    assert gateway.upstream.seen == []


async def test_health_answers_say_no_more_than_ready_or_not(gateway: Running) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        r = await c.get("/readyz")
    # names of the services and ok/unreachable, no figures, versions or addresses
    checks = r.json()["checks"]
    assert set(checks) == {"intake", "workflow", "postal", "queue", "gateway"}
    assert all(v in ("ok", "unreachable") or v.startswith("not ready (") for v in checks.values())
