"""Rules of the queue service: tickets, counters, booking, board (never commits; SQL in repository)."""

from __future__ import annotations

import math
import secrets
import time as monotonic_time
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg

from services.queue_ticket import clock
from services.queue_ticket import repository as repo
from services.queue_ticket.schemas import (
    AppointmentIn,
    CallNextIn,
    CategoryIn,
    CounterIn,
    FinishIn,
    OfficeIn,
    TicketIn,
    TicketOut,
    TransferIn,
)
from shared.auth import Principal
from shared.calendar import VN_TZ, WorkingCalendar, WorkSession
from shared.calendars import calendar_for_agency
from shared.db import Tx
from shared.lean import json_bytes
from shared.problems import ProblemError

ALWAYS_OPEN = WorkingCalendar(sessions=[WorkSession(time(0), time(23, 59, 59))], overrides=(),
                              weekend_days=frozenset(), country_holidays=False)
BOOKING_HORIZON_DAYS = 60
MAX_OPEN_BOOKINGS = 3
REPLAY_LIMIT = 500

TITLES: dict[str, tuple[str, str]] = {
    "office_closed": ("Ngoài giờ làm việc", "Office closed"),
    "office_full": ("Phòng chờ đã đủ người", "Waiting room full"),
    "other_office": ("Số thứ tự của nơi khác", "Ticket of another office"),
    "ticket_closed": ("Số thứ tự đã kết thúc", "Ticket already closed"),
    "invalid_state": ("Trạng thái không cho phép", "Not allowed in this state"),
    "category_not_served": ("Quầy không phục vụ lĩnh vực này", "Counter does not serve this category"),
    "counter_taken": ("Quầy đang có cán bộ khác", "Counter taken by another officer"),
    "slot_full": ("Khung giờ đã hết chỗ", "Slot full"),
    "slot_past": ("Khung giờ đã qua", "Slot in the past"),
    "hold_expired": ("Giữ chỗ đã hết hạn", "Hold expired"),
    "booking_limit": ("Vượt giới hạn đặt lịch", "Booking limit reached"),
    "booking_closed": ("Lịch hẹn không còn hiệu lực", "Booking no longer open"),
    "too_early": ("Chưa đến giờ xác nhận", "Too early to check in"),
    "too_late": ("Đã quá giờ hẹn", "Too late to check in"),
    "ticket_limit": ("Đã có số thứ tự đang chờ", "A ticket is already waiting"),
}


def problem(status: int, code: str, detail: str, **kw: Any) -> ProblemError:
    return ProblemError(status, code, detail, title=TITLES.get(code), **kw)


def field_error(field: str, kind: str, detail: str, status: int = 422) -> ProblemError:
    return ProblemError(status, "validation_error", detail,
                        errors=[{"field": field, "message": detail, "type": kind}])


def local_fmt(t: datetime) -> str:
    return t.astimezone(VN_TZ).strftime("%H:%M %d/%m/%Y")


def local_day(t: datetime) -> date:
    return t.astimezone(VN_TZ).date()


async def office_calendar(session: Tx, office: Any) -> WorkingCalendar:
    if office["always_open"]:
        return ALWAYS_OPEN
    return await calendar_for_agency(session, office["agency_code"])


async def _unknown(conn: repo.Conn, office_code: str, category_code: str | None) -> ProblemError:
    if await repo.office(conn, office_code) is None:
        return field_error("office_code", "unknown_office",
                           f"Không có nơi tiếp dân mã {office_code} / Unknown office {office_code}")
    return field_error("category_code", "unknown_category",
                       f"Nơi {office_code} không có lĩnh vực {category_code} / "
                       f"Office {office_code} has no category {category_code}")


async def _office_or_404(conn: repo.Conn, office_code: str) -> Any:
    office = await repo.office(conn, office_code)
    if office is None:
        raise ProblemError(404, "not_found", f"Không có nơi tiếp dân mã {office_code} / Unknown office {office_code}")
    return office


def _staff_of(principal: Principal, office_code: str, roles: tuple[str, ...] = ("officer", "supervisor")) -> None:
    if principal.role == "admin":
        return
    if principal.role not in roles or principal.office_code != office_code:
        raise ProblemError(403, "forbidden",
                           f"Tài khoản không thuộc nơi tiếp dân {office_code} / "
                           f"your account does not belong to office {office_code}")


# --- tickets ----------------------------------------------------------------------------------

