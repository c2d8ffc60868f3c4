"""HTTP routes of the Queue tickets (xếp hàng, lấy số) service (thin: parse, authorise, call the service layer)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, StreamingResponse
from starlette.routing import Route

from services.queue_ticket import service
from services.queue_ticket.board import BoardHub, stream
from services.queue_ticket.models import idempotency_keys
from services.queue_ticket.repository import BoardNotifier, NumberAllocator
from services.queue_ticket.schemas import (
    AppointmentIn,
    AppointmentOut,
    CallNextIn,
    CategoryIn,
    CounterIn,
    FinishIn,
    OfficeIn,
    SlotOut,
    TicketIn,
    TicketOut,
    TransferIn,
)
from shared.auth import Principal, check_roles, current_principal, require_roles
from shared.db import SessionDep, autocommit_connection
from shared.idempotency import (
    Idempotency,
    KeyUsed,
    find_stored,
    fingerprint_of,
    idempotency_guard,
    parse_key,
    scope_of,
    stored_response,
)
from shared.lean import json_bytes, parse_body
from shared.problems import ProblemError

router = APIRouter(prefix="/v1")
STATIC = Path(__file__).resolve().parent / "static"

Code = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.-]{1,20}$", examples=["PBD"])]
Staff = Annotated[Principal, Depends(require_roles("officer", "supervisor"))]
Admin = Annotated[Principal, Depends(require_roles())]
Supervisor = Annotated[Principal, Depends(require_roles("supervisor"))]
Issuer = Annotated[Principal, Depends(require_roles("kiosk", "officer", "supervisor", "citizen"))]
Citizen = Annotated[Principal, Depends(require_roles("citizen"))]
CheckIn = Annotated[Principal, Depends(require_roles("citizen", "kiosk", "officer", "supervisor"))]
Reader = Annotated[Principal, Depends(require_roles("citizen", "kiosk", "officer", "supervisor"))]
idem_optional = idempotency_guard(idempotency_keys, required=False)


# --- tickets ----------------------------------------------------------------------------------

async def issue_ticket(request: Request) -> Response:
    """Hot path on a lean route: the ticket (and its Idempotency-Key's answer) in one statement."""
    principal = check_roles(await current_principal(request), "kiosk", "officer", "supervisor", "citizen")
    body, raw = await parse_body(request, TicketIn)
    key = parse_key(request.headers.get("idempotency-key"))
    keep = (scope_of(principal), key, request.url.path, fingerprint_of(raw)) if key is not None else None
    async with request.app.state.db.lean() as tx:
        if keep is not None:  # a retry is answered before a number is drawn
            stored = await find_stored(await autocommit_connection(tx), idempotency_keys, *keep)
            if stored is not None:
                return stored
        try:
            answer = await service.issue_ticket(tx, numbers_of(request), body, principal, keep)
        except KeyUsed:
            assert keep is not None
            return await stored_response(await autocommit_connection(tx), idempotency_keys, *keep)
    return Response(answer, status_code=201, media_type="application/json")


@router.post("/tickets", status_code=201, response_model=TicketOut, tags=["tickets"],
             summary="Lấy số thứ tự / take a number (kiosk, officer, citizen); optional Idempotency-Key",
             responses={409: {"description": "office_closed (next_opening_at) or office_full (next_free_slot)"}})
async def take_ticket(body: TicketIn, request: Request, principal: Issuer,
                      idempotency_key: str | None = Header(None, alias="Idempotency-Key")) -> Response:
    """Documents the lean route `issue_ticket`, which serves it."""
    return await issue_ticket(request)


@router.get("/tickets/{ticket_id}", response_model=TicketOut, tags=["tickets"],
            summary="Một số thứ tự, vị trí và thời gian chờ / a ticket with its position and wait")
async def get_ticket(ticket_id: int, session: SessionDep, principal: Reader) -> dict[str, Any]:
    return await service.get_ticket(session, ticket_id, principal)


async def call_next_ticket(request: Request) -> Response:
    """Hot path on a lean route: one statement picks the ticket (SKIP LOCKED), straight to JSON."""
    principal = check_roles(await current_principal(request), "officer", "supervisor")
    body = (await parse_body(request, CallNextIn))[0] if await request.body() else CallNextIn()
    async with request.app.state.db.lean() as tx:
        result = await service.call_next(tx, notifier_of(request), request.path_params["counter_id"], body, principal)
    return Response(json_bytes(result), media_type="application/json")


@router.post("/counters/{counter_id}/call-next", tags=["counters"],
             summary="Gọi số tiếp theo / call the next ticket (bookings due, then priority, then arrival)")
async def call_next(counter_id: int, request: Request, principal: Staff, body: CallNextIn | None = None) -> Response:
    """Documents the lean route `call_next_ticket`, which serves it."""
    return await call_next_ticket(request)


async def _act(request: Request, session: SessionDep, principal: Principal, ticket_id: int, action: str,
               counter_id: int | None, body: dict[str, Any] | None) -> dict[str, Any]:
    transfer = finish = None
    try:
        if action == "transfer":
            transfer = TransferIn(**(body or {}))
        elif action == "finish":
            finish = FinishIn(**(body or {}))
    except ValueError as exc:
        raise ProblemError(422, "validation_error", f"Kiểm tra lại nội dung / check the body: {exc}") from exc
    return await service.act(session, notifier_of(request), ticket_id, action, principal, counter_id=counter_id,
                             transfer=transfer, finish=finish)


ACTION = Annotated[str, PathParam(pattern="^(recall|start|skip|return|transfer|finish)$")]


@router.post("/counters/{counter_id}/tickets/{ticket_id}/{action}", tags=["counters"],
             summary="recall | start | skip | return (after a skip, once) | transfer | finish, at this counter")
async def counter_ticket_action(counter_id: int, ticket_id: int, action: ACTION, request: Request,
                                session: SessionDep, principal: Staff,
                                body: dict[str, Any] | None = None) -> dict[str, Any]:
    return await _act(request, session, principal, ticket_id, action, counter_id, body)


@router.post("/tickets/{ticket_id}/{action}", tags=["counters"],
             summary="The same actions, by an officer of the ticket's office")
async def ticket_action(ticket_id: int, action: ACTION, request: Request, session: SessionDep, principal: Staff,
                        body: dict[str, Any] | None = None) -> dict[str, Any]:
    return await _act(request, session, principal, ticket_id, action, None, body)


@router.post("/counters/{counter_id}/sign-in", tags=["counters"], summary="Cán bộ nhận quầy / officer signs in")
async def sign_in(counter_id: int, session: SessionDep, principal: Staff) -> dict[str, Any]:
    return await service.counter_sign(session, counter_id, principal, True)


@router.post("/counters/{counter_id}/sign-out", tags=["counters"], summary="Cán bộ rời quầy / officer signs out")
async def sign_out(counter_id: int, session: SessionDep, principal: Staff) -> dict[str, Any]:
    return await service.counter_sign(session, counter_id, principal, False)


@router.get("/offices/{office_code}/report", tags=["reports"],
            summary="Thời gian chờ và phục vụ theo lĩnh vực, quầy, giờ / wait and service times")
async def report(office_code: Code, session: SessionDep, principal: Staff,
                 day: date | None = Query(None, alias="date", examples=["2026-11-24"])) -> dict[str, Any]:
    return await service.report(session, office_code, day, principal)


# --- configuration ----------------------------------------------------------------------------

@router.put("/offices/{office_code}", tags=["configuration"], summary="Nơi tiếp dân / office (admin)")
async def put_office(office_code: Code, body: OfficeIn, session: SessionDep, _admin: Admin) -> dict[str, Any]:
    return await service.put_office(session, office_code, body)


@router.put("/offices/{office_code}/categories/{category_code}", tags=["configuration"],
            summary="Lĩnh vực / category (admin, supervisor of the office)")
async def put_category(office_code: Code, category_code: Code, body: CategoryIn, session: SessionDep,
                       principal: Supervisor) -> dict[str, Any]:
    return await service.put_category(session, office_code, category_code, body, principal)


@router.put("/offices/{office_code}/counters/{number}", tags=["configuration"],
            summary="Quầy / counter (admin, supervisor of the office)")
async def put_counter(office_code: Code, number: Annotated[int, PathParam(ge=1, le=999)], body: CounterIn,
                      session: SessionDep, principal: Supervisor) -> dict[str, Any]:
    return await service.put_counter(session, office_code, number, body, principal)


@router.get("/offices/{office_code}/categories", tags=["configuration"],
            summary="Lĩnh vực của nơi tiếp dân / an office and its categories (public)")
async def categories(office_code: Code, session: SessionDep) -> dict[str, Any]:
    return await service.office_categories(session, office_code)


@router.get("/offices/{office_code}/counters", tags=["configuration"], summary="Quầy / counters (staff)")
async def counters(office_code: Code, session: SessionDep, principal: Staff) -> list[dict[str, Any]]:
    return await service.office_counters(session, office_code, principal)


# --- board ------------------------------------------------------------------------------------

@router.get("/offices/{office_code}/board", tags=["board"],
            summary="Bảng hiển thị / board: latest calls, counters, waiting per category (public)")
async def board(office_code: Code, session: SessionDep) -> dict[str, Any]:
    return await service.board(session, office_code)


def numbers_of(request: Request) -> NumberAllocator:
    numbers: NumberAllocator | None = getattr(request.app.state, "numbers", None)
    if numbers is None:
        numbers = NumberAllocator(request.app.state.settings.asyncpg_dsn)
        request.app.state.numbers = numbers
    return numbers


def notifier_of(request: Request) -> BoardNotifier:
    notifier: BoardNotifier | None = getattr(request.app.state, "board_notifier", None)
    if notifier is None:
        notifier = BoardNotifier(request.app.state.settings.asyncpg_dsn)
        request.app.state.board_notifier = notifier
    return notifier


def hub_of(request: Request) -> BoardHub:
    hub: BoardHub | None = getattr(request.app.state, "board_hub", None)
    if hub is None:
        hub = BoardHub(request.app.state.settings.asyncpg_dsn)
        request.app.state.board_hub = hub
    return hub


@router.get("/offices/{office_code}/board/stream", tags=["board"], response_class=StreamingResponse,
            summary="Server-Sent Events: a snapshot, then every call (Last-Event-ID resumes)",
            responses={200: {"content": {"text/event-stream": {}}}})
async def board_stream(
    office_code: Code, request: Request, session: SessionDep,
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
) -> StreamingResponse:
    hub = hub_of(request)
    await hub.ensure()
    queue = hub.subscribe(office_code)
    try:
        replay = None
        snapshot = None
        if last_event_id and last_event_id.strip().isdigit():
            replay = await service.board_replay(session, office_code, int(last_event_id.strip()))
        if replay is None:
            snapshot = await service.board(session, office_code)
    except BaseException:
        hub.unsubscribe(office_code, queue)
        raise
    return StreamingResponse(stream(hub, office_code, queue, snapshot, replay), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# --- booking ----------------------------------------------------------------------------------

@router.get("/offices/{office_code}/slots", response_model=list[SlotOut], tags=["booking"],
            summary="Khung giờ đặt lịch / booking slots of a day (public)")
async def slots(office_code: Code, session: SessionDep,
                category_code: str = Query(..., pattern=r"^[A-Za-z0-9_.-]{1,20}$", examples=["HT"]),
                day: date = Query(..., alias="date", examples=["2026-11-25"])) -> list[dict[str, Any]]:
    return await service.list_slots(session, office_code, category_code, day)


@router.post("/appointments", status_code=201, response_model=AppointmentOut, tags=["booking"],
             summary="Giữ chỗ một khung giờ / hold a place (expires unless confirmed)")
async def book(body: AppointmentIn, session: SessionDep, principal: Citizen,
               idem: Idempotency = Depends(idem_optional)) -> Response:
    if idem.replay:
        return idem.replay
    result = await service.book(session, body, principal)
    return await idem.remember(201, AppointmentOut(**result).model_dump(mode="json"))


@router.get("/appointments/{booking_code}", response_model=AppointmentOut, tags=["booking"])
async def get_appointment(booking_code: str, session: SessionDep, principal: Reader) -> dict[str, Any]:
    return await service.get_appointment(session, booking_code, principal)


@router.post("/appointments/{booking_code}/confirm", response_model=AppointmentOut, tags=["booking"],
             summary="Xác nhận lịch hẹn / confirm the hold")
async def confirm(booking_code: str, session: SessionDep, principal: Citizen) -> dict[str, Any]:
    return await service.confirm(session, booking_code, principal)


@router.post("/appointments/{booking_code}/cancel", response_model=AppointmentOut, tags=["booking"],
             summary="Hủy lịch hẹn / cancel")
async def cancel(booking_code: str, session: SessionDep, principal: Citizen) -> dict[str, Any]:
    return await service.cancel(session, booking_code, principal)


@router.post("/appointments/{booking_code}/check-in", status_code=201, tags=["booking"],
             summary="Đến nơi: nhận số ưu tiên theo giờ hẹn / arrival: a ticket served at the slot time")
async def check_in(booking_code: str, request: Request, session: SessionDep, principal: CheckIn) -> dict[str, Any]:
    return await service.check_in(session, numbers_of(request), booking_code, principal)


# --- pages (the gateway maps /queue/* to /pages/*) ---------------------------------------------

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


LEAN_ROUTES = [Route("/v1/tickets", issue_ticket, methods=["POST"]),
               Route("/v1/counters/{counter_id:int}/call-next", call_next_ticket, methods=["POST"])]
