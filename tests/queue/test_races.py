"""Concurrency with real commits: call-next over two app instances and two processes, numbering, last slot."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

from scripts.stack import ROOT, Stack, free_port
from services.queue_ticket.app import create_app
from services.queue_ticket.counters_repository import call_next
from shared.calendar import VN_TZ
from shared.db import Tx
from shared.settings import Settings
from tests.conftest import TEST_KID
from tests.queue.helpers import citizen, kiosk, new_code, officer, setup_office

ClientFactory = Callable[[Callable[[Settings], Any]], httpx.AsyncClient]


async def fill(clients: list[httpx.AsyncClient], make_token: Any, code: str, n: int) -> list[dict[str, Any]]:
    k = kiosk(make_token, code)

    async def one(i: int) -> dict[str, Any]:
        r = await clients[i % len(clients)].post("/v1/tickets", headers=k, json={
            "office_code": code, "category_code": "HT" if i % 3 else "CT"})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def drain(clients: list[httpx.AsyncClient], headers: dict[str, str], counters: list[int]) -> list[int]:
    """32 counters call next concurrently until nobody waits; returns every ticket id handed out."""
    handed: list[int] = []

    async def counter(i: int, counter_id: int) -> None:
        c = clients[i % len(clients)]
        while True:
            r = await c.post(f"/v1/counters/{counter_id}/call-next", headers=headers)
            assert r.status_code == 200, r.text
            t = r.json()["ticket"]
            if t is None:
                return
            handed.append(t["id"])

    await asyncio.gather(*(counter(i, cid) for i, cid in enumerate(counters)))
    return handed


async def test_32_concurrent_counters_over_two_app_instances_never_share_a_ticket(
    committed_client_factory: ClientFactory, make_token: Any,
) -> None:
    apps = [committed_client_factory(create_app), committed_client_factory(create_app)]
    code = new_code()
    office = await setup_office(apps[0], make_token, code, counters=32, cap=10_000)
    tickets = await fill(apps, make_token, code, 300)
    numbers = Counter((t["category_code"], t["number"]) for t in tickets)
    assert max(numbers.values()) == 1 and len(numbers) == 300
    handed = await drain(apps, officer(make_token, code), office["counters"])
    assert len(handed) == len(set(handed)) == 300
    assert set(handed) == {t["id"] for t in tickets}
    for c in apps:
        await c.aclose()


@pytest.fixture
def jwks_server(signing_key: Any) -> Iterator[str]:
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key(), as_dict=True)
    jwk.update({"kid": TEST_KID, "alg": "RS256", "use": "sig"})
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()


@pytest.fixture
def two_processes(database_url: str, settings: Settings, jwks_server: str) -> Iterator[list[str]]:
    """Two queue-service processes on their own ports (two replicas sharing the database)."""
    env = {**os.environ, "DATABASE_URL": database_url, "JWKS_URL": jwks_server, "JWT_ISSUER": settings.jwt_issuer,
           "ENVIRONMENT": "test", "ACCESS_LOG": "false", "PYTHONPATH": str(ROOT), "DB_POOL_SIZE": "8",
           "DB_MAX_OVERFLOW": "2"}
    ports = [free_port(), free_port()]
    logs = [tempfile.TemporaryFile() for _ in ports]  # noqa: SIM115 - closed in finally
    procs = [subprocess.Popen([sys.executable, *Stack.uvicorn_args("services.queue_ticket.app:create_app", p)],
                              env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True) for p, log in zip(ports, logs, strict=True)]
    try:
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        deadline = time.monotonic() + 30
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "queue processes did not start"
                time.sleep(0.2)
        yield urls
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)
        for log in logs:
            log.seek(0)
            errors = [line for line in log.read().decode(errors="replace").splitlines() if "error" in line.lower()]
            if errors:
                print("\n".join(errors[:5]))  # shown by pytest when the test fails
            log.close()


async def test_32_concurrent_call_next_over_two_processes(two_processes: list[str], make_token: Any) -> None:
    clients = [httpx.AsyncClient(base_url=u, timeout=30) for u in two_processes]
    code = new_code()
    office = await setup_office(clients[0], make_token, code, counters=32, cap=10_000)
    tickets = await fill(clients, make_token, code, 400)
    assert len({(t["category_code"], t["number"]) for t in tickets}) == 400
    handed = await drain(clients, officer(make_token, code), office["counters"])
    dupes = [tid for tid, n in Counter(handed).items() if n > 1]
    assert dupes == [] and set(handed) == {t["id"] for t in tickets}
    r = await clients[1].get(f"/v1/offices/{code}/board")
    assert r.json()["waiting_total"] == 0
    for c in clients:
        await c.aclose()


async def test_last_place_contested_by_two_citizens(
    committed_client_factory: ClientFactory, make_token: Any,
) -> None:
    apps = [committed_client_factory(create_app), committed_client_factory(create_app)]
    code = new_code()
    await setup_office(apps[0], make_token, code, slot_capacity=1)
    tomorrow = datetime.now(VN_TZ).date() + timedelta(days=1)
    for hour in range(8, 16):
        slot = datetime(tomorrow.year, tomorrow.month, tomorrow.day, hour, 0, tzinfo=VN_TZ).isoformat()
        who = [f"00109001{hour:02d}01", f"07919500{hour:02d}02"]
        results = await asyncio.gather(*(apps[i].post("/v1/appointments", headers=citizen(make_token, who[i]), json={
            "office_code": code, "category_code": "HT", "slot_start": slot}) for i in range(2)))
        statuses = sorted(r.status_code for r in results)
        assert statuses == [201, 409], [r.text for r in results]
        loser = next(r for r in results if r.status_code == 409)
        assert loser.json()["code"] == "slot_full"
        winner = next(r for r in results if r.status_code == 201).json()
        r = await apps[0].post(f"/v1/appointments/{winner['booking_code']}/confirm",
                               headers=citizen(make_token, who[results.index(next(
                                   r for r in results if r.status_code == 201))]))
        assert r.status_code == 200
    for c in apps:
        await c.aclose()


async def test_board_stream_hears_calls_made_by_another_replica(two_processes: list[str], make_token: Any) -> None:
    """A board connected to replica 0 sees a call made on replica 1 (PostgreSQL LISTEN/NOTIFY), after commit."""
    from tests.queue.test_e2e import read_events

    a, b = (httpx.AsyncClient(base_url=u, timeout=30) for u in two_processes)
    code = new_code()
    office = await setup_office(b, make_token, code, counters=2)
    async with a.stream("GET", f"/v1/offices/{code}/board/stream") as resp:
        events = read_events(resp)
        snap = await asyncio.wait_for(anext(events), 10)
        assert snap["event"] == "snapshot" and snap["data"]["latest_calls"] == []
        t = (await b.post("/v1/tickets", headers=kiosk(make_token, code),
                          json={"office_code": code, "category_code": "CT"})).json()
        r = await b.post(f"/v1/counters/{office['counters'][1]}/call-next", headers=officer(make_token, code))
        assert r.json()["ticket"]["id"] == t["id"]
        ev = await asyncio.wait_for(anext(events), 10)
        assert ev["event"] == "call" and ev["data"]["number"] == "B001" and ev["data"]["counter_number"] == 2
        r = await b.post(f"/v1/tickets/{t['id']}/recall", headers=officer(make_token, code))
        assert r.status_code == 200
        ev = await asyncio.wait_for(anext(events), 10)
        assert ev["event"] == "recall" and ev["data"]["number"] == "B001"
    for c in (a, b):
        await c.aclose()


async def test_call_next_statement_under_32_connections_never_fails_nor_repeats(
    committed_client_factory: ClientFactory, make_token: Any, database_url: str,
) -> None:
    """The call-next statement itself, 32 database connections at once (deadlocks PostgreSQL breaks are retried)."""
    app = committed_client_factory(create_app)
    code = new_code()
    office = await setup_office(app, make_token, code, counters=32, cap=100_000)
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "INSERT INTO queue.tickets (office_code, category_code, number_category, day, number, display, status, "
        "queued_at, issued_at, issued_by, issued_role) SELECT $1, 'HT', 'HT', current_date, g, 'A' || g, 'waiting', "
        "clock_timestamp(), now(), 'test', 'kiosk' FROM generate_series(1, 3000) g", code)
    await conn.close()
    pool = await asyncpg.create_pool(dsn, min_size=32, max_size=32)
    handed: list[int] = []

    async def counter(counter_id: int) -> None:
        async with pool.acquire() as con:
            while True:  # each call is the statement on its own (committed alone), as in a request
                row = await call_next(Tx(con), counter_id=counter_id, office_code=code, officer=None,
                                      officer_name=None, category_code=None, now=datetime.now(VN_TZ),
                                      served_by="test")
                if row is None or row["id"] is None:
                    return
                handed.append(row["id"])

    try:
        await asyncio.gather(*(counter(c) for c in office["counters"]))
    finally:
        await pool.close()
    assert len(handed) == len(set(handed)) == 3000
    await app.aclose()


async def test_concurrent_retries_of_one_idempotency_key_make_one_ticket(
    committed_client_factory: ClientFactory, make_token: Any, database_url: str,
) -> None:
    """A kiosk retrying one key 20 times over two instances: one ticket, and every answer is that ticket."""
    apps = [committed_client_factory(create_app), committed_client_factory(create_app)]
    code = new_code()
    await setup_office(apps[0], make_token, code, cap=10_000)
    headers = {**kiosk(make_token, code), "Idempotency-Key": f"race-{code}"}
    body = {"office_code": code, "category_code": "HT"}
    results = await asyncio.gather(*(apps[i % 2].post("/v1/tickets", json=body, headers=headers) for i in range(20)))
    assert {r.status_code for r in results} <= {201, 409}, [r.text for r in results if r.status_code >= 300]
    answers = {r.content for r in results if r.status_code == 201}
    assert len(answers) == 1
    ticket = json.loads(answers.pop())
    assert ticket["number"].startswith("A") and ticket["status"] == "waiting"
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        rows = await conn.fetch("SELECT id FROM queue.tickets WHERE office_code = $1", code)
    finally:
        await conn.close()
    assert [r["id"] for r in rows] == [ticket["id"]]
    for c in apps:
        await c.aclose()


async def test_call_next_retried_over_two_processes_skips_no_ticket(
    two_processes: list[str], make_token: Any, database_url: str,
) -> None:
    """8 counters over two processes; every call-next carries an Idempotency-Key and If-Match. One answer in three
    is "lost" and the request sent again to the other process; one in three is sent to both at once. Every
    ticket reaches exactly one counter's screen, and none is finished before a counter saw it."""
    clients = [httpx.AsyncClient(base_url=u, timeout=30) for u in two_processes]
    code = new_code()
    office = await setup_office(clients[0], make_token, code, counters=8, cap=10_000)
    tickets = await fill(clients, make_token, code, 160)
    staff = officer(make_token, code)
    shown: list[int] = []

    async def send(c: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
        while True:
            r = await c.post(url, headers=headers)
            if r.status_code == 409 and r.json()["code"] == "idempotency_key_in_use":
                await asyncio.sleep(0.02)  # the first is still in flight
                continue
            assert r.status_code == 200, r.text
            return r

    async def counter(n: int, counter_id: int) -> None:
        url = f"/v1/counters/{counter_id}/call-next"
        current: int | None = None
        for step in range(1000):
            headers = {**staff, "Idempotency-Key": f"{code}-{counter_id}-{step}",
                       "If-Match": f'"{"none" if current is None else current}"'}
            mode = (n + step) % 3
            if mode == 0:
                r = await send(clients[step % 2], url, headers)
            elif mode == 1:
                await send(clients[step % 2], url, headers)  # answered, but the answer is lost
                r = await send(clients[(step + 1) % 2], url, headers)
            else:
                r, _ = await asyncio.gather(send(clients[0], url, headers), send(clients[1], url, headers))
            ticket = r.json()["ticket"]
            if ticket is None:
                return
            shown.append(ticket["id"])
            current = ticket["id"]
        raise AssertionError("the counter never emptied the queue")

    await asyncio.gather(*(counter(n, cid) for n, cid in enumerate(office["counters"])))
    assert sorted(shown) == sorted(t["id"] for t in tickets)
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        left = await conn.fetchval("SELECT count(*) FROM queue.tickets WHERE office_code = $1 "
                                   "AND status <> 'finished'", code)
    finally:
        await conn.close()
    assert left == 0
    for c in clients:
        await c.aclose()
