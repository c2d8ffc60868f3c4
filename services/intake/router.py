"""HTTP routes of the intake service (thin: parse, authorise, call the service layer)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, File, Header, Query, Request, Response, UploadFile
from fastapi.encoders import jsonable_encoder
from starlette.routing import Route

from services.intake import admin, counter, dossier_repository, files, service, submission
from services.intake.files import LocalStorage
from services.intake.forms import render_counter_record
from services.intake.models import idempotency_keys
from services.intake.receipt import render_receipt
from services.intake.schemas import (
    AgencyOut,
    CalendarOverrideIn,
    CounterRecordIn,
    DossierIn,
    DossierOut,
    DueOut,
    ProcedureOut,
    ProcedureVersionIn,
    SupplementIn,
)
from shared.auth import CurrentPrincipal, Principal, current_principal, require_roles
from shared.calendar import VN_TZ
from shared.db import SessionDep, autocommit_connection
from shared.idempotency import (
    Idempotency,
    KeyUsed,
    fingerprint_of,
    idempotency_guard,
    required_key,
    scope_of,
    stored_response,
)
from shared.lean import parse_body
from shared.problems import ProblemError
from shared.text import search_key

router = APIRouter(prefix="/v1", tags=["catalog"])
STAFF = Depends(require_roles("officer", "supervisor"))


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


async def receive_dossier(request: Request) -> Response:
    """Hot path on a lean route: one statement writes the dossier, its event and the answer a retry gets back."""
    principal = await current_principal(request)
    body, raw = await parse_body(request, DossierIn)
    key = (scope_of(principal), required_key(request), request.url.path, fingerprint_of(raw))
    async with request.app.state.db.lean() as tx:
        try:
            code, answer = await submission.submit(tx, body, principal, datetime.now(UTC), key)
        except KeyUsed:
            return await stored_response(await autocommit_connection(tx), idempotency_keys, *key)
    return Response(answer, status_code=201, media_type="application/json",
                    headers={"Location": f"/api/intake/v1/dossiers/{code}"})


@dossier_router.post("", status_code=201, response_model=DossierOut,
                     summary="Nộp / tiếp nhận hồ sơ (counter, online, postal); Idempotency-Key required",
                     responses={422: {"description": "each missing or wrong item listed in `errors`"}},
                     dependencies=[Depends(current_principal)])
async def submit_dossier(body: DossierIn, request: Request,
                         idempotency_key: str = Header(alias="Idempotency-Key")) -> Response:
    """Documents the lean route `receive_dossier`, which serves it."""
    return await receive_dossier(request)


LEAN_ROUTES = [Route("/v1/dossiers", receive_dossier, methods=["POST"])]


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


counter_router = APIRouter(prefix="/v1", tags=["counter"])


@counter_router.post("/counter-records", status_code=201,
                     summary="Phiếu yêu cầu bổ sung (mẫu 02) hoặc từ chối tiếp nhận (mẫu 03) tại quầy")
async def create_counter_record(
    body: CounterRecordIn, session: SessionDep, principal: Principal = STAFF,
    idem: Idempotency = Depends(idempotency_guard(idempotency_keys, required=False)),
) -> Response:
    if idem.replay:
        return idem.replay
    record = await counter.create_record(session, body, principal, datetime.now(UTC))
    return await idem.remember(201, jsonable_encoder(record))


@counter_router.get("/counter-records/{record_id}", summary="Phiếu 02/03: JSON, or PDF with Accept: application/pdf",
                    responses={200: {"content": {"application/json": {}, "application/pdf": {}}}})
async def get_counter_record(record_id: int, request: Request, session: SessionDep,
                             principal: Principal = STAFF) -> Any:
    record = await counter.get_record(session, record_id, principal)
    if "application/pdf" not in request.headers.get("accept", ""):
        return record
    proc = await service.procedure(session, record["procedure_code"])
    agency = await service.agency(session, record["agency_code"])
    pdf = render_counter_record(record, proc, agency, request.app.state.settings.public_base_url)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="phieu-{record_id}.pdf"'})


@dossier_router.post("/{code}/supplements", status_code=201,
                     summary="Nộp bổ sung hồ sơ theo yêu cầu; the clock resumes (job to workflow)")
async def hand_in_supplement(
    code: str, body: SupplementIn, session: SessionDep, principal: CurrentPrincipal,
    idem: Idempotency = Depends(idempotency_guard(idempotency_keys)),
) -> Response:
    if idem.replay:
        return idem.replay
    result = await counter.hand_in_supplement(session, code, body, principal, datetime.now(UTC))
    return await idem.remember(201, result)


@counter_router.post("/files", status_code=201, summary="Tải tệp giấy tờ (PDF, JPEG, PNG); type sniffed, SHA-256")
async def upload_file(request: Request, session: SessionDep, principal: CurrentPrincipal,
                      file: UploadFile = File(...)) -> Any:
    settings = request.app.state.settings
    content = await file.read(settings.max_upload_bytes + 1)
    storage = LocalStorage(settings.storage_dir)
    row = await files.store(session, storage, principal, file.filename or "tep", content,
                            settings.max_upload_bytes, datetime.now(UTC))
    return jsonable_encoder(row)


@counter_router.get("/files/{file_id}", response_class=Response, summary="Tải về tệp (chủ sở hữu hoặc cán bộ)")
async def download_file(file_id: str, request: Request, session: SessionDep,
                        principal: CurrentPrincipal) -> Response:
    row = await files.readable(session, file_id, principal)
    content = LocalStorage(request.app.state.settings.storage_dir).get(file_id)
    return Response(content, media_type=row["content_type"], headers={"X-Content-SHA256": row["sha256"]})


admin_router = APIRouter(prefix="/v1/admin", tags=["admin"])
ADMIN = Depends(require_roles("admin"))


@admin_router.post("/procedures", status_code=201, summary="Phiên bản mới của thủ tục từ một ngày / new version")
async def add_procedure_version(body: ProcedureVersionIn, session: SessionDep, principal: Principal = ADMIN) -> Any:
    return jsonable_encoder(await admin.add_procedure_version(session, body, service.today_vn()))


@admin_router.get("/procedures/{code}/versions", summary="Các phiên bản của thủ tục / every version")
async def procedure_versions(code: str, session: SessionDep, principal: Principal = ADMIN) -> Any:
    return jsonable_encoder(await admin.versions(session, code))


@admin_router.post("/calendar/overrides", status_code=201,
                   summary="Ngày nghỉ thêm hoặc ngày làm bù (toàn quốc hoặc một cơ quan) / calendar override")
async def add_override(body: CalendarOverrideIn, session: SessionDep, principal: Principal = ADMIN) -> Any:
    return jsonable_encoder(await admin.add_override(session, body))


@admin_router.get("/calendar/overrides", summary="Điều chỉnh lịch làm việc / calendar overrides")
async def list_overrides(session: SessionDep, year: int | None = Query(None, ge=2000, le=2100),
                         principal: Principal = ADMIN) -> Any:
    return jsonable_encoder(await admin.list_overrides(session, year))


@admin_router.delete("/calendar/overrides/{override_id}", status_code=204, response_class=Response)
async def remove_override(override_id: int, session: SessionDep, principal: Principal = ADMIN) -> Response:
    await admin.remove_override(session, override_id)
    return Response(status_code=204)
