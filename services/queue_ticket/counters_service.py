"""Counters: call the next ticket, the actions on a called ticket, officers signing in and out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.queue_ticket import board_repository as board_repo
from services.queue_ticket import clock
from services.queue_ticket import counters_repository as repo
from services.queue_ticket import offices_repository as offices_repo
from services.queue_ticket import tickets_repository as tickets_repo
from services.queue_ticket.board_repository import BoardNotifier
from services.queue_ticket.common import counter_for, field_error, problem, staff_of, ticket_out, unknown
from services.queue_ticket.schemas import CallNextIn, FinishIn, TicketOut, TransferIn
from shared.auth import Principal
from shared.db import Tx
from shared.problems import ProblemError

NO_TICKET = "none"  # the If-Match of a counter serving no ticket


def parse_current(if_match: str | None) -> tuple[bool, int | None]:
    """`If-Match: "<ticket id>"` (or `"none"`): the ticket the counter believes it is serving; (False, None)
    when the header is absent (no precondition)."""
    if if_match is None:
        return False, None
    value = if_match.strip().removeprefix("W/").strip('"').strip()
    if value == NO_TICKET:
        return True, None
    if not value.isdigit() or len(value) > 18:
        raise ProblemError(400, "bad_request", 'If-Match phải là "<mã số thứ tự đang phục vụ>" hoặc "none" / '
                                               'If-Match must be "<id of the ticket being served>" or "none"')
    return True, int(value)


def current_etag(ticket_id: int | None) -> dict[str, str]:
    return {"ETag": f'"{NO_TICKET if ticket_id is None else ticket_id}"'}


async def call_next(tx: Tx, notifier: BoardNotifier, counter_id: int, body: CallNextIn,
                    principal: Principal, if_match: str | None = None) -> dict[str, Any]:
    """One statement checks the counter (and, with If-Match, its current ticket) and calls; the reads after it
    only explain a refusal."""
    check, expected = parse_current(if_match)
    now = clock.now()
    t = await repo.call_next(
        tx, counter_id=counter_id, office_code=None if principal.role == "admin" else (principal.office_code or ""),
        officer=principal.subject if principal.role == "officer" else None, officer_name=principal.name,
        category_code=body.category_code, now=now, served_by=principal.subject, check_current=check,
        current_ticket_id=expected)
    if t is not None and t["id"] is not None:
        board_repo.notify_after_commit(tx, notifier, t["notice"])
        return {"counter_id": counter_id, "counter_number": t["counter_number"], "event_id": t["event_id"],
                "ticket": ticket_out(t, counter_number=t["counter_number"])}
    if t is not None:
        return {"counter_id": counter_id, "counter_number": t["counter_number"], "ticket": None,
                "detail": "Không còn người chờ / nobody is waiting"}
    c = await counter_for(tx, counter_id, principal)
    if not c["active"]:
        raise problem(409, "invalid_state", f"Quầy {c['number']} đang tạm dừng / counter {c['number']} is inactive")
    if principal.role == "officer" and c["officer_subject"] and c["officer_subject"] != principal.subject:
        who = c["officer_name"] or c["officer_subject"]
        raise problem(409, "counter_taken", f"Quầy {c['number']} đang do {who} phụ trách / "
                                            f"counter {c['number']} is signed in by another officer")
    if body.category_code is not None and body.category_code not in c["category_codes"]:
        raise problem(409, "category_not_served",
                      f"Quầy {c['number']} không phục vụ lĩnh vực {body.category_code} / "
                      f"counter {c['number']} does not serve category {body.category_code}")
    raise await not_current(tx, c, expected)


async def not_current(tx: Tx, c: Any, expected: int | None) -> ProblemError:
    """The 412 of a counter whose current ticket is not the one the request names: the actual one in the body
    (and its id in ETag), so that the counter shows what it is serving; nothing was changed."""
    current = c["current_ticket_id"]
    t = await tickets_repo.ticket(tx, current) if current is not None else None
    shown = t["display"] if t is not None else "không có / none"
    sent = NO_TICKET if expected is None else expected
    return problem(412, "precondition_failed",
                   f"Quầy {c['number']} đang phục vụ số {shown}, không phải số bạn gửi ({sent}); không gọi số mới "
                   f"/ counter {c['number']} is serving {shown}, not the ticket sent in If-Match ({sent}); "
                   "nothing was done",
                   headers=current_etag(current),
                   extra={"current_ticket_id": current,
                          "current_ticket": None if t is None else jsonable(ticket_out(t, counter_number=c["number"]))})


def jsonable(value: dict[str, Any]) -> dict[str, Any]:
    return TicketOut(**value).model_dump(mode="json")


async def act(
    tx: Tx, notifier: BoardNotifier, ticket_id: int, action: str, principal: Principal, *,
    counter_id: int | None = None, transfer: TransferIn | None = None, finish: FinishIn | None = None,
) -> dict[str, Any]:
    """recall | start | skip | return | transfer | finish, at a counter or by an officer of the ticket's office."""
    now = clock.now()
    c = await counter_for(tx, counter_id, principal, lock=True) if counter_id is not None else None
    t = await _locked_ticket(tx, ticket_id, c is None)
    if c is not None:
        office_code = c["office_code"]
    else:
        office_code = t["office_code"] if t is not None and principal.role == "admin" else principal.office_code
    if t is None or office_code != t["office_code"]:  # another office's ticket: as if there were none
        raise ProblemError(404, "not_found", f"Không có số thứ tự {ticket_id} / No ticket {ticket_id}")
    if c is None:
        staff_of(principal, t["office_code"])
    status = t["status"]
    if status == "finished" or (status == "skipped" and action != "return"):
        raise problem(409, "ticket_closed", f"Số {t['display']} đã {'xong' if status == 'finished' else 'bỏ qua'}; "
                                            f"không thể {action} / ticket {t['display']} is {status}")
    at_counter = c is None or t["counter_id"] == c["id"]

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise problem(409, "invalid_state", f"Không thể {what} số {t['display']} ở trạng thái {status}"
                                                f"{'' if at_counter else ' (không ở quầy này)'} / cannot {action} "
                                                f"ticket {t['display']} while {status}"
                                                f"{'' if at_counter else ' at another counter'}")

    if action == "recall":
        need(status in ("called", "serving") and at_counter, "gọi lại")
        row = await tickets_repo.update_ticket(tx, ticket_id, recalls=t["recalls"] + 1)
        _, notice = await board_repo.add_board_event(tx, t["office_code"], "recall", {
            "ticket_id": t["id"], "number": t["display"], "category_code": t["category_code"],
            "counter_id": t["counter_id"], "counter_number": t["counter_number"], "at": now.isoformat()}, now)
        board_repo.notify_after_commit(tx, notifier, notice)
    elif action == "start":
        need(status == "called" and at_counter, "bắt đầu phục vụ")
        row = await tickets_repo.update_ticket(tx, ticket_id, status="serving", serving_at=now)
    elif action == "skip":
        need(status == "called" and at_counter, "bỏ qua")
        row = await tickets_repo.update_ticket(tx, ticket_id, status="skipped", skipped_at=now)
    elif action == "return":
        if t["returned_at"] is not None:
            raise problem(409, "ticket_closed", f"Số {t['display']} đã được quay lại một lần / "
                                                f"ticket {t['display']} already came back once")
        need(status == "skipped", "đưa lại hàng chờ")
        row = await tickets_repo.update_ticket(tx, ticket_id, status="waiting", returned_at=now, counter_id=None)
    elif action == "transfer":
        need(status in ("waiting", "called", "serving") and (status == "waiting" or at_counter), "chuyển")
        row = await _transfer(tx, t, transfer or TransferIn(), now)
    else:
        need(status in ("called", "serving") and at_counter, "kết thúc")
        row = await tickets_repo.update_ticket(tx, ticket_id, status="finished", finished_at=now,
                                               serving_at=t["serving_at"] or t["called_at"],
                                               dossier_codes=sorted(set((finish or FinishIn()).dossier_codes)))
    if t["counter_id"] is not None and status in SERVED and row["status"] not in SERVED:
        await repo.leave_counter(tx, t["counter_id"], t["id"])
    return ticket_out(row)


