"""Dossier submission rules (tiếp nhận hồ sơ): validation, code, due date, fee, event. Never commits."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.intake import dossier_codes, files, service
from services.intake import dossier_repository as repo
from services.intake.citizen_id import id_number_problems
from services.intake.schemas import DossierIn
from shared.admin_units import ward_exists
from shared.auth import Principal
from shared.calendar import VN_TZ, TimeLimit, in_supported_range, limit_for
from shared.calendars import calendar_for_agency
from shared.db import Tx
from shared.idempotency import KeyUsed
from shared.jobs import enqueue, request_id
from shared.problems import ProblemError, error_item
from shared.settings import get_settings

CHANNEL_ROLES = {"counter": {"officer", "supervisor", "admin"}, "online": {"citizen"},
                 "postal": {"postal_partner", "officer", "supervisor", "admin"}}
MAX_PER_DAY = 9999
POSTAL_HANDOVER_WINDOW = timedelta(days=30)  # a postal dossier reaches the office within this of its handover
CLOCK_SKEW = timedelta(minutes=5)  # a sender's clock a little ahead is not "the future"



def fee_for(rule: dict[str, Any], sets: int, pages: int) -> int:
    kind = rule.get("kind")
    if kind == "fixed":
        return int(rule.get("amount", 0))
    if kind == "per_copy":
        return int(rule["amount"]) * sets
    if kind == "per_page":
        first = min(pages, int(rule["first_pages"])) * int(rule["first_rate"])
        rest = max(0, pages - int(rule["first_pages"])) * int(rule["rate"])
        return min(first + rest, int(rule["cap_per_copy"])) * sets
    return 0


def _check_people(body: DossierIn, who: Principal, errors: list[dict[str, str]]) -> None:
    applicant = body.applicant
    for problem in id_number_problems(applicant.id_number, applicant.date_of_birth):
        errors.append(error_item("applicant.id_number", problem, "id_number"))
    if not ward_exists(applicant.address.ward_code):
        errors.append(error_item(
            "applicant.address.ward_code", f"mã phường/xã {applicant.address.ward_code} không tồn tại"
                          f" / unknown ward code {applicant.address.ward_code}", "unknown_ward"))
    if body.representative is not None:
        for problem in id_number_problems(body.representative.id_number, None):
            errors.append(error_item("representative.id_number", problem, "id_number"))
    if who.role == "citizen":
        acting_as = body.representative.id_number if body.representative else applicant.id_number
        if acting_as != who.subject:
            errors.append(error_item(
                "applicant.id_number", "công dân chỉ nộp cho chính mình hoặc với tư cách người đại "
                              "diện / a citizen submits only for themselves or as the named representative",
                              "not_self"))


def _check_procedure(body: DossierIn, proc: dict[str, Any], errors: list[dict[str, str]]) -> None:
    if body.channel not in proc["channels"]:
        errors.append(error_item("channel", f"thủ tục không nhận qua kênh {body.channel} / procedure not offered on "
                          f"channel '{body.channel}' (allowed: {', '.join(proc['channels'])})", "channel_not_allowed"))
    given = {d.name.strip().lower() for d in body.documents}
    for doc in proc["documents"]:
        if doc.get("mandatory") and doc["name"].strip().lower() not in given:
            errors.append(error_item(
                "documents", f"thiếu giấy tờ bắt buộc: {doc['name']} / missing mandatory document: "
                              f"{doc['name']}", "missing_document"))
    if body.result_delivery == "postal" and body.delivery_address is None:
        errors.append(error_item("delivery_address", "cần địa chỉ nhận kết quả qua bưu chính / a delivery address is "
                          "required for postal return", "required"))
    if body.result_delivery not in proc["result_delivery"]:
        errors.append(error_item(
            "result_delivery", "hình thức trả kết quả không được hỗ trợ / unsupported result delivery",
                          "not_allowed"))


async def _optional(lookup: Awaitable[dict[str, Any]]) -> dict[str, Any] | None:
    try:
        return await lookup
    except ProblemError as exc:
        if exc.status == 404:
            return None
        raise


async def submit(tx: Tx, body: DossierIn, who: Principal, now: datetime,
                 idempotency: tuple[str, str, str, str, str]) -> tuple[str, str]:
    """Validates, then receives in one statement. `idempotency`: the key's scope, key, method, path and
    fingerprint (kept by that statement). Returns the code and the answer's JSON text."""
    if who.role not in CHANNEL_ROLES[body.channel]:
        raise ProblemError(403, "forbidden", f"Vai trò {who.role} không nộp được qua kênh {body.channel} / "
                           f"role '{who.role}' may not submit on channel '{body.channel}'")
    errors: list[dict[str, str]] = []
    proc = await _optional(service.procedure(tx, body.procedure_code, now.astimezone(VN_TZ).date()))
    agency = await _optional(service.agency(tx, body.receiving_agency_code))
    if proc is None:
        errors.append(error_item("procedure_code", f"không có thủ tục {body.procedure_code} / unknown procedure",
                          "unknown_procedure"))
    if agency is None:
        errors.append(error_item(
            "receiving_agency_code", f"không có cơ quan {body.receiving_agency_code} / unknown agency",
                          "unknown_agency"))
    elif who.role in ("officer", "supervisor") and who.agency_code != agency["code"]:
        raise ProblemError(403, "forbidden", "Cán bộ chỉ tiếp nhận cho cơ quan của mình / an officer receives "
                           "dossiers only for their own agency")
    _check_people(body, who, errors)
    if proc is not None:
        _check_procedure(body, proc, errors)
    received_at = now
    if body.channel == "postal" and body.received_at is not None:
        given = body.received_at
        if not in_supported_range(given) or not now - POSTAL_HANDOVER_WINDOW <= given <= now + CLOCK_SKEW:
            errors.append(error_item(
                "received_at", f"thời điểm bàn giao bưu chính phải có múi giờ, trong {POSTAL_HANDOVER_WINDOW.days} "
                f"ngày qua và không ở tương lai / the postal handover time needs a UTC offset, within the last "
                f"{POSTAL_HANDOVER_WINDOW.days} days and not in the future", "out_of_range"))
        else:
            received_at = min(given, now)
    competent = None
    ward = body.applicant.address.ward_code
    if agency is not None and (elsewhere := service.outside_province(ward, agency)) is not None:
        errors.append(error_item("applicant.address.ward_code", elsewhere, "outside_province"))
    elif proc is not None and agency is not None and ward_exists(ward):
        competent = await service.competent_agency(tx, proc, ward)
        if competent is None:
            errors.append(error_item("applicant.address.ward_code", service.no_competent_agency(proc, ward),
                                     "no_competent_agency"))
    errors += await files.unknown_file_errors(tx, body.documents, who)
    if errors:
        raise ProblemError(422, "validation_error", "Hồ sơ chưa hợp lệ: " + "; ".join(e["message"] for e in errors),
                           errors=errors)
    assert proc is not None and agency is not None and competent is not None
    return await _receive(tx, body, who, proc, agency, competent["code"], received_at, idempotency,
                          registered_at=now, competent_name=competent["name"])


