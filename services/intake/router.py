"""HTTP routes of the intake service (thin: parse, authorise, call the service layer)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query

from services.intake import service
from services.intake.schemas import AgencyOut, DueOut, ProcedureOut
from services.intake.text import search_key
from shared.calendar import VN_TZ
from shared.db import SessionDep

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
