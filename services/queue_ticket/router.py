"""HTTP routes of the Queue tickets (xếp hàng, lấy số) service (thin: parse, authorise, call the service layer)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response, StreamingResponse

from services.queue_ticket import board_service as board_rules
from services.queue_ticket import counters_service as counters
from services.queue_ticket import offices_service as offices
from services.queue_ticket import tickets_service as tickets
from services.queue_ticket.board import BoardHub, stream
from services.queue_ticket.board_repository import BoardNotifier
from services.queue_ticket.deps import (
    ISSUERS,
    KEY_NOTES,
    OPTIONAL_KEY,
    REPLAYED,
    STAFF,
    Admin,
    Code,
    OptionalKey,
    Staff,
    Supervisor,
    Visitor,
    numbers_of,
    once,
)
from services.queue_ticket.models import idempotency_keys
from services.queue_ticket.schemas import (
    CallNextIn,
    CallNextOut,
    CategoryIn,
    CounterIn,
    CounterOut,
    FinishIn,
    OfficeIn,
    TicketIn,
    TicketOut,
    TransferIn,
)
from shared.auth import check_roles, current_principal
from shared.db import TxDep
from shared.encoding import json_bytes
from shared.hot_routes import json_body, json_body_doc
from shared.idempotency import Idempotency, KeyUsed, idempotency_key_header
from shared.problems import problem_responses

router = APIRouter(prefix="/v1")

SimpleAction = Annotated[str, PathParam(pattern="^(recall|start|skip|return)$")]

def notifier_of(request: Request) -> BoardNotifier:
    notifier: BoardNotifier | None = getattr(request.app.state, "board_notifier", None)
    if notifier is None:
        notifier = request.app.state.board_notifier = BoardNotifier(request.app.state.settings)
    return notifier


def hub_of(request: Request) -> BoardHub:
    hub: BoardHub | None = getattr(request.app.state, "board_hub", None)
    if hub is None:
        hub = request.app.state.board_hub = BoardHub(request.app.state.settings.asyncpg_dsn)
    return hub


# --- tickets ----------------------------------------------------------------------------------

@router.post("/tickets", status_code=201, response_model=TicketOut, tags=["tickets"],
             openapi_extra=json_body_doc(TicketIn, **idempotency_key_header(required=False)),
             summary="Lấy số thứ tự / take a number (kiosk, officer, citizen); optional Idempotency-Key",
             responses=problem_responses(400, 401, 403, 409, 422, 503, notes={
                 409: "Ngoài giờ, phòng chờ đầy, đã có số đang chờ / office_closed (next_opening_at), office_full "
                      "(next_free_slot), ticket_limit, idempotency_key_in_use",
                 422: "Nơi tiếp dân hoặc lĩnh vực không có, khóa dùng cho nội dung khác / unknown_office, "
                      "unknown_category, idempotency_key_mismatch"}))
async def take_ticket(request: Request) -> Response:
    """A retry with the same Idempotency-Key gets the first answer (`Idempotent-Replayed: true`)."""
    principal = check_roles(await current_principal(request), *ISSUERS)
    body, raw = await json_body(request, TicketIn)
    async with request.app.state.db.transaction() as tx:
        idem = Idempotency.of_request(request, tx, idempotency_keys, principal, raw, required=False)
        try:
            answer = await tickets.issue_ticket(tx, numbers_of(request), body, principal, idem)
        except KeyUsed:
            return await idem.stored()
    return Response(answer, status_code=201, media_type="application/json")


@router.get("/tickets/{ticket_id}", response_model=TicketOut, tags=["tickets"],
            responses=problem_responses(401, 403, 404),
            summary="Một số thứ tự, vị trí và thời gian chờ / a ticket with its position and wait")
async def get_ticket(ticket_id: int, tx: TxDep, principal: Visitor) -> dict[str, Any]:
    return await tickets.get_ticket(tx, ticket_id, principal)


# --- counters ---------------------------------------------------------------------------------

CURRENT_ETAG = {"ETag": {"description": 'số đang phục vụ ở quầy sau lần gọi / the ticket the counter now serves: '
                                        '"<ticket id>" or "none" (send it as If-Match next time)',
                         "schema": {"type": "string"}, "example": '"1024"'}}
IF_MATCH = {"name": "If-Match", "in": "header", "required": False,
            "description": 'Số quầy đang phục vụ theo ứng dụng quầy: "<mã số thứ tự>" hoặc "none" khi chưa có; '
                           "khác với quầy thì 412 và không gọi số mới. Nên gửi kèm Idempotency-Key để gửi lại an "
                           "toàn / the ticket the counter app believes it is serving (`ticket.id` of the last "
                           'call-next, or "none"); if the counter serves another, 412 and nothing is done. '
                           "Without it a retry may finish a ticket no one saw",
            "schema": {"type": "string", "maxLength": 40}, "example": '"1024"'}
CALL_NEXT_BODY = json_body_doc(CallNextIn, **idempotency_key_header(required=False))
CALL_NEXT_BODY["parameters"].append(IF_MATCH)
CALL_NEXT_BODY["requestBody"]["required"] = False  # no body (or null): any category the counter serves
CALL_NEXT_BODY["requestBody"]["content"]["application/json"]["schema"] = {
    "anyOf": [{"$ref": "#/components/schemas/CallNextIn"}, {"type": "null"}], "title": "Body"}


@router.post("/counters/{counter_id}/call-next", response_model=CallNextOut, tags=["counters"],
             openapi_extra=CALL_NEXT_BODY,
             summary="Gọi số tiếp theo / call the next ticket (bookings due, then priority, then arrival); "
                     'If-Match: "<số đang phục vụ>", Idempotency-Key',
             responses={200: {"description": "Số được gọi (hoặc `ticket: null`: không còn người chờ) / the ticket "
                                             "called, or `ticket: null` when nobody waits",
                              "headers": {**CURRENT_ETAG, **REPLAYED}},
                        **problem_responses(400, 401, 403, 404, 409, 412, 422, 503, notes={
                            **KEY_NOTES,
                            409: "Quầy tạm dừng, có cán bộ khác, không phục vụ lĩnh vực, hoặc yêu cầu cùng "
                                 "Idempotency-Key đang xử lý / invalid_state (counter inactive), counter_taken, "
                                 "category_not_served, idempotency_key_in_use",
                            412: "Quầy đang phục vụ số khác với If-Match (`precondition_failed`): số thực tế trong "
                                 "`current_ticket` và ETag; không có gì thay đổi / the counter serves another "
                                 "ticket than If-Match names: the actual one in `current_ticket` and ETag; nothing "
                                 "changed"})})
async def call_next(counter_id: int, request: Request) -> Response:
    """A retry with the same Idempotency-Key gets the first answer (the same ticket) and calls no other; with
    If-Match a request whose counter moved on (its answer was lost, another device called) is refused."""
    principal = check_roles(await current_principal(request), *STAFF)
    raw = await request.body()
    body = CallNextIn() if raw.strip() in (b"", b"null") else (await json_body(request, CallNextIn))[0]
    async with request.app.state.db.transaction() as tx:
        idem = Idempotency.of_request(request, tx, idempotency_keys, principal, raw, required=False)
        if (replay := await idem.begin()) is not None:
            return replay
        result = await counters.call_next(tx, notifier_of(request), counter_id, body, principal,
                                          request.headers.get("if-match"))
        called = result["ticket"]["id"] if result["ticket"] is not None else None
        answer = await idem.remember(200, json_bytes(result), headers=counters.current_etag(called))
    return answer


ACTION_ERRORS = {200: {"description": "Số thứ tự sau thao tác / the ticket after the action", "headers": REPLAYED},
                 **problem_responses(400, 401, 403, 404, 409, 422, notes=KEY_NOTES)}
ACTION_DOC = (" Chỉ số đang phục vụ ở quầy này; gửi lại cùng Idempotency-Key nhận lại câu trả lời đầu / only the "
              "ticket this counter is serving; a retry with the same Idempotency-Key gets the first answer.")


@router.post("/counters/{counter_id}/tickets/{ticket_id}/transfer", response_model=TicketOut, tags=["counters"],
             responses=ACTION_ERRORS, openapi_extra=OPTIONAL_KEY, description=ACTION_DOC,
             summary="Chuyển lĩnh vực hoặc quầy / transfer (keeps its place)")
async def counter_transfer(counter_id: int, ticket_id: int, body: TransferIn, request: Request, tx: TxDep,
                           principal: Staff, idem: OptionalKey) -> Response:
    return await once(idem, counters.act(tx, notifier_of(request), ticket_id, "transfer", principal,
                                         counter_id=counter_id, transfer=body))


@router.post("/counters/{counter_id}/tickets/{ticket_id}/finish", response_model=TicketOut, tags=["counters"],
             responses=ACTION_ERRORS, openapi_extra=OPTIONAL_KEY, description=ACTION_DOC,
             summary="Kết thúc phục vụ / finish (with the dossiers received)")
async def counter_finish(counter_id: int, ticket_id: int, request: Request, tx: TxDep, principal: Staff,
                         idem: OptionalKey, body: FinishIn | None = None) -> Response:
    return await once(idem, counters.act(tx, notifier_of(request), ticket_id, "finish", principal,
                                         counter_id=counter_id, finish=body))


@router.post("/counters/{counter_id}/tickets/{ticket_id}/{action}", response_model=TicketOut, tags=["counters"],
             responses=ACTION_ERRORS, openapi_extra=OPTIONAL_KEY, description=ACTION_DOC,
             summary="recall | start | skip | return (after a skip, once), at this counter")
async def counter_action(counter_id: int, ticket_id: int, action: SimpleAction, request: Request, tx: TxDep,
                         principal: Staff, idem: OptionalKey) -> Response:
    return await once(idem, counters.act(tx, notifier_of(request), ticket_id, action, principal,
                                         counter_id=counter_id))


@router.post("/tickets/{ticket_id}/transfer", response_model=TicketOut, tags=["counters"], responses=ACTION_ERRORS,
             openapi_extra=OPTIONAL_KEY,
             summary="Chuyển (cán bộ của nơi tiếp dân) / transfer, by an officer of the ticket's office")
async def ticket_transfer(ticket_id: int, body: TransferIn, request: Request, tx: TxDep,
                          principal: Staff, idem: OptionalKey) -> Response:
    return await once(idem, counters.act(tx, notifier_of(request), ticket_id, "transfer", principal, transfer=body))


@router.post("/tickets/{ticket_id}/finish", response_model=TicketOut, tags=["counters"], responses=ACTION_ERRORS,
             openapi_extra=OPTIONAL_KEY,
             summary="Kết thúc (cán bộ của nơi tiếp dân) / finish, by an officer of the ticket's office")
async def ticket_finish(ticket_id: int, request: Request, tx: TxDep, principal: Staff, idem: OptionalKey,
                        body: FinishIn | None = None) -> Response:
    return await once(idem, counters.act(tx, notifier_of(request), ticket_id, "finish", principal, finish=body))


@router.post("/tickets/{ticket_id}/{action}", response_model=TicketOut, tags=["counters"], responses=ACTION_ERRORS,
             openapi_extra=OPTIONAL_KEY,
             summary="recall | start | skip | return, by an officer of the ticket's office")
async def ticket_action(ticket_id: int, action: SimpleAction, request: Request, tx: TxDep,
                        principal: Staff, idem: OptionalKey) -> Response:
    return await once(idem, counters.act(tx, notifier_of(request), ticket_id, action, principal))


SIGN_ERRORS = problem_responses(400, 401, 403, 404, 409, 422, notes={
    **KEY_NOTES, 409: "Quầy đang có cán bộ khác / counter_taken (or idempotency_key_in_use)"})


@router.post("/counters/{counter_id}/sign-in", tags=["counters"], response_model=CounterOut,
             summary="Cán bộ nhận quầy / officer signs in",
             responses=SIGN_ERRORS, openapi_extra=OPTIONAL_KEY)
async def sign_in(counter_id: int, tx: TxDep, principal: Staff, idem: OptionalKey) -> Response:
    """Signing in twice is signing in once; Idempotency-Key also gives a retry the first answer."""
    return await once(idem, counters.counter_sign(tx, counter_id, principal, True), model=CounterOut)


@router.post("/counters/{counter_id}/sign-out", tags=["counters"], response_model=CounterOut,
             summary="Cán bộ rời quầy / officer signs out",
             responses=SIGN_ERRORS, openapi_extra=OPTIONAL_KEY)
async def sign_out(counter_id: int, tx: TxDep, principal: Staff, idem: OptionalKey) -> Response:
    """Finishes the counter's current ticket; a retry finds none to finish."""
    return await once(idem, counters.counter_sign(tx, counter_id, principal, False), model=CounterOut)