CONFIG_TTL_SECONDS = 5.0  # another replica's configuration change shows within this time
_config: dict[tuple[str, str], tuple[float, Any]] = {}


async def cached_office_and_category(conn: repo.Conn, office_code: str, category_code: str) -> Any:
    """Office and category of the ticket hot path, kept a few seconds per process (cleared by local changes)."""
    key = (office_code, category_code)
    hit = _config.get(key)
    if hit is not None and hit[0] > monotonic_time.monotonic():
        return hit[1]
    row = await repo.office_and_category(conn, office_code, category_code)
    if row is not None:
        if len(_config) > 10_000:
            _config.clear()
        _config[key] = (monotonic_time.monotonic() + CONFIG_TTL_SECONDS, row)
    return row


def forget_config() -> None:
    _config.clear()
    _stats.clear()


LARGE_QUEUE = 300  # counted exactly below this; above it the counts are kept a second per process
STATS_TTL_SECONDS = 1.0
_stats: dict[tuple[str, str, int], list[Any]] = {}


async def queue_stats(conn: repo.Conn, office_code: str, category_code: str, priority: int,
                      now: datetime) -> dict[str, Any]:
    """Waiting counts and service history for a new ticket.

    Short queues (the usual waiting room, and every occupancy cap up to LARGE_QUEUE) are counted exactly on
    each ticket. A queue longer than that is counted once a second per process and the tickets this process
    issued since are added: counting thousands of waiting rows for every ticket would make the kiosk slower
    the longer the queue. A cap above LARGE_QUEUE is therefore checked against a count at most a second old.
    """
    key = (office_code, category_code, priority)
    hit = _stats.get(key)
    if hit is not None and hit[0] > monotonic_time.monotonic():
        cached: dict[str, Any] = dict(hit[1])
        cached["ahead"] += hit[2]
        cached["office_waiting"] += hit[2]
        hit[2] += 1
        return cached
    row = dict(await repo.estimate_inputs(conn, office_code, category_code, priority, now, limit=LARGE_QUEUE + 1))
    if row["ahead"] > LARGE_QUEUE or row["office_waiting"] > LARGE_QUEUE:
        row = dict(await repo.estimate_inputs(conn, office_code, category_code, priority, now))
        if len(_stats) > 10_000:
            _stats.clear()
        _stats[key] = [monotonic_time.monotonic() + STATS_TTL_SECONDS, row, 1]
    return row

def ticket_out(t: Any, **extra: Any) -> dict[str, Any]:
    out = {
        "id": t["id"], "number": t["display"], "office_code": t["office_code"], "category_code": t["category_code"],
        "day": t["day"], "status": t["status"], "priority_group": t["priority_group"],
        "booking_code": t["booking_code"], "counter_id": t["counter_id"], "issued_at": t["issued_at"],
        "called_at": t["called_at"], "serving_at": t["serving_at"], "finished_at": t["finished_at"],
        "skipped_at": t["skipped_at"], "dossier_codes": list(t["dossier_codes"] or []),
    }
    out.update(extra)
    return out


def estimate_from(row: Any, default_seconds: int, now: datetime) -> dict[str, Any]:
    """Position and wait learnt from the last finished tickets of the category (default without history)."""
    samples = int(row["samples"] or 0)
    average = float(row["avg_seconds"]) if samples >= 3 and row["avg_seconds"] is not None else float(default_seconds)
    serving = max(1, int(row["staffed"] or 0) or int(row["counters"] or 0))
    ahead = int(row["ahead"])
    seconds = ahead * average / serving
    return {
        "position": ahead + 1, "people_ahead": ahead,
        "estimated_wait": {"minutes": math.ceil(seconds / 60), "average_service_seconds": round(average),
                           "samples": samples if samples >= 3 else 0, "counters": serving},
        "estimated_call_at": now + timedelta(seconds=seconds),
    }


async def estimate(conn: repo.Conn, t: Any, default_seconds: int, now: datetime) -> dict[str, Any]:
    row = await repo.estimate_inputs(conn, t["office_code"], t["category_code"], t["priority"], t["queued_at"],
                                     t["id"])
    return estimate_from(row, default_seconds, now)


