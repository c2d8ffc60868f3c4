"""ASGI entry of this service: `uvicorn --factory services.postal_tracking.app:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from services.postal_tracking.jobs import registry
from services.postal_tracking.router import router
from shared.app import create_service_app
from shared.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        service="postal", title="Một Cửa — Postal tracking (bưu chính công ích)", description=__doc__ or "",
        routers=[router], histories=["core", "jobs", "postal"], settings=settings,
        job_registry=registry,
    )
