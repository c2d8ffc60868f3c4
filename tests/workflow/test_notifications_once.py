"""Messages leave once: a local SMS provider (a real HTTP process) and the flush, a crashed worker, a slow provider.

The provider is `services.dossier_workflow.sms_simulator` on a free port; it counts what a phone would
receive (`/stats`: received, unique, duplicates, replayed, connections).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from scripts.stack import ROOT, free_port
from services.dossier_workflow import jobs, outbox_repository
from services.dossier_workflow.notifier import SEND_TIMEOUT, SENDS_AT_ONCE, HttpSmsNotifier, message_id
from shared.db import Database
from shared.settings import Settings


@pytest.fixture(scope="module")
def sms_provider() -> Iterator[str]:
    """The local SMS provider as its own process; its base URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "services.dossier_workflow.sms_simulator", "--port", str(port)],
                            cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/stats", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
async def provider(sms_provider: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the provider, its counts reset and its switches back to a well-behaved provider's."""
    async with httpx.AsyncClient(base_url=sms_provider, timeout=10) as c:
        await switch(c, honour_keys=True, delay=0, delay_after_accept=0, fail_next=0, fail_rate=0)
        await c.post("/reset")
        yield c


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings, pool_size=4)
    async with database.transaction() as tx:  # what earlier tests committed is not this test's to send
        await tx.execute("DELETE FROM workflow.notification_outbox")
        await tx.execute("DELETE FROM jobs.pgqueuer WHERE entrypoint IN ('notification.flush', 'notification.send')")
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def http_notifier(sms_provider: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HttpSmsNotifier]:
    notifier = HttpSmsNotifier(f"{sms_provider}/sms", "test-key")
    monkeypatch.setattr(jobs, "_notifier", notifier)
    yield notifier
    await notifier.aclose()


async def queue(db: Database, n: int) -> list[str]:
    """`n` messages in the outbox (committed); their dedupe keys."""
    tag = uuid.uuid4().hex[:8]
    keys = [f"{tag}:{i}" for i in range(n)]
    async with db.transaction() as tx:
        for i, key in enumerate(keys):
            await outbox_repository.queue_notification(tx, {
                "channel": "sms", "to": f"09{i:08d}", "template": "result_ready", "dossier_code": f"X-{tag}-{i}",
                "params": {"code": f"X-{tag}-{i}", "procedure": "Khai sinh", "outcome": "approved"}, "key": key})
    return keys


async def flush_all(db: Database, now: datetime | None = None) -> None:
    for _ in range(50):
        async with db.transaction() as tx:
            if not await jobs.flush_notifications(tx, now=now):
                return


async def switch(provider: httpx.AsyncClient, **changes: Any) -> None:
    (await provider.put("/switches", json=changes)).raise_for_status()


async def stats(provider: httpx.AsyncClient) -> dict[str, int]:
    found: dict[str, int] = (await provider.get("/stats")).json()
    return found


async def delivered_keys(provider: httpx.AsyncClient) -> list[str]:
    return [m["key"] for m in (await provider.get("/messages")).json()]


async def recorded(db: Database, keys: list[str]) -> int:
    async with db.transaction() as tx:
        n: int = await tx.fetchval("SELECT count(*) FROM workflow.notifications WHERE dedupe_key = ANY($1)", keys)
        left = await tx.fetchval("SELECT count(*) FROM workflow.notification_outbox WHERE dedupe_key = ANY($1)", keys)
    assert left == 0
    return n


async def test_one_http_client_a_few_kept_alive_connections_and_each_message_with_its_id(
    db: Database, provider: httpx.AsyncClient, http_notifier: HttpSmsNotifier,
) -> None:
    built = HttpSmsNotifier.clients_built
    keys = await queue(db, 60)
    await flush_all(db)
    keys += await queue(db, 30)
    await flush_all(db)
    assert HttpSmsNotifier.clients_built - built == 1  # one client for 90 messages and two flushes
    s = await stats(provider)
    assert s["received"] == s["unique"] == 90 and s["duplicates"] == 0
    assert s["connections"] <= SENDS_AT_ONCE, s  # connections kept alive and reused, not one per message
    assert sorted(await delivered_keys(provider)) == sorted(message_id(k) for k in keys)
    assert await recorded(db, keys) == 90