async def issue_ticket(session: Tx, numbers: repo.NumberAllocator, body: TicketIn, principal: Principal,
                       keep: tuple[str, str, str, str] | None = None) -> bytes:
    """A walk-in ticket; the answer's JSON. With `keep` (Idempotency-Key scope, key, path, fingerprint) the
    answer is stored with the ticket by the same statement (KeyUsed if a request with that key came first)."""
    now = clock.now()
    # The ticket is one INSERT (its number comes from its own short transaction): no BEGIN/COMMIT around
    # the reads and it. With an Idempotency-Key the request's transaction is already open: all commit together.
    conn = await repo.autocommit_conn_of(session)
    if principal.role in ("kiosk", "officer", "supervisor") and principal.office_code != body.office_code:
        raise ProblemError(403, "forbidden", f"Tài khoản không thuộc nơi tiếp dân {body.office_code} / "
                                             f"your account does not belong to office {body.office_code}")
    row = await cached_office_and_category(conn, body.office_code, body.category_code)
    if row is None:
        raise await _unknown(conn, body.office_code, body.category_code)
    opening = (await office_calendar(session, row)).next_working_moment(now)
    if opening > now or not row["active"]:
        raise problem(409, "office_closed",
                      f"Ngoài giờ làm việc; mở cửa lúc {local_fmt(opening)} / "
                      f"Outside opening hours; the office opens at {opening.astimezone(VN_TZ).isoformat()}",
                      extra={"next_opening_at": opening.astimezone(VN_TZ).isoformat()})
    # Everything read before the number is drawn: the daily counter row stays locked only for the insert.
    priority = 1 if body.priority else 0
    stats = await queue_stats(conn, body.office_code, body.category_code, priority, now)
    waiting = int(stats["office_waiting"])
    if waiting >= row["occupancy_cap"]:
        slot = await next_free_slot(session, conn, row, now)
        hint = (f"; lịch hẹn gần nhất {local_fmt(slot['start_at'])} / next free booking slot "
                f"{slot['start_at'].isoformat()}") if slot else " / no booking slot free soon"
        raise problem(409, "office_full",
                      f"Phòng chờ đã đủ {row['occupancy_cap']} người, vui lòng đặt lịch hẹn{hint}",
                      extra={"waiting": waiting, "occupancy_cap": row["occupancy_cap"],
                             "next_free_slot": _json_slot(slot)})
    if principal.role == "citizen":
        mine = await repo.open_ticket_of(conn, body.office_code, principal.subject)
        if mine is not None:
            raise problem(409, "ticket_limit", f"Bạn đã có số {mine['display']} đang chờ / "
                                               f"you already hold ticket {mine['display']}")
    est = estimate_from(stats, row["default_service_seconds"], now)
    ticket = {"office_code": body.office_code, "category_code": body.category_code, "day": local_day(now),
              "prefix": row["prefix"], "priority_group": body.priority, "now": now,
              "issued_by": principal.subject, "issued_role": principal.role}
    if keep is not None:
        answer = TicketOut(**ticket_out(_to_be_inserted(ticket), category_name=row["category_name"], **est))
        _number, kept = await repo.insert_ticket_keeping_answer(conn, numbers, answer.model_dump(mode="json"), keep,
                                                                **ticket)
        return kept
    t = await repo.insert_ticket(conn, numbers, booking_code=None, slot_start=None, **ticket)
    return json_bytes(TicketOut(**ticket_out(t, category_name=row["category_name"], **est)).model_dump(mode="json"))


def _to_be_inserted(ticket: dict[str, Any]) -> dict[str, Any]:
    """The new ticket's row as the insert will write it (id and number are set by the statement)."""
    return {"id": 0, "display": "", "office_code": ticket["office_code"], "category_code": ticket["category_code"],
            "day": ticket["day"], "status": "waiting", "priority_group": ticket["priority_group"], "booking_code": None,
            "counter_id": None, "issued_at": ticket["now"], "called_at": None, "serving_at": None,
            "finished_at": None, "skipped_at": None, "dossier_codes": []}


def _json_slot(slot: dict[str, Any] | None) -> dict[str, Any] | None:
    if slot is None:
        return None
    return {**slot, "start_at": slot["start_at"].isoformat(), "end_at": slot["end_at"].isoformat()}


async def get_ticket(session: Tx, ticket_id: int, principal: Principal) -> dict[str, Any]:
    conn = await repo.conn_of(session)
    t = await repo.ticket(conn, ticket_id)
    if t is None or (principal.role != "admin" and principal.office_code != t["office_code"]
                     and t["issued_by"] != principal.subject):
        raise ProblemError(404, "not_found", f"Không có số thứ tự {ticket_id} / No ticket {ticket_id}")
    extra: dict[str, Any] = {"counter_number": t["counter_number"]}
    if t["status"] == "waiting":
        cat = await repo.office_and_category(conn, t["office_code"], t["category_code"])
        extra.update(await estimate(conn, t, cat["default_service_seconds"] if cat else 300, clock.now()))
    return ticket_out(t, **extra)


