"""Postal webhook ingestion through the gateway: events/s with 20 % duplicates and shuffled order.

    python -m scripts.bench_postal [--shipments 1000] [--batch 10] [--connections 16]

A fresh database (as `make bench`), the whole stack, N real dossiers (result delivered by post)
submitted at the counter through the gateway by the demo officer; once postal knows them (the
worker runs intake's `postal.dossier_received` jobs), the officer creates their N outbound
shipments through the gateway (postal refuses shipments for dossiers it does not know). Then
every shipment's journey (3 to 7 events) shuffled across all shipments, cut into signed
deliveries of --batch events, a fifth of them sent twice, from --connections concurrent senders.
Afterwards every shipment's final state and timeline are checked against its journey, and each
delivered one must have had its downstream job enqueued.

The agency takes at most 9,999 dossiers a day: --shipments times the number of --batch values
must stay within that.
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
from scripts.stack import Stack
from services.postal_tracking.seed import DEMO_WEBHOOK_SECRET
from services.postal_tracking.tracking import journey
from services.postal_tracking.webhook import sign

AGENCY = "000.00.21.H29"
MAX_PER_DAY = 9999  # dossier codes an agency has a day (`services.intake.submission.MAX_PER_DAY`)
SETUP_CONNECTIONS = 16
# A counter dossier whose result goes back by post: intake tells postal of it.
DOSSIER = {
    "channel": "counter", "procedure_code": "1.004873", "receiving_agency_code": AGENCY,
    "applicant": {"full_name": "Lê Văn Bình", "id_number": "001090012345", "date_of_birth": "1990-05-12",
                  "phone": "0912345678", "address": {"line": "12 phố Kim Mã", "ward_code": "00004"}},
    "documents": [{"name": "Tờ khai theo mẫu"}], "result_delivery": "postal",
    "delivery_address": {"line": "12 phố Kim Mã", "ward_code": "00004", "recipient_name": "Nguyễn Văn An",
                         "phone": "0912345678"},
}


async def officer_token(gw: str) -> str:
    async with httpx.AsyncClient(base_url=gw, timeout=60) as c:
        r = await c.post("/api/auth/v1/token", data={"grant_type": "password", "username": "canbo.phuong",
                                                      "password": "demo-officer"})
        r.raise_for_status()
        tok: str = r.json()["access_token"]
        return tok


async def post_all(gw: str, token: str, path: str, bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each body POSTed through the gateway by the officer, SETUP_CONNECTIONS at a time; each must be 201."""
    sem = asyncio.Semaphore(SETUP_CONNECTIONS)
    limits = httpx.Limits(max_connections=SETUP_CONNECTIONS, max_keepalive_connections=SETUP_CONNECTIONS)
    async with httpx.AsyncClient(base_url=gw, limits=limits, timeout=60) as c:
        async def one(body: dict[str, Any]) -> dict[str, Any]:
            async with sem:
                r = await c.post(path, json=body, headers={
                    "Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex})
            if r.status_code != 201:
                raise SystemExit(f"POST {path}: {r.status_code} {r.text[:500]}")
            out: dict[str, Any] = r.json()
            return out

        return list(await asyncio.gather(*(one(b) for b in bodies)))


async def wait_known(url: str, codes: Sequence[str]) -> None:
    """Until postal knows every dossier (the worker ran intake's `postal.dossier_received` jobs)."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        while True:
            known = await conn.fetchval("SELECT count(*) FROM postal.dossiers WHERE code = ANY($1::text[])",
                                        list(codes))
            if known == len(codes):
                return
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def create_shipments(gw: str, url: str, n: int, run: str) -> tuple[list[dict[str, Any]], float, float]:
    """N real dossiers submitted, known to postal, then shipped outbound by the officer of their agency:
    (shipments, seconds to submit the dossiers and have postal know them, seconds to create the shipments)."""
    token = await officer_token(gw)
    t0 = time.perf_counter()
    dossiers = await post_all(gw, token, "/api/intake/v1/dossiers", [DOSSIER] * n)
    codes = [d["code"] for d in dossiers]
    limit = 120 + n * 0.05
    try:
        async with asyncio.timeout(limit):
            await wait_known(url, codes)
    except TimeoutError:
        raise SystemExit(f"postal does not know all {n} dossiers after {limit:.0f} s: is the worker running?") from None
    t1 = time.perf_counter()
    bodies = [{"direction": "outbound", "dossier_code": code, "agency_code": AGENCY, "partner_code": "VNPOST",
               "tracking_number": f"B{run}{i:06d}VN",
               "recipient": {"name": "Nguyễn Văn An", "phone": "0912345678", "address_line": "12 phố Kim Mã",
                             "ward_code": "00004"}} for i, code in enumerate(codes)]
    ships = await post_all(gw, token, "/api/postal/v1/shipments", bodies)
    return ships, t1 - t0, time.perf_counter() - t1


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
    if args.shipments * len(args.batch) > MAX_PER_DAY:
        parser.error(f"--shipments × number of --batch values must be ≤ {MAX_PER_DAY} (dossiers an agency "
                     "takes a day)")
    url, started_db = fresh_database("motcua_bench_postal", bench_agencies=False)
    stack = Stack.on_free_ports(url, quiet=True,
                  replicas={"postal": args.replicas},
                  extra_env={"ACCESS_LOG": "false", "RATE_LIMIT": "100000000/minute", "LOG_LEVEL": "WARNING"})
    failed = False
    try:
        stack.start()
        stack.wait_ready(90)
        gw = stack.gateway_url
        print(f"\nPostal webhook ingestion through the gateway ({args.connections} senders, "
              f"{args.duplicates:.0%} duplicate sends, shuffled):", flush=True)
        for batch in args.batch:
            run = uuid.uuid4().hex[:5].upper()
            rng = random.Random(batch)
            ships, known, shipping = asyncio.run(create_shipments(gw, url, args.shipments, run))
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
                  f"(setup: {args.shipments} dossiers submitted and known in {known:4.1f} s, "
                  f"{args.shipments} shipments in {shipping:4.1f} s)", flush=True)
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
