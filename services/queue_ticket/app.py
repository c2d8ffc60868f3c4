"""ASGI entry of this service: `uvicorn --factory services.queue_ticket.app:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from services.queue_ticket import booking_router
from services.queue_ticket.board import BoardHub
from services.queue_ticket.board_repository import BoardNotifier
from services.queue_ticket.jobs import registry
from services.queue_ticket.pages import pages
from services.queue_ticket.router import router
from services.queue_ticket.tickets_repository import NumberAllocator
from shared.app import create_service_app
from shared.settings import Settings


async def _close_board(app: FastAPI) -> None:
    hub: BoardHub | None = getattr(app.state, "board_hub", None)
    if hub is not None:
        await hub.close()
    numbers: NumberAllocator | None = getattr(app.state, "numbers", None)
    if numbers is not None:
        await numbers.close()
    notifier: BoardNotifier | None = getattr(app.state, "board_notifier", None)
    if notifier is not None:
        await notifier.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        service="queue", title="Một Cửa — Queue tickets (xếp hàng, lấy số)", description=__doc__ or "",
        routers=[router, booking_router.router, pages], histories=["core", "jobs", "queue"], settings=settings,
        job_registry=registry, on_shutdown=[_close_board],
        openapi_tags=[{"name": n} for n in ("tickets", "counters", "booking", "board", "reports", "configuration")],
    )