async def _counter_for(conn: repo.Conn, counter_id: int, principal: Principal) -> Any:
    c = await repo.counter(conn, counter_id)
    if c is None:
        raise ProblemError(404, "not_found", f"Không có quầy {counter_id} / No counter {counter_id}")
    _staff_of(principal, c["office_code"])
    return c


async def call_next(session: Tx, notifier: repo.BoardNotifier, counter_id: int, body: CallNextIn,
                    principal: Principal) -> dict[str, Any]:
    now = clock.now()
    conn = await repo.autocommit_conn_of(session)
    # Hot path: one statement checks the counter and calls; the checks below only explain an empty answer.
    t = await repo.call_next(
        conn, counter_id=counter_id, office_code=None if principal.role == "admin" else (principal.office_code or ""),
        officer=principal.subject if principal.role == "officer" else None, officer_name=principal.name,
        category_code=body.category_code, now=now, served_by=principal.subject)
    if t is not None:
        repo.notify_after_commit(session, notifier, t["notice"])
        return {"counter_id": counter_id, "counter_number": t["counter_number"], "event_id": t["event_id"],
                "ticket": ticket_out(t, counter_number=t["counter_number"])}
    c = await _counter_for(conn, counter_id, principal)
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
    return {"counter_id": counter_id, "counter_number": c["number"], "ticket": None,
            "detail": "Không còn người chờ / nobody is waiting"}


ACTIONS = ("recall", "start", "skip", "return", "transfer", "finish")


async def act(
    session: Tx, notifier: repo.BoardNotifier, ticket_id: int, action: str, principal: Principal, *,
    counter_id: int | None = None,
    transfer: TransferIn | None = None, finish: FinishIn | None = None,
) -> dict[str, Any]:
    now = clock.now()
    conn = await repo.conn_of(session)
    t = await repo.ticket(conn, ticket_id, lock=True)
    if t is None:
        raise ProblemError(404, "not_found", f"Không có số thứ tự {ticket_id} / No ticket {ticket_id}")
    c = await _counter_for(conn, counter_id, principal) if counter_id is not None else None
    if c is not None:
        office_code = c["office_code"]
    else:
        office_code = t["office_code"] if principal.role == "admin" else principal.office_code
    if office_code != t["office_code"]:
        raise problem(409, "other_office", f"Số {t['display']} thuộc nơi tiếp dân khác / "
                                           f"ticket {t['display']} belongs to another office")
    if c is None:
        _staff_of(principal, t["office_code"])
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
        row = await repo.update_ticket(conn, ticket_id, recalls=t["recalls"] + 1)
        number = t["counter_number"]
        _, notice = await repo.add_board_event(conn, t["office_code"], "recall", {
            "ticket_id": t["id"], "number": t["display"], "category_code": t["category_code"],
            "counter_id": t["counter_id"], "counter_number": number, "at": now.isoformat()}, now)
        repo.notify_after_commit(session, notifier, notice)
    elif action == "start":
        need(status == "called" and at_counter, "bắt đầu phục vụ")
        row = await repo.update_ticket(conn, ticket_id, status="serving", serving_at=now)
    elif action == "skip":
        need(status == "called" and at_counter, "bỏ qua")
        row = await repo.update_ticket(conn, ticket_id, status="skipped", skipped_at=now)
    elif action == "return":
        if t["returned_at"] is not None:
            raise problem(409, "ticket_closed", f"Số {t['display']} đã được quay lại một lần / "
                                                f"ticket {t['display']} already came back once")
        need(status == "skipped", "đưa lại hàng chờ")
        row = await repo.update_ticket(conn, ticket_id, status="waiting", returned_at=now, counter_id=None)
    elif action == "transfer":
        assert transfer is not None
        need(status in ("waiting", "called", "serving") and (status == "waiting" or at_counter), "chuyển")
        row = await _transfer(conn, t, transfer, now)
    else:
        assert finish is not None
        need(status in ("called", "serving") and at_counter, "kết thúc")
        row = await repo.update_ticket(conn, ticket_id, status="finished", finished_at=now,
                                       serving_at=t["serving_at"] or t["called_at"],
                                       dossier_codes=sorted(set(finish.dossier_codes)))
    return ticket_out(row)


