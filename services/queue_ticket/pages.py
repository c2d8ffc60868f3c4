"""The kiosk and board pages and their assets (the gateway maps /queue/* to /pages/*)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from services.queue_ticket.deps import Code
from shared.problems import ProblemError

STATIC = Path(__file__).resolve().parent / "static"

pages = APIRouter(prefix="/pages", include_in_schema=False)
ASSETS = {"queue.css": "text/css", "kiosk.js": "text/javascript", "board.js": "text/javascript"}


@pages.get("/kiosk/{office_code}")
async def kiosk_page(office_code: Code) -> FileResponse:
    return FileResponse(STATIC / "kiosk.html", media_type="text/html; charset=utf-8")


@pages.get("/board/{office_code}")
async def board_page(office_code: Code) -> FileResponse:
    return FileResponse(STATIC / "board.html", media_type="text/html; charset=utf-8")


@pages.get("/static/{name}")
async def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise ProblemError(404, "not_found", f"Không có tệp {name} / No file {name}")
    return FileResponse(STATIC / name, media_type=ASSETS[name] + "; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=300"})
