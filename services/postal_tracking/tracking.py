"""Polling fallback: asking a partner's tracking API about shipments we have not heard of for a while.

`PartnerTrackingClient` is the interface; `SimulatedTrackingClient` plays the demo partner (the same
journeys as the simulator command), `HttpTrackingClient` calls a partner's tracking endpoint
(`GET {url}?tracking_numbers=a,b` answering `{"events": [...]}` in the webhook's event format).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from services.postal_tracking.schemas import EventIn

FAILURE_CODES = ["KH_VANG_NHA", "KH_TU_CHOI", "SAI_DIA_CHI", "HU_HONG", "KHAC_01"]
LOCATIONS = ["Bưu cục Ba Đình", "Trung tâm khai thác Hà Nội", "Bưu cục Hoàn Kiếm", "Bưu cục Cầu Giấy"]


@dataclass(frozen=True)
class TrackedShipment:
    tracking_number: str
    direction: str
    created_at: datetime


class PartnerTrackingClient(Protocol):
    async def track(self, shipments: Sequence[TrackedShipment], now: datetime) -> list[EventIn]:
        """Every event the partner knows for these shipments (already-known ones are deduplicated)."""
        ...


def journey(tracking_number: str, start: datetime, step: timedelta, rng: random.Random | None = None,
            failure_rate: float = 0.25) -> list[EventIn]:
    """A realistic journey: picked up, in transit, out for delivery, then delivered, or failed
    attempts (normalisable raw codes) and a later delivery, or a return to the sender."""
    r = rng or random.Random(int(hashlib.sha256(tracking_number.encode()).hexdigest()[:12], 16))
    plan: list[tuple[str, str | None]] = [("picked_up", None), ("in_transit", None), ("out_for_delivery", None)]
    roll = r.random()
    if roll < failure_rate * 0.6:
        plan += [("failed_attempt", r.choice(FAILURE_CODES)), ("out_for_delivery", None), ("delivered", None)]
    elif roll < failure_rate:
        code = r.choice(FAILURE_CODES)
        plan += [("failed_attempt", code), ("out_for_delivery", None), ("failed_attempt", code),
                 ("returned_to_sender", code)]
    else:
        plan.append(("delivered", None))
    return [EventIn(event_id=f"SIM-{tracking_number}-{i}", tracking_number=tracking_number, status=status,
                    occurred_at=start + step * (i + 1), reason_code=code, location=r.choice(LOCATIONS),
                    note=None)
            for i, (status, code) in enumerate(plan)]


class SimulatedTrackingClient:
    """The demo partner's tracking API: each shipment moves one step an hour after its creation."""

    def __init__(self, step: timedelta = timedelta(hours=1)) -> None:
        self.step = step

    async def track(self, shipments: Sequence[TrackedShipment], now: datetime) -> list[EventIn]:
        out: list[EventIn] = []
        for s in shipments:
            out += [e for e in journey(s.tracking_number, s.created_at, self.step) if e.occurred_at <= now]
        return out


class HttpTrackingClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout

    async def track(self, shipments: Sequence[TrackedShipment], now: datetime) -> list[EventIn]:
        async with httpx.AsyncClient(timeout=self.timeout) as c:
            r = await c.get(self.url, params={"tracking_numbers": ",".join(s.tracking_number for s in shipments)})
            r.raise_for_status()
            data: dict[str, Any] = r.json()
        return [EventIn.model_validate(e) for e in data.get("events", [])]


def client_for(partner: dict[str, Any]) -> PartnerTrackingClient | None:
    kind = partner.get("tracking_api")
    if kind == "simulator":
        return SimulatedTrackingClient()
    if kind == "http" and partner.get("tracking_api_url"):
        return HttpTrackingClient(str(partner["tracking_api_url"]))
    return None