async def _transfer(conn: repo.Conn, t: Any, body: TransferIn, now: datetime) -> Any:
    if (body.category_code is None) == (body.counter_id is None):
        raise field_error("category_code", "one_of", "Chọn một lĩnh vực hoặc một quầy để chuyển / "
                                                     "give exactly one of category_code or counter_id")
    if body.category_code is not None:
        if await repo.office_and_category(conn, t["office_code"], body.category_code) is None:
            raise await _unknown(conn, t["office_code"], body.category_code)
        return await repo.update_ticket(conn, t["id"], status="waiting", category_code=body.category_code,
                                        counter_id=None, target_counter_id=None, transferred_at=now)
    assert body.counter_id is not None
    target = await repo.counter(conn, body.counter_id)
    if target is None or target["office_code"] != t["office_code"] or not target["active"]:
        raise field_error("counter_id", "unknown_counter", f"Không có quầy {body.counter_id} đang hoạt động ở nơi này"
                                                           f" / no active counter {body.counter_id} in this office")
    return await repo.update_ticket(conn, t["id"], status="waiting", counter_id=None,
                                    target_counter_id=body.counter_id, transferred_at=now)


async def report(session: Tx, office_code: str, day: date | None, principal: Principal) -> dict[str, Any]:
    conn = await repo.conn_of(session)
    await _office_or_404(conn, office_code)
    _staff_of(principal, office_code)
    day = day or local_day(clock.now())
    data = await repo.report(conn, office_code, day)
    return {"office_code": office_code, "date": day,
            **{k: [dict(r) for r in rows] for k, rows in data.items()}}


# --- configuration ----------------------------------------------------------------------------

async def put_office(session: Tx, code: str, body: OfficeIn) -> dict[str, Any]:
    conn = await repo.conn_of(session)
    if not await conn.fetchval("SELECT 1 FROM core.agencies WHERE code = $1", body.agency_code):
        raise field_error("agency_code", "unknown_agency", f"Không có cơ quan {body.agency_code} / "
                                                           f"unknown agency {body.agency_code}")
    await repo.upsert_office(conn, code, body.model_dump())
    forget_config()
    return dict(await _office_or_404(conn, code))


async def put_category(session: Tx, office_code: str, code: str, body: CategoryIn,
                       principal: Principal) -> dict[str, Any]:
    conn = await repo.conn_of(session)
    await _office_or_404(conn, office_code)
    _staff_of(principal, office_code, ("supervisor",))
    owner = await repo.prefix_owner(conn, office_code, body.prefix)
    if owner is not None and owner != code:
        raise field_error("prefix", "prefix_taken", f"Chữ {body.prefix} đã dùng cho lĩnh vực {owner} / "
                                                    f"prefix {body.prefix} is used by category {owner}", 409)
    await repo.upsert_category(conn, office_code, code, body.model_dump())
    forget_config()
    return {"office_code": office_code, "code": code, **body.model_dump()}


async def put_counter(session: Tx, office_code: str, number: int, body: CounterIn,
                      principal: Principal) -> dict[str, Any]:
    conn = await repo.conn_of(session)
    await _office_or_404(conn, office_code)
    _staff_of(principal, office_code, ("supervisor",))
    known = {r["code"] for r in await repo.categories(conn, office_code)}
    unknown = sorted(set(body.category_codes) - known)
    if unknown:
        raise field_error("category_codes", "unknown_category", f"Không có lĩnh vực {', '.join(unknown)} / "
                                                                f"unknown categories {', '.join(unknown)}")
    return dict(await repo.upsert_counter(conn, office_code, number, body.model_dump()))


async def office_categories(session: Tx, office_code: str) -> dict[str, Any]:
    conn = await repo.conn_of(session)
    office = await _office_or_404(conn, office_code)
    cats = await repo.categories(conn, office_code)
    return {"office": {"code": office["code"], "name": office["name"], "agency_code": office["agency_code"],
                       "always_open": office["always_open"]},
            "categories": [{"code": c["code"], "prefix": c["prefix"], "name": c["name"],
                            "procedure_codes": list(c["procedure_codes"]), "slot_minutes": c["slot_minutes"],
                            "slot_capacity": c["slot_capacity"]} for c in cats]}


async def office_counters(session: Tx, office_code: str, principal: Principal) -> list[dict[str, Any]]:
    conn = await repo.conn_of(session)
    await _office_or_404(conn, office_code)
    _staff_of(principal, office_code)
    return [dict(r) for r in await repo.counters(conn, office_code)]


