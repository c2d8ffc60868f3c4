"""Shared helpers of the queue tests: a test office set up through the admin API, a movable clock."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from services.queue_ticket import clock
from tests.conftest import auth

WARD = "000.00.21.H29"


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: datetime) -> None:
        self.t = start
        monkeypatch.setattr(clock, "now", lambda: self.t)

    def set(self, t: datetime) -> None:
        self.t = t


def new_code() -> str:
    return "T" + uuid.uuid4().hex[:8].upper()


async def setup_office(
    client: httpx.AsyncClient, make_token: Callable[..., str], code: str, *, cap: int = 100,
    counters: int = 2, always_open: bool = True, slot_capacity: int = 2, hold_seconds: int = 300,
) -> dict[str, Any]:
    """Office `code` with categories HT (A) and CT (B); counter 1 serves HT, the others HT and CT."""
    admin = auth(make_token("admin", subject="quantri"))
    r = await client.put(f"/v1/offices/{code}", headers=admin, json={
        "name": f"Phòng thử {code}", "agency_code": WARD, "occupancy_cap": cap, "always_open": always_open,
        "hold_seconds": hold_seconds})
    assert r.status_code == 200, r.text
    for cat, prefix, name in (("HT", "A", "Hộ tịch"), ("CT", "B", "Chứng thực")):
        r = await client.put(f"/v1/offices/{code}/categories/{cat}", headers=admin, json={
            "prefix": prefix, "name": name, "slot_minutes": 30, "slot_capacity": slot_capacity,
            "default_service_seconds": 300})
        assert r.status_code == 200, r.text
    ids = []
    for n in range(1, counters + 1):
        r = await client.put(f"/v1/offices/{code}/counters/{n}", headers=admin, json={
            "name": f"Quầy {n}", "category_codes": ["HT"] if n == 1 else ["HT", "CT"]})
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])
    return {"code": code, "counters": ids}


def kiosk(make_token: Callable[..., str], office: str) -> dict[str, str]:
    return auth(make_token("kiosk", subject=f"kiosk-{office}", office_code=office))


def officer(make_token: Callable[..., str], office: str, subject: str = "canbo.test") -> dict[str, str]:
    return auth(make_token("officer", subject=subject, office_code=office, agency_code=WARD))


def citizen(make_token: Callable[..., str], subject: str = "001090012345") -> dict[str, str]:
    return auth(make_token("citizen", subject=subject))