async def _receive(tx: Tx, body: DossierIn, who: Principal, proc: dict[str, Any],
                   agency: dict[str, Any], competent: str, received_at: datetime,
                   idempotency: tuple[str, str, str, str, str], *, registered_at: datetime,
                   competent_name: str) -> tuple[str, str]:
    # The code is numbered in the register of the day the dossier is REGISTERED (Viet Nam date), never on a
    # back-dated postal handover day, whose register may be closed already.
    local_day = registered_at.astimezone(VN_TZ).date()
    calendar = await calendar_for_agency(tx, competent)  # the deciding body's working days, as the workflow counts
    limit = limit_for(proc["time_limit"], body.channel)
    clock_started = not waits_for_paper(body.channel, proc) and not waits_for_acceptance(body.channel)
    due_at = calendar.due_at(received_at, TimeLimit.of(limit)).due_at if clock_started else None
    fee = fee_for(proc["fee"], body.number_of_sets, body.pages_per_copy)
    applicant = body.applicant.model_dump(mode="json")
    row = {
        "procedure_code": proc["code"], "procedure_version_id": proc["id"],
        "receiving_agency": agency["code"], "competent_agency": competent, "channel": body.channel,
        "status": "received", "applicant": applicant, "applicant_id_number": body.applicant.id_number,
        "submitted_by": who.subject, "submitted_role": who.role,
        "documents": [d.model_dump(mode="json", by_alias=True) for d in body.documents],
        "number_of_sets": body.number_of_sets, "result_delivery": body.result_delivery,
        "delivery_address": body.delivery_address.model_dump(mode="json") if body.delivery_address else None,
        "fee": fee, "received_at": received_at, "due_at": due_at, "clock_started": clock_started,
        "queue_ticket_id": body.queue_ticket_id, "notes": body.notes, **receiver_of(who),
        "representative": body.representative.model_dump(mode="json") if body.representative else None,
    }
    answer = {"status": "received", "channel": body.channel, "procedure_code": proc["code"],
              "receiving_agency": agency["code"], "receiving_agency_name": agency["name"],
              "competent_agency": competent, "competent_agency_name": competent_name,
              "received_at": received_at.isoformat(), "due_at": _iso(due_at), "fee": fee}
    event = {
        "procedure_code": proc["code"], "procedure_name": proc["name"],
        "field_code": proc["field_code"], "receiving_agency": agency["code"], "competent_agency": competent,
        "channel": body.channel, "received_at": received_at.isoformat(), "due_at": _iso(due_at),
        "applicant": {"name": body.applicant.full_name, "id_number": body.applicant.id_number,
                      "phone": body.applicant.phone, "email": body.applicant.email,
                      "address": body.applicant.address.line},
        "number_of_sets": body.number_of_sets,
        "time_limit": limit,
        "result_delivery": body.result_delivery, "delivery_address": row["delivery_address"],
        "fee": fee, "clock_started": clock_started,
        "receiver": {"name": row["receiver_name"], "title": row["receiver_title"]},
        # service index: the procedure's online level, and whether the components came electronic (digitised)
        "online_level": proc["online_level"],
        "digitised": body.channel == "online" or (bool(body.documents) and all(d.file_ids for d in body.documents)),
    }
    code = await dossier_codes.choose(tx, proc["code"], local_day, agency["code"], competent,
                                      get_settings().dossier_code_pattern)
    try:
        return await repo.receive(tx, agency["code"], local_day, row, code,
                                  answer=answer, event=event, request_id=request_id(), idempotency=idempotency,
                                  postal=postal_fact(body, who, agency["code"], competent, received_at))
    except asyncpg.CheckViolationError as exc:  # nothing was written: the counter is not consumed
        raise ProblemError(409, "daily_sequence_exhausted",
                           f"Cơ quan đã nhận {MAX_PER_DAY} hồ sơ trong ngày; không cấp thêm mã / "
                           f"the agency's {MAX_PER_DAY} dossier codes for {local_day} are used up") from exc
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "idempotency_keys_pkey":
            raise KeyUsed from exc
        raise


