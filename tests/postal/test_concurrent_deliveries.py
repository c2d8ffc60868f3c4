"""200 shipments' events, shuffled, with duplicate deliveries, from several concurrent senders."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.postal_tracking.app import create_app
from services.postal_tracking.tracking import journey
from shared.db import Database
from shared.settings import Settings
from tests.postal.helpers import EVENTS_URL, know_dossier, officer, shipment_body, signed

SHIPMENTS = 200
SENDERS = 8


async def test_shuffled_duplicated_concurrent_deliveries_end_exactly_right(
    committed_client_factory: Any, make_token: Any, settings: Settings,
) -> None:
    rng = random.Random(20261124)
    run = uuid.uuid4().hex[:6].upper()
    start = datetime.now(UTC) - timedelta(hours=3)
    db = Database(settings, application_name="motcua-test-postal-concurrent")
    async with committed_client_factory(create_app) as c:
        async def create(i: int) -> dict[str, Any]:
            body = shipment_body("outbound", tracking_number=f"T{run}{i:05d}VN")
            await know_dossier(db, body["dossier_code"])
            r = await c.post("/v1/shipments", json=body, headers=officer(make_token))
            assert r.status_code == 201, r.text
            out: dict[str, Any] = r.json()
            return out

        ships = []
        for chunk in range(0, SHIPMENTS, 25):
            ships += await asyncio.gather(*(create(i) for i in range(chunk, min(chunk + 25, SHIPMENTS))))
        await db.dispose()
        plans = {s["tracking_number"]: journey(s["tracking_number"], start, timedelta(minutes=7), rng=rng,
                                               failure_rate=0.3) for s in ships}
        events = [json.loads(e.model_dump_json(exclude_none=True)) for plan in plans.values() for e in plan]
        rng.shuffle(events)
        deliveries: list[tuple[bytes, dict[str, str]]] = []
        while events:
            n = rng.randint(1, 6)
            batch, events = events[:n], events[n:]
            deliveries.append(signed(batch))
        sends = deliveries + rng.sample(deliveries, len(deliveries) // 4)  # 20 % of sends are duplicates
        rng.shuffle(sends)
        queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
        for item in sends:
            queue.put_nowait(item)
        statuses: list[int] = []

        async def sender() -> None:
            while not queue.empty():
                body, headers = queue.get_nowait()
                r = await c.post(EVENTS_URL, content=body, headers=headers)
                statuses.append(r.status_code)
                assert r.status_code == 200, r.text

        await asyncio.gather(*(sender() for _ in range(SENDERS)))
    assert statuses == [200] * len(sends)

    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        ids = [s["id"] for s in ships]
        rows = [tuple(r) for r in await conn.fetch(
            "SELECT id::text, tracking_number, status, failed_attempts, version FROM postal.shipments "
            "WHERE id = ANY($1::uuid[])", ids)]
        timelines: dict[str, list[str]] = {}
        for sid, status in await conn.fetch(
                "SELECT shipment_id::text, status FROM postal.shipment_events WHERE shipment_id = ANY($1::uuid[]) "
                "ORDER BY occurred_at, id", ids):
            timelines.setdefault(sid, []).append(status)
        job_rows = [r[0] for r in await conn.fetch(
            "SELECT convert_from(payload, 'UTF8')::jsonb->'data'->>'shipment_id' FROM jobs.pgqueuer "
            "WHERE entrypoint = 'dossier.result_delivered' AND "
            "convert_from(payload, 'UTF8')::jsonb->'data'->>'shipment_id' = ANY($1::text[])", ids)]
        office_notes = [r[0] for r in await conn.fetch(
            "SELECT convert_from(payload, 'UTF8')::jsonb->'data'->'params'->>'tracking_number' FROM jobs.pgqueuer "
            "WHERE entrypoint = 'notification.send' AND convert_from(payload, 'UTF8') LIKE $1 "
            "AND convert_from(payload, 'UTF8') LIKE '%postal_result_returned_keep%'", f"%T{run}%")]
    finally:
        await conn.close()
    assert len(rows) == SHIPMENTS
    wrong = []
    for sid, tracking, status, attempts, _version in rows:
        plan = plans[tracking]
        expected = [e.status for e in plan]
        if (status, timelines.get(sid), attempts) != (expected[-1], expected, expected.count("failed_attempt")):
            wrong.append((tracking, status, timelines.get(sid), expected))
    assert wrong == []
    delivered = {sid for sid, _t, status, _a, _v in rows if status == "delivered"}
    assert sorted(job_rows) == sorted(delivered) and len(delivered) > SHIPMENTS // 2
    returned = sorted(t for _s, t, status, _a, _v in rows if status == "returned_to_sender")
    assert returned and sorted(office_notes) == returned
