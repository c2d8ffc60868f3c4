"""Queue bench: ticket issue rate (wrk, against the raw insert yardstick) and call-next draining a queue.

`python -m scripts.bench_queue` starts its own stack on a fresh database (like `make bench`).
`run_queue_bench(stack, raw_url, seconds)` is the part `scripts/bench.py` can call inside its own run.

Call-next: 32 counters, each a loop of `POST /api/queue/v1/counters/{id}/call-next` through the gateway,
drain 10,000 waiting tickets; afterwards the handed-out ids and the database are checked for duplicates
and lost tickets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from scripts.bench import Result, fresh_database, token, wait_up, wrk
from scripts.stack import ROOT, Stack, free_port

T = TypeVar("T")
OFFICE = "BENCH"
ISSUE_OFFICE = "BENCHK"
COUNTERS = 32
TICKETS = 10_000


async def _setup(gw: str, admin: str) -> list[int]:
    """24/7 bench offices: ISSUE_OFFICE for the issue rate (category HT), OFFICE with the queue drained (DR) and
    its 32 counters. Apart, so the issue run's tickets are not in the drained office's waiting room."""
    h = {"Authorization": f"Bearer {admin}"}
    async with aiohttp.ClientSession(base_url=gw, headers=h) as s:
        for office, code, prefix in ((ISSUE_OFFICE, "HT", "A"), (OFFICE, "DR", "D")):
            async with s.put(f"/api/queue/v1/offices/{office}", json={
                    "name": "Phòng thử tải", "agency_code": "000.00.21.H29", "occupancy_cap": 1_000_000,
                    "always_open": True}) as r:
                assert r.status == 200, await r.text()
            async with s.put(f"/api/queue/v1/offices/{office}/categories/{code}", json={
                    "prefix": prefix, "name": f"Thử tải {code}"}) as r:
                assert r.status == 200, await r.text()
        ids = []
        for n in range(1, COUNTERS + 1):
            async with s.put(f"/api/queue/v1/offices/{OFFICE}/counters/{n}", json={
                    "name": f"Quầy {n}", "category_codes": ["DR"]}) as r:
                assert r.status == 200, await r.text()
                ids.append((await r.json())["id"])
        return ids


async def _issue(gw: str, admin: str, n: int, concurrency: int = 32) -> float:
    h = {"Authorization": f"Bearer {admin}"}
    todo = iter(range(n))
    async with aiohttp.ClientSession(base_url=gw, headers=h,
                                     connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        async def worker() -> None:
            for _ in todo:
                async with s.post("/api/queue/v1/tickets", json={"office_code": OFFICE, "category_code": "DR"}) as r:
                    if r.status != 201:
                        raise RuntimeError(f"ticket: {r.status} {await r.text()}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - started)


async def _drain(gw: str, officer: str, counters: list[int], prefix: str = "/api/queue",
                 ) -> tuple[list[int], float, list[float], int]:
    h = {"Authorization": f"Bearer {officer}"}
    handed: list[int] = []
    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(base_url=gw, headers=h,
                                     connector=aiohttp.TCPConnector(limit=len(counters))) as s:
        async def counter(cid: int) -> None:
            nonlocal errors
            while True:
                t0 = time.perf_counter()
                async with s.post(f"{prefix}/v1/counters/{cid}/call-next") as r:
                    body: dict[str, Any] = await r.json(content_type=None)
                latencies.append(time.perf_counter() - t0)
                if r.status != 200:
                    errors += 1
                    if errors <= 3:
                        print(f"  call-next error {r.status}: {str(body)[:300]}", flush=True)
                    if errors > 100:
                        raise RuntimeError(f"call-next: {r.status} {body}")
                    continue
                if body["ticket"] is None:
                    return
                handed.append(body["ticket"]["id"])

        started = time.perf_counter()
        await asyncio.gather(*(counter(c) for c in counters))
        elapsed = time.perf_counter() - started
    return handed, elapsed, latencies, errors


async def _db_check(url: str) -> tuple[int, int, int]:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS total, count(*) FILTER (WHERE status = 'waiting') AS waiting, "
            "count(*) FILTER (WHERE counter_id IS NULL) AS never_called "
            "FROM queue.tickets WHERE office_code = $1 AND category_code = 'DR'", OFFICE)
        return int(row["total"]), int(row["waiting"]), int(row["never_called"])
    finally:
        await conn.close()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """The load generator shares the machine's cores with the system under test: uvloop where installed."""
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))] * 1000 if s else float("nan")


