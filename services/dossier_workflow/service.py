"""The dossier state machine (giải quyết hồ sơ): rules read from the process definition. Never commits."""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any, NamedTuple

from services.dossier_workflow import actions, deadlines, stats
from services.dossier_workflow import dossiers_repository as repo
from services.dossier_workflow import outbox_repository as outbox
from services.dossier_workflow.schemas import ActionIn
from shared.auth import Principal
from shared.calendar import VN_TZ
from shared.calendars import calendar_for_agency
from shared.db import Tx
from shared.problems import ProblemError
from shared.settings import get_settings
from shared.text import search_key

SYSTEM = Principal(subject="system", role="system")
STATUS_TEXT = {
    "received": "Đã tiếp nhận / received", "in_progress": "Đang giải quyết / in progress",
    "supplement_requested": "Chờ bổ sung hồ sơ / waiting for a supplement",
    "resolved": "Đã có kết quả / result ready", "returned": "Đã trả kết quả / result returned",
    "withdrawn": "Đã dừng giải quyết / withdrawn",
}
_definitions: dict[int, dict[str, Any]] = {}
_in_force: dict[tuple[str, date], tuple[float, dict[str, Any]]] = {}


class Acted(NamedTuple):
    """An action's outcome: the dossier after it, the HTTP status, and the timeline its reader sees."""

    dossier: dict[str, Any]
    status: int
    timeline: list[dict[str, Any]]


def not_found(code: str) -> ProblemError:
    return ProblemError(404, "not_found", f"Không có hồ sơ {code} / No dossier {code} for you")


async def definition(tx: Tx, definition_id: int) -> dict[str, Any]:
    """Definitions are versioned, never edited: each process keeps them once read (a miss is one
    statement that opens no transaction, so a one-statement write after it stays one statement)."""
    if definition_id not in _definitions:
        _definitions[definition_id] = await repo.definition_by_id(tx, definition_id)
    return _definitions[definition_id]


def history_row(d: dict[str, Any], who: Principal, action: str, to_status: str, at: datetime, *,
                step: str | None = None, step_due_at: datetime | None = None, note: str | None = None,
                data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"dossier_code": d["code"], "at": at, "actor": who.subject, "actor_role": who.role,
            "actor_agency": who.agency_code, "action": action, "from_status": d.get("status"),
            "to_status": to_status, "step": step or d["step"], "step_due_at": step_due_at, "note": note,
            "data": data or {}, "counted_agency": d["receiving_agency"], "procedure_code": d["procedure_code"],
            "field_code": d["field_code"], "channel": d["channel"], "actor_name": who.name, "actor_title": who.title}


