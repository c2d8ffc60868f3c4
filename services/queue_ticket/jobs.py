"""Periodic jobs of the Queue tickets (xếp hàng, lấy số) service (run by the worker)."""

from __future__ import annotations

from services.queue_ticket import board_service as board
from services.queue_ticket import booking_service as booking
from services.queue_ticket import tickets_service as tickets
from services.queue_ticket.models import idempotency_keys
from shared.db import Tx
from shared.idempotency import purge_idempotency_keys
from shared.jobs import JobRegistry

registry = JobRegistry("queue")


@registry.every("queue.purge_idempotency_keys", "17 3 * * *")
async def purge_keys(tx: Tx) -> None:
    """Idempotency keys are kept 24 hours, then dropped."""
    await purge_idempotency_keys(tx, idempotency_keys)


@registry.every("queue.release_bookings", "* * * * *")
async def release_bookings(tx: Tx) -> None:
    """Holds past their time give their place back; bookings not checked in by their slot's end are no-shows.
    Every booking and slot listing also releases holds first, so correctness never waits for this job."""
    await booking.release(tx)


@registry.every("queue.purge_board_events", "41 2 * * *")
async def purge_board_events(tx: Tx) -> None:
    """Board events are a live feed (and the Last-Event-ID replay); two days are kept."""
    await board.purge_events(tx, older_than_days=2)


@registry.every("queue.close_day", "5 17 * * *")
async def close_day(tx: Tx) -> None:
    """00:05 in Viet Nam (17:05 UTC): numbers restart, and tickets left from the day before are closed."""
    await tickets.close_day(tx)
