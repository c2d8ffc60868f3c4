"""Job handlers and periodic jobs of the Queue tickets (xếp hàng, lấy số) (run by the worker)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.queue_ticket import clock, service
from services.queue_ticket import repository as repo
from services.queue_ticket.models import idempotency_keys
from shared.idempotency import purge_idempotency_keys
from shared.jobs import JobRegistry

registry = JobRegistry("queue")


@registry.every("queue.purge_idempotency_keys", "17 3 * * *")
async def purge_keys(session: AsyncSession) -> None:
    """Idempotency keys are kept 24 hours, then dropped."""
    await purge_idempotency_keys(session, idempotency_keys, timedelta(hours=24))


@registry.every("queue.release_bookings", "* * * * *")
async def release_bookings(session: AsyncSession) -> None:
    """Holds past their time give their place back; bookings not checked in by their slot's end are no-shows.

    Holds also expire lazily (every booking and slot listing releases them first), so correctness never
    waits for this job.
    """
    await service.release(session)


@registry.every("queue.purge_board_events", "41 2 * * *")
async def purge_board_events(session: AsyncSession) -> None:
    """Board events are a live feed (and the Last-Event-ID replay); two days are kept."""
    await repo.purge_board_events(await repo.conn_of(session), clock.now() - timedelta(days=2))


@registry.every("queue.close_day", "5 17 * * *")
async def close_day(session: AsyncSession) -> None:
    """00:05 in Viet Nam (17:05 UTC): numbers restart, and tickets left from the day before are closed."""
    await service.close_day(session)
