"""Job handlers and periodic jobs of intake (tiếp nhận) (run by the worker; each one transaction)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import counter, submission
from services.intake.models import idempotency_keys
from shared.idempotency import purge_idempotency_keys
from shared.jobs import JobRegistry

registry = JobRegistry("intake")


@registry.handler("dossier.supplement_requested")
async def on_supplement_requested(session: AsyncSession, data: dict[str, Any]) -> None:
    """Workflow asked the citizen for documents: intake will take them until the deadline."""
    await counter.supplement_requested(session, data["code"], datetime.fromisoformat(data["supplement_due_at"]),
                                       list(data.get("documents") or []))


@registry.handler("dossier.paper_arrived")
async def on_paper_arrived(session: AsyncSession, data: dict[str, Any]) -> None:
    """Postal dossiers whose clock waits for the paper (certifications): it starts at the postmark on arrival."""
    await submission.start_clock(session, data["code"], datetime.fromisoformat(data["arrived_at"]))


@registry.every("intake.purge_idempotency_keys", "17 3 * * *")
async def purge_keys(session: AsyncSession) -> None:
    """Idempotency keys are kept 24 hours, then dropped."""
    await purge_idempotency_keys(session, idempotency_keys, timedelta(hours=24))
