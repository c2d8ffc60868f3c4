"""Job handlers and periodic jobs of the Queue tickets (xếp hàng, lấy số) (run by the worker)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.queue_ticket.models import idempotency_keys
from shared.idempotency import purge_idempotency_keys
from shared.jobs import JobRegistry

registry = JobRegistry("queue")


@registry.every("queue.purge_idempotency_keys", "17 3 * * *")
async def purge_keys(session: AsyncSession) -> None:
    """Idempotency keys are kept 24 hours, then dropped."""
    await purge_idempotency_keys(session, idempotency_keys, timedelta(hours=24))