async def counter_sign(session: Tx, counter_id: int, principal: Principal, sign_in: bool) -> dict[str, Any]:
    now = clock.now()
    conn = await repo.conn_of(session)
    c = await _counter_for(conn, counter_id, principal)
    if c["officer_subject"] and c["officer_subject"] != principal.subject and principal.role == "officer":
        raise problem(409, "counter_taken", f"Quầy {c['number']} đang do cán bộ khác phụ trách / "
                                            f"counter {c['number']} is signed in by another officer")
    if sign_in:
        await repo.sign_in(conn, counter_id, principal.subject, principal.name, now)
    else:
        await repo.finish_current(conn, counter_id, now)
        await repo.sign_in(conn, counter_id, None, None, None)
    return dict(await repo.counter(conn, counter_id) or {})


# --- board ------------------------------------------------------------------------------------

def event_out(row: Any) -> dict[str, Any]:
    payload = row["payload"]
    if isinstance(payload, str):
        import json

        payload = json.loads(payload)
    return {"id": row["id"], "kind": row["kind"], **payload}


async def board(session: Tx, office_code: str) -> dict[str, Any]:
    conn = await repo.conn_of(session)
    office = await _office_or_404(conn, office_code)
    latest = await repo.latest_events(conn, office_code, 10)
    waiting = await repo.waiting_by_category(conn, office_code)
    counters = await repo.counters_with_current(conn, office_code)
    return {
        "office_code": office_code, "office_name": office["name"], "generated_at": clock.now(),
        "last_event_id": latest[0]["id"] if latest else await repo.last_event_id(conn, office_code),
        "latest_calls": [event_out(r) for r in latest],
        "counters": [{"id": r["id"], "number": r["number"], "name": r["name"], "active": r["active"],
                      "officer_name": r["officer_name"], "ticket_id": r["ticket_id"],
                      "ticket_number": r["ticket_number"], "ticket_status": r["ticket_status"],
                      "called_at": r["called_at"]} for r in counters],
        "waiting": [{"category_code": r["code"], "prefix": r["prefix"], "name": r["name"],
                     "waiting": r["waiting"]} for r in waiting],
        "waiting_total": sum(int(r["waiting"]) for r in waiting),
    }


async def board_replay(session: Tx, office_code: str, after_id: int) -> list[dict[str, Any]] | None:
    """Events after `after_id` for a reconnecting board; None when too many were missed (send a snapshot)."""
    conn = await repo.conn_of(session)
    await _office_or_404(conn, office_code)
    rows = await repo.events_after(conn, office_code, after_id, REPLAY_LIMIT + 1)
    if len(rows) > REPLAY_LIMIT:
        return None
    return [event_out(r) for r in rows]


# --- booking ----------------------------------------------------------------------------------

def slot_times(cal: WorkingCalendar, day: date, minutes: int) -> Iterator[tuple[datetime, datetime]]:
    length = timedelta(minutes=minutes)
    for start, end in cal.sessions_on(day):
        t = start
        while t + length <= end:
            yield t, t + length
            t += length


async def _slots(session: Tx, conn: repo.Conn, row: Any, day: date, now: datetime) -> list[dict[str, Any]]:
    cal = await office_calendar(session, row)
    times = [(s, e) for s, e in slot_times(cal, day, row["slot_minutes"]) if s > now]
    if not times or row["slot_capacity"] <= 0:
        return []
    used = await repo.slot_usage(conn, row["office_code"], row["category_code"], times[0][0],
                                 times[-1][0] + timedelta(seconds=1))
    out = []
    for s, e in times:
        taken = used.get(s, 0)
        out.append({"start_at": s, "end_at": e, "capacity": row["slot_capacity"], "taken": taken,
                    "free": max(0, row["slot_capacity"] - taken)})
    return out


async def next_free_slot(session: Tx, conn: repo.Conn, row: Any, now: datetime) -> dict[str, Any] | None:
    await repo.release_expired_holds(conn, now, row["office_code"])
    day = local_day(now)
    for i in range(15):
        for slot in await _slots(session, conn, row, day + timedelta(days=i), now):
            if slot["free"] > 0:
                return {**slot, "category_code": row["category_code"], "office_code": row["office_code"]}
    return None


