"""Dossier workflow (giải quyết hồ sơ): state machine, history, deadlines, statistics, public tracking.

ASGI entry: `uvicorn --factory services.dossier_workflow.app:create_app`.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.dossier_workflow.jobs import registry
from services.dossier_workflow.router import public_router, router
from shared.app import create_service_app
from shared.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        service="workflow", title="Một Cửa — Dossier workflow (giải quyết)", description=__doc__ or "",
        routers=[router, public_router], histories=["core", "jobs", "workflow"], settings=settings,
        job_registry=registry,
    )
