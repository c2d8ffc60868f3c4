"""Job handlers and periodic jobs of the Postal tracking (bưu chính công ích) service (run by the worker)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from services.postal_tracking import dossiers_repository, polling_service, shipments_service
from services.postal_tracking.models import idempotency_keys
from services.postal_tracking.schemas import DossierFact
from shared.db import Tx
from shared.idempotency import purge_idempotency_keys
from shared.jobs import JobRegistry

registry = JobRegistry("postal")
log = structlog.get_logger("postal.jobs")


def poll_stale_after() -> timedelta:
    """POSTAL_POLL_STALE_MINUTES: how long without news before the partner's tracking API is asked."""
    return timedelta(minutes=float(os.environ.get("POSTAL_POLL_STALE_MINUTES", "60")))


@registry.handler("postal.dossier_received", max_batch=100)
async def on_dossier_received(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    """Intake received a dossier that may travel by post: postal keeps who may create its shipments."""
    await dossiers_repository.remember(tx, [DossierFact.model_validate(data) for data in payloads])


@registry.handler("shipment.create_outbound")
async def on_create_outbound(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    """The workflow resolved a dossier whose result goes by post: one outbound shipment, ever."""
    for data in payloads:
        created = await shipments_service.create_outbound_from_job(tx, data, datetime.now(UTC))
        log.info("outbound_shipment", dossier_code=data.get("code"), shipment_id=created,
                 created=created is not None)


@registry.every("postal.poll_stale", "*/10 * * * *")
async def poll_stale(tx: Tx) -> None:
    result = await polling_service.poll_stale(tx, datetime.now(UTC), poll_stale_after())
    log.info("postal_poll", **result)


@registry.every("postal.purge_idempotency_keys", "17 3 * * *")
async def purge_keys(tx: Tx) -> None:
    """Idempotency keys are kept 24 hours, then dropped."""
    await purge_idempotency_keys(tx, idempotency_keys)
