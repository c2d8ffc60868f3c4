"""Postal-partner simulator: plays VNPost against a running stack, through the gateway.

    python -m services.postal_tracking.simulator --gateway http://127.0.0.1:8000 --once

It takes a client_credentials token (POST /api/auth/v1/token), picks up the partner's pending
shipments (GET /api/postal/v1/shipments?status=created), and walks each one through a realistic
journey (picked up, in transit, out for delivery, delivered; sometimes failed attempts with the
partner's raw reason codes, sometimes a return to the sender), sending Standard-Webhooks-signed
deliveries with delays, duplicates (the same webhook-id again) and reordering, and retrying on
network errors and 5xx like a real partner. Without --once it keeps polling for new shipments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.postal_tracking.seed import DEMO_PARTNER, DEMO_WEBHOOK_SECRET
from services.postal_tracking.tracking import journey
from services.postal_tracking.webhook import sign


@dataclass
class Options:
    gateway: str
    client_id: str = "vnpost"
    client_secret: str = "demo-vnpost-secret"  # noqa: S105 - public demo credential
    partner: str = DEMO_PARTNER
    webhook_secret: str = DEMO_WEBHOOK_SECRET
    once: bool = False
    interval: float = 5.0
    step_delay: float = 0.2
    duplicate_rate: float = 0.2
    reorder_rate: float = 0.3
    failure_rate: float = 0.25
    batch: int = 1
    limit: int = 500
    concurrency: int = 16
    seed: int | None = None


@dataclass
class Stats:
    shipments: int = 0
    deliveries: int = 0
    duplicates: int = 0
    events: int = 0
    retries: int = 0
    refused: int = 0
    final: Counter[str] = field(default_factory=Counter)


class PartnerSimulator:
    def __init__(self, options: Options, client: httpx.AsyncClient | None = None) -> None:
        self.o = options
        self.rng = random.Random(options.seed)
        self.http = client or httpx.AsyncClient(base_url=options.gateway, timeout=30)
        self.token: str | None = None
        self.stats = Stats()
        self.sem = asyncio.Semaphore(options.concurrency)
        self.seen: set[str] = set()

    async def authenticate(self) -> None:
        r = await self.http.post("/api/auth/v1/token", data={
            "grant_type": "client_credentials", "client_id": self.o.client_id, "client_secret": self.o.client_secret})
        r.raise_for_status()
        self.token = r.json()["access_token"]

    async def pending(self) -> list[dict[str, Any]]:
        """The partner's shipments waiting to be picked up (it only ever sees its own)."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(out) < self.o.limit:
            params: dict[str, Any] = {"status": "created", "limit": min(200, self.o.limit - len(out))}
            if cursor:
                params["cursor"] = cursor
            r = await self.http.get("/api/postal/v1/shipments", params=params,
                                    headers={"Authorization": f"Bearer {self.token}"})
            if r.status_code == 401:
                await self.authenticate()
                continue
            r.raise_for_status()
            page = r.json()
            out += [s for s in page["items"] if s["id"] not in self.seen]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return out

    async def send(self, events: list[dict[str, Any]], msg_id: str) -> int:
        body = json.dumps({"events": events}, ensure_ascii=False).encode()
        for attempt in range(6):
            headers = sign(self.o.webhook_secret, msg_id, body)  # re-signed on retry: a fresh timestamp
            try:
                async with self.sem:
                    r = await self.http.post(f"/api/postal/v1/partners/{self.o.partner}/events", content=body,
                                             headers=headers)
            except httpx.TransportError:
                r = None
            if r is not None and r.status_code < 500:
                if r.status_code >= 400:
                    self.stats.refused += 1
                    print(f"refused {r.status_code}: {r.text[:300]}", file=sys.stderr)
                return r.status_code
            self.stats.retries += 1
            await asyncio.sleep(min(2.0, 0.1 * 2 ** attempt))
        return 599

    async def play(self, shipment: dict[str, Any]) -> None:
        """One shipment's journey: deliveries with delays, sometimes twice, sometimes swapped."""
        step = timedelta(minutes=self.rng.randint(3, 40))
        plan = journey(shipment["tracking_number"], datetime.now(UTC) - step * 8, step, self.rng,
                       self.o.failure_rate)
        events = [json.loads(e.model_dump_json(exclude_none=True)) for e in plan]
        groups = [events[i:i + self.o.batch] for i in range(0, len(events), self.o.batch)]
        deliveries = [(f"msg_{uuid.uuid4().hex}", g) for g in groups]
        for i in range(len(deliveries) - 1):  # reordering: a later delivery overtakes an earlier one
            if self.rng.random() < self.o.reorder_rate:
                deliveries[i], deliveries[i + 1] = deliveries[i + 1], deliveries[i]
        for msg_id, group in deliveries:
            await asyncio.sleep(self.rng.uniform(0, self.o.step_delay))
            await self.send(group, msg_id)
            self.stats.deliveries += 1
            self.stats.events += len(group)
            if self.rng.random() < self.o.duplicate_rate:  # the partner did not see our 200: it sends again
                await self.send(group, msg_id)
                self.stats.duplicates += 1
        self.stats.shipments += 1
        self.stats.final[plan[-1].status] += 1

    async def round(self) -> int:
        shipments = await self.pending()
        for s in shipments:
            self.seen.add(s["id"])
        await asyncio.gather(*(self.play(s) for s in shipments))
        return len(shipments)

    async def run(self) -> Stats:
        await self.authenticate()
        while True:
            n = await self.round()
            if self.o.once:
                return self.stats
            if n == 0:
                await asyncio.sleep(self.o.interval)

    async def close(self) -> None:
        await self.http.aclose()


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gateway", default="http://127.0.0.1:8000")
    p.add_argument("--client-id", default="vnpost")
    p.add_argument("--client-secret", default="demo-vnpost-secret")
    p.add_argument("--partner", default=DEMO_PARTNER)
    p.add_argument("--webhook-secret", default=DEMO_WEBHOOK_SECRET)
    p.add_argument("--once", action="store_true", help="deliver the pending shipments, then exit")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between looks for new shipments")
    p.add_argument("--step-delay", type=float, default=0.2, help="max seconds between two deliveries")
    p.add_argument("--duplicate-rate", type=float, default=0.2)
    p.add_argument("--reorder-rate", type=float, default=0.3)
    p.add_argument("--failure-rate", type=float, default=0.25, help="share of journeys with failed attempts")
    p.add_argument("--batch", type=int, default=1, help="events per delivery")
    p.add_argument("--limit", type=int, default=500, help="shipments picked up per round")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--seed", type=int)
    a = p.parse_args(argv)
    return Options(gateway=a.gateway, client_id=a.client_id, client_secret=a.client_secret, partner=a.partner,
                   webhook_secret=a.webhook_secret, once=a.once, interval=a.interval, step_delay=a.step_delay,
                   duplicate_rate=a.duplicate_rate, reorder_rate=a.reorder_rate, failure_rate=a.failure_rate,
                   batch=max(1, a.batch), limit=a.limit, concurrency=a.concurrency, seed=a.seed)


async def amain(options: Options) -> Stats:
    sim = PartnerSimulator(options)
    try:
        return await sim.run()
    finally:
        await sim.close()


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    try:
        stats = asyncio.run(amain(options))
    except KeyboardInterrupt:
        return
    print(json.dumps({"shipments": stats.shipments, "deliveries": stats.deliveries, "duplicates": stats.duplicates,
                      "events": stats.events, "retries": stats.retries, "refused": stats.refused,
                      "final": dict(stats.final)}, ensure_ascii=False))
    if stats.refused:
        sys.exit(1)


if __name__ == "__main__":
    main()
