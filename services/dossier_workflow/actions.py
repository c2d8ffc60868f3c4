"""What each action does beyond the state change the definition gives (checks, dates, effects)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.dossier_workflow import bounds, deadlines
from services.dossier_workflow import dossiers_repository as repo
from services.dossier_workflow.schemas import ActionIn
from shared.auth import Principal
from shared.calendar import VN_TZ, TimeLimit, WorkingCalendar
from shared.db import Tx
from shared.jobs import enqueue
from shared.problems import ProblemError, error_item
from shared.settings import get_settings


@dataclass
class Context:
    tx: Tx
    dossier: dict[str, Any]
    who: Principal
    body: ActionIn
    now: datetime
    calendar: WorkingCalendar
    definition: dict[str, Any]
    rule: dict[str, Any]


@dataclass
class Outcome:
    values: dict[str, Any] = field(default_factory=dict)
    history_data: dict[str, Any] = field(default_factory=dict)
    notify: str | None = None
    notify_params: dict[str, Any] = field(default_factory=dict)
    http_status: int = 200


async def signing_head(ctx: Context) -> dict[str, str | None]:
    """Who signs forms 04 and 05 for the agency holding the dossier, as the agency's data says when they are
    issued (kept with them: a later change of head does not re-sign what was issued)."""
    row = await repo.agency_place(ctx.tx, ctx.dossier["current_agency"])
    return {"signed_by_name": row["head_name"] if row else None, "signed_by_title": row["head_title"] if row else None}


def invalid(field_name: str, message: str) -> ProblemError:
    return ProblemError(422, "validation_error", message,
                        errors=[error_item(field_name, message, "invalid")])


async def assign(ctx: Context) -> Outcome:
    if not ctx.body.assignee:
        raise invalid("assignee", "Cần người được giao (assignee) / assignee is required")
    return Outcome({"assignee": ctx.body.assignee}, {"assignee": ctx.body.assignee})


async def start(ctx: Context) -> Outcome:
    assignee = ctx.body.assignee or ctx.dossier["assignee"] or ctx.who.subject
    return Outcome({"assignee": assignee}, {"assignee": assignee}, notify="status_changed",
                   notify_params={"status": "in_progress"})


async def forward(ctx: Context) -> Outcome:
    return Outcome()


async def request_supplement(ctx: Context) -> Outcome:
    if not ctx.body.documents:
        raise invalid("documents", "Liệt kê giấy tờ cần bổ sung (documents) / list the documents asked for")
    until = ctx.calendar.due_at(ctx.now, TimeLimit(ctx.body.supplement_days, "working_days")).due_at
    await enqueue(ctx.tx, "dossier.supplement_requested", {
        "code": ctx.dossier["code"], "supplement_due_at": until.isoformat(), "documents": ctx.body.documents})
    return Outcome({"paused_at": ctx.now, "supplement_due_at": until},
                   {"documents": ctx.body.documents, "supplement_due_at": until.isoformat()},
                   notify="supplement_requested",
                   notify_params={"documents": ctx.body.documents, "supplement_due_at": until.isoformat()})


async def start_clock(ctx: Context) -> dict[str, Any]:
    """The clock starts now (an online dossier accepted, or a dossier asked to be completed before it started
    and now complete): the due dates from the stored limit, the step's deadline, and intake's receipt told
    the date (`dossier.due_set`)."""
    d = ctx.dossier
    values = deadlines.start_clock(ctx.calendar, d, ctx.now)
    values["step_due_at"] = deadlines.step_deadline(ctx.calendar, ctx.now, ctx.definition, d["step"],
                                                    values["working_minutes"])
    await enqueue(ctx.tx, "dossier.due_set", {"code": d["code"], "started_at": ctx.now.isoformat(),
                                              "due_at": values["due_at"].astimezone(VN_TZ).isoformat()})
    return values


async def receive_supplement(ctx: Context) -> Outcome:
    d = ctx.dossier
    if ctx.now > d["supplement_due_at"]:
        raise ProblemError(409, "supplement_deadline_passed", "Đã quá hạn bổ sung hồ sơ "
                           f"({d['supplement_due_at'].isoformat()}) / the supplement deadline has passed",
                           extra={"supplement_due_at": d["supplement_due_at"].isoformat()})
    if d["due_at"] is None:  # asked before the clock started: the dossier is complete, its clock starts now
        values = {**await start_clock(ctx), "paused_at": None, "supplement_due_at": None}
    else:
        values = deadlines.resume(ctx.calendar, d, ctx.now)
    return Outcome(values, {"paused_from": d["paused_at"].isoformat(), "due_at": values["due_at"].isoformat()},
                   notify="supplement_received", notify_params={"due_at": values["due_at"].isoformat()})


def _resolution(ctx: Context, outcome: str, reason: str | None) -> Outcome:
    d = ctx.dossier
    minutes = deadlines.processing_minutes(ctx.calendar, d, ctx.now)
    values = {"outcome": outcome, "outcome_reason": reason, "resolved_at": ctx.now, "paused_at": None}
    data = {"outcome": outcome, "timing": deadlines.timing(ctx.now, d["original_due_at"]),
            "processing_minutes": minutes}
    return Outcome(values, data, notify="result_ready", notify_params={"outcome": outcome})


async def _ship_result_if_postal(ctx: Context) -> None:
    d = ctx.dossier
    address = d["delivery_address"] or {}
    if d["result_delivery"] != "postal":
        return
    await enqueue(ctx.tx, "shipment.create_outbound", {
        "code": d["code"], "agency_code": d["current_agency"],
        "recipient_name": address.get("recipient_name") or d["applicant_name"],
        "phone": address.get("phone") or d["applicant_phone"], "address_line": address.get("line"),
        "ward_code": address.get("ward_code"), "cod_amount": 0,
    }, dedupe_key=f"shipment.create_outbound:{d['code']}")


async def approve(ctx: Context) -> Outcome:
    await _ship_result_if_postal(ctx)
    return _resolution(ctx, "approved", None)


async def reject(ctx: Context) -> Outcome:
    if not ctx.body.reason:
        raise invalid("reason", "Cần nêu lý do từ chối (reason) / a rejection needs a reason")
    await _ship_result_if_postal(ctx)
    return _resolution(ctx, "rejected", ctx.body.reason)


async def expire_supplement(ctx: Context) -> Outcome:
    """The citizen did not supplement in time: the dossier ends, refused, and is handed back."""
    reason = "Quá hạn bổ sung hồ sơ / the supplement deadline passed"
    result = _resolution(ctx, "rejected", reason)
    result.values.update(paused_at=None, supplement_due_at=None)
    return result


def _clock_running(d: dict[str, Any]) -> None:
    if d["due_at"] is None:
        raise ProblemError(409, "clock_not_started", "Thời hạn giải quyết chưa bắt đầu (hồ sơ trực tuyến chưa được "
                           "tiếp nhận, hoặc chưa nhận được hồ sơ giấy) / the time limit has not started yet",
                           extra={"state": d["status"]})


async def issue_apology(ctx: Context) -> Outcome:
    """Form 04: a reason and a new appointment; still late against the original due date. At most once when the
    setting APOLOGY_ONCE_ONLY is on (the default: Decree 297/2025 Art. 6.5 and Decree 61 Art. 19.9 before it
    reset the return date "không quá 01 lần")."""
    body, d = ctx.body, ctx.dossier
    _clock_running(d)
    if get_settings().apology_once_only and (first := await repo.latest_apology(ctx.tx, d["code"])) is not None:
        new_due, original = (first["new_due_at"].astimezone(VN_TZ).isoformat(),
                             d["original_due_at"].astimezone(VN_TZ).isoformat())
        raise ProblemError(409, "apology_already_issued",
                           f"Hồ sơ đã được hẹn lại ngày trả kết quả một lần ({new_due}); không hẹn lại lần thứ hai "
                           "/ the return date was already reset once",
                           extra={"new_due_at": new_due, "original_due_at": original})
    if not body.reason:
        raise invalid("reason", "Văn bản xin lỗi cần nêu lý do (reason) / an apology needs a reason")
    if body.new_due_at is None or body.new_due_at.tzinfo is None:
        raise invalid("new_due_at", "Cần ngày hẹn mới có múi giờ (new_due_at) / new_due_at with an offset is required")
    bounds.within("new_due_at", body.new_due_at)
    if body.new_due_at > max(ctx.now, d["due_at"]) + bounds.APOLOGY_AT_MOST:
        raise invalid("new_due_at", "Ngày hẹn mới không quá một năm sau hạn hiện tại / the new date must be within a "
                      f"year of the current due date {d['due_at'].isoformat()}")
    if body.new_due_at <= ctx.now or body.new_due_at <= d["due_at"]:
        raise invalid("new_due_at", "Ngày hẹn mới phải sau hiện tại và sau hạn hiện tại / the new date must be after "
                      f"now and after the current due date {d['due_at'].isoformat()}")
    await repo.insert_apology(ctx.tx, {
        "dossier_code": d["code"], "reason": body.reason, "previous_due_at": d["due_at"],
        "new_due_at": body.new_due_at, "issued_by": ctx.who.subject, "issued_at": ctx.now,
        "issued_by_name": ctx.who.name, "issued_by_title": ctx.who.title, **await signing_head(ctx)})
    return Outcome({"due_at": body.new_due_at, "overdue_marked_at": None},
                   {"previous_due_at": d["due_at"].isoformat(), "new_due_at": body.new_due_at.isoformat()},
                   notify="apology", notify_params={"reason": body.reason, "new_due_at": body.new_due_at.isoformat()})


async def transfer(ctx: Context) -> Outcome:
    """Liên thông: a linked part keeps the origin code; an outside system answers later (202)."""
    body, d = ctx.body, ctx.dossier
    if bool(body.target_agency) == bool(body.external_system):
        raise invalid("target_agency", "Chọn một: target_agency hoặc external_system / give exactly one of "
                      "target_agency or external_system")
    external = body.external_system is not None
    target = body.external_system or body.target_agency or ""
    if not external:
        if target == d["current_agency"]:
            raise invalid("target_agency", "Không chuyển cho chính cơ quan đang giữ / already at that agency")
        if not await repo.agency_exists(ctx.tx, target):
            raise invalid("target_agency", f"Không có cơ quan {target} / unknown agency {target}")
    number = await repo.next_transfer_number(ctx.tx, d["code"])
    part_code = f"{d['code']}-LT{number}"
    transfer_id = await repo.insert_transfer(ctx.tx, {
        "part_code": part_code, "origin_code": d["code"], "from_agency": d["current_agency"], "target": target,
        "external": external, "status": "pending" if external else "accepted", "note": body.note,
        "created_at": ctx.now, "answered_at": None if external else ctx.now})
    values: dict[str, Any] = {"pending_transfer_id": transfer_id} if external else {
        "current_agency": target, "assignee": None}
    return Outcome(values, {"part_code": part_code, "target": target, "external": external,
                            "transfer_id": transfer_id}, http_status=202 if external else 200)


async def return_result(ctx: Context) -> Outcome:
    d = ctx.dossier
    method = ctx.body.method or ("postal" if ctx.who.role == "system" else
                                 "electronic" if d["result_delivery"] == "electronic" else "counter")
    if method == "postal" and ctx.who.role != "system":
        raise invalid("method", "Kết quả gửi bưu chính được ghi nhận khi bưu điện báo đã phát / a postal return is "
                      "recorded when the postal partner reports delivery")
    return Outcome({"returned_at": ctx.now}, {"method": method}, notify="result_returned",
                   notify_params={"method": method})


async def withdraw(ctx: Context) -> Outcome:
    """Form 05 (Decree 118 Art. 21, Circular 03 Art. 7): the applicant asks to stop, themselves or through an
    officer who records the request; the clock stops with it. Refused (409) once a decision was issued."""
    reason = ctx.body.note or ctx.body.reason  # as the history row's note, which form 05 prints
    return Outcome({"paused_at": None, "supplement_due_at": None},
                   {"requested_by": "applicant", "recorded_by_role": ctx.who.role, "reason": reason,
                    **await signing_head(ctx)},
                   notify="withdrawn")


async def accept(ctx: Context) -> Outcome:
    """An online dossier accepted by the one-stop officer: its clock starts now, with the limit of its channel.
    Accepted late when after the acceptance deadline (counted apart from overdue)."""
    d = ctx.dossier
    if not deadlines.awaiting_acceptance(d):
        raise ProblemError(409, "not_awaiting_acceptance", "Hồ sơ không chờ tiếp nhận trực tuyến (đã tiếp nhận, hoặc "
                           "không nộp trực tuyến) / the dossier is not an online dossier waiting for acceptance",
                           extra={"state": d["status"], "channel": d["channel"]})
    values = {**await start_clock(ctx), "accepted_at": ctx.now}
    deadline: datetime | None = d["acceptance_due_at"]
    due = values["due_at"].astimezone(VN_TZ).isoformat()
    return Outcome(values, {"accepted_late": deadline is not None and ctx.now > deadline,
                            "acceptance_due_at": deadline.astimezone(VN_TZ).isoformat() if deadline else None,
                            "due_at": due},
                   notify="accepted", notify_params={"due_at": due})


async def extend_for_verification(ctx: Context) -> Outcome:
    """More working days for verification, within the catalog's `verification_extension` in total: the due
    date moves, the legal (original) one too, so it is not counted late (unlike an apology)."""
    body, d = ctx.body, ctx.dossier
    allowance = int((d["time_limit"] or {}).get("verification_extension") or 0)
    if allowance <= 0:
        raise ProblemError(409, "no_verification_extension", "Thủ tục không có thời hạn kéo dài để xác minh / the "
                           "procedure allows no extension for verification", extra={"state": d["status"]})
    _clock_running(d)
    if not body.reason:
        raise invalid("reason", "Cần nêu lý do xác minh (reason) / a verification extension needs a reason")
    if body.days is None:
        raise invalid("days", "Cần số ngày làm việc kéo dài (days) / days (working days) is required")
    used = int(d["verification_days"])
    if used + body.days > allowance:
        raise ProblemError(422, "validation_error", f"Chỉ được kéo dài tối đa {allowance} ngày làm việc để xác minh; "
                           f"đã dùng {used} / at most {allowance} working days for verification, {used} used",
                           errors=[error_item("days", f"at most {allowance - used} more working days", "too_many")],
                           extra={"allowance": allowance, "used": used})
    span = body.days * ctx.calendar.standard_day
    values: dict[str, Any] = {
        "due_at": ctx.calendar.add_working_time(d["due_at"], span),
        "original_due_at": ctx.calendar.add_working_time(d["original_due_at"], span),
        "verification_days": used + body.days, "overdue_marked_at": None, "due_soon_warned_at": None}
    if d["step_due_at"] is not None:
        values["step_due_at"] = ctx.calendar.add_working_time(d["step_due_at"], span)
    new_due = values["due_at"].astimezone(VN_TZ).isoformat()
    return Outcome(values, {"days": body.days, "total_days": used + body.days, "allowance": allowance,
                            "reason": body.reason, "previous_due_at": d["due_at"].astimezone(VN_TZ).isoformat(),
                            "new_due_at": new_due,
                            "previous_original_due_at": d["original_due_at"].astimezone(VN_TZ).isoformat(),
                            "new_original_due_at": values["original_due_at"].astimezone(VN_TZ).isoformat()},
                   notify="verification_extended", notify_params={"days": body.days, "new_due_at": new_due,
                                                                   "reason": body.reason})


HANDLERS: dict[str, Callable[[Context], Awaitable[Outcome]]] = {
    "assign": assign, "start": start, "forward": forward, "request_supplement": request_supplement,
    "receive_supplement": receive_supplement, "expire_supplement": expire_supplement, "transfer": transfer,
    "approve": approve, "reject": reject, "issue_apology": issue_apology, "return_result": return_result,
    "withdraw": withdraw, "accept": accept, "extend_for_verification": extend_for_verification,
}
PRE_ACCEPTANCE = frozenset({"accept", "request_supplement", "withdraw", "assign"})
"""What an online dossier waiting for acceptance allows: the acceptance, or one complete supplement request
(Decree 297/2025 Art. 6), the applicant's request to stop, and assigning the officer who checks it."""


def usable(d: dict[str, Any], names: list[str]) -> list[str]:
    """The definition's actions this dossier can take now (the acceptance gate, the verification allowance)."""
    if deadlines.awaiting_acceptance(d):
        return [a for a in names if a in PRE_ACCEPTANCE]
    extendable = d["due_at"] is not None and int((d["time_limit"] or {}).get("verification_extension") or 0) > int(
        d["verification_days"])
    return [a for a in names if a != "accept" and (a != "extend_for_verification" or extendable)]


def check_usable(d: dict[str, Any], action: str) -> None:
    """An online dossier not yet accepted takes only PRE_ACCEPTANCE actions (409 otherwise)."""
    if deadlines.awaiting_acceptance(d) and action not in PRE_ACCEPTANCE:
        raise ProblemError(409, "not_accepted", "Hồ sơ trực tuyến chưa được tiếp nhận: tiếp nhận (accept) hoặc yêu "
                           "cầu bổ sung trước / the online dossier is not accepted yet: accept it or request a "
                           "supplement first", extra={"state": d["status"], "allowed_actions": sorted(PRE_ACCEPTANCE)})
