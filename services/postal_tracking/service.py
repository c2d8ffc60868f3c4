"""Postal rules: shipments, the partner webhook, effects as jobs, polling, handovers (never commits)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from vietnam_provinces import Ward, WardCode

from services.postal_tracking import repository as repo
from services.postal_tracking import webhook
from services.postal_tracking.models import FINAL_STATUSES
from services.postal_tracking.schemas import EventIn, HandoverIn, ShipmentIn, WebhookBody
from services.postal_tracking.timeline import REASON_TEXT, dedupe_key, fold, normalise_reason
from shared.auth import Principal
from shared.jobs import enqueue
from shared.pagination import decode_cursor, encode_cursor
from shared.problems import ProblemError

STAFF = ("officer", "supervisor")
DEFAULT_SERVICE = {"inbound": "HCC-HS", "outbound": "HCC-KQ"}
FUTURE_SKEW = timedelta(minutes=10)
SECRETS_TTL_SECONDS = 5.0
_secrets_cache: dict[str, tuple[float, list[str] | None]] = {}


def err(field: str, message: str, type_: str) -> dict[str, str]:
    return {"field": field, "message": message, "type": type_}


def not_found(what: str, ident: str) -> ProblemError:
    return ProblemError(404, "not_found", f"Không tìm thấy {what} {ident} / No {what} {ident} for you")


@lru_cache(maxsize=8192)
def ward_exists(code: str) -> bool:
    try:
        Ward.from_code(WardCode(int(code)))
    except (ValueError, KeyError):
        return False
    return True


def valid_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- tracking numbers


def s10_check_digit(serial: int) -> int:
    """UPU S10 check digit over the 8-digit serial."""
    digits = f"{serial:08d}"
    total = sum(int(d) * w for d, w in zip(digits, (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    check = 11 - total % 11
    return 0 if check == 10 else 5 if check == 11 else check


async def allocate_tracking_number(session: AsyncSession, prefix: str) -> str:
    serial = await repo.next_tracking_serial(session) % 100_000_000
    return f"{prefix}{serial:08d}{s10_check_digit(serial)}VN"


# ---------------------------------------------------------------- visibility


def can_read(principal: Principal, shipment: dict[str, Any]) -> bool:
    if principal.role == "admin":
        return True
    if principal.role == "postal_partner":
        return principal.partner_code is not None and principal.partner_code == shipment["partner_code"]
    return principal.role in STAFF and principal.agency_code == shipment["agency_code"]


def public_shipment(s: dict[str, Any], events: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    out = {k: s[k] for k in (
        "id", "direction", "dossier_code", "agency_code", "partner_code", "tracking_number", "service_code",
        "sender", "recipient", "weight_grams", "postage", "cod_amount", "status", "status_at", "failure_reason",
        "failure_raw_code", "failed_attempts", "last_event_at", "created_at", "updated_at", "version", "note")}
    out["id"] = str(out["id"])
    if events is not None:
        out["timeline"] = [{
            "status": e["status"], "occurred_at": e["occurred_at"], "received_at": e["received_at"],
            "source": e["source"], "correction": e["correction"], "failure_reason": e["failure_reason"],
            "raw_code": e["raw_code"], "location": e["location"], "note": e["note"],
            "event_id": e["dedupe_key"][3:] if e["dedupe_key"].startswith("id:") else None,
        } for e in events]
    return out


# ---------------------------------------------------------------- creating shipments


async def create_shipment(session: AsyncSession, body: ShipmentIn, principal: Principal,
                          now: datetime) -> dict[str, Any]:
    if principal.role == "postal_partner":
        if not principal.partner_code or (body.partner_code and body.partner_code != principal.partner_code):
            raise ProblemError(403, "forbidden", "Đối tác chỉ tạo bưu gửi của mình / "
                               "a partner creates only its own shipments")
        partner_code: str | None = principal.partner_code
    else:
        if not principal.can_act_for_agency(body.agency_code):
            raise ProblemError(403, "forbidden", f"Không thuộc cơ quan {body.agency_code} / "
                               f"you do not act for agency {body.agency_code}")
        partner_code = body.partner_code
    errors: list[dict[str, str]] = []
    partner = await (repo.get_partner(session, partner_code) if partner_code else repo.default_partner(session))
    if partner is None or not partner["active"]:
        errors.append(err("partner_code", "unknown postal partner", "unknown_partner"))
    agency = await repo.get_agency(session, body.agency_code)
    if agency is None:
        errors.append(err("agency_code", "unknown agency", "unknown_agency"))
    citizen_field = "sender" if body.direction == "inbound" else "recipient"
    citizen = body.sender if body.direction == "inbound" else body.recipient
    if citizen is None:
        errors.append(err(citizen_field, f"the citizen's address is needed for an {body.direction} shipment",
                          "missing"))
    for name, addr in (("sender", body.sender), ("recipient", body.recipient)):
        if addr is not None and not ward_exists(addr.ward_code):
            errors.append(err(f"{name}.ward_code", "unknown ward code", "unknown_ward"))
    service_code = body.service_code or DEFAULT_SERVICE[body.direction]
    if partner is not None and not await repo.service_exists(session, partner["code"], service_code):
        errors.append(err("service_code", "the partner does not offer this service", "unknown_service"))
    if errors:
        raise ProblemError(422, "validation_error", "Kiểm tra lại bưu gửi / Check the shipment: "
                           + ", ".join(e["field"] for e in errors), errors=errors)
    assert partner is not None and agency is not None and citizen is not None
    postage = body.postage
    if postage is None:
        postage = await repo.postage_for(session, partner["code"], service_code, body.weight_grams)
        if postage is None:
            raise ProblemError(422, "validation_error", "Quá khối lượng tối đa của bảng cước / "
                               "heavier than the partner's fee table allows",
                               errors=[err("weight_grams", "no postage for this weight", "too_heavy")])
    agency_side = {"name": agency["name"], "phone": None, "address_line": agency["name"],
                   "ward_code": agency["admin_unit_code"]}
    tracking = body.tracking_number or await allocate_tracking_number(session, partner["tracking_prefix"])
    values = {
        "direction": body.direction, "dossier_code": body.dossier_code, "agency_code": body.agency_code,
        "partner_code": partner["code"], "tracking_number": tracking, "service_code": service_code,
        "sender": citizen.model_dump() if body.direction == "inbound" else (
            body.sender.model_dump() if body.sender else agency_side),
        "recipient": citizen.model_dump() if body.direction == "outbound" else (
            body.recipient.model_dump() if body.recipient else agency_side),
        "weight_grams": body.weight_grams, "postage": postage, "cod_amount": body.cod_amount,
        "status": "created", "status_at": now, "created_by": f"{principal.role}:{principal.subject}",
        "note": body.note, "last_heard_at": now,
    }
    row = await repo.insert_shipment(session, values)
    if row is None:
        existing = await repo.find_shipment(session, dossier_code=body.dossier_code, direction=body.direction)
        if existing is not None:
            raise ProblemError(409, "conflict", f"Hồ sơ {body.dossier_code} đã có bưu gửi chiều {body.direction} / "
                               f"dossier {body.dossier_code} already has an {body.direction} shipment",
                               extra={"shipment_id": str(existing["id"])} if can_read(principal, existing) else None)
        raise ProblemError(409, "conflict", f"Số hiệu {tracking} đã được dùng / tracking number {tracking} is taken",
                           errors=[err("tracking_number", "already used", "duplicate")])
    return public_shipment(row, [])


async def create_outbound_from_job(session: AsyncSession, data: dict[str, Any], now: datetime) -> str | None:
    """`shipment.create_outbound` from the workflow: exactly once per dossier, however often it runs."""
    existing = await repo.find_shipment(session, dossier_code=data["code"], direction="outbound")
    if existing is not None:
        return None
    partner = await repo.default_partner(session)
    agency = await repo.get_agency(session, data["agency_code"])
    if partner is None or agency is None:
        raise ValueError(f"no default postal partner or unknown agency {data.get('agency_code')}")
    if not data.get("address_line") or not data.get("ward_code"):
        raise ValueError(f"dossier {data['code']}: no delivery address for the result")
    service_code = DEFAULT_SERVICE["outbound"]
    weight = int(data.get("weight_grams") or 200)
    postage = await repo.postage_for(session, partner["code"], service_code, weight) or 0
    values = {
        "direction": "outbound", "dossier_code": data["code"], "agency_code": data["agency_code"],
        "partner_code": partner["code"],
        "tracking_number": await allocate_tracking_number(session, partner["tracking_prefix"]),
        "service_code": service_code,
        "sender": {"name": agency["name"], "phone": None, "address_line": agency["name"],
                   "ward_code": agency["admin_unit_code"]},
        "recipient": {"name": data.get("recipient_name") or "", "phone": data.get("phone"),
                      "address_line": data["address_line"], "ward_code": data["ward_code"]},
        "weight_grams": weight, "postage": postage, "cod_amount": int(data.get("cod_amount") or 0),
        "status": "created", "status_at": now, "created_by": "system:workflow", "last_heard_at": now,
    }
    row = await repo.insert_shipment(session, values)  # ON CONFLICT DO NOTHING: a racing twin wins
    return str(row["id"]) if row else None


# ---------------------------------------------------------------- reading shipments


async def get_shipment(session: AsyncSession, shipment_id: str, principal: Principal) -> dict[str, Any]:
    s = await repo.get_shipment(session, shipment_id) if valid_uuid(shipment_id) else None
    if s is None or not can_read(principal, s):
        raise not_found("bưu gửi / shipment", shipment_id)
    return public_shipment(s, await repo.timeline(session, shipment_id))


async def list_shipments(
    session: AsyncSession, principal: Principal, *, dossier_code: str | None, statuses: Sequence[str],
    direction: str | None, agency_code: str | None, cursor: str | None, limit: int,
) -> dict[str, Any]:
    partner_scope: str | None = None
    agency_scope: str | None = agency_code
    if principal.role == "postal_partner":
        if not principal.partner_code:
            raise ProblemError(403, "forbidden", "Mã truy cập không có partner_code / token has no partner_code")
        partner_scope = principal.partner_code
    elif principal.role in STAFF:
        if agency_code and agency_code != principal.agency_code:
            raise ProblemError(403, "forbidden", "Chỉ xem bưu gửi của cơ quan mình / only your agency's shipments")
        agency_scope = principal.agency_code
    elif principal.role != "admin":
        raise ProblemError(403, "forbidden", f"Vai trò '{principal.role}' không xem được bưu gửi / "
                           f"role '{principal.role}' may not list shipments")
    after_values = decode_cursor(cursor, 2)
    after = None
    if after_values is not None:
        try:
            after = (datetime.fromisoformat(str(after_values[0])), str(uuid.UUID(str(after_values[1]))))
        except ValueError as exc:
            raise ProblemError(400, "bad_request", "cursor không hợp lệ / Invalid cursor") from exc
    rows = await repo.list_shipments(session, agency_code=agency_scope, partner_code=partner_scope,
                                     dossier_code=dossier_code, statuses=statuses, direction=direction,
                                     after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor([rows[-1]["created_at"].isoformat(), str(rows[-1]["id"])]) if more else None
    return {"items": [public_shipment(r) for r in rows], "next_cursor": next_cursor}


# ---------------------------------------------------------------- webhook ingestion


async def partner_secrets(session: AsyncSession, partner_code: str, *, fresh: bool = False) -> list[str] | None:
    """Cached a few seconds per process; a miss on verification re-reads them (rotation)."""
    hit = _secrets_cache.get(partner_code)
    if hit is not None and not fresh and hit[0] > time.monotonic():
        return hit[1]
    found = await repo.valid_secrets(session, partner_code)
    if len(_secrets_cache) > 1000:
        _secrets_cache.clear()
    _secrets_cache[partner_code] = (time.monotonic() + SECRETS_TTL_SECONDS, found)
    return found


async def authenticate_delivery(session: AsyncSession, partner_code: str, body: bytes,
                                headers: dict[str, str]) -> str:
    """Checks the headers, the window and the signature; returns the webhook-id. Stores nothing."""
    msg_id, _ts = webhook.check_headers(headers)
    secrets = await partner_secrets(session, partner_code)
    if secrets is None:
        secrets = await partner_secrets(session, partner_code, fresh=True)
        if secrets is None:
            raise webhook.unknown_partner(partner_code)
    try:
        webhook.verify(body, headers, secrets)
    except ProblemError:
        fresh = await partner_secrets(session, partner_code, fresh=True)  # a secret rotated since cached?
        if fresh is None:
            raise webhook.unknown_partner(partner_code) from None
        if fresh == secrets:
            raise
        webhook.verify(body, headers, fresh)
    return msg_id


def parse_delivery(body: bytes) -> WebhookBody:
    try:
        raw = json.loads(body)
    except ValueError as exc:
        raise ProblemError(400, "malformed_json", "Nội dung không phải JSON hợp lệ / The body is not valid JSON") \
            from exc
    try:
        return WebhookBody.model_validate(raw)
    except ValidationError as exc:
        errors = [err(".".join(str(p) for p in e["loc"]), e["msg"], e["type"]) for e in exc.errors()[:50]]
        raise ProblemError(422, "validation_error", "Sự kiện không hợp lệ / Invalid events", errors=errors) from exc


async def receive_delivery(session: AsyncSession, partner_code: str, msg_id: str, body: bytes,
                           delivery: WebhookBody, now: datetime) -> dict[str, Any]:
    """Verified delivery: stored once per webhook-id; events placed; effects enqueued."""
    late = [err(f"events.{i}.occurred_at", "more than 10 minutes in the future", "future")
            for i, e in enumerate(delivery.events) if e.occurred_at > now + FUTURE_SKEW]
    if late:
        raise ProblemError(422, "validation_error", "Thời điểm sự kiện ở tương lai / events in the future",
                           errors=late)
    fresh = await repo.insert_delivery(session, partner_code, msg_id, len(delivery.events),
                                       hashlib.sha256(body).hexdigest())
    if not fresh:
        return {"duplicate": True, "accepted": 0, "ignored": len(delivery.events), "shipments": []}
    result = await ingest_events(session, partner_code, delivery.events, source="webhook", webhook_id=msg_id)
    return {"duplicate": False, **result}


async def ingest_events(session: AsyncSession, partner_code: str, events: Sequence[EventIn], *, source: str,
                        webhook_id: str | None = None, strict: bool = True) -> dict[str, Any]:
    """Places events on their shipments' timelines (locked in a stable order) and re-folds the state."""
    numbers = sorted({e.tracking_number for e in events})
    locked = await repo.lock_by_tracking(session, partner_code, numbers)
    by_number = {s["tracking_number"]: s for s in locked}
    unknown = [n for n in numbers if n not in by_number]
    if unknown and strict:
        raise ProblemError(422, "unknown_tracking_number",
                           f"Số hiệu bưu gửi không có hoặc không thuộc đối tác {partner_code} / "
                           f"unknown tracking numbers for partner {partner_code}: {', '.join(unknown[:20])}",
                           title=("Số hiệu bưu gửi không xác định", "Unknown tracking number"),
                           errors=[err("tracking_number", n, "unknown_tracking_number") for n in unknown[:100]])
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
    new, timelines = await repo.insert_events(session, rows, [s["id"] for s in locked])
    touched = {r["shipment_id"] for r in new}
    await repo.touch_heard(session, sorted({s["id"] for s in locked} - touched))
    summaries = await _refold(session, [s for s in locked if s["id"] in touched], new, timelines)
    return {"accepted": len(new), "ignored": len(rows) - len(new), "shipments": summaries}


