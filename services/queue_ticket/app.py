"""ASGI entry of this service: `uvicorn --factory services.queue_ticket.app:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from services.queue_ticket.jobs import registry
from services.queue_ticket.router import router
from shared.app import create_service_app
from shared.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        service="queue", title="Một Cửa — Queue tickets (xếp hàng, lấy số)", description=__doc__ or "",
        routers=[router], histories=["core", "jobs", "queue"], settings=settings,
        job_registry=registry,
    )