@router.get("/offices/{office_code}/report", tags=["reports"], responses=problem_responses(401, 403, 404, 422),
            summary="Thời gian chờ và phục vụ theo lĩnh vực, quầy, giờ / wait and service times")
async def report(office_code: Code, tx: TxDep, principal: Staff,
                 day: date | None = Query(None, alias="date", examples=["2026-11-24"])) -> dict[str, Any]:
    return await tickets.report(tx, office_code, day, principal)


# --- configuration ----------------------------------------------------------------------------

@router.put("/offices/{office_code}", tags=["configuration"], summary="Nơi tiếp dân / office (admin)",
            responses=problem_responses(401, 403, 404, 422))
async def put_office(office_code: Code, body: OfficeIn, tx: TxDep, _admin: Admin) -> dict[str, Any]:
    return await offices.put_office(tx, office_code, body)


@router.put("/offices/{office_code}/categories/{category_code}", tags=["configuration"],
            summary="Lĩnh vực / category (admin, supervisor of the office)",
            responses=problem_responses(401, 403, 404, 409, 422, notes={
                409: "Chữ cái đã dùng cho lĩnh vực khác / prefix taken"}))
async def put_category(office_code: Code, category_code: Code, body: CategoryIn, tx: TxDep,
                       principal: Supervisor) -> dict[str, Any]:
    return await offices.put_category(tx, office_code, category_code, body, principal)