def receiver_of(who: Principal) -> dict[str, str | None]:
    """Who received the dossier, as form 01 prints it: the staff member's full name and title from the
    identity records. A citizen (online) or a postal partner is not the receiver: none is named then."""
    staff = who.is_staff()
    return {"receiver_name": who.name if staff else None, "receiver_title": who.title if staff else None}


def postal_fact(body: DossierIn, who: Principal, receiving: str, competent: str,
                received_at: datetime) -> dict[str, Any] | None:
    """What postal keeps of a dossier that may travel by post (handed in by post, result returned by post,
    or paper sent on to another competent agency), so it creates shipments only for the agencies handling
    it and the partner that registered it (the `postal.dossier_received` job). None for the others."""
    if body.channel != "postal" and body.result_delivery != "postal" and receiving == competent:
        return None
    return {"receiving_agency": receiving, "competent_agency": competent, "channel": body.channel,
            "result_delivery": body.result_delivery, "received_at": received_at.isoformat(),
            "partner_code": who.partner_code if who.role == "postal_partner" else None}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def waits_for_paper(channel: str, proc: dict[str, Any]) -> bool:
    """Certifications sent by post: the time limit runs from the postmark on arrival (Decision 45/2016, and
    the certification procedures' own rule), not from the handover record. Other postal dossiers: from the
    handover record (Art. 7.4), whose time is the partner's `received_at`."""
    return channel == "postal" and proc["field_code"] == "CT"


def waits_for_acceptance(channel: str) -> bool:
    """Online dossiers: the time limit runs from the officer's acceptance (workflow action `accept`)."""
    return channel == "online"


async def start_clock(tx: Tx, code: str, arrived_at: datetime) -> None:
    """The paper arrived: due date from now on, and workflow is told (once: the flag is the guard)."""
    found = await repo.get_dossier(tx, code, lock=True)
    if found is None or found["clock_started"]:
        return
    proc = await service.procedure(tx, found["procedure_code"], found["received_at"].astimezone(VN_TZ).date())
    calendar = await calendar_for_agency(tx, found["competent_agency"])
    due = calendar.due_at(arrived_at, TimeLimit.of(proc["time_limit"], found["channel"])).due_at
    await repo.start_clock(tx, code, due)
    await enqueue(tx, "dossier.clock_started", {"code": code, "started_at": arrived_at.isoformat(),
                                                     "due_at": due.isoformat()})


async def due_set(tx: Tx, code: str, due_at: datetime) -> None:
    """Workflow started the clock (an online dossier accepted): the receipt shows the due date from now on."""
    found = await repo.get_dossier(tx, code, lock=True)
    if found is not None and (not found["clock_started"] or found["due_at"] != due_at):
        await repo.start_clock(tx, code, due_at)
