"""`make chaos`: faults injected into the whole system under load, and what survived, measured.

Starts its own PostgreSQL (an embedded instance under .data/pg-chaos, which it restarts and deletes at the
end), a local SMS provider that honours Idempotency-Key (services/dossier_workflow/sms_simulator.py) and the
whole stack under the same supervisor as `make run` (a process that dies is started again). For each
scenario, on loopback only and with bounded loads:

- N clients submit dossiers through the gateway, each retrying a request with the same Idempotency-Key
  (as a careful mobile app does) until it is answered;
- a kiosk (kiosk-pbd) issues tickets at office PBD (opened around the clock for the run), and officers at its
  three counters run call-next -> finish cycles with Idempotency-Key and the counter's current ticket as
  If-Match, retrying ambiguous failures (a reset, 5xx, a key still in flight) with the same key;
- the fault strikes when a quarter of the submissions are acknowledged.

Afterwards it checks, prints and asserts: requests, client-seen failures by status, rows lost (acknowledged
submissions missing in intake or never reaching the workflow; acknowledged tickets missing), duplicated state
changes, gaps in dossier codes, tickets skipped (called but never any counter's answer), SMS delivered twice
(the provider's own count) and seconds to recover after the fault ended (until a new submission is accepted
and visible in the workflow, and a new ticket is issued).

  python -m scripts.chaos                 # every scenario
  python -m scripts.chaos --short         # the CI subset, smaller loads
  python -m scripts.chaos --only kill-intake,pg-immediate --requests 300 --clients 8 --json figures.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
import httpx

from scripts.stack import ROOT, Stack, free_port

WARD = "000.00.21.H29"
OFFICE = "PBD"
PG_NAME = "pg-chaos"
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}  # and a 409 whose Idempotency-Key is still in flight
CLIENT_TIMEOUT = 10.0
GIVE_UP_AFTER = 90.0  # a client keeps retrying one request this long before it counts it failed
RECOVERY_LIMIT = 5.0
SMS_KEY = "chaos-sms-key"  # the local provider's key, loopback only
KIOSK = ("kiosk-pbd", "demo-kiosk-secret")
# (username, password, counter number at PBD): counter 1 serves HT, 2 HT and CT, 3 CT and KHAC
DESKS = [("canbo.phuong", "demo-officer", 1), ("canbo2.phuong", "demo-officer", 2),
         ("lanhdao.phuong", "demo-supervisor", 3)]
CATEGORIES = ["HT", "CT"]
LOCK_SECONDS = 6.0  # longer than a request's lock_timeout (2 s) and statement_timeout (5 s)
STALL_SECONDS = 6.0  # longer than a request's statement_timeout, about its client-side command timeout
PROVIDER_SLOW_SECONDS = 8.0
LOST_ANSWERS_SECONDS = 5.0  # the provider answers after the sender's timeout (5 s) this long


@dataclass
class Figures:
    scenario: str
    requests: int = 0
    acknowledged: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    given_up: int = 0
    lost: int = 0
    duplicated: int = 0
    code_gaps: int = 0
    tickets_issued: int = 0
    tickets_called: int = 0
    tickets_skipped: int = 0
    tickets_unserved: int = 0
    preconditions_failed: int = 0
    sms_sent: int = 0
    sms_twice: int = 0
    sms_replayed: int = 0  # sends the provider recognised by their Idempotency-Key (a retry after a timeout)
    recovery_s: float = 0.0
    up_s: float | None = None  # a killed server: until its replacement answers /healthz
    load: float = 0.0  # the machine's 1-minute load average when the fault struck
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    def check(self) -> None:
        if self.lost:
            self.problems.append(f"{self.lost} acknowledged rows lost")
        if self.duplicated:
            self.problems.append(f"{self.duplicated} duplicated state changes")
        if self.code_gaps:
            self.problems.append(f"{self.code_gaps} gaps in dossier codes")
        if self.tickets_skipped:
            self.problems.append(f"{self.tickets_skipped} tickets skipped")
        if self.tickets_unserved:
            self.problems.append(f"{self.tickets_unserved} tickets never called")
        if self.sms_twice:
            self.problems.append(f"{self.sms_twice} SMS sent twice")
        if self.failures.get("500"):  # a fault is a 503 with Retry-After (or a lost connection), never a 500
            self.problems.append(f"{self.failures['500']} answers 500 (a database outage must be 503)")
        if self.given_up:
            self.problems.append(f"{self.given_up} requests never succeeded")
        if self.recovery_s > RECOVERY_LIMIT:
            self.problems.append(f"recovery took {self.recovery_s:.1f} s (> {RECOVERY_LIMIT:.0f} s)")

    HEADER = (f"{'scenario':<16} {'req':>5} {'ok':>5} {'lost':>4} {'dup':>3} {'gaps':>4} {'tickets':>7} "
              f"{'skip':>4} {'sms':>4} {'sms2':>4} {'rep':>4} {'recover':>7} {'up':>5} {'load':>4} {'wall':>5}  "
              "client-seen failures")

    def as_json(self) -> dict[str, Any]:
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "failures": dict(self.failures)}

    def line(self) -> str:
        fails = " ".join(f"{k}×{v}" for k, v in sorted(self.failures.items())) or "none"
        up = "-" if self.up_s is None else f"{self.up_s:.1f}s"
        more = f" (+{len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        verdict = "PASS" if not self.problems else "FAIL: " + "; ".join(p[:160] for p in self.problems[:3]) + more
        return (f"{self.scenario:<16} {self.requests:>5} {self.acknowledged:>5} {self.lost:>4} {self.duplicated:>3} "
                f"{self.code_gaps:>4} {self.tickets_called:>7} {self.tickets_skipped:>4} {self.sms_sent:>4} "
                f"{self.sms_twice:>4} {self.sms_replayed:>4} {self.recovery_s:>6.1f}s {up:>5} {self.load:>4.1f} "
                f"{self.wall_s:>4.0f}s  [{fails}]  {verdict}")


def submission(marker: str) -> dict[str, Any]:
    return {
        "channel": "counter", "procedure_code": "1.001193", "receiving_agency_code": WARD,
        "applicant": {"full_name": "Nguyễn Văn An", "id_number": "001090012345", "date_of_birth": "1990-05-12",
                      "phone": "0912345678", "address": {"line": "12 phố Kim Mã", "ward_code": "00004"}},
        "documents": [{"name": "Tờ khai đăng ký khai sinh"}, {"name": "Giấy chứng sinh"}],
        "notes": marker,  # which client request it was: found again in intake.dossiers.notes
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem_code(r: httpx.Response) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        return str(r.json().get("code", ""))
    return ""


class Load:
    """Clients that retry every request with the same Idempotency-Key until it is answered: dossier
    submissions, a kiosk issuing tickets and officers calling and finishing them at their counters."""

    def __init__(self, gateway: str, tokens: dict[str, str], counters: dict[int, int], figures: Figures) -> None:
        self.gateway, self.tokens, self.counters, self.figures = gateway, tokens, counters, figures
        self.run_id = uuid.uuid4().hex[:8]
        self.unsafe_counters = False  # the counters as before issue 20: no Idempotency-Key, no If-Match
        self.codes: dict[str, str] = {}  # marker -> acknowledged dossier code
        self.tickets: set[int] = set()  # tickets the kiosk was answered
        self.seen: set[int] = set()  # tickets some counter got as the answer of its call-next
        self.submissions_done = asyncio.Event()
        self.midway = asyncio.Event()  # a quarter of the submissions acknowledged: the fault strikes
        self.midway_at = 0
        self.loads_done = asyncio.Event()  # submissions and the recovery probe: the kiosk may stop
        self.kiosk_done = asyncio.Event()  # no more tickets: the counters serve who waits, then stop

    def client(self, timeout: float = CLIENT_TIMEOUT) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.gateway, timeout=timeout)

    async def send(self, client: httpx.AsyncClient, method: str, path: str, *, token: str, key: str | None,
                   json: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> httpx.Response | None:
        """The answer (2xx or a refusal that a retry would not change), or None after GIVE_UP_AFTER."""
        started = time.monotonic()
        delay = 0.1
        while time.monotonic() - started < GIVE_UP_AFTER:
            self.figures.requests += 1
            try:
                r = await client.request(method, path, json=json, headers={
                    **bearer(token), **({"Idempotency-Key": key} if key else {}), **(headers or {})})
            except httpx.HTTPError as exc:
                self.figures.failures[type(exc).__name__] += 1
            else:
                if r.status_code < 400:
                    return r
                self.figures.failures[str(r.status_code)] += 1
                retry = r.status_code in RETRYABLE or (
                    r.status_code == 409 and problem_code(r) == "idempotency_key_in_use")
                if not retry:
                    return r
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        self.figures.given_up += 1
        return None

    async def submit_many(self, count: int, clients: int) -> None:
        async def one_client(indexes: range) -> None:
            async with self.client() as client:
                for i in indexes:
                    marker = f"chaos-{self.run_id}-{i}"
                    r = await self.send(client, "POST", "/api/intake/v1/dossiers", token=self.tokens["officer"],
                                        key=f"{self.run_id}-{i}", json=submission(marker))
                    if r is not None and r.status_code == 201:
                        self.codes[marker] = r.json()["code"]
                        self.figures.acknowledged += 1
                        if self.figures.acknowledged >= self.midway_at:
                            self.midway.set()
                    elif r is not None:
                        self.figures.problems.append(f"submission refused: {r.status_code} {r.text[:200]}")

        self.midway_at = count // 4
        try:
            await asyncio.gather(*(one_client(range(c, count, clients)) for c in range(min(clients, count))))
        finally:
            self.submissions_done.set()
            self.midway.set()

    async def kiosk(self, limit: int, interval: float) -> None:
        """Tickets for walk-ins, HT and CT in turn, until the loads are done and half of `limit` is issued (or
        `limit` tickets)."""
        try:
            await self._kiosk(limit, interval)
        finally:
            self.kiosk_done.set()

    async def _kiosk(self, limit: int, interval: float) -> None:
        async with self.client() as client:
            i = 0
            while i < limit and not (self.loads_done.is_set() and i >= limit // 2):
                r = await self.send(client, "POST", "/api/queue/v1/tickets", token=self.tokens["kiosk"],
                                    key=f"{self.run_id}-t{i}",
                                    json={"office_code": OFFICE, "category_code": CATEGORIES[i % len(CATEGORIES)]})
                if r is not None and r.status_code == 201:
                    self.tickets.add(int(r.json()["id"]))
                    self.figures.tickets_issued += 1
                elif r is not None:
                    self.figures.problems.append(f"ticket refused: {r.status_code} {r.text[:200]}")
                i += 1
                await asyncio.sleep(interval)

    async def desk(self, username: str, number: int) -> None:
        """An officer at counter `number`: call-next (If-Match: the ticket it serves), finish it, again;
        after the loads, until nobody waits. Every request keeps its key across its retries."""
        counter, token = self.counters[number], self.tokens[username]
        base = f"/api/queue/v1/counters/{counter}"
        current: int | None = None
        n = 0
        async with self.client() as client:
            while True:
                n += 1
                key = f"{self.run_id}-k{number}-{n}"
                # Only an empty answer to a call-next SENT after the last ticket was issued means nobody waits:
                # a retried call-next gets its first answer again (Idempotency-Key), which may predate that ticket.
                kiosk_was_done = self.kiosk_done.is_set()
                precondition = {"If-Match": f'"{"none" if current is None else current}"'}
                r = await self.send(client, "POST", f"{base}/call-next", token=token,
                                    key=None if self.unsafe_counters else key,
                                    headers={} if self.unsafe_counters else precondition)
                if r is None:
                    return
                if r.status_code == 412:  # the counter serves another ticket than we believe: shown in the answer
                    self.figures.preconditions_failed += 1
                    current = r.json().get("current_ticket_id")
                    continue
                if r.status_code != 200:
                    self.figures.problems.append(f"call-next refused: {r.status_code} {r.text[:200]}")
                    await asyncio.sleep(0.5)
                    continue
                ticket = r.json()["ticket"]
                current = None  # call-next finished what the counter served
                if ticket is None:
                    if kiosk_was_done:
                        return
                    await asyncio.sleep(0.2)
                    continue
                current = int(ticket["id"])
                self.seen.add(current)
                r = await self.send(client, "POST", f"{base}/tickets/{current}/finish", token=token,
                                    key=None if self.unsafe_counters else f"{key}-finish", json={"dossier_codes": []})
                if r is not None and r.status_code == 200:
                    current = None
                elif r is not None:
                    self.figures.problems.append(f"finish refused: {r.status_code} {r.text[:200]}")


class AnswerDropper:
    """A TCP proxy before the gateway that, while `share` > 0, lets requests through and, for that share of
    the answers, resets the client's connection instead of returning it: the work was done (committed), the
    client never learns it (a mobile network, a crashed load balancer) and must retry."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.share = 0.0
        self.dropped = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return

        async def upstream() -> None:
            while data := await reader.read(65536):
                up_writer.write(data)
                await up_writer.drain()

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                if self.share and random.random() < self.share:  # not for security
                    self.dropped += 1
                    sock = writer.get_extra_info("socket")
                    if sock is not None:  # a reset, not a clean close
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            up_writer.transport.abort()
            writer.transport.abort()


