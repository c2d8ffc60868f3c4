"""Tracking events: the signed partner webhook, placing events on timelines, and the effects they cause."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from services.postal_tracking import events_repository as repo
from services.postal_tracking import partners_repository as partners_repo
from services.postal_tracking import shipments_repository as shipments_repo
from services.postal_tracking import webhook
from services.postal_tracking.models import FINAL_STATUSES
from services.postal_tracking.schemas import EventIn, WebhookBody
from services.postal_tracking.timeline import REASON_TEXT, dedupe_key, fold, normalise_reason
from shared.db import Tx
from shared.hot_routes import nested_deeper_than
from shared.jobs import enqueue
from shared.problems import ProblemError, error_item

FUTURE_SKEW = timedelta(minutes=10)
SECRETS_TTL_SECONDS = 5.0
_secrets_cache: dict[str, tuple[float, list[str] | None]] = {}


def forget_cached_secrets() -> None:
    _secrets_cache.clear()


async def partner_secrets(tx: Tx, partner_code: str, *, fresh: bool = False) -> list[str] | None:
    """Cached a few seconds per process, so most deliveries verify without a query; a failed
    verification re-reads them (a secret rotated since)."""
    hit = _secrets_cache.get(partner_code)
    if hit is not None and not fresh and hit[0] > time.monotonic():
        return hit[1]
    found = await partners_repo.valid_secrets(tx, partner_code)
    if len(_secrets_cache) > 1000:
        _secrets_cache.clear()
    _secrets_cache[partner_code] = (time.monotonic() + SECRETS_TTL_SECONDS, found)
    return found


async def authenticate_delivery(tx: Tx, partner_code: str, body: bytes, headers: dict[str, str]) -> str:
    """Checks the headers, the window and the signature; returns the webhook-id. Stores nothing."""
    msg_id, _ts = webhook.check_headers(headers)
    secrets = await partner_secrets(tx, partner_code)
    if secrets is None:
        secrets = await partner_secrets(tx, partner_code, fresh=True)
        if secrets is None:
            raise webhook.unknown_partner(partner_code)
    try:
        webhook.verify(body, headers, secrets)
    except ProblemError:
        fresh = await partner_secrets(tx, partner_code, fresh=True)
        if fresh is None:
            raise webhook.unknown_partner(partner_code) from None
        if fresh == secrets:
            raise
        webhook.verify(body, headers, fresh)
    return msg_id


MAX_NESTING = 32  # a delivery is {"events": [{...}]}: a few levels; anything deeper is refused unvalidated


def parse_delivery(body: bytes) -> WebhookBody:
    """The delivery's events. orjson parses (its own nesting cap is far past ours, and it never recurses in
    Python); a body nested deeper than MAX_NESTING is refused before any validation or database work."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProblemError(400, "malformed_json", "Nội dung không phải JSON hợp lệ / The body is not valid JSON") \
            from exc
    if isinstance(raw, dict | list) and nested_deeper_than(raw, MAX_NESTING):
        raise ProblemError(422, "validation_error", f"JSON lồng quá {MAX_NESTING} cấp / the body nests deeper than "
                           f"{MAX_NESTING} levels", errors=[error_item("body", f"nested deeper than {MAX_NESTING}",
                                                                         "too_deep")])
    try:
        return WebhookBody.model_validate(raw)
    except ValidationError as exc:
        errors = [error_item(".".join(str(p) for p in e["loc"]), e["msg"], e["type"]) for e in exc.errors()[:50]]
        raise ProblemError(422, "validation_error", "Sự kiện không hợp lệ / Invalid events", errors=errors) from exc


async def receive_delivery(tx: Tx, partner_code: str, msg_id: str, body: bytes, delivery: WebhookBody,
                           now: datetime) -> dict[str, Any]:
    """A verified delivery: stored once per webhook-id; its events placed; their effects enqueued."""
    late = [error_item(f"events.{i}.occurred_at", "quá 10 phút trong tương lai / more than 10 minutes in the future",
                "future")
            for i, e in enumerate(delivery.events) if e.occurred_at > now + FUTURE_SKEW]
    if late:
        raise ProblemError(422, "validation_error", "Thời điểm sự kiện ở tương lai / events in the future",
                           errors=late)
    fresh = await repo.insert_delivery(tx, partner_code, msg_id, len(delivery.events),
                                       hashlib.sha256(body).hexdigest())
    if not fresh:
        return {"duplicate": True, "accepted": 0, "ignored": len(delivery.events), "shipments": []}
    result = await ingest_events(tx, partner_code, delivery.events, source="webhook", webhook_id=msg_id)
    return {"duplicate": False, **result}


def unknown_numbers(partner_code: str, unknown: Sequence[str]) -> ProblemError:
    return ProblemError(
        422, "unknown_tracking_number",
        f"Số hiệu bưu gửi không có hoặc không thuộc đối tác {partner_code} / "
        f"unknown tracking numbers for partner {partner_code}: {', '.join(unknown[:20])}",
        title=("Số hiệu bưu gửi không xác định", "Unknown tracking number"),
        errors=[error_item("tracking_number", n, "unknown_tracking_number") for n in unknown[:100]])


