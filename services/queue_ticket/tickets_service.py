"""Tickets: taking a number (walk-in), its place and wait estimate, the day's report and the day's close."""

from __future__ import annotations

import math
import time as monotonic_time
from datetime import date, datetime, timedelta
from typing import Any

from services.queue_ticket import clock
from services.queue_ticket import tickets_repository as repo
from services.queue_ticket.booking_service import next_free_slot
from services.queue_ticket.common import (
    EARLIEST_DAY,
    LATEST_DAY,
    cached_office_and_category,
    forget_on_change,
    local_day,
    local_fmt,
    office_calendar,
    office_or_404,
    problem,
    staff_of,
    ticket_out,
    unknown,
    within,
)
from services.queue_ticket.schemas import TicketIn, TicketOut
from services.queue_ticket.tickets_repository import NumberAllocator
from shared.auth import Principal
from shared.calendar import VN_TZ
from shared.db import Tx
from shared.encoding import json_bytes
from shared.idempotency import Idempotency, KeyUsed
from shared.problems import ProblemError

LARGE_QUEUE = 300  # counted exactly below this; above it the counts are kept a second per process
STATS_TTL_SECONDS = 1.0
_stats: dict[tuple[str, str, int], list[Any]] = {}
forget_on_change(_stats)


async def queue_stats(tx: Tx, office_code: str, category_code: str, priority: int, now: datetime) -> dict[str, Any]:
    """Waiting counts and service history for a new ticket.

    Queues up to LARGE_QUEUE (every usual waiting room and occupancy cap) are counted exactly on each ticket.
    A longer one is counted once a second per process, plus the tickets this process issued since, so the kiosk
    does not slow down as the queue grows; a cap above LARGE_QUEUE is checked against a count a second old.
    """
    key = (office_code, category_code, priority)
    hit = _stats.get(key)
    if hit is not None and hit[0] > monotonic_time.monotonic():
        cached: dict[str, Any] = dict(hit[1])
        cached["ahead"] += hit[2]
        cached["office_waiting"] += hit[2]
        hit[2] += 1
        return cached
    row = dict(await repo.estimate_inputs(tx, office_code, category_code, priority, now, limit=LARGE_QUEUE + 1))
    if row["ahead"] > LARGE_QUEUE or row["office_waiting"] > LARGE_QUEUE:
        row = dict(await repo.estimate_inputs(tx, office_code, category_code, priority, now))
        if len(_stats) > 10_000:
            _stats.clear()
        _stats[key] = [monotonic_time.monotonic() + STATS_TTL_SECONDS, row, 1]
    return row


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


async def issue_ticket(tx: Tx, numbers: NumberAllocator, body: TicketIn, principal: Principal,
                       idem: Idempotency) -> bytes:
    """A walk-in ticket; the answer's JSON. With an Idempotency-Key the answer is kept by the ticket's own
    INSERT; KeyUsed when that key already has an answer (the caller replays it)."""
    now = clock.now()
    if principal.role in ("kiosk", "officer", "supervisor") and principal.office_code != body.office_code:
        raise ProblemError(403, "forbidden", f"Tài khoản không thuộc nơi tiếp dân {body.office_code} / "
                                             f"your account does not belong to office {body.office_code}")
    if idem.key is not None and await repo.answer_kept(tx, idem):
        raise KeyUsed  # a retry is answered before the rules run again and before a number is drawn
    row = await cached_office_and_category(tx, body.office_code, body.category_code)
    if row is None:
        raise await unknown(tx, body.office_code, body.category_code)
    opening = (await office_calendar(tx, row)).next_working_moment(now)
    if opening > now or not row["active"]:
        raise problem(409, "office_closed",
                      f"Ngoài giờ làm việc; mở cửa lúc {local_fmt(opening)} / "
                      f"Outside opening hours; the office opens at {opening.astimezone(VN_TZ).isoformat()}",
                      extra={"next_opening_at": opening.astimezone(VN_TZ).isoformat()})
    priority = 1 if body.priority else 0
    stats = await queue_stats(tx, body.office_code, body.category_code, priority, now)
    waiting = int(stats["office_waiting"])
    if waiting >= row["occupancy_cap"]:
        slot = await next_free_slot(tx, row, now)
        hint = (f"; lịch hẹn gần nhất {local_fmt(slot['start_at'])} / next free booking slot "
                f"{slot['start_at'].isoformat()}") if slot else " / no booking slot free soon"
        raise problem(409, "office_full",
                      f"Phòng chờ đã đủ {row['occupancy_cap']} người, vui lòng đặt lịch hẹn{hint}",
                      extra={"waiting": waiting, "occupancy_cap": row["occupancy_cap"],
                             "next_free_slot": _json_slot(slot)})
    if principal.role == "citizen":
        mine = await repo.open_ticket_of(tx, body.office_code, principal.subject)
        if mine is not None:
            raise problem(409, "ticket_limit", f"Bạn đã có số {mine['display']} đang chờ / "
                                               f"you already hold ticket {mine['display']}")
    est = estimate_from(stats, row["default_service_seconds"], now)
    ticket = {"office_code": body.office_code, "category_code": body.category_code, "day": local_day(now),
              "prefix": row["prefix"], "priority_group": body.priority, "now": now,
              "issued_by": principal.subject, "issued_role": principal.role}
    if idem.key is not None:
        answer = TicketOut(**ticket_out(_to_be_inserted(ticket), category_name=row["category_name"], **est))
        return await repo.insert_ticket_keeping_answer(tx, numbers, idem, answer.model_dump(mode="json"), **ticket)
    t = await repo.insert_ticket(tx, numbers, booking_code=None, slot_start=None, **ticket)
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


async def get_ticket(tx: Tx, ticket_id: int, principal: Principal) -> dict[str, Any]:
    t = await repo.ticket(tx, ticket_id)
    if t is None or (principal.role != "admin" and principal.office_code != t["office_code"]
                     and t["issued_by"] != principal.subject):
        raise ProblemError(404, "not_found", f"Không có số thứ tự {ticket_id} / No ticket {ticket_id}")
    extra: dict[str, Any] = {"counter_number": t["counter_number"]}
    if t["status"] == "waiting":
        cat = await cached_office_and_category(tx, t["office_code"], t["category_code"])
        row = await repo.estimate_inputs(tx, t["office_code"], t["category_code"], t["priority"], t["queued_at"],
                                         t["id"])
        extra.update(estimate_from(row, cat["default_service_seconds"] if cat else 300, clock.now()))
    return ticket_out(t, **extra)


async def report(tx: Tx, office_code: str, day: date | None, principal: Principal) -> dict[str, Any]:
    await office_or_404(tx, office_code)
    staff_of(principal, office_code)
    day = day or local_day(clock.now())
    within("date", day, EARLIEST_DAY, LATEST_DAY)
    data = await repo.report(tx, office_code, day)
    return {"office_code": office_code, "date": day, **{k: [dict(r) for r in rows] for k, rows in data.items()}}


async def close_day(tx: Tx) -> int:
    """Periodic, after local midnight: yesterday's tickets nobody served are closed as no-shows."""
    now = clock.now()
    return await repo.close_days_before(tx, local_day(now), now)