class Chaos:
    def __init__(self, work: Path, short: bool, pg_name: str = PG_NAME, unsafe_counters: bool = False) -> None:
        self.unsafe_counters = unsafe_counters
        self.work = work
        self.short = short
        self.pg_name = pg_name
        self.database_url = ""
        self.stack: Stack | None = None
        self.sms_url = ""
        self.admin = ""
        self.pbd: dict[str, Any] = {}
        self.acknowledged: list[str] = []  # every scenario's acknowledged dossier codes
        self.dropper: AnswerDropper | None = None

    # --- the system under test -------------------------------------------------------------------------
    def start(self) -> None:
        """PostgreSQL, migrations, demo data, the SMS provider and the stack; from the main thread (the
        processes die with the thread that started them)."""
        from scripts.devdb import start as start_db
        from scripts.seed import seed_all
        from shared.migrations import upgrade_all
        from shared.settings import Settings

        remove_database(self.pg_name)  # what a killed run left behind: every run starts fresh
        self.database_url = start_db(self.pg_name, free_port(), fast=False)
        upgrade_all(self.database_url)
        asyncio.run(seed_all(Settings(database_url=self.database_url)))
        sms_port = free_port()
        self.sms_url = f"http://127.0.0.1:{sms_port}"
        self.stack = Stack.on_free_ports(
            self.database_url,
            extra_env={"ACCESS_LOG": "false", "RATE_LIMIT": "100000/minute",
                       "STORAGE_DIR": str(self.work / "files"),
                       "SMS_API_URL": f"{self.sms_url}/sms", "SMS_API_KEY": SMS_KEY},
            log_dir=self.work / "logs",
        )
        self.stack.spawn("sms", ["-m", "services.dossier_workflow.sms_simulator", "--port", str(sms_port)])
        self.stack.start()
        self.stack.wait_ready(timeout=120)

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()
        remove_database(self.pg_name)

    @property
    def dsn(self) -> str:
        return self.database_url.replace("+asyncpg", "")

    async def supervise(self) -> None:
        """What `make run` does: a process that dies is started again."""
        assert self.stack is not None
        while True:
            self.stack.restart_dead()
            await asyncio.sleep(0.2)

    @contextlib.asynccontextmanager
    async def connection(self) -> Any:
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            yield conn
        finally:
            await conn.close()

    # --- faults ----------------------------------------------------------------------------------------
    def kill(self, name: str) -> Callable[[], Awaitable[None]]:
        async def fault() -> None:
            assert self.stack is not None
            self.stack.kill(name, signal.SIGKILL)

        return fault

    def pg_restart(self, mode: str) -> Callable[[], Awaitable[None]]:
        async def fault() -> None:
            from scripts.devdb import restart

            await asyncio.to_thread(restart, self.pg_name, mode)

        return fault

    def held_lock(self, seconds: float = LOCK_SECONDS) -> Callable[[], Awaitable[None]]:
        """A session holds the table every submission writes (the daily code counter) for `seconds`."""
        async def fault() -> None:
            async with self.connection() as conn, conn.transaction():
                await conn.execute("LOCK TABLE intake.daily_counters IN ACCESS EXCLUSIVE MODE")
                await asyncio.sleep(seconds)

        return fault

    def stalled_commit(self, seconds: float = STALL_SECONDS) -> Callable[[], Awaitable[None]]:
        """Commits wait for a synchronous standby that does not exist, then the wait is lifted."""
        async def fault() -> None:
            async with self.connection() as conn:
                await conn.execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
                await conn.execute("SELECT pg_reload_conf()")
                try:
                    await asyncio.sleep(seconds)
                finally:
                    await conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
                    await conn.execute("SELECT pg_reload_conf()")

        return fault

    def slow_provider(self, seconds: float = PROVIDER_SLOW_SECONDS) -> Callable[[], Awaitable[None]]:
        """The SMS provider delivers, then answers only after the sender's timeout, for `seconds`. The fault
        ends when the last call that met the slow provider has timed out (SEND_TIMEOUT after the switch)."""
        from services.dossier_workflow.notifier import SEND_TIMEOUT

        async def fault() -> None:
            async with httpx.AsyncClient(base_url=self.sms_url, timeout=10) as c:
                (await c.put("/switches", json={"delay_after_accept": SEND_TIMEOUT + 1})).raise_for_status()
                try:
                    await asyncio.sleep(seconds)
                finally:
                    (await c.put("/switches", json={"delay_after_accept": 0.0})).raise_for_status()
            await asyncio.sleep(SEND_TIMEOUT)

        return fault

    def lost_answers(self, seconds: float = LOST_ANSWERS_SECONDS) -> Callable[[], Awaitable[None]]:
        """A third of the answers lost after the work was done, for `seconds` (the load goes through the
        AnswerDropper in this scenario)."""
        async def fault() -> None:
            assert self.dropper is not None
            self.dropper.share = 1 / 3
            try:
                await asyncio.sleep(seconds)
            finally:
                self.dropper.share = 0.0

        return fault

    def scenarios(self) -> dict[str, Callable[[], Awaitable[None]]]:
        return {
            "kill-gateway": self.kill("gateway"),
            "kill-intake": self.kill("intake"),
            "kill-workflow": self.kill("workflow"),
            "kill-postal": self.kill("postal"),
            "kill-queue": self.kill("queue"),
            "kill-worker": self.kill("worker0"),
            "pg-fast": self.pg_restart("fast"),
            "pg-immediate": self.pg_restart("immediate"),
            "held-lock": self.held_lock(),
            "stalled-commit": self.stalled_commit(),
            "provider-timeout": self.slow_provider(),
            "lost-answers": self.lost_answers(),
        }

    # --- the office and the people ---------------------------------------------------------------------
    async def token(self, form: dict[str, str]) -> str:
        assert self.stack is not None
        async with httpx.AsyncClient(base_url=self.stack.gateway_url, timeout=CLIENT_TIMEOUT) as c:
            for _ in range(150):
                with contextlib.suppress(httpx.HTTPError):
                    r = await c.post("/api/auth/v1/token", data=form)
                    if r.status_code == 200:
                        return str(r.json()["access_token"])
                await asyncio.sleep(0.2)
        raise RuntimeError(f"no token for {form.get('username') or form.get('client_id')}")

    async def tokens(self) -> dict[str, str]:
        tokens = {"officer": await self.token({"grant_type": "password", "username": "canbo.phuong",
                                               "password": "demo-officer"}),
                  "kiosk": await self.token({"grant_type": "client_credentials", "client_id": KIOSK[0],
                                             "client_secret": KIOSK[1]})}
        for username, password, _ in DESKS:
            tokens[username] = await self.token({"grant_type": "password", "username": username,
                                                 "password": password})
        return tokens

    async def open_office(self) -> dict[int, int]:
        """PBD open around the clock with room for the run's tickets (restored by `restore_office`); the
        ids of its counters by number."""
        from services.queue_ticket.seed import OFFICES

        assert self.stack is not None
        self.pbd = next(o for o in OFFICES if o["code"] == OFFICE)
        self.admin = await self.token({"grant_type": "password", "username": "quantri", "password": "demo-admin"})
        officer = await self.token({"grant_type": "password", "username": DESKS[0][0], "password": DESKS[0][1]})
        async with httpx.AsyncClient(base_url=self.stack.gateway_url, timeout=CLIENT_TIMEOUT) as c:
            body = {k: self.pbd[k] for k in ("name", "agency_code")}
            r = await c.put(f"/api/queue/v1/offices/{OFFICE}", headers=bearer(self.admin),
                            json={**body, "occupancy_cap": 100_000, "always_open": True})
            r.raise_for_status()
            r = await c.get(f"/api/queue/v1/offices/{OFFICE}/counters", headers=bearer(officer))
            r.raise_for_status()
            return {int(k["number"]): int(k["id"]) for k in r.json()}

    async def restore_office(self) -> None:
        if not self.admin or self.stack is None:
            return
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient(base_url=self.stack.gateway_url, timeout=CLIENT_TIMEOUT) as c:
                await c.put(f"/api/queue/v1/offices/{OFFICE}", headers=bearer(self.admin),
                            json={k: self.pbd[k] for k in ("name", "agency_code", "occupancy_cap")})

    # --- one scenario ----------------------------------------------------------------------------------
    async def run(self, name: str, fault: Callable[[], Awaitable[None]], count: int, clients: int,
                  counters: dict[int, int]) -> Figures:
        assert self.stack is not None
        figures = Figures(name)
        gateway = self.stack.gateway_url
        if name == "lost-answers":
            self.dropper = AnswerDropper(self.stack.gateway_port)
            gateway = await self.dropper.start()
        try:
            load = Load(gateway, await self.tokens(), counters, figures)
            return await self._run(name, fault, count, clients, load)
        finally:
            if self.dropper is not None:
                await self.dropper.close()
                self.dropper = None

    async def _run(self, name: str, fault: Callable[[], Awaitable[None]], count: int, clients: int,
                   load: Load) -> Figures:
        assert self.stack is not None
        started = time.monotonic()
        figures = load.figures
        load.unsafe_counters = self.unsafe_counters
        before = await self.snapshot()
        tickets = max(40, count // 5)
        submitting = asyncio.create_task(load.submit_many(count, clients))
        kiosk = asyncio.create_task(load.kiosk(tickets, 0.05 if self.short else 0.1))
        desks = [asyncio.create_task(load.desk(user, number)) for user, _, number in DESKS]
        up: asyncio.Task[float] | None = None
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(load.midway.wait(), 60)
            figures.load = os.getloadavg()[0]
            killed = self.stack.proc(KILLS[name]) if name in KILLS else None
            await fault()
            fault_ended = time.monotonic()
            up = None if killed is None else asyncio.create_task(self.replaced(KILLS[name], killed))
            figures.recovery_s = await self.recovered(load, check_sms=name == "provider-timeout") - fault_ended
            if up is not None:  # recovered when the killed process is back too (postal is not on the probe's path)
                figures.up_s = await up - fault_ended
                figures.recovery_s = max(figures.recovery_s, figures.up_s)
            await submitting
            load.loads_done.set()
            for result in await asyncio.gather(kiosk, *desks, return_exceptions=True):
                if isinstance(result, BaseException):
                    raise result
        finally:  # after a failure (or Ctrl-C) the clients stop at once
            for task in (submitting, kiosk, *desks, *([up] if up is not None else [])):
                task.cancel()
        self.acknowledged += load.codes.values()
        await self.settle()
        await self.verify(load, figures, before)
        figures.wall_s = time.monotonic() - started
        figures.check()
        return figures

    async def replaced(self, name: str, killed: Any) -> float:
        """When the process that replaced `killed` answers /healthz (for the worker: when it runs)."""
        assert self.stack is not None
        port = self.stack.gateway_port if name == "gateway" else self.stack.service_ports.get(name)
        async with httpx.AsyncClient(timeout=1.0) as c:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                new = self.stack.proc(name)
                if new is not killed and new.poll() is None:
                    if port is None:
                        return time.monotonic()
                    with contextlib.suppress(httpx.HTTPError):
                        if (await c.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                            return time.monotonic()
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{name} was not replaced within 120 s")

    async def recovered(self, load: Load, *, check_sms: bool = False) -> float:
        """When a new submission is accepted again and reaches the workflow (worker and jobs up too) and a new
        ticket is issued (with `check_sms`, also when the submission's SMS is delivered)."""
        headers = bearer(load.tokens["officer"])
        key, ticket_key = uuid.uuid4().hex, uuid.uuid4().hex
        code: str | None = None
        ticket = visible = False
        sms = not check_sms
        last: dict[str, str] = {}
        async with load.client(timeout=2.0) as c, httpx.AsyncClient(base_url=self.sms_url, timeout=2.0) as p:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if code is None:
                        r = await c.post("/api/intake/v1/dossiers", json=submission("chaos-probe"),
                                         headers={**headers, "Idempotency-Key": key})
                        last["submission"] = f"{r.status_code} {r.text[:300]}"
                        if r.status_code == 201:
                            code = r.json()["code"]
                    if not ticket:
                        r = await c.post("/api/queue/v1/tickets", json={"office_code": OFFICE, "category_code": "HT"},
                                         headers={**bearer(load.tokens["kiosk"]), "Idempotency-Key": ticket_key})
                        last["ticket"] = f"{r.status_code} {r.text[:300]}"
                        ticket = r.status_code == 201
                    if code is not None and not visible:
                        r = await c.get(f"/api/workflow/v1/dossiers/{code}", headers=headers)
                        last["workflow"] = f"{r.status_code} {r.text[:300]}"
                        visible = r.status_code == 200
                    if code is not None and not sms:
                        r = await p.get("/messages")
                        sms = any(code in m["text"] for m in r.json())
                    if visible and ticket and sms:
                        return time.monotonic()
                except (httpx.HTTPError, ValueError) as exc:
                    last["error"] = repr(exc)
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the system did not recover within 120 s; last answers: {last}")

    async def settle(self, within: float = 120) -> None:
        """Every queued job done (or held as failed) before counting."""
        async with self.connection() as conn:
            deadline = time.monotonic() + within
            while time.monotonic() < deadline:
                left = await conn.fetchval("SELECT count(*) FROM jobs.pgqueuer WHERE status IN ('queued', 'picked')")
                if not left:
                    return
                await asyncio.sleep(0.3)

    async def sms_stats(self) -> dict[str, int]:
        async with httpx.AsyncClient(base_url=self.sms_url, timeout=10) as c:
            r = await c.get("/stats")
            r.raise_for_status()
            stats: dict[str, int] = r.json()
            return stats

    async def snapshot(self) -> dict[str, int]:
        async with self.connection() as conn:
            row = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM intake.dossiers) AS dossiers,"
                " (SELECT coalesce(sum(last_number), 0) FROM intake.daily_counters) AS numbers,"
                " (SELECT coalesce(max(id), 0) FROM queue.tickets) AS ticket")
            assert row is not None
            figures = {k: int(row[k]) for k in ("dossiers", "numbers", "ticket")}
        stats = await self.sms_stats()
        return {**figures, "sms_received": stats["received"], "sms_duplicates": stats["duplicates"],
                "sms_replayed": stats["replayed"]}

    async def verify(self, load: Load, figures: Figures, before: dict[str, int]) -> None:
        async with self.connection() as conn:
            rows = await conn.fetch(
                "SELECT d.notes AS marker, d.code, w.code IS NOT NULL AS in_workflow"
                " FROM intake.dossiers d LEFT JOIN workflow.dossiers w ON w.code = d.code WHERE d.notes LIKE $1",
                f"chaos-{load.run_id}-%")
            by_marker = Counter(r["marker"] for r in rows)
            figures.duplicated = sum(n - 1 for n in by_marker.values() if n > 1)
            stored = {r["code"]: r["in_workflow"] for r in rows}
            figures.lost = sum(1 for code in load.codes.values() if not stored.get(code))
            received_twice = await conn.fetchval(
                "SELECT count(*) FROM (SELECT dossier_code FROM workflow.history WHERE action = 'receive'"
                " AND dossier_code = ANY($1::text[]) GROUP BY dossier_code HAVING count(*) > 1) t", list(stored))
            figures.duplicated += int(received_twice)
            tickets = await conn.fetch(
                "SELECT id, status, called_at IS NOT NULL AS called FROM queue.tickets"
                " WHERE office_code = $1 AND id > $2", OFFICE, before["ticket"])
            known = {r["id"] for r in tickets}
            figures.lost += len(load.tickets - known)
            figures.tickets_called = sum(1 for r in tickets if r["called"])
            figures.tickets_skipped = sum(1 for r in tickets if r["called"] and r["id"] not in load.seen)
            figures.tickets_unserved = sum(1 for r in tickets if r["status"] == "waiting")
            called_twice = await conn.fetchval(
                "SELECT count(*) FROM (SELECT payload->>'ticket_id' FROM queue.board_events WHERE kind = 'call'"
                " AND office_code = $1 AND (payload->>'ticket_id')::bigint > $2 GROUP BY 1 HAVING count(*) > 1) t",
                OFFICE, before["ticket"])
            figures.duplicated += int(called_twice)
        after = await self.snapshot()
        figures.code_gaps = (after["numbers"] - before["numbers"]) - (after["dossiers"] - before["dossiers"])
        figures.sms_sent = after["sms_received"] - before["sms_received"]
        figures.sms_twice = after["sms_duplicates"] - before["sms_duplicates"]
        figures.sms_replayed = after["sms_replayed"] - before["sms_replayed"]


    async def every_receipt_sent(self, within: float = 240) -> Figures:
        """After every scenario: once the notification outbox is empty (the messages a killed worker had claimed
        go again when their claim runs out, a minute later), every acknowledged dossier's "received" SMS was
        delivered (`lost`: those never delivered) and none twice."""
        started = time.monotonic()
        figures = Figures("sms-delivery")
        async with self.connection() as conn:
            deadline = time.monotonic() + within
            while time.monotonic() < deadline:
                left = await conn.fetchval(
                    "SELECT (SELECT count(*) FROM workflow.notification_outbox)"
                    " + (SELECT count(*) FROM jobs.pgqueuer WHERE status IN ('queued', 'picked'))")
                if not left:
                    break
                await asyncio.sleep(1)
        async with httpx.AsyncClient(base_url=self.sms_url, timeout=30) as c:
            messages = (await c.get("/messages")).json()
        received = {m.group(1) for d in messages if (m := RECEIPT.match(d["text"]))}
        figures.acknowledged = len(self.acknowledged)
        figures.lost = sum(1 for code in self.acknowledged if code not in received)
        stats = await self.sms_stats()
        figures.sms_sent, figures.sms_twice = stats["received"], stats["duplicates"]
        figures.wall_s = time.monotonic() - started
        figures.check()
        return figures