def run_queue_bench(stack: Stack, raw_url: str | None, seconds: int, database_url: str,
                    raw_insert_32: Result | None = None) -> dict[str, Any]:
    gw = stack.gateway_url
    admin = token(gw, "quantri", "demo-admin")
    officer = admin  # an admin passes the office check at every counter
    counters = asyncio.run(_setup(gw, admin))
    out: dict[str, Any] = {}
    print("\nQueue tickets:", flush=True)
    body_file = Path(tempfile.mkstemp(suffix=".json")[1])
    body_file.write_text(json.dumps({"office_code": ISSUE_OFFICE, "category_code": "HT"}))
    env = {"BODY_FILE": str(body_file), "TOKEN": admin}
    issue = wrk("gateway POST /api/queue/v1/tickets", f"{gw}/api/queue/v1/tickets", connections=32,
                seconds=seconds, script="post.lua", env=env)
    out["issue"] = issue
    if raw_insert_32 is None and raw_url is not None:
        body_file.write_text(json.dumps({"note": "bench", "payload": "x" * 200}))
        raw_insert_32 = wrk("raw asyncpg insert (yardstick)", f"{raw_url}/insert", connections=32, seconds=seconds,
                            script="post.lua", env={"BODY_FILE": str(body_file)})
    out["raw"] = raw_insert_32
    print(f"  filling a queue of {TICKETS} tickets ...", flush=True)
    fill_rate = _run(_issue(gw, admin, TICKETS))
    handed, elapsed, latencies, errors = _run(_drain(gw, officer, counters))
    total, waiting, never_called = asyncio.run(_db_check(database_url))
    dupes = sum(n - 1 for n in Counter(handed).values() if n > 1)
    lost = TICKETS - len(set(handed))
    rate = len(handed) / elapsed if elapsed else 0.0
    print(f"  filled at {fill_rate:.0f} tickets/s (Python client, 32 concurrent)")
    print(f"  call-next via gateway, {COUNTERS} counters: {len(handed)} calls in {elapsed:.1f} s = {rate:.0f}/s  "
          f"p50 {_pct(latencies, .5):.1f} ms  p99 {_pct(latencies, .99):.1f} ms  errors {errors}")
    print(f"  afterwards: duplicates {dupes}, lost {lost} (database: {total} tickets, {waiting} still waiting, "
          f"{never_called} never called)")
    print("\nQueue ratios and targets:")
    print(f"  {'call-next via gateway, 32 counters (target >= 500/s)':<62} {rate:7.0f}/s")
    print(f"  {'duplicates / lost (target 0 / 0)':<62} {dupes} / {lost}")
    if raw_insert_32 is not None and raw_insert_32.rps:
        print(f"  {'ticket issue via gateway / raw insert, 32 conns (target >= 0.25)':<62} "
              f"{issue.rps / raw_insert_32.rps:5.2f}x")
    out.update({"call_next_rps": rate, "duplicates": dupes, "lost": lost, "fill_rate": fill_rate})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--database", default="motcua_queue_bench",
                        help="database re-created on DATABASE_URL's server")
    parser.add_argument("--queue-replicas", type=int, default=1, help="queue-service processes behind the gateway")
    args = parser.parse_args()
    url, started_db = fresh_database(args.database, bench_agencies=False)
    stack = Stack.on_free_ports(url, quiet=True,
                  replicas={"queue": args.queue_replicas},
                  extra_env={"ACCESS_LOG": "false", "RATE_LIMIT": "100000000/minute", "LOG_LEVEL": "WARNING"})
    base_port = free_port()
    env = {**stack.env(), "PYTHONPATH": str(ROOT)}
    baseline = subprocess.Popen([sys.executable, *Stack.uvicorn_args("scripts.bench_baseline:create_app", base_port)],
                                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        stack.start()
        stack.wait_ready(90)
        raw = f"http://127.0.0.1:{base_port}"
        wait_up(f"{raw}/noop")
        run_queue_bench(stack, raw, args.seconds, url)
    finally:
        baseline.terminate()
        stack.stop()
        baseline.wait(timeout=10)
        if started_db:
            from scripts.devdb import stop

            stop("pg-bench")


if __name__ == "__main__":
    main()