async def ingest_events(tx: Tx, partner_code: str, events: Sequence[EventIn], *, source: str,
                        webhook_id: str | None = None, strict: bool = True) -> dict[str, Any]:
    """Places events on their shipments' timelines (locked in a stable order) and re-folds the state."""
    numbers = sorted({e.tracking_number for e in events})
    locked = await shipments_repo.lock_by_tracking(tx, partner_code, numbers)
    by_number = {s["tracking_number"]: s for s in locked}
    unknown = [n for n in numbers if n not in by_number]
    if unknown and strict:
        raise unknown_numbers(partner_code, unknown)
    rows = []
    for i, e in enumerate(events):
        s = by_number.get(e.tracking_number)
        if s is None:
            continue
        reason = normalise_reason(e.status, e.reason, e.reason_code)
        rows.append({
            "shipment_id": s["id"], "dedupe_key": dedupe_key(e.event_id, e.status, e.occurred_at, e.reason_code,
                                                             e.correction),
            "status": e.status, "occurred_at": e.occurred_at, "source": source, "webhook_id": webhook_id,
            "event_index": i, "correction": e.correction,
            "failure_reason": reason if e.status in ("failed_attempt", "returned_to_sender") else None,
            "raw_code": e.reason_code, "location": e.location, "note": e.note,
        })
    new, timelines = await repo.insert_events(tx, rows, [s["id"] for s in locked])
    touched = {r["shipment_id"] for r in new}
    await repo.touch_heard(tx, sorted({s["id"] for s in locked} - touched))
    summaries = await refold(tx, [s for s in locked if s["id"] in touched], new, timelines)
    return {"accepted": len(new), "ignored": len(rows) - len(new), "shipments": summaries}


async def refold(tx: Tx, shipments: Sequence[dict[str, Any]], new_events: Sequence[dict[str, Any]],
                 timelines: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each shipment's state folded again from its whole timeline; effects of the new state enqueued."""
    if not shipments:
        return []
    updates, summaries = [], []
    for s in shipments:
        state = fold(s["created_at"], timelines[s["id"]])
        effects = dict(s["effects"] or {})
        new_here = [e for e in new_events if e["shipment_id"] == s["id"]]
        await enqueue_effects(tx, s, state.status, state.status_at, state.failure_reason, effects, new_here,
                              state.failed_attempts)
        updates.append({"id": s["id"], "status": state.status, "status_at": state.status_at,
                        "failure_reason": state.failure_reason, "failure_raw_code": state.failure_raw_code,
                        "failed_attempts": state.failed_attempts, "last_event_at": state.last_event_at,
                        "effects": effects})
        summaries.append({"tracking_number": s["tracking_number"], "status": state.status})
    await repo.update_states(tx, updates)
    return summaries


def citizen_phone(s: dict[str, Any]) -> str | None:
    phone: str | None = s["recipient_phone"] if s["direction"] == "outbound" else s["sender_phone"]
    return phone


async def enqueue_effects(tx: Tx, s: dict[str, Any], status: str, status_at: datetime, reason: str | None,
                          effects: dict[str, Any], new_events: Sequence[dict[str, Any]], attempts: int) -> None:
    """Each effect leaves once per shipment (recorded in `effects`), as a job in this transaction."""
    code, sid = s["dossier_code"], s["id"]
    if status == "delivered" and "delivered" not in effects:
        effects["delivered"] = status_at.isoformat()
        if s["direction"] == "inbound":
            await enqueue(tx, "dossier.paper_arrived",
                          {"code": code, "arrived_at": status_at.isoformat(), "shipment_id": sid})
        else:
            await enqueue(tx, "dossier.result_delivered",
                          {"code": code, "delivered_at": status_at.isoformat(), "shipment_id": sid})
    if status == "returned_to_sender" and "returned" not in effects:
        effects["returned"] = status_at.isoformat()
        params = {"dossier_code": code, "tracking_number": s["tracking_number"], "reason": reason,
                  "reason_text": REASON_TEXT.get(reason or "other")}
        if s["direction"] == "outbound":
            await enqueue(tx, "notification.send", {
                "channel": "email", "to": f"mot-cua@{s['agency_code']}", "template": "postal_result_returned_keep",
                "params": params, "dossier_code": code, "key": f"postal:returned:office:{sid}"})
        phone = citizen_phone(s)
        if phone:
            await enqueue(tx, "notification.send", {
                "channel": "sms", "to": phone, "template": "postal_returned_to_sender",
                "params": params, "dossier_code": code, "key": f"postal:returned:citizen:{sid}"})
    if status in FINAL_STATUSES:
        return
    phone = citizen_phone(s)
    for e in new_events:
        if e["status"] != "failed_attempt" or not phone:
            continue
        await enqueue(tx, "notification.send", {
            "channel": "sms", "to": phone, "template": "postal_failed_attempt",
            "params": {"dossier_code": code, "tracking_number": s["tracking_number"],
                       "reason": e["failure_reason"], "reason_text": REASON_TEXT.get(e["failure_reason"] or "other"),
                       "occurred_at": e["occurred_at"].isoformat(), "attempts": attempts},
            "dossier_code": code, "key": f"postal:failed:{sid}:{e['dedupe_key']}"})
