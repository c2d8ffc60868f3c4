"""HTTP routes of the intake service (thin: parse, authorise, call the service layer)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from services.intake import dossier_repository, service, submission
from services.intake.models import idempotency_keys
from services.intake.receipt import render_receipt
from services.intake.schemas import AgencyOut, DossierIn, DossierOut, DueOut, ProcedureOut
from shared.auth import CurrentPrincipal, Principal
from shared.calendar import VN_TZ
from shared.db import SessionDep
from shared.idempotency import Idempotency, idempotency_guard
from shared.problems import ProblemError
from shared.text import search_key

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.get("/procedures", response_model=list[ProcedureOut],
            summary="Danh mục thủ tục / procedure catalog (q is accent-insensitive)")
async def list_procedures(
    session: SessionDep,
    q: str | None = Query(None, max_length=200, examples=["dang ky khai sinh"]),
    field: str | None = Query(None, max_length=30, examples=["HT"]),
    agency_code: str | None = Query(None, max_length=30, examples=["000.00.21.H29"]),
    limit: int = Query(50, ge=1, le=200),
) -> list[dict[str, object]]:
    return await service.search_procedures(session, q, field, agency_code, limit)


@router.get("/procedures/{procedure_code}", response_model=ProcedureOut, summary="Một thủ tục / one procedure")
async def get_procedure(procedure_code: str, session: SessionDep) -> dict[str, object]:
    return await service.procedure(session, procedure_code)


@router.get("/agencies", response_model=list[AgencyOut], summary="Cơ quan tiếp nhận / receiving agencies")
async def list_agencies(
    session: SessionDep,
    q: str | None = Query(None, max_length=200, examples=["ba dinh"]),
    level: str | None = Query(None, pattern="^(province|commune|district)$"),
) -> list[dict[str, object]]:
    return await service.list_agencies(session, search_key(q) if q else None, level)


@router.get("/agencies/{agency_code}", response_model=AgencyOut, summary="Một cơ quan / one agency")
async def get_agency(agency_code: str, session: SessionDep) -> dict[str, object]:
    return await service.agency(session, agency_code)


@router.get("/calendar/due", response_model=DueOut,
            summary="Ngày hẹn trả nếu nộp lúc received_at / due date if received at that time")
async def calendar_due(
    session: SessionDep,
    procedure_code: str = Query(..., max_length=30, examples=["1.004873"]),
    agency_code: str = Query(..., max_length=30, examples=["000.00.21.H29"]),
    received_at: datetime | None = Query(None, examples=["2026-03-02T09:00:00+07:00"]),
) -> DueOut:
    when = received_at or datetime.now(VN_TZ)
    result, _proc = await service.due(session, procedure_code, agency_code, when)
    return DueOut(procedure_code=procedure_code, agency_code=agency_code, received_at=when,
                  due_at=result.due_at, working_time_limit_minutes=int(result.working_time_limit.total_seconds() // 60),
                  explanation=result.explanation)


dossier_router = APIRouter(prefix="/v1/dossiers", tags=["dossiers"])


@dossier_router.post("", status_code=201, response_model=DossierOut,
                     summary="Nộp / tiếp nhận hồ sơ (counter, online, postal); Idempotency-Key required",
                     responses={422: {"description": "each missing or wrong item listed in `errors`"}})
async def submit_dossier(
    body: DossierIn, session: SessionDep, principal: CurrentPrincipal,
    idem: Idempotency = Depends(idempotency_guard(idempotency_keys)),
) -> Response:
    if idem.replay:
        return idem.replay
    result = await submission.submit(session, body, principal, datetime.now(UTC))
    return await idem.remember(201, result, headers={"Location": f"/api/intake/v1/dossiers/{result['code']}"})


async def _readable(session: SessionDep, code: str, principal: Principal) -> dict[str, Any]:
    found = await dossier_repository.get_dossier(session, code)
    allowed = found is not None and (
        (principal.role == "citizen" and principal.subject in (found["applicant_id_number"], found["submitted_by"]))
        or principal.can_act_for_agency(found["receiving_agency"])
        or principal.can_act_for_agency(found["competent_agency"]))
    if found is None or not allowed:
        raise ProblemError(404, "not_found", f"Không có hồ sơ {code} / No dossier {code} for you")
    return found


@dossier_router.get("/{code}", summary="Hồ sơ đã tiếp nhận / the dossier as received")
async def get_dossier(code: str, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    d = await _readable(session, code, principal)
    return {**d, "receipt_url": f"/api/intake/v1/dossiers/{code}/receipt"}


@dossier_router.get("/{code}/receipt", summary="Giấy tiếp nhận và hẹn trả kết quả (mẫu 01), PDF",
                    response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
async def get_receipt(code: str, request: Request, session: SessionDep, principal: CurrentPrincipal) -> Response:
    d = await _readable(session, code, principal)
    proc = await service.procedure(session, d["procedure_code"], d["received_at"].astimezone(VN_TZ).date())
    agency = await service.agency(session, d["receiving_agency"])
    pdf = render_receipt(d, proc, agency, request.app.state.settings.public_base_url)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{code}.pdf"'})
