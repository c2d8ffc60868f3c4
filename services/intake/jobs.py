"""Job handlers and periodic jobs of intake (tiếp nhận) (run by the worker; each call one transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.intake import counter, submission
from services.intake.models import idempotency_keys
from shared.db import Tx
from shared.idempotency import purge_idempotency_keys
from shared.jobs import JobRegistry

registry = JobRegistry("intake")


@registry.handler("dossier.supplement_requested")
async def on_supplement_requested(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    """Workflow asked the citizen for documents: intake will take them until the deadline."""
    for data in payloads:
        await counter.supplement_requested(tx, data["code"], datetime.fromisoformat(data["supplement_due_at"]),
                                           list(data.get("documents") or []))


@registry.handler("dossier.paper_arrived")
async def on_paper_arrived(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    """Postal dossiers whose clock waits for the paper (certifications): it starts at the postmark on arrival."""
    for data in payloads:
        await submission.start_clock(tx, data["code"], datetime.fromisoformat(data["arrived_at"]))


@registry.handler("dossier.due_set")
async def on_due_set(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    """Workflow started a dossier's clock (an online dossier accepted): its due date, for the receipt."""
    for data in payloads:
        await submission.due_set(tx, data["code"], datetime.fromisoformat(data["due_at"]))


@registry.every("intake.purge_idempotency_keys", "17 3 * * *")
async def purge_keys(tx: Tx) -> None:
    """Idempotency keys are kept 24 hours, then dropped."""
    await purge_idempotency_keys(tx, idempotency_keys)