async def _refold(session: AsyncSession, shipments: Sequence[dict[str, Any]], new_events: Sequence[dict[str, Any]],
                  timelines: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    if not shipments:
        return []
    updates, summaries = [], []
    for s in shipments:
        state = fold(s["created_at"], timelines[s["id"]])
        effects = dict(s["effects"])
        new_here = [e for e in new_events if e["shipment_id"] == s["id"]]
        await _effects(session, s, state.status, state.status_at, state.failure_reason, effects, new_here,
                       state.failed_attempts)
        updates.append({"id": s["id"], "status": state.status, "status_at": state.status_at,
                        "failure_reason": state.failure_reason, "failure_raw_code": state.failure_raw_code,
                        "failed_attempts": state.failed_attempts, "last_event_at": state.last_event_at,
                        "effects": effects})
        summaries.append({"tracking_number": s["tracking_number"], "status": state.status})
    await repo.update_states(session, updates)
    return summaries


def citizen_phone(s: dict[str, Any]) -> str | None:
    phone: str | None = s["recipient_phone"] if s["direction"] == "outbound" else s["sender_phone"]
    return phone


async def _effects(session: AsyncSession, s: dict[str, Any], status: str, status_at: datetime,
                   reason: str | None, effects: dict[str, Any], new_events: Sequence[dict[str, Any]],
                   attempts: int) -> None:
    """Each effect leaves once per shipment (recorded in `effects`), as a job in this transaction."""
    code, sid = s["dossier_code"], s["id"]
    if status == "delivered" and "delivered" not in effects:
        effects["delivered"] = status_at.isoformat()
        if s["direction"] == "inbound":
            await enqueue(session, "dossier.paper_arrived",
                          {"code": code, "arrived_at": status_at.isoformat(), "shipment_id": sid})
        else:
            await enqueue(session, "dossier.result_delivered",
                          {"code": code, "delivered_at": status_at.isoformat(), "shipment_id": sid})
    if status == "returned_to_sender" and "returned" not in effects:
        effects["returned"] = status_at.isoformat()
        params = {"dossier_code": code, "tracking_number": s["tracking_number"], "reason": reason,
                  "reason_text": REASON_TEXT.get(reason or "other")}
        if s["direction"] == "outbound":
            await enqueue(session, "notification.send", {
                "channel": "email", "to": f"mot-cua@{s['agency_code']}", "template": "postal_result_returned_keep",
                "params": params, "dossier_code": code, "key": f"postal:returned:office:{sid}"})
        phone = citizen_phone(s)
        if phone:
            await enqueue(session, "notification.send", {
                "channel": "sms", "to": phone, "template": "postal_returned_to_sender",
                "params": params, "dossier_code": code, "key": f"postal:returned:citizen:{sid}"})
    if status in FINAL_STATUSES:
        return
    phone = citizen_phone(s)
    for e in new_events:
        if e["status"] != "failed_attempt" or not phone:
            continue
        await enqueue(session, "notification.send", {
            "channel": "sms", "to": phone, "template": "postal_failed_attempt",
            "params": {"dossier_code": code, "tracking_number": s["tracking_number"],
                       "reason": e["failure_reason"], "reason_text": REASON_TEXT.get(e["failure_reason"] or "other"),
                       "occurred_at": e["occurred_at"].isoformat(), "attempts": attempts},
            "dossier_code": code, "key": f"postal:failed:{sid}:{e['dedupe_key']}"})


# ---------------------------------------------------------------- handovers


def handover_visible(principal: Principal, h: dict[str, Any]) -> bool:
    if principal.role == "admin":
        return True
    if principal.role == "postal_partner":
        return principal.partner_code is not None and principal.partner_code == str(h["partner_code"])
    return principal.role in STAFF and principal.agency_code == str(h["agency_code"])


async def create_handover(session: AsyncSession, body: HandoverIn, principal: Principal,
                          now: datetime) -> dict[str, Any]:
    if principal.role == "postal_partner":
        partner_code = principal.partner_code
        if not partner_code or (body.partner_code and body.partner_code != partner_code):
            raise ProblemError(403, "forbidden", "Đối tác chỉ lập biên bản của mình / a partner records only its own")
    else:
        if not principal.can_act_for_agency(body.agency_code):
            raise ProblemError(403, "forbidden", f"Không thuộc cơ quan {body.agency_code} / "
                               f"you do not act for agency {body.agency_code}")
        partner_code = body.partner_code
    ids = body.shipment_ids
    errors = [err(f"shipment_ids.{i}", "not a shipment id", "invalid") for i, sid in enumerate(ids)
              if not valid_uuid(sid)]
    if len(set(ids)) != len(ids):
        errors.append(err("shipment_ids", "a shipment is listed twice", "duplicate"))
    if errors:
        raise ProblemError(422, "validation_error", "Danh sách bưu gửi không hợp lệ / invalid shipment list",
                           errors=errors)
    ids = [str(uuid.UUID(i)) for i in ids]
    locked = {s["id"]: s for s in await repo.lock_by_ids(session, ids)}  # stable order: no deadlocks
    want_direction = "outbound" if body.kind == "to_postal" else "inbound"
    for i, sid in enumerate(ids):
        s = locked.get(sid)
        if s is None or s["agency_code"] != body.agency_code or (partner_code and s["partner_code"] != partner_code):
            errors.append(err(f"shipment_ids.{i}", f"no shipment {sid} of this agency and partner", "unknown"))
        elif s["direction"] != want_direction:
            errors.append(err(f"shipment_ids.{i}", f"a {body.kind} handover lists {want_direction} shipments",
                              "wrong_direction"))
        elif s["status"] in FINAL_STATUSES:
            errors.append(err(f"shipment_ids.{i}", f"shipment is already {s['status']}", "final"))
    partners_seen = {s["partner_code"] for s in locked.values()}
    if not errors and len(partners_seen) != 1:
        errors.append(err("shipment_ids", "one handover is with one partner", "mixed_partners"))
    if errors:
        raise ProblemError(422, "validation_error", "Kiểm tra lại danh sách bưu gửi / check the shipments",
                           errors=errors)
    busy = await repo.open_handovers_of(session, ids)
    if busy:
        raise _busy(busy)
    values = {
        "agency_code": body.agency_code, "partner_code": partners_seen.pop(), "kind": body.kind, "status": "open",
        "handed_over_at": body.handed_over_at or now, "office_signer": body.office_signer.model_dump(),
        "postal_signer": body.postal_signer.model_dump(), "location": body.location, "note": body.note,
        "created_by": f"{principal.role}:{principal.subject}",
    }
    try:
        async with session.begin_nested():
            handover = await repo.insert_handover(session, values, ids)
    except IntegrityError as exc:  # a racing handover took one of them (the partial unique index)
        busy = await repo.open_handovers_of(session, ids)
        raise _busy(busy) from exc
    return await handover_view(session, handover)


def _busy(rows: Sequence[dict[str, Any]]) -> ProblemError:
    return ProblemError(
        409, "shipment_in_open_handover",
        "Bưu gửi đã nằm trong một biên bản bàn giao khác đang mở / "
        "a shipment is already in another open handover record",
        title=("Bưu gửi đang trong biên bản khác", "Shipment already in an open handover"),
        errors=[err("shipment_ids", f"{r['shipment_id']} is in open handover {r['handover_id']}", "in_open_handover")
                for r in rows])


async def handover_view(session: AsyncSession, h: dict[str, Any]) -> dict[str, Any]:
    items = await repo.handover_shipments(session, str(h["id"]))
    return {
        "id": str(h["id"]), "kind": h["kind"], "status": h["status"], "agency_code": h["agency_code"],
        "partner_code": h["partner_code"], "handed_over_at": h["handed_over_at"].isoformat(),
        "office_signer": h["office_signer"], "postal_signer": h["postal_signer"], "location": h["location"],
        "note": h["note"], "created_by": h["created_by"], "created_at": h["created_at"].isoformat(),
        "confirmed_at": h["confirmed_at"].isoformat() if h["confirmed_at"] else None,
        "items": [{"shipment_id": str(s["id"]), "dossier_code": s["dossier_code"],
                   "tracking_number": s["tracking_number"], "direction": s["direction"], "status": s["status"],
                   "weight_grams": s["weight_grams"], "postage": s["postage"], "cod_amount": s["cod_amount"],
                   "citizen": s["recipient"]["name"] if s["direction"] == "outbound" else s["sender"]["name"]}
                  for s in items],
        "totals": {"count": len(items), "postage": sum(s["postage"] for s in items),
                   "cod_amount": sum(s["cod_amount"] for s in items)},
    }


async def handover_pdf_parties(session: AsyncSession, h: dict[str, Any]) -> tuple[dict[str, Any] | None,
                                                                                 dict[str, Any] | None]:
    return await repo.get_agency(session, h["agency_code"]), await repo.get_partner(session, h["partner_code"])


async def readable_handover(session: AsyncSession, handover_id: str, principal: Principal,
                            *, lock: bool = False) -> dict[str, Any]:
    h = await repo.get_handover(session, handover_id, lock=lock) if valid_uuid(handover_id) else None
    if h is None or not handover_visible(principal, h):
        raise not_found("biên bản bàn giao / handover", handover_id)
    return h


async def close_handover(session: AsyncSession, handover_id: str, principal: Principal, action: str,
                         now: datetime) -> dict[str, Any]:
    """confirm: both sides signed, the shipments changed hands (a timeline event); cancel: nothing moved."""
    h = await readable_handover(session, handover_id, principal, lock=True)
    if h["status"] != "open":
        raise ProblemError(409, "conflict", f"Biên bản đã {h['status']} / the handover is already {h['status']}")
    values: dict[str, Any] = {"status": "confirmed" if action == "confirm" else "cancelled"}
    if action == "confirm":
        values.update(confirmed_at=now, confirmed_by=f"{principal.role}:{principal.subject}")
    await repo.close_handover(session, str(h["id"]), values)
    if action == "confirm":
        items = await repo.handover_shipments(session, str(h["id"]))
        status = "picked_up" if h["kind"] == "to_postal" else "delivered"
        events = [EventIn(event_id=f"handover:{h['id']}", tracking_number=s["tracking_number"], status=status,
                          occurred_at=h["handed_over_at"], location=h["location"],
                          note=f"Biên bản bàn giao {h['id']}") for s in items]
        await ingest_events(session, h["partner_code"], events, source="api", strict=False)
    return await handover_view(session, {**h, **values})


def now_utc() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- polling fallback


async def poll_stale(session: AsyncSession, now: datetime, stale_after: timedelta, limit: int = 500,
                     clients: dict[str, Any] | None = None) -> dict[str, int]:
    """Asks each partner's tracking API about open shipments we heard nothing of for `stale_after`.

    `clients` (tests) maps a partner code to a PartnerTrackingClient; otherwise from the partner's row.
    """
    from services.postal_tracking.tracking import TrackedShipment, client_for

    stale = await repo.stale_shipments(session, now - stale_after, limit)
    by_partner: dict[str, list[dict[str, Any]]] = {}
    for s in stale:
        by_partner.setdefault(s["partner_code"], []).append(s)
    accepted = 0
    for partner_code, rows in by_partner.items():
        client = (clients or {}).get(partner_code) or client_for(rows[0])
        if client is None:
            continue
        events = await client.track([TrackedShipment(r["tracking_number"], r["direction"], r["created_at"])
                                     for r in rows], now)
        await repo.mark_heard(session, [str(r["id"]) for r in rows], now)
        if events:
            result = await ingest_events(session, partner_code, events, source="poll", strict=False)
            accepted += result["accepted"]
    return {"polled": len(stale), "accepted": accepted}
