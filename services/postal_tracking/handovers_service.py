"""Handover records (biên bản bàn giao) between the one-stop office and the postman: one open record
per shipment; confirming it puts the hand-over on each shipment's timeline."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from services.postal_tracking import handovers_repository as repo
from services.postal_tracking import partners_repository as partners_repo
from services.postal_tracking import shipments_repository as shipments_repo
from services.postal_tracking.common import STAFF, not_found, valid_uuid
from services.postal_tracking.events_service import ingest_events
from services.postal_tracking.models import FINAL_STATUSES
from services.postal_tracking.schemas import EventIn, HandoverIn
from shared.auth import Principal
from shared.db import Tx
from shared.problems import ProblemError, error_item


def handover_visible(principal: Principal, h: dict[str, Any]) -> bool:
    if principal.role == "admin":
        return True
    if principal.role == "postal_partner":
        return principal.partner_code is not None and principal.partner_code == str(h["partner_code"])
    return principal.role in STAFF and principal.agency_code == str(h["agency_code"])


def recording_partner(body: HandoverIn, principal: Principal) -> str | None:
    """The partner a caller may record this handover with (None: whichever the shipments have)."""
    if principal.role == "postal_partner":
        partner_code = principal.partner_code
        if not partner_code or (body.partner_code and body.partner_code != partner_code):
            raise ProblemError(403, "forbidden", "Đối tác chỉ lập biên bản của mình / a partner records only its own")
        return partner_code
    if not principal.can_act_for_agency(body.agency_code):
        raise ProblemError(403, "forbidden", f"Không thuộc cơ quan {body.agency_code} / "
                           f"you do not act for agency {body.agency_code}")
    return body.partner_code


def checked_ids(ids: Sequence[str]) -> list[str]:
    errors = [error_item(f"shipment_ids.{i}", "không phải mã bưu gửi / not a shipment id", "invalid")
              for i, sid in enumerate(ids) if not valid_uuid(sid)]
    if len(set(ids)) != len(ids):
        errors.append(error_item(
            "shipment_ids", "một bưu gửi được kê hai lần / a shipment is listed twice", "duplicate"))
    if errors:
        raise ProblemError(422, "validation_error", "Danh sách bưu gửi không hợp lệ / invalid shipment list",
                           errors=errors)
    return [str(uuid.UUID(i)) for i in ids]


def listed_shipment_errors(body: HandoverIn, partner_code: str | None, ids: Sequence[str],
                           locked: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    want_direction = "outbound" if body.kind == "to_postal" else "inbound"
    errors = []
    for i, sid in enumerate(ids):
        s = locked.get(sid)
        if s is None or s["agency_code"] != body.agency_code or (partner_code and s["partner_code"] != partner_code):
            errors.append(error_item(f"shipment_ids.{i}", f"không có bưu gửi {sid} của cơ quan và đối tác này / "
                              f"no shipment {sid} of this agency and partner", "unknown"))
        elif s["direction"] != want_direction:
            errors.append(error_item(f"shipment_ids.{i}", f"biên bản {body.kind} chỉ kê bưu gửi {want_direction} / "
                              f"a {body.kind} handover lists {want_direction} shipments", "wrong_direction"))
        elif s["status"] in FINAL_STATUSES:
            errors.append(error_item(
                f"shipment_ids.{i}", f"bưu gửi đã {s['status']} / shipment is already {s['status']}",
                              "final"))
    return errors


HANDOVER_WINDOW = timedelta(days=30)
CLOCK_SKEW = timedelta(minutes=5)


def handed_over_at(body: HandoverIn, now: datetime) -> datetime:
    """When the shipments changed hands: recorded at most 30 days late, never ahead of the clock."""
    at = body.handed_over_at
    if at is None:
        return now
    if not now - HANDOVER_WINDOW <= at <= now + CLOCK_SKEW:
        raise ProblemError(422, "validation_error", "Thời điểm bàn giao phải trong 30 ngày qua / the handover time "
                           "must be within the last 30 days and not in the future", errors=[error_item(
                               "handed_over_at", "within the last 30 days, not in the future", "out_of_range")])
    return min(at, now)


async def create_handover(tx: Tx, body: HandoverIn, principal: Principal, now: datetime) -> dict[str, Any]:
    partner_code = recording_partner(body, principal)
    at = handed_over_at(body, now)
    ids = checked_ids(body.shipment_ids)
    locked = {s["id"]: s for s in await shipments_repo.lock_by_ids(tx, ids)}
    errors = listed_shipment_errors(body, partner_code, ids, locked)
    partners_seen = {s["partner_code"] for s in locked.values()}
    if not errors and len(partners_seen) != 1:
        errors.append(error_item("shipment_ids", "một biên bản chỉ với một đối tác / one handover is with one partner",
                          "mixed_partners"))
    if errors:
        raise ProblemError(422, "validation_error", "Kiểm tra lại danh sách bưu gửi / check the shipments",
                           errors=errors)
    if busy := await repo.open_handovers_of(tx, ids):
        raise in_open_handover(busy)
    values = {
        "agency_code": body.agency_code, "partner_code": partners_seen.pop(), "kind": body.kind, "status": "open",
        "handed_over_at": at, "office_signer": body.office_signer.model_dump(),
        "postal_signer": body.postal_signer.model_dump(), "location": body.location, "note": body.note,
        "created_by": f"{principal.role}:{principal.subject}",
    }
    handover = await repo.insert_handover(tx, values, ids)
    if handover is None:
        raise in_open_handover(await repo.open_handovers_of(tx, ids))
    return await handover_view(tx, handover)


def in_open_handover(rows: Sequence[dict[str, Any]]) -> ProblemError:
    return ProblemError(
        409, "shipment_in_open_handover",
        "Bưu gửi đã nằm trong một biên bản bàn giao khác đang mở / "
        "a shipment is already in another open handover record",
        title=("Bưu gửi đang trong biên bản khác", "Shipment already in an open handover"),
        errors=[error_item("shipment_ids", f"{r['shipment_id']} đang trong biên bản {r['handover_id']} / "
                    f"{r['shipment_id']} is in open handover {r['handover_id']}", "in_open_handover")
                for r in rows])


async def handover_view(tx: Tx, h: dict[str, Any]) -> dict[str, Any]:
    items = await repo.handover_shipments(tx, str(h["id"]))
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


async def handover_pdf_parties(tx: Tx, h: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    return await partners_repo.get_agency(tx, h["agency_code"]), await partners_repo.get_partner(tx, h["partner_code"])


async def readable_handover(tx: Tx, handover_id: str, principal: Principal, *, lock: bool = False) -> dict[str, Any]:
    h = await repo.get_handover(tx, handover_id, lock=lock) if valid_uuid(handover_id) else None
    if h is None or not handover_visible(principal, h):
        raise not_found("biên bản bàn giao", "handover", handover_id)
    return h


async def close_handover(tx: Tx, handover_id: str, principal: Principal, action: str,
                         now: datetime) -> dict[str, Any]:
    """confirm: both sides signed, the shipments changed hands (a timeline event); cancel: nothing moved.
    The same action again answers the handover as it is (naturally idempotent: a retry does nothing twice);
    the other action on a closed handover is a 409."""
    h = await readable_handover(tx, handover_id, principal, lock=True)
    if h["status"] == ("confirmed" if action == "confirm" else "cancelled"):
        return await handover_view(tx, h)  # a retry (or the other side doing the same): nothing more to do
    if h["status"] != "open":
        raise ProblemError(409, "conflict", f"Biên bản đã {h['status']} / the handover is already {h['status']}")
    values: dict[str, Any] = {"status": "confirmed" if action == "confirm" else "cancelled"}
    if action == "confirm":
        values.update(confirmed_at=now, confirmed_by=f"{principal.role}:{principal.subject}")
    await repo.close_handover(tx, str(h["id"]), values)
    if action == "confirm":
        items = await repo.handover_shipments(tx, str(h["id"]))
        status = "picked_up" if h["kind"] == "to_postal" else "delivered"
        events = [EventIn(event_id=f"handover:{h['id']}", tracking_number=s["tracking_number"], status=status,
                          occurred_at=h["handed_over_at"], location=h["location"],
                          note=f"Biên bản bàn giao {h['id']}") for s in items]
        await ingest_events(tx, h["partner_code"], events, source="api", strict=False)
    return await handover_view(tx, {**h, **values})
