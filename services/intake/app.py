"""ASGI entry of this service: `uvicorn --factory services.intake.app:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from services.intake.jobs import registry
from services.intake.router import admin_router, counter_router, dossier_router, router
from shared.app import create_service_app
from shared.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        service="intake", title="Một Cửa — Intake (tiếp nhận)", description=__doc__ or "",
        routers=[router, dossier_router, counter_router, admin_router], histories=["core", "jobs", "intake"],
        settings=settings,
        job_registry=registry,
    )
