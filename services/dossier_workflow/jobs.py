"""Job handlers and periodic jobs of the dossier workflow: each `(tx, payloads)` or `(tx)`, one unit of work."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from services.dossier_workflow import outbox_repository as outbox
from services.dossier_workflow import service
from services.dossier_workflow import worklist_repository as worklist
from services.dossier_workflow.models import idempotency_keys
from services.dossier_workflow.notifier import (
    SEND_TIMEOUT,
    SENDS_AT_ONCE,
    Message,
    Notifier,
    message_id,
    notifier_from_env,
)
from shared.calendars import calendar_for_agency
from shared.db import Tx
from shared.idempotency import purge_idempotency_keys
from shared.jobs import JobRegistry
from shared.settings import get_settings

registry = JobRegistry("workflow")
BATCH = 500
NOTIFICATION_BATCH = 200
CLAIM_SECONDS = 60  # a claimed message not confirmed sent by then is sent again (its sender died)
log = structlog.get_logger("workflow.jobs")
PORTAL = {"portal": "DVCQG"}
_notifier: Notifier | None = None


def notifier() -> Notifier:
    """The process's one notifier (and so one HTTP client), made on first use."""
    global _notifier
    if _notifier is None:
        settings = get_settings()
        _notifier = notifier_from_env(settings.storage_dir, settings.sms_api_url, settings.sms_api_key)
    return _notifier


@registry.on_shutdown
async def close_notifier() -> None:
    """Closes the notifier's connections as the worker stops."""
    global _notifier
    found, _notifier = _notifier, None
    if found is not None:
        await found.aclose()


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
    """One message the outbox flush could not send (or one queued on its own): sent unless recorded as sent,
    then recorded. No transaction is open during the provider call (each statement commits on its own).
    A provider failure raises and the job is retried; a crash between the send and the record sends again
    under the same message id, which the provider delivers once."""
    for data in payloads:
        key = data.get("key") or f"{data.get('dossier_code')}:{data['template']}:{data['to']}"
        if await outbox.was_sent(tx, key):
            continue
        params = data.get("params", {})
        async with asyncio.timeout(SEND_TIMEOUT):
            await notifier().send(Message(message_id(key), data["channel"], data["to"], data["template"], params))
        await outbox.record_notification(tx, {
            "dedupe_key": key, "dossier_code": data.get("dossier_code"), "channel": data["channel"],
            "recipient": data["to"], "template": data["template"], "params": params,
            "sent_at": datetime.now(UTC)})


@registry.handler(outbox.NOTIFICATION_FLUSH)
async def on_notification_flush(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    for data in payloads:
        await flush_notifications(tx, data.get("chain"))


@registry.every("workflow.notification_sweep", "* * * * *")
async def sweep_notifications(tx: Tx) -> None:
    """What a coalesced `notification.flush` job missed (committed while it ran), and messages whose sender
    died before confirming them (their claim ran out), go within a minute."""
    await flush_notifications(tx)


class _SentLog:
    """Marks messages sent as the provider accepts them: each mark is a statement committed on its own,
    and marks that arrive while one is being written go together in the next (a group commit). So a
    crash leaves unmarked only the messages in flight, not the batch."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.pending: list[tuple[int, datetime]] = []
        self.lock = asyncio.Lock()

    async def add(self, outbox_id: int) -> None:
        self.pending.append((outbox_id, datetime.now(UTC)))
        async with self.lock:
            if self.pending:
                batch, self.pending = self.pending, []
                await outbox.mark_sent(self.tx, batch)


async def flush_notifications(tx: Tx, chain: str | None = None, *, now: datetime | None = None) -> int:
    """Sends a batch from the outbox, each message once; returns how many the provider accepted.

    1. The batch is claimed in ONE committed statement (CLAIM_SECONDS); no transaction is open from
       then on while the provider is called.
    2. At most SENDS_AT_ONCE calls at once, each bounded by SEND_TIMEOUT, each with the message's stable
       id (the provider's Idempotency-Key); each accepted message is marked sent at once (`_SentLog`).
    3. A message the provider refuses (or that times out) becomes a `notification.send` job of its own
       (retried with backoff under the same id, held when it keeps failing), so one bad number does not
       hold back the others; one this flush had no time left for is released for the next flush.

    A crash at any point loses nothing: the messages not marked sent are sent again when their claim runs
    out (by the sweep), under the same id. `now`: the clock (tests; else the database's)."""
    messages, full = await outbox.claim_notifications(tx, NOTIFICATION_BATCH, CLAIM_SECONDS, now)
    if not messages:
        return 0
    # No send starts when it could still be running after the claim ran out (another flush would take it).
    last_start = time.monotonic() + CLAIM_SECONDS - SEND_TIMEOUT - 5
    gate = asyncio.Semaphore(SENDS_AT_ONCE)
    sent = _SentLog(tx)
    refused: list[dict[str, Any]] = []
    late: list[int] = []

    async def send(m: dict[str, Any]) -> None:
        async with gate:
            if time.monotonic() > last_start:
                late.append(m["id"])
                return
            message = Message(message_id(m["dedupe_key"]), m["channel"], m["recipient"], m["template"], m["params"])
            try:
                async with asyncio.timeout(SEND_TIMEOUT):
                    await notifier().send(message)
            except Exception as exc:  # any failure of the provider: this message is retried alone
                log.warning("notification_failed", dossier_code=m["dossier_code"], template=m["template"],
                            message_id=message.id, error=repr(exc))
                refused.append(m)
                return
        await sent.add(m["id"])

    async with asyncio.TaskGroup() as group:
        for m in messages:
            group.create_task(send(m))
    # The end of the flush, in the job's transaction (committed by the worker): no provider call after it.
    await outbox.hand_over_notifications(tx, refused)
    if late:
        await outbox.release_notifications(tx, late)
    if full:
        await outbox.queue_flush(tx, chain)
    return len(messages) - len(refused) - len(late)


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


@registry.every("workflow.acceptance_watch", "*/5 * * * *")
async def watch_acceptance(tx: Tx) -> None:
    await run_acceptance_watch(tx, datetime.now(UTC))


async def run_acceptance_watch(tx: Tx, now: datetime) -> int:
    """Online dossiers not accepted ONLINE_ACCEPTANCE_ALERT_HOURS working hours after submission: the one-stop
    officers and the supervisors of their agency are told once (the dossier is marked alerted)."""
    waiting = await worklist.acceptance_alerts(tx, now, BATCH)
    if not waiting:
        return 0
    await worklist.flag(tx, [d["code"] for d in waiting], "acceptance_alerted_at", now)
    by_agency: dict[str, list[str]] = {}
    for d in waiting:
        by_agency.setdefault(d["current_agency"], []).append(d["code"])
    for agency, codes in by_agency.items():
        await outbox.queue_notification(tx, {
            "channel": "email", "to": f"mot-cua@{agency}", "template": "staff_acceptance_due",
            "params": {"agency": agency, "codes": codes}, "key": f"staff_acceptance_due:{agency}:{now.isoformat()}"})
    await _warn_supervisors(tx, waiting, "acceptance_due", now)
    return len(waiting)


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
