"""Through the gateway with real processes: the SSE board (resume with Last-Event-ID) and the pages in Chromium."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from scripts.stack import Stack
from services.queue_ticket.seed import OFFICES
from tests.conftest import client_token, login

pytestmark = pytest.mark.e2e
PBD = next(o for o in OFFICES if o["code"] == "PBD")


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


@pytest.fixture
async def pbd_open(stack: Stack) -> AsyncIterator[dict[str, Any]]:
    """The demo ward office opened 24/7 for the test (restored after), with real tokens from the gateway."""
    gw = stack.gateway_url
    admin = await login(gw, "quantri", "demo-admin")
    async with httpx.AsyncClient(base_url=gw, timeout=30) as c:
        r = await c.put("/api/queue/v1/offices/PBD", headers=bearer(admin),
                        json={**_office_body(), "always_open": True})
        assert r.status_code == 200, r.text
        officer = await login(gw, "canbo.phuong", "demo-officer")
        counters = (await c.get("/api/queue/v1/offices/PBD/counters", headers=bearer(officer))).json()
        counter = next(k for k in counters if k["number"] == 2)  # serves HT and CT
        try:
            yield {"client": c, "officer": officer, "kiosk": await client_token(gw, "kiosk-pbd", "demo-kiosk-secret"),
                   "counter": counter["id"]}
        finally:
            await c.post(f"/api/queue/v1/counters/{counter['id']}/sign-out", headers=bearer(officer))
            await c.put("/api/queue/v1/offices/PBD", headers=bearer(admin), json=_office_body())


def _office_body() -> dict[str, Any]:
    return {k: PBD[k] for k in ("name", "agency_code", "occupancy_cap")}


async def call_until(c: httpx.AsyncClient, officer: str, counter: int, number: str) -> dict[str, Any]:
    """Call next at the counter until `number` comes (earlier tests may have left people waiting)."""
    for _ in range(200):
        r = await c.post(f"/api/queue/v1/counters/{counter}/call-next", headers=bearer(officer))
        assert r.status_code == 200, r.text
        t = r.json()["ticket"]
        assert t is not None, f"{number} was never called"
        if t["number"] == number:
            return dict(t)
    raise AssertionError(f"{number} not reached")


async def read_events(resp: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    event: dict[str, Any] = {}
    async for line in resp.aiter_lines():
        if line == "":
            if "data" in event:
                yield event
            event = {}
        elif line.startswith(":"):
            continue
        else:
            k, _, v = line.partition(": ")
            event[k] = json.loads(v) if k == "data" else v


async def test_board_stream_snapshot_then_calls_and_resume(stack: Stack, pbd_open: dict[str, Any]) -> None:
    c: httpx.AsyncClient = pbd_open["client"]
    url = "/api/queue/v1/offices/PBD/board/stream"
    async with c.stream("GET", url, headers={"Accept": "text/event-stream"}) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        events = read_events(resp)
        snap = await asyncio.wait_for(anext(events), 10)
        assert snap["event"] == "snapshot" and snap["data"]["office_code"] == "PBD"
        key = {"Idempotency-Key": uuid.uuid4().hex}
        r = await c.post("/api/queue/v1/tickets", headers=bearer(pbd_open["kiosk"], **key),
                         json={"office_code": "PBD", "category_code": "CT"})
        assert r.status_code == 201, r.text
        number = r.json()["number"]
        await call_until(c, pbd_open["officer"], pbd_open["counter"], number)
        while True:
            ev = await asyncio.wait_for(anext(events), 10)
            if ev["data"]["number"] == number:
                break
        assert ev["event"] == "call" and ev["data"]["counter_number"] == 2 and int(ev["id"]) > int(snap["id"])
    # a board that reconnects with Last-Event-ID gets what it missed, not a snapshot
    async with c.stream("GET", url, headers={"Accept": "text/event-stream", "Last-Event-ID": snap["id"]}) as resp:
        first = await asyncio.wait_for(anext(read_events(resp)), 10)
        assert first["event"] == "call" and int(first["id"]) > int(snap["id"])
    r = await c.get("/api/queue/v1/offices/PBD/board")
    assert any(k["ticket_number"] == number for k in r.json()["counters"])


@pytest.mark.browser
async def test_kiosk_page_number_called_appears_on_board_page(stack: Stack, pbd_open: dict[str, Any]) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (make browser-deps)")
    from playwright.async_api import async_playwright

    gw = stack.gateway_url
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, headless=True,
                                          args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            kiosk = await browser.new_page()
            await kiosk.goto(f"{gw}/queue/kiosk/PBD#client_id=kiosk-pbd&client_secret=demo-kiosk-secret")
            await kiosk.locator('button[data-category="HT"]').click(timeout=15_000)
            number_el = kiosk.locator("#ticket-number")
            await number_el.wait_for(state="visible", timeout=15_000)
            number = (await number_el.inner_text()).strip()
            assert number.startswith("A"), number
            assert "Số người chờ trước bạn" in await kiosk.locator("#ticket-position").inner_text()
            board = await browser.new_page()
            await board.goto(f"{gw}/queue/board/PBD")
            await board.locator("#conn").filter(has_text="trực tuyến").wait_for(timeout=15_000)
            assert await board.locator("#office-name").inner_text() == PBD["name"]
            await call_until(pbd_open["client"], pbd_open["officer"], pbd_open["counter"], number)
            await board.locator("#current-number").filter(has_text=number).wait_for(timeout=15_000)
            assert "quầy số 2" in (await board.locator("#current-counter").inner_text()).lower()
            assert number in await board.locator("#calls").inner_text()
        finally:
            await browser.close()