SERVED = ("called", "serving")


async def _locked_ticket(tx: Tx, ticket_id: int, lock_its_counter: bool) -> Any:
    """The ticket, locked after its counter's row when `lock_its_counter` (the order call-next locks in, so the
    two never deadlock); once more if it moved to another counter in between."""
    for _ in range(3):
        locked = await repo.lock_counter_of(tx, ticket_id) if lock_its_counter else None
        t = await tickets_repo.ticket(tx, ticket_id, lock=True)
        if t is None or not lock_its_counter or t["counter_id"] == locked:
            return t
    return t


async def _transfer(tx: Tx, t: Any, body: TransferIn, now: datetime) -> Any:
    if (body.category_code is None) == (body.counter_id is None):
        raise field_error("category_code", "one_of", "Chọn một lĩnh vực hoặc một quầy để chuyển / "
                                                     "give exactly one of category_code or counter_id")
    if body.category_code is not None:
        if await offices_repo.office_and_category(tx, t["office_code"], body.category_code) is None:
            raise await unknown(tx, t["office_code"], body.category_code)
        return await tickets_repo.update_ticket(tx, t["id"], status="waiting", category_code=body.category_code,
                                                counter_id=None, target_counter_id=None, transferred_at=now)
    target = await offices_repo.counter(tx, body.counter_id) if body.counter_id is not None else None
    if target is None or target["office_code"] != t["office_code"] or not target["active"]:
        raise field_error("counter_id", "unknown_counter", f"Không có quầy {body.counter_id} đang hoạt động ở nơi này"
                                                           f" / no active counter {body.counter_id} in this office")
    return await tickets_repo.update_ticket(tx, t["id"], status="waiting", counter_id=None,
                                            target_counter_id=body.counter_id, transferred_at=now)


async def counter_sign(tx: Tx, counter_id: int, principal: Principal, sign_in: bool) -> dict[str, Any]:
    now = clock.now()
    c = await counter_for(tx, counter_id, principal)
    if c["officer_subject"] and c["officer_subject"] != principal.subject and principal.role == "officer":
        raise problem(409, "counter_taken", f"Quầy {c['number']} đang do cán bộ khác phụ trách / "
                                            f"counter {c['number']} is signed in by another officer")
    if sign_in:
        return dict(await repo.sign_in(tx, counter_id, principal.subject, principal.name, now))
    signed_out = dict(await repo.sign_in(tx, counter_id, None, None, None))  # the counter row first, as call-next
    await repo.finish_current(tx, counter_id, now)
    return signed_out
