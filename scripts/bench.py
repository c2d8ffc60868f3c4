"""`make bench`: the stack on a fresh database, loaded with wrk; ratios measured in one run.

Prints req/s, p50 and p99 for: a raw asyncpg endpoint (the yardstick), each service called
directly, and the same call through the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.devdb import recreate_database
from scripts.stack import ROOT, Stack, free_port

LUA = ROOT / "scripts" / "bench_lua"


@dataclass
class Result:
    name: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", value)
    if not m:
        return float("nan")
    n, unit = float(m.group(1)), m.group(2)
    return {"us": n / 1000, "ms": n, "s": n * 1000, "m": n * 60000}[unit]


def wrk(name: str, url: str, *, connections: int, seconds: int, script: str,
        env: dict[str, str] | None = None) -> Result:
    threads = min(2, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
           str(LUA / script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})},
                         check=False).stdout
    rps_match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    rps = float(rps_match.group(1)) if rps_match else 0.0
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    errs = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors:.*?timeout (\d+)", out)
    errors = (int(errs.group(1)) if errs else 0) + (int(sock.group(1)) if sock else 0)
    r = Result(name, connections, rps, _ms(p50.group(1)) if p50 else float("nan"),
               _ms(p99.group(1)) if p99 else float("nan"), errors)
    print(f"  {name:<44} c={connections:<3} {rps:>9.0f} req/s  p50 {r.p50_ms:7.2f} ms  "
          f"p99 {r.p99_ms:7.2f} ms  errors {errors}", flush=True)
    return r


# Direct (A) and through the gateway (B), four runs each: single runs of one side swung by 20-30 %
# between neighbours, more than the gateway costs, so each side's mean is taken over a balanced order.
ORDER = ("direct", "gateway", "gateway", "direct", "gateway", "direct", "direct", "gateway")


def combined(runs: list[Result]) -> Result:
    """Repeated runs of one measurement: mean req/s and p50, the worst p99, all errors."""
    if len(runs) > 1:
        print(f"    {runs[0].name}: " + ", ".join(f"{r.rps:.0f}" for r in runs) + " req/s, p50 "
              + ", ".join(f"{r.p50_ms:.2f}" for r in runs) + " ms", flush=True)
    return Result(runs[0].name, runs[0].connections, sum(r.rps for r in runs) / len(runs),
                  sum(r.p50_ms for r in runs) / len(runs), max(r.p99_ms for r in runs), sum(r.errors for r in runs))


def fresh_database(name: str = "motcua_bench", bench_agencies: bool = True) -> tuple[str, bool]:
    """A new, migrated, seeded database; True when the bench started its own server."""
    base = os.environ.get("DATABASE_URL")
    started = False
    if not base:
        from scripts.devdb import start

        base = start("pg-bench", 54331, fast=False)
        started = True
    url = base.rsplit("/", 1)[0] + "/" + name

    asyncio.run(recreate_database(url, name))
    from scripts.seed import seed_all
    from shared.migrations import upgrade_all
    from shared.settings import Settings

    upgrade_all(url)
    asyncio.run(seed_all(Settings(database_url=url)))
    if bench_agencies:
        asyncio.run(seed_bench_agencies(url))
    return url, started


BENCH_AGENCIES = [f"000.00.{i:02d}.B99" for i in range(1, 65)]
# The one-agency runs' own agencies (not among the 64): a run moves to the next one every PER_AGENCY
# requests per wrk thread, before the 9,999 codes an agency has a day run out.
SINGLE_AGENCIES = [f"000.00.{i:02d}.B98" for i in range(1, 65)]
PER_AGENCY = 4000


async def seed_bench_agencies(url: str) -> None:
    """64 more commune agencies: national intake is spread over 3,321 communes, not one. They sit in Hà Nội
    (unit code '01'), the demo applicant's province: an office receives only its own province's dossiers."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    await conn.executemany(
        "INSERT INTO core.agencies (code, name, search_text, level, admin_unit_code, sessions) "
        "VALUES ($1, $2, $3, 'commune', $4, '[{\"start\": \"00:00\", \"end\": \"23:59\"}]') "
        "ON CONFLICT DO NOTHING",
        [(code, f"UBND xã thử tải {i}", f"ubnd xa thu tai {i}", "01")
         for i, code in enumerate(BENCH_AGENCIES + SINGLE_AGENCIES, 1)])
    await conn.close()


