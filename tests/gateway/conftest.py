"""The real gateway app served by uvicorn in the test's event loop, in front of fake upstreams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn

from gateway.app import create_app
from scripts.stack import free_port
from shared.settings import Settings
from tests.conftest import login
from tests.gateway.fakes import FakeUpstream, fake_upstream


@asynccontextmanager
async def serve(app: Any, **options: Any) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on", http="httptools", **options))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def gateway_before(database_url: str, upstream: str, **settings: Any) -> AsyncIterator[str]:
    """A gateway whose four services are all `upstream` (unless a setting says otherwise)."""
    values: dict[str, Any] = {
        "database_url": database_url, "environment": "test", "access_log": False,
        "intake_url": upstream, "workflow_url": upstream, "postal_url": upstream, "queue_url": upstream,
        "gateway_timeout_seconds": 0.5, "rate_limit": "100000/minute", "db_pool_size": 3,
    }
    values.update(settings)
    async with serve(create_app(Settings(**values))) as url:
        yield url


class Running:
    def __init__(self, url: str, upstream: FakeUpstream, token: str) -> None:
        self.url = url
        self.upstream = upstream
        self.token = token

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
async def gateway(database_url: str) -> AsyncIterator[Running]:
    async with fake_upstream() as upstream, gateway_before(database_url, upstream.url) as url:
        yield Running(url, upstream, await login(url, "congdan", "demo-citizen"))
