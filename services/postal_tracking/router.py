"""HTTP routes of the Postal tracking (bưu chính công ích) service: parse, authorise, call the service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel

from services.postal_tracking import events_service, handovers_service, shipments_service, webhook
from services.postal_tracking.common import now_utc
from services.postal_tracking.handover_pdf import render_handover
from services.postal_tracking.models import idempotency_keys
from services.postal_tracking.schemas import (
    HandoverIn,
    HandoverOut,
    ShipmentIn,
    ShipmentOut,
    ShipmentPage,
    Status,
    WebhookBody,
    WebhookResult,
)
from shared.auth import CurrentPrincipal, Principal, require_roles
from shared.db import TxDep
from shared.hot_routes import json_body_doc
from shared.idempotency import Idempotency, idempotency_guard
from shared.problems import problem_responses

router = APIRouter(prefix="/v1")
OfficeOrPartner = Depends(require_roles("officer", "supervisor", "postal_partner"))
IdempotencyKey = Depends(idempotency_guard(idempotency_keys))
WEBHOOK_BODY = json_body_doc(WebhookBody)  # documented only: the signature is checked over the raw bytes first
WEBHOOK_BODY["requestBody"]["content"]["application/json"]["example"] = {"events": [{
    "event_id": "VNP-EV-0001", "tracking_number": "HC100000014VN", "status": "failed_attempt",
    "occurred_at": "2026-03-02T10:15:00+07:00", "reason_code": "KH_VANG_NHA", "location": "Bưu cục Ba Đình",
    "note": "Người nhận vắng nhà, hẹn phát lại"}]}


async def _created(idem: Idempotency, collection: str, out: type[BaseModel], result: dict[str, Any]) -> Response:
    """The 201 answer (kept for the Idempotency-Key) naming the new resource in `Location`."""
    return await idem.remember(201, out.model_validate(result).model_dump(mode="json"),
                               headers={"Location": f"/api/postal/v1/{collection}/{result['id']}"})


@router.post("/shipments", status_code=201, response_model=ShipmentOut, tags=["shipments"],
             summary="Tạo bưu gửi (chiều đến / chiều đi) / create a shipment; Idempotency-Key required",
             description="Chỉ cho hồ sơ của cơ quan mình (cán bộ) hoặc hồ sơ đối tác đã nhận (chiều đến); hồ sơ "
                         "không có và hồ sơ không phải của bạn cùng là 404. Bưu chính biết hồ sơ trong khoảng một "
                         "giây sau khi tiếp nhận / only for a dossier of your agency (staff) or one the partner "
                         "registered (inbound); \"not yours\" and \"does not exist\" are one 404. Postal learns "
                         "of a dossier about a second after its receipt.",
             responses=problem_responses(400, 401, 403, 404, 409, 422, 503, notes={
                 403: "Vai trò không tạo bưu gửi, cơ quan khác, hoặc đối tác tạo chiều đi / role not allowed, "
                      "another agency, or a partner creating an outbound shipment",
                 404: "Không có hồ sơ gửi qua bưu chính của bạn / no dossier travelling by post for you"}))
async def create_shipment(body: ShipmentIn, tx: TxDep, principal: Principal = OfficeOrPartner,
                          idem: Idempotency = IdempotencyKey) -> Response:
    if (replay := await idem.begin()) is not None:
        return replay
    result = await shipments_service.create_shipment(tx, body, principal, now_utc())
    return await _created(idem, "shipments", ShipmentOut, result)


@router.get("/shipments", response_model=ShipmentPage, tags=["shipments"],
            summary="Danh sách bưu gửi (đối tác chỉ thấy bưu gửi của mình) / shipments, keyset-paginated",
            responses=problem_responses(400, 401, 403, 422, 503))
async def list_shipments(
    tx: TxDep, principal: CurrentPrincipal,
    dossier_code: str | None = Query(None, max_length=40, examples=["000.00.21.H29-251124-0001"]),
    status: list[Status] = Query(default_factory=list, examples=[["created"]]),
    direction: str | None = Query(None, pattern="^(inbound|outbound)$"),
    agency_code: str | None = Query(None, max_length=30),
    cursor: str | None = Query(None, max_length=500),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    return await shipments_service.list_shipments(tx, principal, dossier_code=dossier_code, statuses=status,
                                                  direction=direction, agency_code=agency_code, cursor=cursor,
                                                  limit=limit)


@router.get("/shipments/{shipment_id}", response_model=ShipmentOut, tags=["shipments"],
            summary="Một bưu gửi với toàn bộ hành trình / one shipment and its full timeline",
            responses=problem_responses(401, 404, 422, 503))
async def get_shipment(shipment_id: str, tx: TxDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return await shipments_service.get_shipment(tx, shipment_id, principal)


@router.post("/partners/{partner_code}/events", response_model=WebhookResult, tags=["webhook"],
             summary="Webhook sự kiện hành trình (Standard Webhooks) / signed tracking-event webhook",
             description="Headers `webhook-id`, `webhook-timestamp`, `webhook-signature` (HMAC-SHA256 over "
                         "`id.timestamp.body` with the partner's `whsec_` secret); no bearer token. The signature "
                         "is checked over the raw body before it is parsed. The same webhook-id again answers 200 "
                         "with `duplicate: true` and changes nothing.",
             openapi_extra=WEBHOOK_BODY, responses=problem_responses(400, 401, 413, 422, 503))
async def partner_events(request: Request, tx: TxDep,
                         partner_code: str = Path(max_length=30, examples=["VNPOST"])) -> dict[str, Any]:
    body = await webhook.read_limited_body(request)
    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    msg_id = await events_service.authenticate_delivery(tx, partner_code, body, headers)
    delivery = events_service.parse_delivery(body)
    return await events_service.receive_delivery(tx, partner_code, msg_id, body, delivery, now_utc())


@router.post("/handovers", status_code=201, response_model=HandoverOut, tags=["handovers"],
             summary="Lập biên bản bàn giao / record a handover between the office and the postman",
             responses=problem_responses(400, 401, 403, 409, 422, 503))
async def create_handover(body: HandoverIn, tx: TxDep, principal: Principal = OfficeOrPartner,
                          idem: Idempotency = IdempotencyKey) -> Response:
    if (replay := await idem.begin()) is not None:
        return replay
    result = await handovers_service.create_handover(tx, body, principal, now_utc())
    return await _created(idem, "handovers", HandoverOut, result)


@router.get("/handovers/{handover_id}", response_model=HandoverOut, tags=["handovers"],
            summary="Biên bản bàn giao, JSON hoặc PDF theo Accept / handover record as JSON or PDF",
            responses={200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}},
                       **problem_responses(401, 404, 422, 503)})
async def get_handover(handover_id: str, request: Request, tx: TxDep, principal: CurrentPrincipal) -> Any:
    h = await handovers_service.readable_handover(tx, handover_id, principal)
    view = await handovers_service.handover_view(tx, h)
    if "application/pdf" in request.headers.get("accept", ""):
        agency, partner = await handovers_service.handover_pdf_parties(tx, h)
        return Response(render_handover(view, agency, partner), media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="bien-ban-{handover_id}.pdf"'})
    return view


@router.post("/handovers/{handover_id}/confirm", response_model=HandoverOut, tags=["handovers"],
             summary="Xác nhận đã bàn giao (hai bên ký) / confirm: the shipments changed hands",
             description="Xác nhận lại biên bản đã xác nhận trả về biên bản, không làm gì thêm / confirming a "
                         "confirmed handover again answers it unchanged (a retry is safe); a cancelled one is 409.",
             responses=problem_responses(401, 403, 404, 409, 422, 503))
async def confirm_handover(handover_id: str, tx: TxDep, principal: Principal = OfficeOrPartner) -> dict[str, Any]:
    return await handovers_service.close_handover(tx, handover_id, principal, "confirm", now_utc())


@router.post("/handovers/{handover_id}/cancel", response_model=HandoverOut, tags=["handovers"],
             summary="Hủy biên bản đang mở / cancel an open handover record",
             description="Hủy lại biên bản đã hủy trả về biên bản / cancelling a cancelled handover again answers "
                         "it unchanged (a retry is safe); a confirmed one is 409.",
             responses=problem_responses(401, 403, 404, 409, 422, 503))
async def cancel_handover(handover_id: str, tx: TxDep, principal: Principal = OfficeOrPartner) -> dict[str, Any]:
    return await handovers_service.close_handover(tx, handover_id, principal, "cancel", now_utc())