async def list_slots(session: Tx, office_code: str, category_code: str, day: date) -> list[dict[str, Any]]:
    now = clock.now()
    conn = await repo.conn_of(session)
    row = await repo.office_and_category(conn, office_code, category_code)
    if row is None:
        raise await _unknown(conn, office_code, category_code)
    if day > local_day(now) + timedelta(days=BOOKING_HORIZON_DAYS):
        raise field_error("date", "too_far", f"Chỉ đặt lịch trong {BOOKING_HORIZON_DAYS} ngày tới / "
                                             f"bookings open {BOOKING_HORIZON_DAYS} days ahead")
    await repo.release_expired_holds(conn, now, office_code)
    return await _slots(session, conn, row, day, now)


def appointment_out(a: Any) -> dict[str, Any]:
    keys = ("booking_code", "office_code", "category_code", "slot_start", "slot_end", "status", "hold_expires_at",
            "created_at", "confirmed_at", "cancelled_at", "checked_in_at", "ticket_id")
    out = {k: a[k] for k in keys}
    out["ticket_number"] = a.get("ticket_number")
    return out


async def book(session: Tx, body: AppointmentIn, principal: Principal) -> dict[str, Any]:
    now = clock.now()
    conn = await repo.conn_of(session)
    row = await repo.office_and_category(conn, body.office_code, body.category_code)
    if row is None:
        raise await _unknown(conn, body.office_code, body.category_code)
    if body.slot_start.tzinfo is None:
        raise field_error("slot_start", "timezone", "Cần múi giờ, ví dụ +07:00 / slot_start needs a UTC offset")
    day = local_day(body.slot_start)
    cal = await office_calendar(session, row)
    ends = {s: e for s, e in slot_times(cal, day, row["slot_minutes"])}
    if body.slot_start not in ends or row["slot_capacity"] <= 0:
        raise field_error("slot_start", "not_a_slot", f"{local_fmt(body.slot_start)} không phải khung giờ đặt lịch / "
                                                      "not the start of a booking slot")
    if body.slot_start <= now:
        raise problem(409, "slot_past", f"Khung giờ {local_fmt(body.slot_start)} đã qua / that slot has passed")
    if day > local_day(now) + timedelta(days=BOOKING_HORIZON_DAYS):
        raise field_error("slot_start", "too_far", f"Chỉ đặt lịch trong {BOOKING_HORIZON_DAYS} ngày tới / "
                                                   f"bookings open {BOOKING_HORIZON_DAYS} days ahead")
    await repo.release_expired_holds(conn, now, body.office_code)
    mine = await repo.open_bookings(conn, principal.subject, now)
    same = [b for b in mine if b["office_code"] == body.office_code and b["category_code"] == body.category_code]
    if same or len(mine) >= MAX_OPEN_BOOKINGS:
        raise problem(409, "booking_limit",
                      f"Mỗi người chỉ có một lịch hẹn mở cho mỗi lĩnh vực và tối đa {MAX_OPEN_BOOKINGS} lịch hẹn "
                      f"(đang có {', '.join(b['booking_code'] for b in mine)}) / one open booking per category, "
                      f"at most {MAX_OPEN_BOOKINGS} in all", extra={"open_bookings": [b["booking_code"] for b in mine]})
    if not await repo.take_place(conn, body.office_code, body.category_code, body.slot_start, row["slot_capacity"]):
        raise problem(409, "slot_full", f"Khung giờ {local_fmt(body.slot_start)} đã hết chỗ / that slot is full")
    try:
        a = await repo.insert_appointment(conn, {
            "booking_code": secrets.token_hex(4).upper(), "office_code": body.office_code,
            "category_code": body.category_code, "citizen_id": principal.subject,
            "citizen_name": body.citizen_name or principal.name, "phone": body.phone,
            "slot_start": body.slot_start, "slot_end": ends[body.slot_start],
            "hold_expires_at": now + timedelta(seconds=row["hold_seconds"]), "created_at": now})
    except asyncpg.UniqueViolationError as exc:
        raise problem(409, "booking_limit", "Đã có lịch hẹn mở cho lĩnh vực này / an open booking exists "
                                            "for this category") from exc
    return {**appointment_out(a), "ticket_number": None}


async def _own_appointment(conn: repo.Conn, code: str, principal: Principal, *, staff: bool = False) -> Any:
    a = await repo.appointment(conn, code, lock=True)
    allowed = a is not None and (
        principal.role == "admin" or a["citizen_id"] == principal.subject
        or (staff and principal.role in ("officer", "supervisor", "kiosk")
            and principal.office_code == a["office_code"]))
    if a is None or not allowed:
        raise ProblemError(404, "not_found", f"Không có lịch hẹn {code} / No booking {code} for you")
    return a


