"""The outboxes under concurrency: dossiers received while several flushes run, on real commits."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.dossier_workflow import jobs, outbox_repository, service
from services.dossier_workflow.notifier import LogNotifier
from shared.db import Database
from shared.settings import Settings
from tests.workflow.helpers import received_job, vn


async def test_racing_receipts_and_flushes_sync_each_dossier_once_and_send_each_message_once(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent_file = tmp_path / "sent.jsonl"
    monkeypatch.setattr(jobs, "_notifier", LogNotifier(sent_file))
    monkeypatch.setattr(outbox_repository, "PORTAL_BATCH", 7)  # small batches: many flushes meet on the same rows
    monkeypatch.setattr(jobs, "NOTIFICATION_BATCH", 5)
    db = Database(settings, pool_size=12)

    async def receive(i: int) -> str:
        async with db.transaction() as tx:
            data = await received_job(tx, vn(2026, 11, 30, 9, 0) + timedelta(minutes=i))
            assert await service.receive(tx, data)
        return str(data["code"])

    async def flush() -> None:
        for _ in range(6):
            async with db.transaction() as tx:
                await jobs.on_portal_sync(tx, [{}])
            async with db.transaction() as tx:
                await jobs.on_notification_flush(tx, [{}])

    try:
        done: list[Any] = await asyncio.gather(*(receive(i) for i in range(40)), *(flush() for _ in range(4)))
        codes = done[:40]
        for _ in range(12):  # what was committed after the racing flushes last looked
            async with db.transaction() as tx:
                await jobs.on_portal_sync(tx, [{}])
            async with db.transaction() as tx:
                await jobs.on_notification_flush(tx, [{}])
        conn = await asyncpg.connect(settings.asyncpg_dsn)
        try:
            synced = await conn.fetch(
                "SELECT d.code, d.synced_at IS NOT NULL AS flagged, (SELECT count(*) FROM workflow.history h "
                "WHERE h.dossier_code = d.code AND h.action = 'portal_synced') AS rows "
                "FROM workflow.dossiers d WHERE d.code = ANY($1)", codes)
            left = await conn.fetchval(
                "SELECT (SELECT count(*) FROM workflow.portal_outbox WHERE code = ANY($1)) "
                "+ (SELECT count(*) FROM workflow.notification_outbox WHERE dossier_code = ANY($1))", codes)
            recorded = await conn.fetch(
                "SELECT dossier_code, count(*) AS n FROM workflow.notifications "
                "WHERE dossier_code = ANY($1) AND template = 'dossier_received' GROUP BY 1", codes)
        finally:
            await conn.close()
    finally:
        await db.dispose()
    assert len(synced) == 40 and all(r["flagged"] and r["rows"] == 1 for r in synced)
    assert left == 0
    assert len(recorded) == 40 and all(r["n"] == 1 for r in recorded)
    # Sent here at most once each (the test session's own worker may have sent some of them, once).
    lines = sent_file.read_text(encoding="utf-8").splitlines() if sent_file.exists() else []
    assert all(sum(code in line for line in lines) <= 1 for code in codes)
