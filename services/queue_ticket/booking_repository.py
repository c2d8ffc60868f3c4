"""SQL of online booking: slots (places taken), appointments, and the release of holds and no-shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.db import Tx

Row = Any  # asyncpg.Record

RELEASE_EXPIRED_SQL = """
WITH gone AS (
  UPDATE queue.appointments SET status = 'expired', released_at = $1
  WHERE status = 'held' AND hold_expires_at <= $1 AND ($2::text IS NULL OR office_code = $2)
  RETURNING office_code, category_code, slot_start
), agg AS (
  SELECT office_code, category_code, slot_start, count(*) AS n FROM gone GROUP BY 1, 2, 3
)
UPDATE queue.slots s SET taken = s.taken - agg.n FROM agg
WHERE s.office_code = agg.office_code AND s.category_code = agg.category_code AND s.start_at = agg.slot_start
"""


async def release_expired_holds(tx: Tx, now: datetime, office_code: str | None = None) -> None:
    await tx.execute(RELEASE_EXPIRED_SQL, now, office_code)


async def release_no_shows(tx: Tx, now: datetime) -> int:
    return await tx.execute(
        "UPDATE queue.appointments SET status = 'no_show', released_at = $1 "
        "WHERE status = 'confirmed' AND slot_end <= $1", now)


async def slot_usage(tx: Tx, office_code: str, category_code: str, start: datetime,
                     end: datetime) -> dict[datetime, int]:
    rows = await tx.fetch(
        "SELECT start_at, taken FROM queue.slots WHERE office_code = $1 AND category_code = $2 "
        "AND start_at >= $3 AND start_at < $4", office_code, category_code, start, end)
    return {r["start_at"]: r["taken"] for r in rows}


async def take_place(tx: Tx, office_code: str, category_code: str, start: datetime, capacity: int) -> bool:
    """Of two requests after a slot's last place, exactly one gets it."""
    await tx.execute(
        "INSERT INTO queue.slots (office_code, category_code, start_at, capacity, taken) VALUES ($1, $2, $3, $4, 0) "
        "ON CONFLICT DO NOTHING", office_code, category_code, start, capacity)
    taken = await tx.fetchval(
        "UPDATE queue.slots SET taken = taken + 1 WHERE office_code = $1 AND category_code = $2 AND start_at = $3 "
        "AND taken < capacity RETURNING taken", office_code, category_code, start)
    return taken is not None


async def give_back_place(tx: Tx, office_code: str, category_code: str, start: datetime) -> None:
    await tx.execute(
        "UPDATE queue.slots SET taken = taken - 1 WHERE office_code = $1 AND category_code = $2 AND start_at = $3 "
        "AND taken > 0", office_code, category_code, start)


async def open_bookings(tx: Tx, citizen_id: str, now: datetime) -> list[Row]:
    return await tx.fetch(
        "SELECT booking_code, office_code, category_code FROM queue.appointments WHERE citizen_id = $1 "
        "AND (status = 'confirmed' OR (status = 'held' AND hold_expires_at > $2))", citizen_id, now)


async def insert_appointment(tx: Tx, v: dict[str, Any]) -> Row:
    row: Row = await tx.fetchrow(
        "INSERT INTO queue.appointments (booking_code, office_code, category_code, citizen_id, citizen_name, phone, "
        "slot_start, slot_end, status, hold_expires_at, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'held', $9, $10) RETURNING *",
        v["booking_code"], v["office_code"], v["category_code"], v["citizen_id"], v["citizen_name"], v["phone"],
        v["slot_start"], v["slot_end"], v["hold_expires_at"], v["created_at"])
    return row


async def appointment(tx: Tx, booking_code: str, *, lock: bool = False) -> Row | None:
    return await tx.fetchrow(
        "SELECT a.*, t.display AS ticket_number FROM queue.appointments a "
        "LEFT JOIN queue.tickets t ON t.id = a.ticket_id WHERE a.booking_code = $1"
        + (" FOR UPDATE OF a" if lock else ""), booking_code)


UPDATABLE = frozenset({"status", "confirmed_at", "cancelled_at", "released_at", "checked_in_at", "ticket_id"})


async def update_appointment(tx: Tx, booking_code: str, **values: Any) -> None:
    names = list(values)
    assert UPDATABLE.issuperset(names), names
    sets = ", ".join(f"{n} = ${i + 2}" for i, n in enumerate(names))
    await tx.execute(f"UPDATE queue.appointments SET {sets} WHERE booking_code = $1", booking_code,
                     *[values[n] for n in names])
