"""Job handlers and periodic jobs of the dossier workflow: each `(tx, payloads)` or `(tx)`, one unit of work."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from services.dossier_workflow import outbox_repository as outbox
from services.dossier_workflow import service
from services.dossier_workflow import worklist_repository as worklist
from services.dossier_workflow.models import idempotency_keys
from services.dossier_workflow.notifier import Message, Notifier, notifier_from_env
from shared.calendars import calendar_for_agency
from shared.db import Tx
from shared.idempotency import purge_idempotency_keys
from shared.jobs import JobRegistry, enqueue
from shared.settings import get_settings

registry = JobRegistry("workflow")
BATCH = 500
NOTIFICATION_BATCH = 200
SENDS_AT_ONCE = 10  # a provider's round trip each: a batch of 200 takes 20 of them, not 200
log = structlog.get_logger("workflow.jobs")
PORTAL = {"portal": "DVCQG"}
_notifier: Notifier | None = None


def notifier() -> Notifier:
    global _notifier
    if _notifier is None:
        settings = get_settings()
        _notifier = notifier_from_env(settings.storage_dir, settings.sms_api_url, settings.sms_api_key)
    return _notifier


def _at(data: dict[str, Any], key: str) -> datetime:
    return datetime.fromisoformat(data[key]) if data.get(key) else datetime.now(UTC)


@registry.handler("dossier.received", max_batch=50)
async def on_received(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    """The dossiers a burst of submissions leaves, in one statement per batch the worker gathers."""
    await service.receive_many(tx, payloads)


@registry.handler("dossier.supplemented")
async def on_supplemented(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    """The clock resumes at the moment the supplement was handed in, not when this job runs."""
    for data in payloads:
        await service.act_as_system(tx, data["code"], "receive_supplement", _at(data, "supplemented_at"),
                                    note=data.get("note"))


@registry.handler("dossier.result_delivered")
async def on_result_delivered(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    for data in payloads:
        await service.act_as_system(tx, data["code"], "return_result", _at(data, "delivered_at"), method="postal",
                                    note=f"Bưu điện đã phát (shipment {data.get('shipment_id')})")


@registry.handler("dossier.clock_started")
async def on_clock_started(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    for data in payloads:
        await service.clock_started(tx, data["code"], _at(data, "started_at"), _at(data, "due_at"))


@registry.handler("notification.send")
async def on_notification(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    """Recorded once per key; a provider failure raises, the transaction rolls back and the job retries."""
    for data in payloads:
        key = data.get("key") or f"{data.get('dossier_code')}:{data['template']}:{data['to']}"
        fresh = await outbox.record_notification(tx, {
            "dedupe_key": key, "dossier_code": data.get("dossier_code"), "channel": data["channel"],
            "recipient": data["to"], "template": data["template"], "params": data.get("params", {}),
            "sent_at": datetime.now(UTC)})
        if fresh:
            await notifier().send(Message(data["channel"], data["to"], data["template"], data.get("params", {})))


@registry.handler(outbox.NOTIFICATION_FLUSH)
async def on_notification_flush(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    for data in payloads:
        await flush_notifications(tx, data.get("chain"))


@registry.every("workflow.notification_sweep", "* * * * *")
async def sweep_notifications(tx: Tx) -> None:
    """What a coalesced `notification.flush` job missed (committed while it ran) goes within a minute."""
    await flush_notifications(tx)


async def flush_notifications(tx: Tx, chain: str | None = None) -> None:
    """Sends a batch from the outbox, each message recorded once per key. A message the provider refuses
    becomes a `notification.send` job of its own (retried with backoff, held when it keeps failing), so
    one bad number does not hold back the others."""
    messages, full = await outbox.take_notifications(tx, NOTIFICATION_BATCH, datetime.now(UTC))
    gate = asyncio.Semaphore(SENDS_AT_ONCE)

    async def send(m: dict[str, Any]) -> None:
        async with gate:
            await notifier().send(Message(m["channel"], m["recipient"], m["template"], m["params"]))

    outcomes = await asyncio.gather(*(send(m) for m in messages), return_exceptions=True)
    for m, outcome in zip(messages, outcomes, strict=True):
        if isinstance(outcome, asyncio.CancelledError):
            raise outcome
        if isinstance(outcome, BaseException):
            log.warning("notification_failed", dossier_code=m["dossier_code"], template=m["template"],
                        error=str(outcome))
            await outbox.unrecord_notification(tx, m["dedupe_key"])
            await enqueue(tx, "notification.send", {
                "channel": m["channel"], "to": m["recipient"], "template": m["template"],
                "dossier_code": m["dossier_code"], "params": m["params"], "key": m["dedupe_key"]})
    if full:
        await outbox.queue_flush(tx, chain)


@registry.handler(outbox.PORTAL_SYNC)
async def on_portal_sync(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    """Sync to the national portal (Cổng DVCQG) in batches from the outbox; the adapter here records it,
    a real one would POST the batch first. A job naming one dossier (queued before the outbox) syncs it too."""
    now = datetime.now(UTC)
    for data in payloads:
        if data.get("code"):
            await outbox.mark_synced(tx, data["code"], now, PORTAL)
    await outbox.sync_outbox(tx, now, PORTAL)


@registry.every("workflow.portal_sync_sweep", "* * * * *")
async def sweep_portal_outbox(tx: Tx) -> None:
    """What a coalesced `portal.sync` job missed (committed while it ran) is synced within a minute."""
    await outbox.sync_outbox(tx, datetime.now(UTC), PORTAL)


@registry.every("workflow.deadlines", "*/5 * * * *")
async def watch_deadlines(tx: Tx) -> None:
    await run_deadline_watch(tx, datetime.now(UTC))


async def run_deadline_watch(tx: Tx, now: datetime) -> dict[str, int]:
    """Marks overdue dossiers, warns supervisors of those due within a working day, ends expired supplements."""
    overdue = await worklist.active_past(tx, now, "overdue_marked_at", BATCH)
    if overdue:
        await worklist.flag(tx, [d["code"] for d in overdue], "overdue_marked_at", now)
        await _warn_supervisors(tx, overdue, "overdue", now)
    horizon: dict[str, datetime] = {}
    soon = []
    for d in await worklist.active_past(tx, now + timedelta(days=7), "due_soon_warned_at", BATCH):
        agency = d["current_agency"]
        if agency not in horizon:
            horizon[agency] = (await calendar_for_agency(tx, agency)).add_working_time(now, timedelta(hours=8))
        if now <= d["due_at"] <= horizon[agency]:
            soon.append(d)
    if soon:
        await worklist.flag(tx, [d["code"] for d in soon], "due_soon_warned_at", now)
        await _warn_supervisors(tx, soon, "due_soon", now)
    expired = await worklist.supplements_expired(tx, now, BATCH)
    for code in expired:
        await service.act_as_system(tx, code, "expire_supplement", now)
    return {"overdue": len(overdue), "due_soon": len(soon), "supplements_expired": len(expired)}


async def _warn_supervisors(tx: Tx, rows: list[dict[str, Any]], kind: str, now: datetime) -> None:
    by_agency: dict[str, list[str]] = {}
    for d in rows:
        by_agency.setdefault(d["current_agency"], []).append(d["code"])
    for agency, codes in by_agency.items():
        await outbox.queue_notification(tx, {
            "channel": "email", "to": f"lanh-dao@{agency}", "template": f"supervisor_{kind}",
            "params": {"agency": agency, "codes": codes}, "key": f"{kind}:{agency}:{now.isoformat()}"})


@registry.every("workflow.purge_idempotency_keys", "17 3 * * *")
async def purge_keys(tx: Tx) -> None:
    """Idempotency keys are kept 24 hours, then dropped."""
    await purge_idempotency_keys(tx, idempotency_keys)
