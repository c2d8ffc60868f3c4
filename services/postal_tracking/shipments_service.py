"""Shipments: creation (by staff, a partner, or the workflow's job), visibility, reads and listing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.postal_tracking import dossiers_repository as dossiers_repo
from services.postal_tracking import partners_repository as partners_repo
from services.postal_tracking import shipments_repository as repo
from services.postal_tracking.common import STAFF, not_found, valid_uuid
from services.postal_tracking.schemas import ShipmentIn
from shared.admin_units import ward_exists
from shared.auth import Principal
from shared.db import Tx
from shared.pagination import decode_cursor, encode_cursor
from shared.problems import ProblemError, error_item

DEFAULT_SERVICE = {"inbound": "HCC-HS", "outbound": "HCC-KQ"}




def s10_check_digit(serial: int) -> int:
    """UPU S10 check digit over the 8-digit serial."""
    digits = f"{serial:08d}"
    total = sum(int(d) * w for d, w in zip(digits, (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    check = 11 - total % 11
    return 0 if check == 10 else 5 if check == 11 else check


async def allocate_tracking_number(tx: Tx, prefix: str) -> str:
    serial = await partners_repo.next_tracking_serial(tx) % 100_000_000
    return f"{prefix}{serial:08d}{s10_check_digit(serial)}VN"


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


def agency_address(agency: dict[str, Any]) -> dict[str, Any]:
    return {"name": agency["name"], "phone": None, "address_line": agency["name"],
            "ward_code": agency["admin_unit_code"]}


def creating_partner(body: ShipmentIn, principal: Principal) -> str | None:
    """The partner a caller may create this shipment with (None: the default partner)."""
    if principal.role == "postal_partner":
        if not principal.partner_code or (body.partner_code and body.partner_code != principal.partner_code):
            raise ProblemError(403, "forbidden", "Đối tác chỉ tạo bưu gửi của mình / "
                               "a partner creates only its own shipments")
        if body.direction != "inbound":
            raise ProblemError(403, "forbidden", "Đối tác chỉ tạo bưu gửi chiều đến cho hồ sơ mình nhận; bưu gửi "
                               "trả kết quả do cơ quan tạo / a partner creates only inbound shipments (of dossiers "
                               "it registered); the agency creates the outbound ones")
        return principal.partner_code
    if not principal.can_act_for_agency(body.agency_code):
        raise ProblemError(403, "forbidden", f"Không thuộc cơ quan {body.agency_code} / "
                           f"you do not act for agency {body.agency_code}")
    return body.partner_code


async def shipped_dossier(tx: Tx, body: ShipmentIn, principal: Principal) -> dict[str, Any]:
    """The dossier the shipment is for, when the caller may ship it: staff of an agency handling it
    (receiving or competent), or, inbound, the partner that registered it. "Not yours" and "does not
    exist" are the same 404, so no other agency's dossier codes are confirmed."""
    d = await dossiers_repo.get(tx, body.dossier_code)
    agencies = (d["receiving_agency"], d["competent_agency"]) if d else ()
    if d is None:
        allowed = False
    elif principal.role == "postal_partner":
        allowed = d["partner_code"] is not None and d["partner_code"] == principal.partner_code
    else:
        allowed = body.agency_code in agencies
    if not allowed:
        raise ProblemError(404, "not_found", f"Không có hồ sơ {body.dossier_code} gửi qua bưu chính của bạn / "
                           f"No dossier {body.dossier_code} travelling by post for you")
    assert d is not None
    if body.agency_code not in agencies:  # a partner naming an agency that does not handle its dossier
        raise ProblemError(422, "validation_error", "Cơ quan không giải quyết hồ sơ này / the agency does not "
                           "handle this dossier", errors=[error_item(
                               "agency_code", f"hồ sơ thuộc {' / '.join(sorted(set(agencies)))} / the dossier is "
                               f"handled by {', '.join(sorted(set(agencies)))}", "wrong_agency")])
    return d