async def test_no_transaction_is_open_while_the_provider_is_called(
    db: Database, provider: httpx.AsyncClient, http_notifier: HttpSmsNotifier,
) -> None:
    await switch(provider, delay=0.5)
    keys = await queue(db, 3)
    async with db.transaction() as tx:
        pid = tx.conn.get_server_pid()
        flushing = asyncio.create_task(jobs.flush_notifications(tx))
        while (await stats(provider))["requests"] < 3:
            await asyncio.sleep(0.02)
        async with db.transaction() as probe:
            state = await probe.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)
            locked = await probe.fetchval(
                "SELECT count(*) FROM (SELECT 1 FROM workflow.notification_outbox WHERE dedupe_key = ANY($1) "
                "FOR UPDATE SKIP LOCKED) free", keys)
        await flushing
    assert state == "idle"  # not "idle in transaction": the claim committed before the calls
    assert locked == 3  # the claimed rows are not held locked during the calls
    assert await recorded(db, keys) == 3


@pytest.mark.parametrize("honour_keys", [True, False])
async def test_a_worker_killed_mid_flush_causes_no_duplicate_with_an_idempotent_provider(
    db: Database, provider: httpx.AsyncClient, http_notifier: HttpSmsNotifier, sms_provider: str,
    settings: Settings, honour_keys: bool,
) -> None:
    """A real worker process sends a batch to a slow provider and is SIGKILLed mid-flush; then the
    messages whose claim ran out are sent again. Keys honoured: 0 duplicates. Keys ignored: only the
    messages in flight at the crash (at most SENDS_AT_ONCE) arrive twice."""
    n = 200
    await switch(provider, honour_keys=honour_keys, delay_after_accept=0.2)
    keys = await queue(db, n)
    env = {**os.environ, "DATABASE_URL": settings.database_url, "SMS_API_URL": f"{sms_provider}/sms",
           "SMS_API_KEY": "test-key", "ENVIRONMENT": "test", "STORAGE_DIR": settings.storage_dir, "WORKER_NICE": "0",
           "LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen([sys.executable, "-m", "shared.worker", "services.dossier_workflow.jobs"],
                              cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 90
        while (await stats(provider))["received"] < 40:
            assert time.monotonic() < deadline and worker.poll() is None, "the worker never flushed"
            await asyncio.sleep(0.02)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    at_crash = await stats(provider)
    assert at_crash["received"] < n  # killed mid-flush
    arrived = {message_id(k) for k in keys} & set(await delivered_keys(provider))
    async with db.transaction() as tx:
        marked = await tx.fetchval("SELECT count(*) FROM workflow.notifications WHERE dedupe_key = ANY($1)", keys)
    in_flight = len(arrived) - marked  # accepted by the provider, not yet recorded as sent when the worker died
    await switch(provider, delay_after_accept=0)
    later = datetime.now(UTC) + timedelta(seconds=jobs.CLAIM_SECONDS + 1)  # the crashed flush's claim ran out
    await flush_all(db, now=later)
    s = await stats(provider)
    assert await recorded(db, keys) == n
    # the worker may also have sent what earlier tests left in the outbox: count this test's messages only
    ours = {message_id(k) for k in keys}
    delivered = [key for key in await delivered_keys(provider) if key in ours]
    assert set(delivered) == ours  # every message arrived
    twice = len(delivered) - len(ours)
    if honour_keys:
        assert twice == 0 and s["duplicates"] == 0, s
        assert s["replayed"] >= in_flight  # the messages in flight at the crash were sent again, and deduplicated
    else:
        assert in_flight <= twice <= SENDS_AT_ONCE, (s, in_flight, twice)


async def test_a_provider_that_times_out_after_accepting_is_retried_with_the_same_key(
    db: Database, provider: httpx.AsyncClient, http_notifier: HttpSmsNotifier, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jobs, "SEND_TIMEOUT", 0.3)
    await switch(provider, delay_after_accept=1.0)
    keys = await queue(db, 12)
    await flush_all(db)  # every call times out after the provider delivered: each becomes its own job
    assert (await stats(provider))["received"] == 12
    await switch(provider, delay_after_accept=0, fail_next=3)
    async with db.transaction() as tx:
        payloads = [r[0] for r in await tx.fetch(
            "SELECT convert_from(payload, 'UTF8')::jsonb->'data' FROM jobs.pgqueuer "
            "WHERE entrypoint = 'notification.send' AND convert_from(payload, 'UTF8')::jsonb->'data'->>'key' "
            "= ANY($1)", keys)]
    assert sorted(p["key"] for p in payloads) == sorted(keys)  # none lost, none recorded as sent
    failures = 0
    for _ in range(3):  # the queue's retries: the first three calls fail (503), their jobs run again
        for p in payloads:
            try:
                async with db.transaction() as tx:
                    await jobs.on_notification(tx, [p])
            except httpx.HTTPStatusError:
                failures += 1
    s = await stats(provider)
    assert failures == 3 and s["failed"] == 3
    assert s["received"] == s["unique"] == 12 and s["duplicates"] == 0 and s["replayed"] == 12, s
    assert await recorded(db, keys) == 12
    async with db.transaction() as tx:
        await tx.execute("DELETE FROM jobs.pgqueuer WHERE entrypoint = 'notification.send'")


async def test_a_failing_provider_loses_nothing_and_the_others_go_out(
    db: Database, provider: httpx.AsyncClient, http_notifier: HttpSmsNotifier,
) -> None:
    await switch(provider, fail_next=4)
    keys = await queue(db, 20)
    await flush_all(db)
    async with db.transaction() as tx:
        handed = await tx.fetchval(
            "SELECT count(*) FROM jobs.pgqueuer WHERE entrypoint = 'notification.send' "
            "AND convert_from(payload, 'UTF8')::jsonb->'data'->>'key' = ANY($1)", keys)
        sent = await tx.fetchval("SELECT count(*) FROM workflow.notifications WHERE dedupe_key = ANY($1)", keys)
        await tx.execute("DELETE FROM jobs.pgqueuer WHERE entrypoint = 'notification.send'")
    assert (handed, sent) == (4, 16)
    assert (await stats(provider))["received"] == 16


async def test_a_claim_keeps_other_flushes_off_until_it_runs_out_and_a_flush_out_of_time_releases(
    db: Database, provider: httpx.AsyncClient, http_notifier: HttpSmsNotifier, monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = await queue(db, 3)
    async with db.transaction() as tx:
        claimed, _ = await outbox_repository.claim_notifications(tx, 10, jobs.CLAIM_SECONDS)
        assert sorted(m["dedupe_key"] for m in claimed) == sorted(keys)
        assert (await outbox_repository.claim_notifications(tx, 10, jobs.CLAIM_SECONDS))[0] == []  # held
        later = datetime.now(UTC) + timedelta(seconds=jobs.CLAIM_SECONDS + 1)
        again, _ = await outbox_repository.claim_notifications(tx, 10, jobs.CLAIM_SECONDS, later)
        assert sorted(m["dedupe_key"] for m in again) == sorted(keys)  # its sender died: due again
        await tx.execute("UPDATE workflow.notification_outbox SET queued_at = now() WHERE dedupe_key = ANY($1)", keys)
    # A claim too short to finish a send in: nothing is started, everything is released for the next flush.
    monkeypatch.setattr(jobs, "CLAIM_SECONDS", SEND_TIMEOUT + 4)
    async with db.transaction() as tx:
        assert await jobs.flush_notifications(tx) == 0
    assert (await stats(provider))["requests"] == 0
    monkeypatch.undo()
    monkeypatch.setattr(jobs, "_notifier", http_notifier)
    await flush_all(db)
    assert await recorded(db, keys) == 3 and (await stats(provider))["received"] == 3