def notification(d: dict[str, Any], template: str, params: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The message for the applicant, by SMS when there is a phone; None without a contact."""
    to, channel = (d["applicant_phone"], "sms") if d.get("applicant_phone") else (d.get("applicant_email"), "email")
    if not to:
        return None
    return {"channel": channel, "to": to, "template": template, "dossier_code": d["code"],
            "params": {"code": d["code"], "procedure": d["procedure_name"], **params}, "key": key}


async def notify(tx: Tx, d: dict[str, Any], template: str, params: dict[str, Any],
                 key: str) -> None:
    """Citizen-facing messages go out through the outbox and a job (nothing is sent inside a request)."""
    message = notification(d, template, params, key)
    if message is not None:
        await outbox.queue_notification(tx, message)


async def receive(tx: Tx, data: dict[str, Any]) -> bool:
    """`dossier.received` from intake: the dossier enters the workflow once, however often the job runs."""
    return await receive_many(tx, [data]) == 1


async def receive_many(tx: Tx, items: list[dict[str, Any]]) -> int:
    """A batch of `dossier.received` payloads in one statement; how many dossiers were new.
    Everything is read first (calendars, definitions), then the one write."""
    return await outbox.receive_dossiers(tx, [await _entering(tx, data) for data in items])


async def _entering(tx: Tx, data: dict[str, Any]) -> outbox.Entry:
    """The dossier row, its first history row and the citizen's message for one `dossier.received`."""
    received_at = datetime.fromisoformat(data["received_at"])
    due_at = datetime.fromisoformat(data["due_at"]) if data.get("due_at") else None
    calendar = await calendar_for_agency(tx, data["competent_agency"])
    limit = {"verification_extension": 0, **(data.get("time_limit") or {})}
    clock = bool(data.get("clock_started", True)) and due_at is not None
    minutes = deadlines.limit_minutes(calendar, received_at, due_at)
    timer = deadlines.acceptance_timer(calendar, received_at, get_settings()) if (
        not clock and data["channel"] == "online") else {}
    definition_row = await definition_in_force(tx, data["procedure_code"], received_at.astimezone(VN_TZ).date())
    applicant = data["applicant"]
    row = {
        "code": data["code"], "procedure_code": data["procedure_code"], "procedure_name": data["procedure_name"],
        "field_code": data["field_code"], "definition_id": definition_row["id"],
        "receiving_agency": data["receiving_agency"], "competent_agency": data["competent_agency"],
        "current_agency": data["competent_agency"], "channel": data["channel"],
        "applicant_name": applicant["name"], "applicant_name_key": search_key(applicant["name"]),
        "applicant_id_number": applicant["id_number"], "applicant_phone": applicant.get("phone"),
        "applicant_email": applicant.get("email"), "status": "received", "step": "receive",
        "step_due_at": deadlines.step_deadline(calendar, received_at, definition_row, "receive", minutes),
        "received_at": received_at, "due_at": due_at, "original_due_at": due_at, "working_minutes": minutes,
        "result_delivery": data["result_delivery"], "delivery_address": data.get("delivery_address"),
        "fee": int(data.get("fee", 0)), "clock_started_at": received_at if clock else None, "time_limit": limit,
        "acceptance_alert_at": timer.get("alert_at"), "acceptance_due_at": timer.get("due_at"),
        "applicant_address": applicant.get("address"), "number_of_sets": data.get("number_of_sets"),
    }
    receiver = data.get("receiver") or {}
    first = history_row(
        {**row, "status": None}, Principal(subject="intake", role="system", agency_code=data["receiving_agency"],
                                           name=receiver.get("name"), title=receiver.get("title")),
        "receive", "received", received_at, step_due_at=row["step_due_at"],
        data={"result_delivery": data["result_delivery"],  # digitised, online_level: the service index
              "digitised": bool(data.get("digitised", data["channel"] == "online")),
              "online_level": data.get("online_level")})
    if due_at is not None:
        message = notification(row, "dossier_received", {"due_at": due_at.isoformat()}, f"{data['code']}:received")
    elif "due_at" in timer:
        message = notification(row, "dossier_submitted", {"acceptance_due_at": timer["due_at"].isoformat()},
                               f"{data['code']}:received")
    else:
        message = notification(row, "dossier_received_waiting_paper", {}, f"{data['code']}:received")
    return row, first, message


async def definition_in_force(tx: Tx, procedure_code: str, day: date) -> dict[str, Any]:
    """Cached a minute per (procedure, day): the worker reads it for every dossier received."""
    key = (procedure_code, day)
    hit = _in_force.get(key)
    if hit is None or hit[0] < time.monotonic():
        if len(_in_force) > 10_000:
            _in_force.clear()
        hit = _in_force[key] = (time.monotonic() + 60, await repo.definition_for(tx, procedure_code, day))
    return hit[1]


def parse_if_match(raw: str | None) -> int:
    if raw is None:
        raise ProblemError(428, "precondition_required", "Thiếu If-Match: gửi phiên bản hồ sơ đang xem, ví dụ "
                           'If-Match: "3" / If-Match is required: send the version you read (the ETag)')
    value = raw.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise ProblemError(400, "bad_request", 'If-Match phải có dạng "<phiên bản>" / If-Match must be "<version>"')
    return int(value)


def can_read(d: dict[str, Any], who: Principal) -> bool:
    if who.role == "citizen":
        return bool(who.subject == d["applicant_id_number"])
    return who.can_act_for_agency(d["current_agency"]) or who.can_act_for_agency(d["receiving_agency"])


def allowed_actions(definition_row: dict[str, Any], status: str, who: Principal) -> list[str]:
    rules: dict[str, Any] = definition_row["transitions"].get(status, {})
    return [a for a, rule in rules.items() if who.role == "admin" or who.role in rule["roles"]]


async def act(tx: Tx, code: str, who: Principal, body: ActionIn, if_match: str | None,
              now: datetime) -> Acted:
    """One action under optimistic concurrency."""
    expected = parse_if_match(if_match)
    d = await repo.get_dossier(tx, code, lock=True)
    if d is None or not can_read(d, who):
        raise not_found(code)
    if who.role != "citizen" and who.role != "admin" and not who.can_act_for_agency(d["current_agency"]):
        raise ProblemError(403, "forbidden", f"Hồ sơ {code} đang ở cơ quan {d['current_agency']} / the dossier is "
                           f"held by agency {d['current_agency']}, not yours")
    if d["version"] != expected:
        raise ProblemError(412, "precondition_failed", f"Hồ sơ đã thay đổi (phiên bản {d['version']}, bạn gửi "
                           f"{expected}); tải lại rồi thử lại / the dossier changed (version {d['version']}, you sent "
                           f"{expected}): reload and retry", headers={"ETag": f'"{d["version"]}"'},
                           extra={"current_version": d["version"]})
    return await apply(tx, d, who, body, now)


async def apply(tx: Tx, d: dict[str, Any], who: Principal, body: ActionIn, now: datetime) -> Acted:
    definition_row = await definition(tx, d["definition_id"])
    rules: dict[str, Any] = definition_row["transitions"].get(d["status"], {})
    rule = rules.get(body.action)
    if rule is None and body.action == "withdraw" and d["status"] in ("resolved", "returned"):
        raise ProblemError(409, "decision_issued", "Hồ sơ đã có quyết định giải quyết; không dừng giải quyết được "
                           "(Nghị định 118/2025 Điều 21) / a decision was issued: the procedure can no longer be "
                           "stopped", extra={"state": d["status"], "allowed_actions": allowed_actions(
                               definition_row, d["status"], who)})
    if rule is None:
        allowed = allowed_actions(definition_row, d["status"], who)
        raise ProblemError(409, "action_not_allowed", f"Không thể '{body.action}' khi hồ sơ ở trạng thái "
                           f"'{d['status']}'; được phép: {', '.join(allowed) or 'không có'} / '{body.action}' is not "
                           f"allowed in state '{d['status']}'; allowed: {', '.join(allowed) or 'none'}",
                           extra={"state": d["status"], "allowed_actions": allowed})
    if who.role != "admin" and who.role not in rule["roles"]:
        raise ProblemError(403, "role_not_allowed", f"Vai trò {who.role} không được '{body.action}' / role "
                           f"'{who.role}' may not '{body.action}' (allowed roles: {', '.join(rule['roles'])})",
                           extra={"state": d["status"], "allowed_roles": rule["roles"]})
    actions.check_usable(d, body.action)
    if d["pending_transfer_id"] is not None and body.action != "withdraw":
        raise ProblemError(409, "transfer_pending", "Hồ sơ đang chờ cơ quan khác xác nhận liên thông / the dossier "
                           "waits for another system to accept a transfer", extra={"state": d["status"]})
    calendar = await calendar_for_agency(tx, d["current_agency"])
    ctx = actions.Context(tx=tx, dossier=d, who=who, body=body, now=now, calendar=calendar,
                          definition=definition_row, rule=rule)
    outcome = await actions.HANDLERS[body.action](ctx)
    step = rule.get("step", d["step"])
    values = {"status": rule["to"], **outcome.values}
    step_due = d["step_due_at"]
    if step != d["step"]:
        step_due = deadlines.step_deadline(calendar, now, definition_row, step, d["working_minutes"])
        values.update(step=step, step_due_at=step_due)
    version, timeline = await repo.transition(tx, d["code"], values, history_row(
        d, who, body.action, rule["to"], now, step=step, step_due_at=values.get("step_due_at", step_due),
        note=body.note or body.reason, data=outcome.history_data), with_timeline=True)
    after = {**d, **values, "version": version}
    if outcome.notify:
        await notify(tx, after, outcome.notify, outcome.notify_params, f"{d['code']}:{version}")
    return Acted(after, outcome.http_status, timeline or [])


async def act_as_system(tx: Tx, code: str, action: str, now: datetime, **fields: Any) -> bool:
    """Jobs drive the same machine (supplement arrived, delivered by post, deadline passed)."""
    d = await repo.get_dossier(tx, code, lock=True)
    if d is None:
        return False
    definition_row = await definition(tx, d["definition_id"])
    if action not in definition_row["transitions"].get(d["status"], {}):
        return False
    await apply(tx, d, SYSTEM, ActionIn(action=action, **fields), now)
    return True


async def answer_transfer(tx: Tx, transfer_id: int, who: Principal, decision: str,
                          external_ref: str | None, note: str | None, now: datetime) -> dict[str, Any]:
    transfer = await repo.get_transfer(tx, transfer_id, lock=True)
    if transfer is None:
        raise ProblemError(404, "not_found", f"Không có yêu cầu liên thông {transfer_id} / Unknown transfer")
    if transfer["status"] != "pending":
        raise ProblemError(409, "transfer_not_pending", f"Yêu cầu liên thông đã được trả lời ({transfer['status']}) "
                           f"/ the transfer was already answered ({transfer['status']})",
                           extra={"transfer_status": transfer["status"]})
    d = await repo.get_dossier(tx, transfer["origin_code"], lock=True)
    assert d is not None
    await repo.answer_transfer(tx, transfer_id, {"status": decision, "answered_at": now,
                                                      "external_ref": external_ref})
    values: dict[str, Any] = {"pending_transfer_id": None}
    await repo.transition(tx, d["code"], values, history_row(
        d, who, f"transfer_{decision}", d["status"], now, note=note,
        data={"part_code": transfer["part_code"], "target": transfer["target"], "external_ref": external_ref}))
    return {**transfer, "status": decision, "answered_at": now, "external_ref": external_ref}


async def view(tx: Tx, d: dict[str, Any], who: Principal, now: datetime,
               timeline: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    definition_row = await definition(tx, d["definition_id"])
    pending = None
    if d["pending_transfer_id"] is not None:
        transfer = await repo.get_transfer(tx, d["pending_transfer_id"])
        pending = {k: transfer[k] for k in ("id", "part_code", "target", "status", "created_at")} if transfer else None
    return deadlines.localize({
        **{k: d[k] for k in ("code", "procedure_code", "procedure_name", "status", "outcome", "outcome_reason",
                             "version", "channel", "applicant_name", "received_at", "due_at", "original_due_at",
                             "supplement_due_at", "step", "step_due_at", "current_agency", "assignee",
                             "result_delivery", "rating", "synced_at", "acceptance_due_at", "accepted_at",
                             "verification_days")},
        "clock_started": d["clock_started_at"] is not None, "awaiting_acceptance": deadlines.awaiting_acceptance(d),
        "overdue": deadlines.is_overdue(d, now), "paused": d["paused_at"] is not None,
        "step_name": deadlines.step_name(definition_row, d["step"]), "pending_transfer": pending,
        "allowed_actions": actions.usable(d, allowed_actions(definition_row, d["status"], who)),
        "timeline": timeline if timeline is not None else await repo.timeline(tx, d["code"]),
    })


async def read_for(tx: Tx, code: str, who: Principal, now: datetime) -> dict[str, Any]:
    """The dossier as its reader sees it (one round trip for the row and its timeline)."""
    found = await repo.dossier_with_timeline(tx, code)
    if found is None or not can_read(found[0], who):
        raise not_found(code)
    return await view(tx, found[0], who, now, timeline=found[1])


async def readable(tx: Tx, code: str, who: Principal) -> dict[str, Any]:
    d = await repo.get_dossier(tx, code)
    if d is None or not can_read(d, who):
        raise not_found(code)
    return d


async def public_view(tx: Tx, code: str, phone_last4: str, *, client: str) -> dict[str, Any]:
    """Without login: a wrong second factor and an unknown code answer the same."""
    stats.public_rate_limit(client, code)
    d = await repo.get_dossier(tx, code)
    phone = (d or {}).get("applicant_phone") or ""
    if d is None or len(phone) < 4 or phone[-4:] != phone_last4:
        stats.wrong_guess(client, code)
        raise ProblemError(404, "not_found", "Không tìm thấy hồ sơ với mã và 4 số cuối điện thoại này / no dossier "
                           "matches this code and phone digits")
    definition_row = await definition(tx, d["definition_id"])
    following = deadlines.next_step(definition_row, d["step"]) if d["status"] in deadlines.ACTIVE_CLOCK else None
    return {"code": d["code"], "procedure_name": d["procedure_name"], "status": d["status"],
            "status_text": STATUS_TEXT.get(d["status"], d["status"]),
            "next_step": following["name"] if following else None,
            "due_at": d["due_at"].astimezone(VN_TZ) if d["due_at"] is not None else None,
            "acceptance_due_at": (d["acceptance_due_at"].astimezone(VN_TZ)
                                  if deadlines.awaiting_acceptance(d) and d["acceptance_due_at"] else None)}


async def rate(tx: Tx, code: str, who: Principal, score: int, comment: str | None,
               now: datetime) -> dict[str, Any]:
    d = await repo.get_dossier(tx, code, lock=True)
    if d is None or who.role != "citizen" or who.subject != d["applicant_id_number"]:
        raise not_found(code)
    if d["status"] != "returned":
        raise ProblemError(409, "not_returned", "Chỉ đánh giá khi đã nhận kết quả / rate a dossier once its result "
                           "is returned", extra={"state": d["status"]})
    if d["rating"] is not None:
        raise ProblemError(409, "already_rated", "Hồ sơ đã được đánh giá / this dossier was already rated")
    version, _ = await repo.transition(tx, code, {"rating": score}, history_row(
        d, who, "rate", d["status"], now, note=comment, data={"rating": score}))
    return {"code": code, "rating": score, "comment": comment, "version": version}


async def clock_started(tx: Tx, code: str, started_at: datetime, due_at: datetime) -> None:
    """Postal dossiers: the clock starts when the paper arrives (intake recomputed the due date)."""
    d = await repo.get_dossier(tx, code, lock=True)
    if d is None or d["clock_started_at"] is not None:
        return
    minutes = deadlines.limit_minutes(await calendar_for_agency(tx, d["current_agency"]), started_at, due_at)
    await repo.transition(tx, code, {"clock_started_at": started_at, "due_at": due_at, "original_due_at": due_at,
                                     "working_minutes": minutes},
                          history_row(d, SYSTEM, "clock_started", d["status"], started_at,
                                      data={"due_at": due_at.isoformat()}))