@router.put("/offices/{office_code}/counters/{number}", tags=["configuration"],
            summary="Quầy / counter (admin, supervisor of the office)", responses=problem_responses(401, 403, 404, 422))
async def put_counter(office_code: Code, number: Annotated[int, PathParam(ge=1, le=999)], body: CounterIn,
                      tx: TxDep, principal: Supervisor) -> dict[str, Any]:
    return await offices.put_counter(tx, office_code, number, body, principal)


@router.get("/offices/{office_code}/categories", tags=["configuration"], responses=problem_responses(404, 422),
            summary="Lĩnh vực của nơi tiếp dân / an office and its categories (public)")
async def categories(office_code: Code, tx: TxDep) -> dict[str, Any]:
    return await offices.office_categories(tx, office_code)


@router.get("/offices/{office_code}/counters", tags=["configuration"], summary="Quầy / counters (staff)",
            responses=problem_responses(401, 403, 404, 422))
async def office_counters(office_code: Code, tx: TxDep, principal: Staff) -> list[dict[str, Any]]:
    return await offices.office_counters(tx, office_code, principal)


# --- board ------------------------------------------------------------------------------------

@router.get("/offices/{office_code}/board", tags=["board"], responses=problem_responses(404, 422),
            summary="Bảng hiển thị / board: latest calls, counters, waiting per category (public)")
async def board(office_code: Code, tx: TxDep) -> dict[str, Any]:
    return await board_rules.board(tx, office_code)


@router.get("/offices/{office_code}/board/stream", tags=["board"], response_class=StreamingResponse,
            summary="Server-Sent Events: a snapshot, then every call (Last-Event-ID resumes)",
            responses={200: {"content": {"text/event-stream": {}}}, **problem_responses(404, 422)})
async def board_stream(
    office_code: Code, request: Request, tx: TxDep,
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
) -> StreamingResponse:
    """The request's transaction ends before the stream starts; the stream itself holds no connection."""
    hub = hub_of(request)
    await hub.ensure()
    queue = hub.subscribe(office_code)
    try:
        replay = snapshot = None
        if last_event_id and last_event_id.strip().isdigit():
            replay = await board_rules.board_replay(tx, office_code, int(last_event_id.strip()))
        if replay is None:
            snapshot = await board_rules.board(tx, office_code)
    except BaseException:
        hub.unsubscribe(office_code, queue)
        raise
    return StreamingResponse(stream(hub, office_code, queue, snapshot, replay), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
