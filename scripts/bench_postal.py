"""Postal webhook ingestion through the gateway: events/s with 20 % duplicates and shuffled order.

    python -m scripts.bench_postal [--shipments 1000] [--batch 10] [--connections 16]

A fresh database (as `make bench`), the whole stack, N outbound shipments created through the
gateway by the partner, then every shipment's journey (3 to 7 events) shuffled across all
shipments, cut into signed deliveries of --batch events, a fifth of them sent twice, from
--connections concurrent senders. Afterwards every shipment's final state and timeline are
checked against its journey, and each delivered one must have had its downstream job enqueued.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from scripts.bench import fresh_database
from scripts.stack import Stack, free_port
from services.postal_tracking.seed import DEMO_WEBHOOK_SECRET
from services.postal_tracking.tracking import journey
from services.postal_tracking.webhook import sign


async def partner_token(gw: str) -> str:
    async with httpx.AsyncClient(base_url=gw) as c:
        r = await c.post("/api/auth/v1/token", data={"grant_type": "client_credentials", "client_id": "vnpost",
                                                      "client_secret": "demo-vnpost-secret"})
        r.raise_for_status()
        tok: str = r.json()["access_token"]
        return tok


async def create_shipments(gw: str, token: str, n: int, run: str) -> list[dict[str, Any]]:
    sem = asyncio.Semaphore(16)
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(base_url=gw, limits=limits, timeout=60) as c:
        async def one(i: int) -> dict[str, Any]:
            body = {"direction": "outbound", "dossier_code": f"000.00.21.H29-251124-B{run}{i:05d}",
                    "agency_code": "000.00.21.H29", "tracking_number": f"B{run}{i:06d}VN",
                    "recipient": {"name": "Nguyễn Văn An", "phone": "0912345678", "address_line": "12 phố Kim Mã",
                                  "ward_code": "00004"}}
            async with sem:
                r = await c.post("/api/postal/v1/shipments", json=body, headers={
                    "Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex})
            r.raise_for_status()
            out: dict[str, Any] = r.json()
            return out

        return list(await asyncio.gather(*(one(i) for i in range(n))))


async def send_all(gw: str, sends: Sequence[tuple[bytes, dict[str, str]]], connections: int
                   ) -> tuple[float, list[float], list[int]]:
    queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    for item in sends:
        queue.put_nowait(item)
    latencies: list[float] = []
    codes: list[int] = []
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=gw, limits=limits, timeout=60) as c:
        async def sender() -> None:
            while not queue.empty():
                body, headers = queue.get_nowait()
                t0 = time.perf_counter()
                r = await c.post("/api/postal/v1/partners/VNPOST/events", content=body, headers=headers)
                latencies.append((time.perf_counter() - t0) * 1000)
                codes.append(r.status_code)

        start = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(connections)))
        return time.perf_counter() - start, latencies, codes


async def check(url: str, plans: dict[str, list[Any]], run: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch(
            "SELECT s.id::text AS id, s.tracking_number, s.status, s.failed_attempts, s.effects ? 'delivered' AS told, "
            "array_agg(e.status ORDER BY e.occurred_at, e.id) AS timeline FROM postal.shipments s "
            "JOIN postal.shipment_events e ON e.shipment_id = s.id WHERE s.tracking_number LIKE $1 "
            "GROUP BY s.id", f"B{run}%")
        # jobs are consumed by the worker as the bench runs: the once-only record is in `effects`
    finally:
        await conn.close()
    wrong = []
    if len(rows) != len(plans):
        wrong.append(f"{len(rows)} shipments have events, expected {len(plans)}")
    for r in rows:
        expected = [e.status for e in plans[r["tracking_number"]]]
        if r["status"] != expected[-1] or list(r["timeline"]) != expected:
            wrong.append(f"{r['tracking_number']}: {r['status']} {list(r['timeline'])} != {expected}")
        if (r["status"] == "delivered") != r["told"]:
            wrong.append(f"{r['tracking_number']}: delivered without its result_delivered job (or the reverse)")
    return wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shipments", type=int, default=1000)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 10, 50], help="events per delivery (each measured)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duplicates", type=float, default=0.2, help="share of sends that are duplicates")
    parser.add_argument("--replicas", type=int, default=1, help="postal service processes")
    args = parser.parse_args()
    url, started_db = fresh_database("motcua_bench_postal", bench_agencies=False)
    ports = {n: free_port() for n in ("intake", "workflow", "postal", "queue")}
    stack = Stack(database_url=url, gateway_port=free_port(), service_ports=ports, quiet=True,
                  replicas={"postal": args.replicas},
                  extra_env={"ACCESS_LOG": "false", "RATE_LIMIT": "100000000/minute", "LOG_LEVEL": "WARNING"})
    failed = False
    try:
        stack.start()
        stack.wait_ready(90)
        gw = stack.gateway_url
        token = asyncio.run(partner_token(gw))
        print(f"\nPostal webhook ingestion through the gateway ({args.connections} senders, "
              f"{args.duplicates:.0%} duplicate sends, shuffled):", flush=True)
        for batch in args.batch:
            run = uuid.uuid4().hex[:5].upper()
            rng = random.Random(batch)
            t0 = time.perf_counter()
            ships = asyncio.run(create_shipments(gw, token, args.shipments, run))
            setup = time.perf_counter() - t0
            start = datetime.now(UTC) - timedelta(hours=4)
            plans = {s["tracking_number"]: journey(s["tracking_number"], start, timedelta(minutes=9), rng)
                     for s in ships}
            events = [json.loads(e.model_dump_json(exclude_none=True)) for p in plans.values() for e in p]
            rng.shuffle(events)
            deliveries = []
            for i in range(0, len(events), batch):
                body = json.dumps({"events": events[i:i + batch]}, ensure_ascii=False).encode()
                deliveries.append((body, sign(DEMO_WEBHOOK_SECRET, f"msg_{uuid.uuid4().hex}", body)))
            dup = int(len(deliveries) * args.duplicates / (1 - args.duplicates))
            sends = deliveries + [rng.choice(deliveries) for _ in range(dup)]
            rng.shuffle(sends)
            seconds, lat, codes = asyncio.run(send_all(gw, sends, args.connections))
            sent_events = sum(len(json.loads(b)["events"]) for b, _ in sends)
            bad = [c for c in codes if c != 200]
            lat.sort()
            print(f"  batch {batch:>3}: {len(sends):>6} deliveries ({dup} duplicates), {sent_events} events "
                  f"({len(events)} distinct) in {seconds:5.2f} s → {sent_events / seconds:8.0f} events/s, "
                  f"{len(sends) / seconds:6.0f} deliveries/s, p50 {statistics.median(lat):6.2f} ms, "
                  f"p99 {lat[int(len(lat) * 0.99) - 1]:6.2f} ms, non-200: {len(bad)}  "
                  f"(setup: {args.shipments} shipments in {setup:4.1f} s)", flush=True)
            wrong = asyncio.run(check(url, plans, run))
            if wrong or bad:
                failed = True
                print(f"    WRONG: {len(wrong)} shipments, e.g. {wrong[:3]}; statuses {set(bad)}", flush=True)
            else:
                print(f"    every shipment's final state and timeline exact ({args.shipments} shipments, "
                      f"result_delivered enqueued for each delivered one)", flush=True)
            target = "≥ 1,000 events/s"
            print(f"    target {target}: {'met' if sent_events / seconds >= 1000 else 'NOT met'}", flush=True)
    finally:
        stack.stop()
        if started_db:
            from scripts.devdb import stop

            stop("pg-bench")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