async def get_appointment(session: Tx, code: str, principal: Principal) -> dict[str, Any]:
    conn = await repo.conn_of(session)
    a = await repo.appointment(conn, code)
    if a is None or not (principal.role == "admin" or a["citizen_id"] == principal.subject
                         or principal.office_code == a["office_code"]):
        raise ProblemError(404, "not_found", f"Không có lịch hẹn {code} / No booking {code} for you")
    return appointment_out(a)


async def confirm(session: Tx, code: str, principal: Principal) -> dict[str, Any]:
    now = clock.now()
    conn = await repo.conn_of(session)
    a = await _own_appointment(conn, code, principal)
    if a["status"] == "confirmed":
        return appointment_out(a)
    if a["status"] == "expired" or (a["status"] == "held" and a["hold_expires_at"] <= now):
        raise problem(409, "hold_expired", f"Giữ chỗ {code} đã hết hạn lúc {local_fmt(a['hold_expires_at'])}; hãy "
                                           "đặt lại / the hold expired; book again")
    if a["status"] != "held":
        raise problem(409, "booking_closed", f"Lịch hẹn {code} đang ở trạng thái {a['status']} / booking is "
                                             f"{a['status']}")
    await repo.update_appointment(conn, code, status="confirmed", confirmed_at=now)
    return appointment_out(await repo.appointment(conn, code))


async def cancel(session: Tx, code: str, principal: Principal) -> dict[str, Any]:
    now = clock.now()
    conn = await repo.conn_of(session)
    a = await _own_appointment(conn, code, principal)
    if a["status"] not in ("held", "confirmed"):
        raise problem(409, "booking_closed", f"Lịch hẹn {code} đang ở trạng thái {a['status']} / booking is "
                                             f"{a['status']}")
    await repo.update_appointment(conn, code, status="cancelled", cancelled_at=now, released_at=now)
    await repo.give_back_place(conn, a["office_code"], a["category_code"], a["slot_start"])
    return appointment_out(await repo.appointment(conn, code))


async def check_in(session: Tx, numbers: repo.NumberAllocator, code: str,
                   principal: Principal) -> dict[str, Any]:
    now = clock.now()
    conn = await repo.conn_of(session)
    a = await _own_appointment(conn, code, principal, staff=True)
    if a["status"] != "confirmed":
        raise problem(409, "booking_closed", f"Lịch hẹn {code} đang ở trạng thái {a['status']}, không thể xác nhận "
                                             f"đến / booking is {a['status']}; cannot check in")
    office = await _office_or_404(conn, a["office_code"])
    opens = a["slot_start"] - timedelta(minutes=office["checkin_early_minutes"])
    if now < opens:
        raise problem(409, "too_early", f"Chỉ xác nhận đến từ {local_fmt(opens)} / check-in opens at "
                                        f"{opens.isoformat()}", extra={"checkin_from": opens.isoformat()})
    if now >= a["slot_end"]:
        raise problem(409, "too_late", f"Khung giờ hẹn đã kết thúc lúc {local_fmt(a['slot_end'])}; vui lòng lấy số "
                                       "thường hoặc đặt lịch mới / the slot is over; take a number or book again")
    row = await repo.office_and_category(conn, a["office_code"], a["category_code"])
    assert row is not None
    t = await repo.insert_ticket(
        conn, numbers, office_code=a["office_code"], category_code=a["category_code"], day=local_day(now),
        prefix=row["prefix"], priority_group=None, booking_code=code, slot_start=a["slot_start"], now=now,
        issued_by=principal.subject, issued_role=principal.role)
    await repo.update_appointment(conn, code, status="checked_in", checked_in_at=now, ticket_id=t["id"])
    return {"booking": appointment_out(await repo.appointment(conn, code)),
            "ticket": ticket_out(t, category_name=row["category_name"])}


async def release(session: Tx) -> None:
    """Periodic: holds past their time and bookings not checked in by the end of their slot are released."""
    now = clock.now()
    conn = await repo.conn_of(session)
    await repo.release_expired_holds(conn, now)
    await repo.release_no_shows(conn, now)


async def close_day(session: Tx) -> int:
    """Periodic, after local midnight: yesterday's tickets nobody served are closed as no-shows."""
    now = clock.now()
    return await repo.close_days_before(await repo.conn_of(session), local_day(now), now)
