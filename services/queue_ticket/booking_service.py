"""Online booking: slots of the working sessions, holds that expire, confirm, cancel, check-in."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from services.queue_ticket import booking_repository as repo
from services.queue_ticket import clock
from services.queue_ticket import offices_repository as offices_repo
from services.queue_ticket import tickets_repository as tickets_repo
from services.queue_ticket.common import (
    field_error,
    local_day,
    local_fmt,
    office_calendar,
    office_or_404,
    out_of_range,
    problem,
    ticket_out,
    unknown,
    within,
)
from services.queue_ticket.schemas import AppointmentIn
from services.queue_ticket.tickets_repository import NumberAllocator
from shared.auth import Principal
from shared.calendar import WorkingCalendar
from shared.db import Tx
from shared.problems import ProblemError

BOOKING_HORIZON_DAYS = 60
MAX_OPEN_BOOKINGS = 3
FREE_SLOT_SEARCH_DAYS = 15


def slot_times(cal: WorkingCalendar, day: date, minutes: int) -> Iterator[tuple[datetime, datetime]]:
    length = timedelta(minutes=minutes)
    for start, end in cal.sessions_on(day):
        t = start
        while t + length <= end:
            yield t, t + length
            t += length


async def _slots(tx: Tx, row: Any, day: date, now: datetime) -> list[dict[str, Any]]:
    cal = await office_calendar(tx, row)
    times = [(s, e) for s, e in slot_times(cal, day, row["slot_minutes"]) if s > now]
    if not times or row["slot_capacity"] <= 0:
        return []
    used = await repo.slot_usage(tx, row["office_code"], row["category_code"], times[0][0],
                                 times[-1][0] + timedelta(seconds=1))
    out = []
    for s, e in times:
        taken = used.get(s, 0)
        out.append({"start_at": s, "end_at": e, "capacity": row["slot_capacity"], "taken": taken,
                    "free": max(0, row["slot_capacity"] - taken)})
    return out


async def next_free_slot(tx: Tx, row: Any, now: datetime) -> dict[str, Any] | None:
    """The first slot with a free place in the next FREE_SLOT_SEARCH_DAYS days (offered by a full office)."""
    await repo.release_expired_holds(tx, now, row["office_code"])
    day = local_day(now)
    for i in range(FREE_SLOT_SEARCH_DAYS):
        for slot in await _slots(tx, row, day + timedelta(days=i), now):
            if slot["free"] > 0:
                return {**slot, "category_code": row["category_code"], "office_code": row["office_code"]}
    return None


async def list_slots(tx: Tx, office_code: str, category_code: str, day: date) -> list[dict[str, Any]]:
    now = clock.now()
    row = await offices_repo.office_and_category(tx, office_code, category_code)
    if row is None:
        raise await unknown(tx, office_code, category_code)
    today = local_day(now)
    if day > today + timedelta(days=BOOKING_HORIZON_DAYS):
        raise field_error("date", "too_far", f"Chỉ đặt lịch trong {BOOKING_HORIZON_DAYS} ngày tới / "
                                             f"bookings open {BOOKING_HORIZON_DAYS} days ahead")
    within("date", day, today, today + timedelta(days=BOOKING_HORIZON_DAYS))
    await repo.release_expired_holds(tx, now, office_code)
    return await _slots(tx, row, day, now)


def appointment_out(a: Any) -> dict[str, Any]:
    keys = ("booking_code", "office_code", "category_code", "slot_start", "slot_end", "status", "hold_expires_at",
            "created_at", "confirmed_at", "cancelled_at", "checked_in_at", "ticket_id", "ticket_number")
    return {k: a[k] for k in keys}


async def book(tx: Tx, body: AppointmentIn, principal: Principal) -> dict[str, Any]:
    """Takes a place in the slot and holds it until `hold_seconds` pass unconfirmed."""
    now = clock.now()
    row = await offices_repo.office_and_category(tx, body.office_code, body.category_code)
    if row is None:
        raise await unknown(tx, body.office_code, body.category_code)
    if body.slot_start.tzinfo is None:
        raise field_error("slot_start", "timezone", "Cần múi giờ, ví dụ +07:00 / slot_start needs a UTC offset")
    today = local_day(now)
    if not now - timedelta(days=1) <= body.slot_start <= now + timedelta(days=BOOKING_HORIZON_DAYS + 1):
        raise out_of_range("slot_start", today, today + timedelta(days=BOOKING_HORIZON_DAYS))
    day = local_day(body.slot_start)
    cal = await office_calendar(tx, row)
    ends = dict(slot_times(cal, day, row["slot_minutes"]))
    if body.slot_start not in ends or row["slot_capacity"] <= 0:
        raise field_error("slot_start", "not_a_slot", f"{local_fmt(body.slot_start)} không phải khung giờ đặt lịch / "
                                                      "not the start of a booking slot")
    if body.slot_start <= now:
        raise problem(409, "slot_past", f"Khung giờ {local_fmt(body.slot_start)} đã qua / that slot has passed")
    if day > local_day(now) + timedelta(days=BOOKING_HORIZON_DAYS):
        raise field_error("slot_start", "too_far", f"Chỉ đặt lịch trong {BOOKING_HORIZON_DAYS} ngày tới / "
                                                   f"bookings open {BOOKING_HORIZON_DAYS} days ahead")
    await repo.release_expired_holds(tx, now, body.office_code)
    mine = await repo.open_bookings(tx, principal.subject, now)
    same = [b for b in mine if b["office_code"] == body.office_code and b["category_code"] == body.category_code]
    if same or len(mine) >= MAX_OPEN_BOOKINGS:
        raise problem(409, "booking_limit",
                      f"Mỗi người chỉ có một lịch hẹn mở cho mỗi lĩnh vực và tối đa {MAX_OPEN_BOOKINGS} lịch hẹn "
                      f"(đang có {', '.join(b['booking_code'] for b in mine)}) / one open booking per category, "
                      f"at most {MAX_OPEN_BOOKINGS} in all", extra={"open_bookings": [b["booking_code"] for b in mine]})
    if not await repo.take_place(tx, body.office_code, body.category_code, body.slot_start, row["slot_capacity"]):
        raise problem(409, "slot_full", f"Khung giờ {local_fmt(body.slot_start)} đã hết chỗ / that slot is full")
    try:
        a = await repo.insert_appointment(tx, {
            "booking_code": secrets.token_hex(4).upper(), "office_code": body.office_code,
            "category_code": body.category_code, "citizen_id": principal.subject,
            "citizen_name": body.citizen_name or principal.name, "phone": body.phone,
            "slot_start": body.slot_start, "slot_end": ends[body.slot_start],
            "hold_expires_at": now + timedelta(seconds=row["hold_seconds"]), "created_at": now})
    except asyncpg.UniqueViolationError as exc:
        raise problem(409, "booking_limit", "Đã có lịch hẹn mở cho lĩnh vực này / an open booking exists "
                                            "for this category") from exc
    return appointment_out({**dict(a), "ticket_number": None})


async def _own_appointment(tx: Tx, code: str, principal: Principal, *, staff: bool = False) -> Any:
    a = await repo.appointment(tx, code, lock=True)
    allowed = a is not None and (
        principal.role == "admin" or a["citizen_id"] == principal.subject
        or (staff and principal.role in ("officer", "supervisor", "kiosk")
            and principal.office_code == a["office_code"]))
    if a is None or not allowed:
        raise ProblemError(404, "not_found", f"Không có lịch hẹn {code} / No booking {code} for you")
    return a


async def get_appointment(tx: Tx, code: str, principal: Principal) -> dict[str, Any]:
    a = await repo.appointment(tx, code)
    if a is None or not (principal.role == "admin" or a["citizen_id"] == principal.subject
                         or principal.office_code == a["office_code"]):
        raise ProblemError(404, "not_found", f"Không có lịch hẹn {code} / No booking {code} for you")
    return appointment_out(a)


async def confirm(tx: Tx, code: str, principal: Principal) -> dict[str, Any]:
    now = clock.now()
    a = await _own_appointment(tx, code, principal)
    if a["status"] == "confirmed":
        return appointment_out(a)
    if a["status"] == "expired" or (a["status"] == "held" and a["hold_expires_at"] <= now):
        raise problem(409, "hold_expired", f"Giữ chỗ {code} đã hết hạn lúc {local_fmt(a['hold_expires_at'])}; hãy "
                                           "đặt lại / the hold expired; book again")
    if a["status"] != "held":
        raise problem(409, "booking_closed", f"Lịch hẹn {code} đang ở trạng thái {a['status']} / booking is "
                                             f"{a['status']}")
    await repo.update_appointment(tx, code, status="confirmed", confirmed_at=now)
    return appointment_out(await repo.appointment(tx, code))


async def cancel(tx: Tx, code: str, principal: Principal) -> dict[str, Any]:
    now = clock.now()
    a = await _own_appointment(tx, code, principal)
    if a["status"] not in ("held", "confirmed"):
        raise problem(409, "booking_closed", f"Lịch hẹn {code} đang ở trạng thái {a['status']} / booking is "
                                             f"{a['status']}")
    await repo.update_appointment(tx, code, status="cancelled", cancelled_at=now, released_at=now)
    await repo.give_back_place(tx, a["office_code"], a["category_code"], a["slot_start"])
    return appointment_out(await repo.appointment(tx, code))


async def check_in(tx: Tx, numbers: NumberAllocator, code: str, principal: Principal) -> dict[str, Any]:
    """A ticket for a confirmed booking, called ahead of walk-ins once its slot has begun."""
    now = clock.now()
    a = await _own_appointment(tx, code, principal, staff=True)
    if a["status"] != "confirmed":
        raise problem(409, "booking_closed", f"Lịch hẹn {code} đang ở trạng thái {a['status']}, không thể xác nhận "
                                             f"đến / booking is {a['status']}; cannot check in")
    office = await office_or_404(tx, a["office_code"])
    opens = a["slot_start"] - timedelta(minutes=office["checkin_early_minutes"])
    if now < opens:
        raise problem(409, "too_early", f"Chỉ xác nhận đến từ {local_fmt(opens)} / check-in opens at "
                                        f"{opens.isoformat()}", extra={"checkin_from": opens.isoformat()})
    if now >= a["slot_end"]:
        raise problem(409, "too_late", f"Khung giờ hẹn đã kết thúc lúc {local_fmt(a['slot_end'])}; vui lòng lấy số "
                                       "thường hoặc đặt lịch mới / the slot is over; take a number or book again")
    row = await offices_repo.office_and_category(tx, a["office_code"], a["category_code"])
    assert row is not None
    t = await tickets_repo.insert_ticket(
        tx, numbers, office_code=a["office_code"], category_code=a["category_code"], day=local_day(now),
        prefix=row["prefix"], priority_group=None, booking_code=code, slot_start=a["slot_start"], now=now,
        issued_by=principal.subject, issued_role=principal.role)
    await repo.update_appointment(tx, code, status="checked_in", checked_in_at=now, ticket_id=t["id"])
    return {"booking": appointment_out(await repo.appointment(tx, code)),
            "ticket": ticket_out(t, category_name=row["category_name"])}


async def release(tx: Tx) -> None:
    """Periodic: holds past their time and bookings not checked in by the end of their slot are released."""
    now = clock.now()
    await repo.release_expired_holds(tx, now)
    await repo.release_no_shows(tx, now)