RECEIPT = re.compile(r"Ho so (\S+) \(.*da duoc tiep nhan")  # the dossier_received template


def remove_database(name: str) -> None:
    """Stops the instance .data/<name> and deletes its data directory (and the one it links to)."""
    from scripts.devdb import stop as stop_db

    target = ROOT / ".data" / name
    if not (target.exists() or target.is_symlink()):
        return
    with contextlib.suppress(Exception):
        stop_db(name)
    real = target.resolve()
    if target.is_symlink():
        target.unlink()
    shutil.rmtree(real, ignore_errors=True)


@contextlib.contextmanager
def terminated_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI runner cancelling, `kill`) cleans up as Ctrl-C does; SIGINT interrupts even when the shell
    started us in the background with SIGINT ignored."""
    def on_term(_sig: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_term) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


SHORT = ["kill-intake", "kill-worker", "pg-immediate", "lost-answers"]
KILLS = {"kill-gateway": "gateway", "kill-intake": "intake", "kill-workflow": "workflow", "kill-postal": "postal",
         "kill-queue": "queue", "kill-worker": "worker0"}
CODES_PER_DAY = 9999  # an agency's dossier codes per day ({seq} has 4 digits): every scenario's load shares them


async def _scenarios(chaos: Chaos, names: list[str], count: int, clients: int, final_sms: bool) -> list[Figures]:
    assert chaos.stack is not None
    supervisor = asyncio.create_task(chaos.supervise())
    results: list[Figures] = []
    try:
        counters = await chaos.open_office()
        scenarios = chaos.scenarios()
        print(Figures.HEADER, flush=True)
        for name in names:
            figures = await chaos.run(name, scenarios[name], count, clients, counters)
            print(figures.line(), flush=True)
            results.append(figures)
        await chaos.restore_office()
        if final_sms:
            figures = await chaos.every_receipt_sent()
            print(figures.line(), flush=True)
            results.append(figures)
    finally:
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor
    return results


def run_all(short: bool, only: list[str] | None = None, requests: int = 0, clients: int = 0,
            report: Path | None = None, pg_name: str = PG_NAME, keep_logs: bool = False,
            unsafe_counters: bool = False) -> int:
    """Every scenario (or `only`, or the short subset); 0 when all passed. Cleans up everything it started,
    also on failure and Ctrl-C; the logs are kept (and named) when a scenario failed or with `keep_logs`."""
    names = only or (SHORT if short else ["kill-gateway", "kill-intake", "kill-workflow", "kill-postal", "kill-queue",
                                         "kill-worker", "pg-fast", "pg-immediate", "held-lock", "stalled-commit",
                                         "provider-timeout", "lost-answers"])
    count = requests or (120 if short else 800)
    conc = clients or (8 if short else 24)
    if len(names) * (count + 10) > CODES_PER_DAY:
        raise SystemExit(f"{len(names)} scenarios × {count} submissions would use up the ward's {CODES_PER_DAY} "
                         "dossier codes of the day: fewer --requests or scenarios")
    data = ROOT / ".data"
    data.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="chaos-", dir=data))
    chaos = Chaos(work, short, pg_name, unsafe_counters)
    unknown = [n for n in names if n not in chaos.scenarios()]
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(unknown)} (known: {', '.join(chaos.scenarios())})")
    started = time.monotonic()
    results: list[Figures] = []
    error: str | None = None
    with terminated_as_interrupt():
        try:
            chaos.start()
            results = asyncio.run(_scenarios(chaos, names, count, conc, final_sms=not short))
        except Exception as exc:  # reported, counted as a failure, and everything is still cleaned up
            error = f"{type(exc).__name__}: {exc}"
        except KeyboardInterrupt:
            chaos.stop()
            shutil.rmtree(work, ignore_errors=True)
            print("chaos: interrupted; everything it started is stopped and deleted", flush=True)
            return 130
        finally:
            chaos.stop()  # a second time after an interrupt: nothing left to do
    failed = [f for f in results if f.problems]
    ok = error is None and not failed and len(results) >= len(names)
    wall = time.monotonic() - started
    kept = keep_logs or not ok
    if report is not None:
        report.write_text(json.dumps({"ok": ok, "error": error, "wall_s": wall, "logs": str(work) if kept else None,
                                      "scenarios": [f.as_json() for f in results]}, ensure_ascii=False, indent=1))
    if error is not None:
        print(f"chaos: stopped by {error}", flush=True)
    if not kept:
        shutil.rmtree(work, ignore_errors=True)
    print(f"chaos: {len(results) - len(failed)} of {len(results)} checks passed in {wall:.0f} s"
          + (f" (logs: {work / 'logs'})" if kept else ""), flush=True)
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the CI subset with smaller loads")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--requests", type=int, default=0, help="dossier submissions per scenario")
    parser.add_argument("--clients", type=int, default=0, help="concurrent submitting clients")
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    parser.add_argument("--pg-name", default=PG_NAME, help="the embedded PostgreSQL's name (.data/<name>)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs after a passing run")
    parser.add_argument("--unsafe-counters", action="store_true",
                        help="self-check: counters retry without Idempotency-Key and If-Match (tickets get skipped)")
    args = parser.parse_args()
    sys.exit(run_all(args.short, [s for s in args.only.split(",") if s], args.requests, args.clients,
                     args.json, args.pg_name, args.keep_logs, args.unsafe_counters))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