def token(gateway: str, username: str, password: str) -> str:
    data = urllib.parse.urlencode({"grant_type": "password", "username": username,
                                   "password": password}).encode()
    with urllib.request.urlopen(f"{gateway}/api/auth/v1/token", data) as resp:  # noqa: S310
        tok: str = json.load(resp)["access_token"]
        return tok


def try_post(url: str, body: dict[str, Any], tok: str) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={  # noqa: S310
        "Content-Type": "application/json", "Authorization": f"Bearer {tok}",
        "Idempotency-Key": f"probe-{time.time_ns()}"})
    try:
        with urllib.request.urlopen(req) as resp:  # noqa: S310
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        print(f"  probe {url}: {exc.code} {exc.read()[:300]!r}")
        return int(exc.code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--only", nargs="*", default=["ping", "write", "submit", "workflow"],
                        help="sections to run: ping write submit workflow")
    parser.add_argument("--stats-dossiers", type=int, default=1_000_000,
                        help="finished dossiers loaded for the statistics latency (make seed-stats)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed for the bench: apt-get install wrk")
    url, started_db = fresh_database()
    stack = Stack.on_free_ports(url, quiet=True,
                  extra_env={"ACCESS_LOG": "false", "RATE_LIMIT": "100000000/minute", "LOG_LEVEL": "WARNING"})
    base_port = free_port()
    env = {**stack.env(), "PYTHONPATH": str(ROOT)}
    baseline = subprocess.Popen([sys.executable, *Stack.uvicorn_args("scripts.bench_baseline:create_app", base_port)],
                                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results: dict[str, Result] = {}
    extra: list[subprocess.Popen[bytes]] = []
    s = args.seconds
    try:
        stack.start()
        stack.wait_ready(90)
        gw = stack.gateway_url
        raw = f"http://127.0.0.1:{base_port}"
        direct = f"http://127.0.0.1:{stack.service_ports['intake']}"
        tok = token(gw, "canbo.phuong", "demo-officer")
        auth_env = {"TOKEN": tok}
        print("\nWarm-up ...", flush=True)
        wrk("warmup", f"{gw}/api/intake/v1/ping", connections=8, seconds=2, script="get.lua", env=auth_env)
        wrk("warmup", f"{raw}/noop", connections=8, seconds=1, script="get.lua")
        print("\nNo-database endpoint (GET /v1/ping, token verified):", flush=True)
        for c in (1, 32) if "ping" in args.only else ():
            results[f"ping_direct_{c}"] = wrk("intake direct /v1/ping", f"{direct}/v1/ping",
                                               connections=c, seconds=s, script="get.lua", env=auth_env)
            results[f"ping_gateway_{c}"] = wrk("gateway /api/intake/v1/ping", f"{gw}/api/intake/v1/ping",
                                                connections=c, seconds=s, script="get.lua", env=auth_env)
        if "submit" in args.only:
            print("\nCatalog search (public, accent-insensitive):", flush=True)
            results["catalog_1"] = wrk("gateway GET /api/intake/v1/procedures?q=", f"{gw}/api/intake/v1/procedures"
                                       "?q=dang%20ky%20khai%20sinh", connections=1, seconds=s, script="get.lua")
        body_file = Path(tempfile.mkstemp(suffix=".json")[1])
        print("\nDatabase write:", flush=True)
        body_file.write_text(json.dumps({"note": "bench", "payload": "x" * 200}))
        for c in (1, 32) if {"write", "submit", "workflow"} & set(args.only) else ():
            results[f"raw_insert_{c}"] = wrk("raw asyncpg insert (yardstick)", f"{raw}/insert",
                                              connections=c, seconds=s, script="post.lua",
                                              env={"BODY_FILE": str(body_file)})
        # The same raw insert behind a second gateway (its "queue" upstream points at the yardstick):
        # what the proxy adds to a database write, whatever the service does.
        gw2_port = free_port()
        gw2 = subprocess.Popen([sys.executable, *Stack.uvicorn_args("gateway.app:create_app", gw2_port)],
                               env={**env, "QUEUE_URL": raw}, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        extra.append(gw2)
        wait_up(f"http://127.0.0.1:{gw2_port}/healthz")
        for c in (1, 32) if "write" in args.only else ():
            results[f"raw_via_gateway_{c}"] = wrk("gateway -> raw asyncpg insert", f"http://127.0.0.1:{gw2_port}/api/queue/v1/insert",
                                                   connections=c, seconds=s, script="post.lua",
                                                   env={"BODY_FILE": str(body_file), **auth_env})
        from scripts.bench_dossier import dossier_body

        dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)

        dossier = dossier_body()
        if "submit" in args.only and try_post(f"{direct}/v1/dossiers", dossier, tok) == 201:
            admin = token(gw, "quantri", "demo-admin")
            body_file.write_text(json.dumps({**dossier, "receiving_agency_code": "__AGENCY__"}))
            # Direct and through the gateway in the order A B B A B A A B, averaged: a drift of the disk or of
            # the worker's backlog during the section weighs on both sides alike (single runs swung 0.73-1.13).
            print("\nDossier submission (direct and via the gateway, four runs each: A B B A B A A B):", flush=True)
            single = iter(SINGLE_AGENCIES[i:i + 4] for i in range(0, len(SINGLE_AGENCIES), 4))
            senv = {"BODY_FILE": str(body_file), "TOKEN": admin}
            for c in (1, 32):
                runs: dict[str, list[Result]] = {"direct": [], "gateway": []}
                for where in ORDER:
                    base = direct if where == "direct" else f"{gw}/api/intake"
                    label = "intake direct" if where == "direct" else "gateway POST /api/intake/v1/dossiers,"
                    settle(dsn)
                    runs[where].append(wrk(f"{label} one agency", f"{base}/v1/dossiers", connections=c, seconds=s,
                                           script="post_agencies.lua",
                                           env={**senv, "AGENCIES": ",".join(next(single)),
                                                "PER_AGENCY": str(PER_AGENCY)}))
                for where, done in runs.items():
                    results[f"submit_{where}_{c}"] = combined(done)
            runs = {"direct": [], "gateway": []}
            for where in ORDER:
                settle(dsn)
                runs[where].append(wrk(
                    "intake direct, 64 agencies" if where == "direct" else "gateway, 64 agencies",
                    f"{direct}/v1/dossiers" if where == "direct" else f"{gw}/api/intake/v1/dossiers",
                    connections=32, seconds=s, script="post_agencies.lua",
                    env={**senv, "AGENCIES": ",".join(BENCH_AGENCIES)}))
            for where, done in runs.items():
                results[f"submit_spread_{where}_32"] = combined(done)
            # The yardstick again, right after: the submissions are compared with the mean of both
            # (a machine that slows down during the run otherwise weighs on the submissions only).
            settle(dsn)
            body_file.write_text(json.dumps({"note": "bench", "payload": "x" * 200}))
            after = wrk("raw asyncpg insert (yardstick, again)", f"{raw}/insert", connections=32, seconds=s,
                        script="post.lua", env={"BODY_FILE": str(body_file)})
            if "raw_insert_32" in results:
                results["raw_insert_around_32"] = combined([results["raw_insert_32"], after])
        else:
            print("  (dossier submission not available: skipped)")
        if "workflow" in args.only:
            bench_workflow(results, args, url, gw, raw, tok, s)
        report(results)
    finally:
        baseline.terminate()
        for proc in extra:
            proc.terminate()
        stack.stop()
        baseline.wait(timeout=10)
        if started_db:
            from scripts.devdb import stop

            stop("pg-bench")


def bench_workflow(results: dict[str, Result], args: argparse.Namespace, url: str, gw: str, raw: str, tok: str,
                   s: int) -> None:
    from scripts.bench_workflow import actionable_codes, run_stats_latency
    from scripts.seed_stats import seed

    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    codes = actionable_codes(dsn, 60_000)
    settle(dsn)
    first = codes.read_text().split()[0]
    print("\nDossier workflow:", flush=True)
    auth_env = {"TOKEN": tok}
    reads: dict[str, list[Result]] = {"raw": [], "gateway": []}
    for where in ("raw", "gateway", "gateway", "raw"):  # A B B A, as the submissions (reads write nothing)
        reads[where].append(
            wrk("raw asyncpg read (yardstick)", f"{raw}/read", connections=32, seconds=s, script="get.lua")
            if where == "raw" else
            wrk("gateway GET /api/workflow/v1/dossiers/{code}", f"{gw}/api/workflow/v1/dossiers/{first}",
                connections=32, seconds=s, script="get.lua", env=auth_env))
    results["raw_read_32"], results["read_gateway_32"] = combined(reads["raw"]), combined(reads["gateway"])
    results["action_gateway_32"] = wrk("gateway POST .../actions (assign)", gw, connections=32, seconds=s,
                                       script="actions.lua", env={**auth_env, "CODES_FILE": str(codes)})
    print(f"  loading {args.stats_dossiers} finished dossiers for the statistics ...", flush=True)
    took = asyncio.run(seed(dsn, args.stats_dossiers, progress=False))
    print(f"  loaded in {took:.0f} s", flush=True)
    p50, p95 = run_stats_latency(gw, token(gw, "quantri", "demo-admin"))
    results["stats_p95"] = Result("stats one province, one month", 1, 0.0, p50, p95, 0)
    print(f"  {'GET /api/workflow/v1/stats (province, month), 1 conn':<44}       p50 {p50:7.2f} ms  p95 {p95:7.2f} ms")


def drain_jobs(dsn: str, timeout: float = 900) -> None:
    """Let the worker finish what the submissions enqueued (each section is measured on its own),
    and say how fast it caught up: the jobs a burst leaves behind are part of its cost."""
    import asyncpg

    async def counts() -> tuple[int, int]:
        conn = await asyncpg.connect(dsn)
        try:
            row = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM jobs.pgqueuer WHERE status IN ('queued', 'picked')) AS left, "
                "(SELECT count(*) FROM jobs.pgqueuer_log WHERE status = 'successful') AS done")
            return int(row["left"]), int(row["done"])
        finally:
            await conn.close()

    start = time.monotonic()
    left, done_before = asyncio.run(counts())
    done = done_before
    reported = start
    while left and time.monotonic() - start < timeout:
        if time.monotonic() - reported >= 10:
            print(f"  waiting for the worker: {left} jobs left", flush=True)
            reported = time.monotonic()
        time.sleep(0.5)
        left, done = asyncio.run(counts())
    if time.monotonic() - start > 1:
        took = time.monotonic() - start
        print(f"  worker caught up with the backlog: {done - done_before} jobs in {took:.1f} s "
              f"({(done - done_before) / took:.0f} jobs/s)", flush=True)


