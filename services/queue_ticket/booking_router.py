"""HTTP routes of booking (đặt lịch hẹn): slots, appointments, check-in (thin, as `router`)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.queue_ticket import booking_service as booking
from services.queue_ticket.deps import KEY_NOTES, OPTIONAL_KEY, Citizen, Code, OptionalKey, Visitor, numbers_of, once
from services.queue_ticket.schemas import AppointmentIn, AppointmentOut, CheckInOut, SlotOut
from shared.db import TxDep
from shared.idempotency import idempotency_key_header
from shared.problems import problem_responses

router = APIRouter(prefix="/v1")

@router.get("/offices/{office_code}/slots", response_model=list[SlotOut], tags=["booking"],
            summary="Khung giờ đặt lịch / booking slots of a day (public)", responses=problem_responses(422))
async def slots(office_code: Code, tx: TxDep,
                category_code: str = Query(..., pattern=r"^[A-Za-z0-9_.-]{1,20}$", examples=["HT"]),
                day: date = Query(..., alias="date", examples=["2026-11-25"])) -> list[dict[str, Any]]:
    return await booking.list_slots(tx, office_code, category_code, day)


@router.post("/appointments", status_code=201, response_model=AppointmentOut, tags=["booking"],
             openapi_extra=idempotency_key_header(required=False),
             summary="Giữ chỗ một khung giờ / hold a place (expires unless confirmed); optional Idempotency-Key",
             responses=problem_responses(400, 401, 403, 409, 422, notes={
                 409: "Hết chỗ, đã qua, vượt giới hạn / slot_full, slot_past, booking_limit, idempotency_key_in_use"}))
async def book(body: AppointmentIn, tx: TxDep, principal: Citizen, idem: OptionalKey) -> Response:
    if (replay := await idem.begin()) is not None:
        return replay
    result = await booking.book(tx, body, principal)
    return await idem.remember(201, AppointmentOut(**result).model_dump(mode="json"))


@router.get("/appointments/{booking_code}", response_model=AppointmentOut, tags=["booking"],
            summary="Một lịch hẹn / a booking", responses=problem_responses(401, 403, 404))
async def get_appointment(booking_code: str, tx: TxDep, principal: Visitor) -> dict[str, Any]:
    return await booking.get_appointment(tx, booking_code, principal)


BOOKING_NOTES = {400: KEY_NOTES[400], 422: KEY_NOTES[422]}


@router.post("/appointments/{booking_code}/confirm", response_model=AppointmentOut, tags=["booking"],
             summary="Xác nhận lịch hẹn / confirm the hold (confirming twice answers the booking again)",
             openapi_extra=OPTIONAL_KEY,
             responses=problem_responses(400, 401, 403, 404, 409, 422, notes={**BOOKING_NOTES,
                 409: "Giữ chỗ hết hạn, lịch hẹn đã đóng / hold_expired, booking_closed, idempotency_key_in_use"}))
async def confirm(booking_code: str, tx: TxDep, principal: Citizen, idem: OptionalKey) -> Response:
    return await once(idem, booking.confirm(tx, booking_code, principal), model=AppointmentOut)


@router.post("/appointments/{booking_code}/cancel", response_model=AppointmentOut, tags=["booking"],
             summary="Hủy lịch hẹn / cancel", openapi_extra=OPTIONAL_KEY,
             responses=problem_responses(400, 401, 403, 404, 409, 422, notes={**BOOKING_NOTES,
                 409: "Lịch hẹn đã đóng / booking_closed (a retry without Idempotency-Key), idempotency_key_in_use"}))
async def cancel(booking_code: str, tx: TxDep, principal: Citizen, idem: OptionalKey) -> Response:
    return await once(idem, booking.cancel(tx, booking_code, principal), model=AppointmentOut)


@router.post("/appointments/{booking_code}/check-in", status_code=201, response_model=CheckInOut, tags=["booking"],
             summary="Đến nơi: nhận số ưu tiên theo giờ hẹn / arrival: a ticket served at the slot time",
             openapi_extra=OPTIONAL_KEY,
             responses=problem_responses(400, 401, 403, 404, 409, 422, notes={**BOOKING_NOTES,
                 409: "Ngoài giờ xác nhận đến, đã xác nhận đến / booking_closed (also a retry without "
                      "Idempotency-Key: one ticket per booking), too_early, too_late, idempotency_key_in_use"}))
async def check_in(booking_code: str, request: Request, tx: TxDep, principal: Visitor, idem: OptionalKey) -> Response:
    return await once(idem, booking.check_in(tx, numbers_of(request), booking_code, principal), 201,
                      model=CheckInOut)