async def create_shipment(tx: Tx, body: ShipmentIn, principal: Principal, now: datetime) -> dict[str, Any]:
    partner_code = creating_partner(body, principal)
    await shipped_dossier(tx, body, principal)
    errors: list[dict[str, str]] = []
    partner = await (partners_repo.get_partner(tx, partner_code) if partner_code
                     else partners_repo.default_partner(tx))
    if partner is None or not partner["active"]:
        errors.append(error_item("partner_code", "không có đối tác bưu chính này / unknown postal partner",
                          "unknown_partner"))
    agency = await partners_repo.get_agency(tx, body.agency_code)
    if agency is None:
        errors.append(error_item("agency_code", "không có cơ quan này / unknown agency", "unknown_agency"))
    citizen_field = "sender" if body.direction == "inbound" else "recipient"
    citizen = body.sender if body.direction == "inbound" else body.recipient
    if citizen is None:
        errors.append(error_item(citizen_field, "cần địa chỉ của công dân / the citizen's address is needed for an "
                          f"{body.direction} shipment", "missing"))
    for name, addr in (("sender", body.sender), ("recipient", body.recipient)):
        if addr is not None and not ward_exists(addr.ward_code):
            errors.append(error_item(
                f"{name}.ward_code", "mã phường/xã không tồn tại / unknown ward code", "unknown_ward"))
    service_code = body.service_code or DEFAULT_SERVICE[body.direction]
    if partner is not None and not await partners_repo.service_exists(tx, partner["code"], service_code):
        errors.append(error_item(
            "service_code", "đối tác không có dịch vụ này / the partner does not offer this service",
                          "unknown_service"))
    if errors:
        raise ProblemError(422, "validation_error", "Kiểm tra lại bưu gửi / Check the shipment: "
                           + ", ".join(e["field"] for e in errors), errors=errors)
    assert partner is not None and agency is not None and citizen is not None
    postage = body.postage
    if postage is None:
        postage = await partners_repo.postage_for(tx, partner["code"], service_code, body.weight_grams)
        if postage is None:
            raise ProblemError(422, "validation_error", "Quá khối lượng tối đa của bảng cước / "
                               "heavier than the partner's fee table allows",
                               errors=[error_item("weight_grams", "không có cước cho khối lượng này / "
                                           "no postage for this weight", "too_heavy")])
    agency_side = agency_address(agency)
    tracking = body.tracking_number or await allocate_tracking_number(tx, partner["tracking_prefix"])
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
    row = await repo.insert_shipment(tx, values)
    if row is None:
        existing = await repo.find_by_dossier(tx, body.dossier_code, body.direction)
        if existing is not None:
            raise ProblemError(409, "conflict", f"Hồ sơ {body.dossier_code} đã có bưu gửi chiều {body.direction} / "
                               f"dossier {body.dossier_code} already has an {body.direction} shipment",
                               extra={"shipment_id": str(existing["id"])} if can_read(principal, existing) else None)
        raise ProblemError(409, "conflict", f"Số hiệu {tracking} đã được dùng / tracking number {tracking} is taken",
                           errors=[error_item("tracking_number", "số hiệu đã dùng / already used", "duplicate")])
    return public_shipment(row, [])


async def create_outbound_from_job(tx: Tx, data: dict[str, Any], now: datetime) -> str | None:
    """`shipment.create_outbound` from the workflow: exactly once per dossier, however often it runs."""
    if await repo.find_by_dossier(tx, data["code"], "outbound") is not None:
        return None
    partner = await partners_repo.default_partner(tx)
    agency = await partners_repo.get_agency(tx, data["agency_code"])
    if partner is None or agency is None:
        raise ValueError(f"no default postal partner or unknown agency {data.get('agency_code')}")
    if not data.get("address_line") or not data.get("ward_code"):
        raise ValueError(f"dossier {data['code']}: no delivery address for the result")
    service_code = DEFAULT_SERVICE["outbound"]
    weight = int(data.get("weight_grams") or 200)
    postage = await partners_repo.postage_for(tx, partner["code"], service_code, weight) or 0
    values = {
        "direction": "outbound", "dossier_code": data["code"], "agency_code": data["agency_code"],
        "partner_code": partner["code"],
        "tracking_number": await allocate_tracking_number(tx, partner["tracking_prefix"]),
        "service_code": service_code, "sender": agency_address(agency),
        "recipient": {"name": data.get("recipient_name") or "", "phone": data.get("phone"),
                      "address_line": data["address_line"], "ward_code": data["ward_code"]},
        "weight_grams": weight, "postage": postage, "cod_amount": int(data.get("cod_amount") or 0),
        "status": "created", "status_at": now, "created_by": "system:workflow", "last_heard_at": now,
    }
    row = await repo.insert_shipment(tx, values)  # ON CONFLICT DO NOTHING: a racing twin wins
    return str(row["id"]) if row else None


async def get_shipment(tx: Tx, shipment_id: str, principal: Principal) -> dict[str, Any]:
    s = await repo.get_shipment(tx, shipment_id) if valid_uuid(shipment_id) else None
    if s is None or not can_read(principal, s):
        raise not_found("bưu gửi", "shipment", shipment_id)
    return public_shipment(s, await repo.timeline(tx, shipment_id))


def listing_scope(principal: Principal, agency_code: str | None) -> tuple[str | None, str | None]:
    """(agency, partner) the caller's listing is limited to."""
    if principal.role == "postal_partner":
        if not principal.partner_code:
            raise ProblemError(403, "forbidden", "Mã truy cập không có partner_code / token has no partner_code")
        return agency_code, principal.partner_code
    if principal.role in STAFF:
        if agency_code and agency_code != principal.agency_code:
            raise ProblemError(403, "forbidden", "Chỉ xem bưu gửi của cơ quan mình / only your agency's shipments")
        return principal.agency_code, None
    if principal.role != "admin":
        raise ProblemError(403, "forbidden", f"Vai trò '{principal.role}' không xem được bưu gửi / "
                           f"role '{principal.role}' may not list shipments")
    return agency_code, None


async def list_shipments(
    tx: Tx, principal: Principal, *, dossier_code: str | None, statuses: Sequence[str],
    direction: str | None, agency_code: str | None, cursor: str | None, limit: int,
) -> dict[str, Any]:
    agency_scope, partner_scope = listing_scope(principal, agency_code)
    after_values = decode_cursor(cursor, 2)
    after = None
    if after_values is not None:
        try:
            after = (datetime.fromisoformat(str(after_values[0])), str(uuid.UUID(str(after_values[1]))))
        except ValueError as exc:
            raise ProblemError(400, "bad_request", "cursor không hợp lệ / Invalid cursor") from exc
    rows = await repo.list_shipments(tx, agency_code=agency_scope, partner_code=partner_scope,
                                     dossier_code=dossier_code, statuses=statuses, direction=direction,
                                     after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor([rows[-1]["created_at"].isoformat(), str(rows[-1]["id"])]) if more else None
    return {"items": [public_shipment(r) for r in rows], "next_cursor": next_cursor}
