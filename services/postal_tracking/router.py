"""HTTP routes of the Postal tracking (bưu chính công ích) service (thin: parse, authorise, call the service layer)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from services.postal_tracking import service, webhook
from services.postal_tracking.handover_pdf import render_handover
from services.postal_tracking.models import idempotency_keys
from services.postal_tracking.schemas import (
    HandoverIn,
    ShipmentIn,
    ShipmentOut,
    ShipmentPage,
    Status,
    WebhookResult,
)
from shared.auth import CurrentPrincipal, Principal, require_roles
from shared.db import SessionDep
from shared.idempotency import Idempotency, idempotency_guard
from shared.problems import ProblemError

router = APIRouter(prefix="/v1")
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


@router.post("/shipments", status_code=201, response_model=ShipmentOut, tags=["shipments"],
             summary="Tạo bưu gửi (chiều đến / chiều đi) / create a shipment; Idempotency-Key required",
             responses={409: PROBLEM, 422: PROBLEM})
async def create_shipment(
    body: ShipmentIn, session: SessionDep,
    principal: Principal = Depends(require_roles("officer", "supervisor", "postal_partner")),
    idem: Idempotency = Depends(idempotency_guard(idempotency_keys)),
) -> Response:
    if idem.replay:
        return idem.replay
    result = await service.create_shipment(session, body, principal, service.now_utc())
    encoded = ShipmentOut.model_validate(result).model_dump(mode="json")
    return await idem.remember(201, encoded, headers={"Location": f"/api/postal/v1/shipments/{result['id']}"})


@router.get("/shipments", response_model=ShipmentPage, tags=["shipments"],
            summary="Danh sách bưu gửi (đối tác chỉ thấy bưu gửi của mình) / shipments, keyset-paginated")
async def list_shipments(
    session: SessionDep, principal: CurrentPrincipal,
    dossier_code: str | None = Query(None, max_length=40, examples=["000.00.21.H29-251124-0001"]),
    status: list[Status] = Query(default_factory=list, examples=[["created"]]),
    direction: str | None = Query(None, pattern="^(inbound|outbound)$"),
    agency_code: str | None = Query(None, max_length=30),
    cursor: str | None = Query(None, max_length=500),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    return await service.list_shipments(session, principal, dossier_code=dossier_code, statuses=status,
                                        direction=direction, agency_code=agency_code, cursor=cursor, limit=limit)


@router.get("/shipments/{shipment_id}", response_model=ShipmentOut, tags=["shipments"],
            summary="Một bưu gửi với toàn bộ hành trình / one shipment and its full timeline",
            responses={404: PROBLEM})
async def get_shipment(shipment_id: str, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return await service.get_shipment(session, shipment_id, principal)


async def _read_limited(request: Request) -> bytes:
    too_big = ProblemError(413, "payload_too_large",
                           f"Nội dung quá {webhook.MAX_BODY_BYTES} byte / body larger than "
                           f"{webhook.MAX_BODY_BYTES} bytes; send fewer events per delivery")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > webhook.MAX_BODY_BYTES:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > webhook.MAX_BODY_BYTES:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/partners/{partner_code}/events", response_model=WebhookResult, tags=["webhook"],
             summary="Webhook sự kiện hành trình (Standard Webhooks) / signed tracking-event webhook",
             description="Headers `webhook-id`, `webhook-timestamp`, `webhook-signature` (HMAC-SHA256 over "
                         "`id.timestamp.body` with the partner's `whsec_` secret). The same webhook-id again "
                         "answers 200 with `duplicate: true` and changes nothing. Body: "
                         '`{"events": [{"event_id", "tracking_number", "status", "occurred_at", "reason_code", '
                         '"reason", "location", "note", "correction"}]}`.',
             responses={400: PROBLEM, 401: PROBLEM, 413: PROBLEM, 422: PROBLEM})
async def partner_events(partner_code: str, request: Request, session: SessionDep) -> dict[str, Any]:
    body = await _read_limited(request)
    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    msg_id = await service.authenticate_delivery(session, partner_code, body, headers)
    delivery = service.parse_delivery(body)
    return await service.receive_delivery(session, partner_code, msg_id, body, delivery, service.now_utc())


@router.post("/handovers", status_code=201, tags=["handovers"],
             summary="Lập biên bản bàn giao / record a handover between the office and the postman",
             responses={409: PROBLEM, 422: PROBLEM})
async def create_handover(
    body: HandoverIn, session: SessionDep,
    principal: Principal = Depends(require_roles("officer", "supervisor", "postal_partner")),
    idem: Idempotency = Depends(idempotency_guard(idempotency_keys)),
) -> Response:
    if idem.replay:
        return idem.replay
    result = await service.create_handover(session, body, principal, service.now_utc())
    return await idem.remember(201, result, headers={"Location": f"/api/postal/v1/handovers/{result['id']}"})


@router.get("/handovers/{handover_id}", tags=["handovers"],
            summary="Biên bản bàn giao, JSON hoặc PDF theo Accept / handover record as JSON or PDF",
            responses={200: {"content": {"application/json": {}, "application/pdf": {}}}, 404: PROBLEM})
async def get_handover(handover_id: str, request: Request, session: SessionDep,
                       principal: CurrentPrincipal) -> Any:
    h = await service.readable_handover(session, handover_id, principal)
    view = await service.handover_view(session, h)
    accept = request.headers.get("accept", "")
    if "application/pdf" in accept:
        agency, partner = await service.handover_pdf_parties(session, h)
        pdf = render_handover(view, agency, partner)
        return Response(pdf, media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="bien-ban-{handover_id}.pdf"'})
    return view


@router.post("/handovers/{handover_id}/confirm", tags=["handovers"],
             summary="Xác nhận đã bàn giao (hai bên ký) / confirm: the shipments changed hands")
async def confirm_handover(handover_id: str, session: SessionDep,
                           principal: Principal = Depends(require_roles("officer", "supervisor", "postal_partner")),
                           ) -> dict[str, Any]:
    return await service.close_handover(session, handover_id, principal, "confirm", service.now_utc())


@router.post("/handovers/{handover_id}/cancel", tags=["handovers"],
             summary="Hủy biên bản đang mở / cancel an open handover record")
async def cancel_handover(handover_id: str, session: SessionDep,
                          principal: Principal = Depends(require_roles("officer", "supervisor", "postal_partner")),
                          ) -> dict[str, Any]:
    return await service.close_handover(session, handover_id, principal, "cancel", service.now_utc())