def settle(dsn: str) -> None:
    """Start a measurement from a quiet database: no backlog of jobs from the previous one, its dead
    rows vacuumed and its dirty pages written (measured: an autovacuum and a checkpoint landing in
    the workflow section cut even the raw read yardstick from ~6,600 to ~1,900 req/s)."""
    import asyncpg

    drain_jobs(dsn)

    async def vacuum() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("VACUUM (ANALYZE)")
            await conn.execute("CHECKPOINT")
        finally:
            await conn.close()

    asyncio.run(vacuum())


def wait_up(url: str) -> None:
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def report(r: dict[str, Result]) -> None:
    print("\nRatios (same run):")

    def ratio(a: str, b: str, label: str) -> None:
        if a in r and b in r and r[b].rps:
            print(f"  {label:<62} {r[a].rps / r[b].rps:5.2f}x")

    ratio("ping_gateway_32", "ping_direct_32", "gateway / direct throughput, /ping, 32 conns (target >= 0.8)")
    if "ping_gateway_1" in r:
        added = r["ping_gateway_1"].p50_ms - r["ping_direct_1"].p50_ms
        print(f"  {'gateway added p50 at 1 conn, /ping (target <= 0.5 ms)':<62} {added:5.2f} ms")
    # Stricter than issue 2 asks (the service behind the gateway): an upstream costing almost nothing, so on
    # two shared cores the gateway's own CPU per request (~0.14 ms) weighs against ~0.45 ms in all.
    ratio("raw_via_gateway_32", "raw_insert_32", "gateway / direct, raw insert as the upstream, 32 conns (stricter)")
    if "raw_via_gateway_1" in r:
        added = r["raw_via_gateway_1"].p50_ms - r["raw_insert_1"].p50_ms
        print(f"  {'gateway added p50 at 1 conn, raw insert as the upstream (stricter)':<62} {added:5.2f} ms")
    # Submissions: each figure is the mean of four runs (A B B A B A A B); p99 is the worst of them.
    # One agency at 32 connections queues on that agency's daily counter row (group commit shortens the
    # queue); 64 agencies are CPU-bound: there the gateway's own CPU per request counts in full.
    ratio("submit_gateway_32", "submit_direct_32",
          "gateway / direct throughput, submit, one agency, 32 conns (target >= 0.8)")
    ratio("submit_spread_gateway_32", "submit_spread_direct_32",
          "gateway / direct throughput, submit, 64 agencies, 32 conns (target >= 0.8)")
    if "submit_gateway_1" in r:
        added = r["submit_gateway_1"].p50_ms - r["submit_direct_1"].p50_ms
        print(f"  {'gateway added p50 at 1 conn, submit (target <= 0.5 ms)':<62} {added:5.2f} ms")
    yardstick = "raw_insert_around_32" if "raw_insert_around_32" in r else "raw_insert_32"
    ratio("submit_gateway_32", yardstick, "submit via gateway / raw insert, 32 conns (target >= 0.25)")
    ratio("submit_spread_gateway_32", yardstick,
          "submit via gateway, 64 agencies / raw insert, 32 conns (target >= 0.25)")
    if "submit_spread_gateway_32" in r:
        print(f"  {'submit via gateway, 64 agencies, p99 at 32 conns (target < 150 ms)':<62} "
              f"{r['submit_spread_gateway_32'].p99_ms:5.1f} ms")
    if "submit_gateway_32" in r:
        print(f"  {'submit via gateway p99 at 32 conns (target < 150 ms)':<62} {r['submit_gateway_32'].p99_ms:5.1f} ms")
    if "catalog_1" in r:
        print(f"  {'catalog search via gateway, p99 at 1 conn (target < 20 ms)':<62} {r['catalog_1'].p99_ms:5.1f} ms")
    ratio("read_gateway_32", "raw_read_32", "dossier read via gateway / raw read, 32 conns (target >= 0.5)")
    ratio("action_gateway_32", yardstick, "action via gateway / raw insert, 32 conns (target >= 0.25)")
    if "stats_p95" in r:
        print(f"  {'statistics, 1M dossiers, province + month, p95 (target < 50 ms)':<62} "
              f"{r['stats_p95'].p99_ms:5.1f} ms")


if __name__ == "__main__":
    main()
