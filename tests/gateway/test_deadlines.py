"""The gateway's deadline reaches the service: a request the gateway gave up on stops running there (its
query cancelled in PostgreSQL, its transaction rolled back, its pool connection free)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, FastAPI

from shared.app import create_service_app
from shared.db import TxDep
from shared.middleware import DEADLINE_HEADER
from shared.settings import Settings
from tests.conftest import login
from tests.gateway.conftest import Running, gateway_before, serve

pytestmark = pytest.mark.e2e

router = APIRouter(prefix="/v1")
GATEWAY_DEADLINE = 1.0


@router.post("/slow/{k}")
async def slow(k: str, tx: TxDep, seconds: float = 30.0) -> dict[str, str]:
    await tx.execute("INSERT INTO deadlinekit.rows (k) VALUES ($1)", k)
    await tx.fetchval("SELECT pg_sleep($1)", seconds)
    return {"status": "slept"}


def service(settings: Settings) -> tuple[FastAPI, str]:
    name = f"dl{uuid.uuid4().hex[:10]}"
    app = create_service_app(service=name, title="deadlinekit", description="", routers=[router],
                             histories=["core"], settings=settings)
    return app, f"motcua-{name}"


@pytest.fixture
async def watcher(settings: Settings) -> AsyncIterator[asyncpg.Connection[Any]]:
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    await conn.execute("CREATE SCHEMA IF NOT EXISTS deadlinekit; "
                       "CREATE TABLE IF NOT EXISTS deadlinekit.rows (k text PRIMARY KEY)")
    try:
        yield conn
    finally:
        await conn.close()


async def busy_sessions(conn: asyncpg.Connection[Any], application_name: str) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'", application_name))


async def test_a_request_the_gateway_gave_up_on_is_cancelled_in_the_service(
        database_url: str, settings: Settings, watcher: asyncpg.Connection[Any]) -> None:
    # no statement timeout would stop this query for a minute: only the gateway's deadline can
    app, name = service(settings.model_copy(update={"db_request_statement_timeout": 60.0,
                                                    "request_timeout_seconds": 120.0}))
    async with serve(app) as upstream, gateway_before(database_url, upstream,
                                                      gateway_timeout_seconds=GATEWAY_DEADLINE) as url:
        token = await login(url, "congdan", "demo-citizen")
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
            k = uuid.uuid4().hex
            started = time.monotonic()
            r = await c.post(f"/api/intake/v1/slow/{k}?seconds=30")
            took = time.monotonic() - started
            assert r.status_code == 504, r.text
            assert r.headers["content-type"] == "application/problem+json"
            # the service's own 504 (it gives up just before the gateway), or the gateway's when it is late
            assert r.json()["code"] in {"request_timeout", "upstream_timeout"}
            assert GATEWAY_DEADLINE - 0.2 <= took < GATEWAY_DEADLINE + 1.5, took
            # a moment later: no query of that request runs, its connection is back, its write undone
            deadline = time.monotonic() + 2.0
            while await busy_sessions(watcher, name) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert await busy_sessions(watcher, name) == 0
            pool = await app.state.db.pool()
            assert pool.get_idle_size() == pool.get_size()
            assert await watcher.fetchval("SELECT count(*) FROM deadlinekit.rows WHERE k = $1", k) == 0
            # and the service answers the next request as usual
            r = await c.post(f"/api/intake/v1/slow/{uuid.uuid4().hex}?seconds=0")
            assert r.status_code == 200, r.text


async def test_the_service_is_told_the_gateways_deadline_not_the_callers(gateway: Running) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, headers=gateway.auth) as c:
        r = await c.get("/api/intake/v1/anything", headers={DEADLINE_HEADER: "86400000"})
        assert r.status_code == 200
    seen = gateway.upstream.seen[-1]
    assert [v for k, v in seen.headers if k == DEADLINE_HEADER.lower()] == ["500"]  # the gateway's 0.5 s
