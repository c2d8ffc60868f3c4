"""HTTP routes of the intake service (thin: parse, authorise, call the service layer)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder

from services.intake import admin, counter, files, service, submission
from services.intake.bodies import BodyType
from services.intake.files import LocalStorage
from services.intake.models import idempotency_keys
from services.intake.schemas import (
    AgencyHeadIn,
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
from shared.admin_units import AgencyLevel
from shared.auth import CurrentPrincipal, Principal, current_principal, require_roles
from shared.calendar import VN_TZ
from shared.db import TxDep
from shared.hot_routes import json_body, json_body_doc
from shared.idempotency import Idempotency, KeyUsed, idempotency_guard, idempotency_key_header
from shared.problems import problem_responses
from shared.text import search_key

router = APIRouter(prefix="/v1", tags=["catalog"])
STAFF = Depends(require_roles("officer", "supervisor"))
KEY_REQUIRED = Depends(idempotency_guard(idempotency_keys))
KEY_OPTIONAL = Depends(idempotency_guard(idempotency_keys, required=False))
PDF: dict[str, Any] = {"content": {"application/pdf": {}}}


@router.get("/procedures", response_model=list[ProcedureOut], responses=problem_responses(404, 422, notes={
                404: "Không có cơ quan agency_code / unknown agency_code"}),
            summary="Danh mục thủ tục / procedure catalog (q is accent-insensitive)")
async def list_procedures(
    tx: TxDep,
    q: str | None = Query(None, max_length=200, examples=["dang ky khai sinh"]),
    field: str | None = Query(None, max_length=30, examples=["HT"]),
    agency_code: str | None = Query(None, max_length=30, examples=["000.00.21.H29"]),
    level: AgencyLevel | None = Query(None, description="commune | province | central"),
    limit: int = Query(50, ge=1, le=200),
) -> list[dict[str, object]]:
    return await service.search_procedures(tx, q, field, agency_code, limit, level)


@router.get("/procedures/{procedure_code}", response_model=ProcedureOut, responses=problem_responses(404),
            summary="Một thủ tục / one procedure")
async def get_procedure(procedure_code: str, tx: TxDep) -> dict[str, object]:
    return await service.procedure(tx, procedure_code)


@router.get("/agencies", response_model=list[AgencyOut], responses=problem_responses(422),
            summary="Cơ quan tiếp nhận / receiving agencies")
async def list_agencies(
    tx: TxDep,
    q: str | None = Query(None, max_length=200, examples=["ba dinh"]),
    level: AgencyLevel | None = Query(None),
    body_type: BodyType | None = Query(None, description="what the agency is, e.g. commune_police"),
) -> list[dict[str, object]]:
    return await service.list_agencies(tx, search_key(q) if q else None, level, body_type)


@router.get("/agencies/{agency_code}", response_model=AgencyOut, responses=problem_responses(404),
            summary="Một cơ quan / one agency")
async def get_agency(agency_code: str, tx: TxDep) -> dict[str, object]:
    return await service.agency(tx, agency_code)


@router.get("/calendar/due", response_model=DueOut, responses=problem_responses(404, 422),
            summary="Ngày hẹn trả nếu nộp lúc received_at / due date if received at that time")
async def calendar_due(
    tx: TxDep,
    procedure_code: str = Query(..., max_length=30, examples=["1.004873"]),
    agency_code: str = Query(..., max_length=30, examples=["000.00.21.H29"]),
    received_at: datetime | None = Query(None, examples=["2026-03-02T09:00:00+07:00"]),
    channel: Literal["counter", "online", "postal"] | None = Query(
        None, description="kênh nộp: thời hạn riêng của kênh nếu có / the channel's own limit, if any"),
) -> DueOut:
    when = received_at or datetime.now(VN_TZ)
    result, _proc = await service.due(tx, procedure_code, agency_code, when, channel)
    return DueOut(procedure_code=procedure_code, agency_code=agency_code, received_at=when,
                  due_at=result.due_at, working_time_limit_minutes=int(result.working_time_limit.total_seconds() // 60),
                  explanation=result.explanation)


dossier_router = APIRouter(prefix="/v1/dossiers", tags=["dossiers"])


@dossier_router.post(
    "", status_code=201, response_model=DossierOut,
    summary="Nộp / tiếp nhận hồ sơ (quầy, trực tuyến, bưu chính) / submit or receive a dossier",
    description="Một câu lệnh ghi hồ sơ, sự kiện `dossier.received` và câu trả lời cho Idempotency-Key; gửi lại "
                "cùng khóa nhận lại đúng câu trả lời đầu tiên (header `Idempotent-Replayed: true`) / one statement "
                "writes the dossier, its event and the answer a retry with the same key gets back.",
    openapi_extra=json_body_doc(DossierIn, **idempotency_key_header(required=True)),
    responses={
        201: {"description": "Đã tiếp nhận; `Location` là hồ sơ / received; `Location` names the dossier",
              "headers": {"Location": {"schema": {"type": "string"},
                                       "example": "/api/intake/v1/dossiers/000.00.21.H29-260302-0001"}}},
        **problem_responses(400, 401, 403, 409, 422, 503, notes={
            400: "Thiếu Idempotency-Key hoặc JSON sai cú pháp / Idempotency-Key missing or malformed JSON",
            403: "Vai trò không nộp được qua kênh này, hoặc cán bộ của cơ quan khác / role not allowed on this "
                 "channel, or an officer of another agency",
            409: "Cơ quan đã dùng hết 9999 mã trong ngày (`daily_sequence_exhausted`) hoặc yêu cầu cùng khóa đang "
                 "được xử lý (`idempotency_key_in_use`) / the day's codes are used up, or the same key is in flight",
            422: "Mỗi mục thiếu hoặc sai liệt kê trong `errors`; hoặc khóa đã dùng cho nội dung khác "
                 "(`idempotency_key_mismatch`) / each wrong item in `errors`, or the key was used for another body",
        }),
    },
)
async def submit_dossier(request: Request) -> Response:
    principal = await current_principal(request)
    body, raw = await json_body(request, DossierIn)
    async with request.app.state.db.transaction() as tx:
        idem = Idempotency.of_request(request, tx, idempotency_keys, principal, raw, required=True)
        try:
            code, answer = await submission.submit(tx, body, principal, datetime.now(UTC), idem.params)
        except KeyUsed:
            return await idem.stored()
    return Response(answer, status_code=201, media_type="application/json",
                    headers={"Location": f"/api/intake/v1/dossiers/{code}"})


@dossier_router.get("/{code}", summary="Hồ sơ đã tiếp nhận / the dossier as received",
                    responses=problem_responses(401, 404))
async def get_dossier(code: str, tx: TxDep, principal: CurrentPrincipal) -> dict[str, Any]:
    d = await service.dossier_for(tx, code, principal)
    return {**d, "receipt_url": f"/api/intake/v1/dossiers/{code}/receipt"}


@dossier_router.get("/{code}/receipt", summary="Giấy tiếp nhận và hẹn trả kết quả (mẫu 01), PDF",
                    response_class=Response, responses={200: PDF, **problem_responses(401, 404)})
async def get_receipt(code: str, request: Request, tx: TxDep, principal: CurrentPrincipal) -> Response:
    pdf = await service.receipt_pdf(tx, code, principal, request.app.state.settings.public_base_url)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{code}.pdf"'})


@dossier_router.post("/{code}/supplements", status_code=201,
                     summary="Nộp bổ sung hồ sơ theo yêu cầu; the clock resumes (job to workflow)",
                     openapi_extra=idempotency_key_header(required=True),
                     responses=problem_responses(400, 401, 404, 409, 422, notes={
                         409: "Hồ sơ không chờ bổ sung, đã quá hạn bổ sung, hoặc yêu cầu cùng khóa đang được xử lý / "
                              "no supplement asked, its deadline passed, or the same key is in flight"}))
async def hand_in_supplement(code: str, body: SupplementIn, tx: TxDep, principal: CurrentPrincipal,
                             idem: Idempotency = KEY_REQUIRED) -> Response:
    if (replay := await idem.begin()) is not None:
        return replay
    result = await counter.hand_in_supplement(tx, code, body, principal, datetime.now(UTC))
    return await idem.remember(201, result)


counter_router = APIRouter(prefix="/v1", tags=["counter"])


@counter_router.post("/counter-records", status_code=201,
                     summary="Phiếu yêu cầu bổ sung (mẫu 02) hoặc từ chối tiếp nhận (mẫu 03) tại quầy",
                     description="Idempotency-Key bắt buộc: gửi lại không lập phiếu thứ hai / Idempotency-Key "
                                 "required: a retry never writes a second slip.",
                     openapi_extra=idempotency_key_header(required=True),
                     responses=problem_responses(400, 401, 403, 404, 409, 422))
async def create_counter_record(body: CounterRecordIn, tx: TxDep, principal: Principal = STAFF,
                                idem: Idempotency = KEY_REQUIRED) -> Response:
    if (replay := await idem.begin()) is not None:
        return replay
    record = await counter.create_record(tx, body, principal, datetime.now(UTC))
    return await idem.remember(201, jsonable_encoder(record))


@counter_router.get("/counter-records/{record_id}", summary="Phiếu 02/03: JSON, or PDF with Accept: application/pdf",
                    responses={200: {"content": {"application/json": {}, "application/pdf": {}}},
                               **problem_responses(400, 401, 403, 404)})
async def get_counter_record(record_id: int, request: Request, tx: TxDep, principal: Principal = STAFF) -> Any:
    record = await counter.get_record(tx, record_id, principal)
    if "application/pdf" not in request.headers.get("accept", ""):
        return record
    pdf = await counter.record_pdf(tx, record)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="phieu-{record_id}.pdf"'})


UPLOADER = Depends(require_roles(*files.UPLOADER_ROLES))


@counter_router.post("/files", status_code=201, summary="Tải tệp giấy tờ (PDF, JPEG, PNG); type sniffed, SHA-256",
                     description="Công dân, cán bộ và quản trị tải tệp; gửi lại cùng Idempotency-Key và cùng tệp nhận "
                                 "lại đúng tệp đã lưu / citizens, officers and admins upload; a retry with the same "
                                 "Idempotency-Key and file gets the file already stored.",
                     openapi_extra=idempotency_key_header(required=False),
                     responses=problem_responses(400, 401, 403, 409, 413, 415, 422, notes={
                         403: "Ki-ốt, đối tác bưu chính và hệ thống khác không tải tệp / kiosks, postal partners "
                              "and other systems do not upload files"}))
async def upload_file(request: Request, tx: TxDep, principal: Principal = UPLOADER,
                      file: UploadFile = File(...)) -> Response:
    settings = request.app.state.settings
    content = await file.read(settings.max_upload_bytes + 1)
    name = file.filename or "tep"
    idem = files.upload_idempotency(request, tx, idempotency_keys, principal, name, content)
    if (replay := await idem.begin()) is not None:
        return replay
    row = await files.store(tx, LocalStorage(settings.storage_dir), principal, name, content,
                            settings.max_upload_bytes, datetime.now(UTC))
    return await idem.remember(201, jsonable_encoder(row))


@counter_router.get("/files/{file_id}", response_class=Response, summary="Tải về tệp (chủ sở hữu hoặc cán bộ)",
                    responses={200: {"content": {"application/pdf": {}, "image/jpeg": {}, "image/png": {}}},
                               **problem_responses(401, 404)})
async def download_file(file_id: str, request: Request, tx: TxDep, principal: CurrentPrincipal) -> Response:
    row = await files.readable(tx, file_id, principal)
    content = LocalStorage(request.app.state.settings.storage_dir).get(file_id)
    return Response(content, media_type=row["content_type"], headers={"X-Content-SHA256": row["sha256"]})


admin_router = APIRouter(prefix="/v1/admin", tags=["admin"])
ADMIN = Depends(require_roles("admin"))


@admin_router.post("/procedures", status_code=201, summary="Phiên bản mới của thủ tục từ một ngày / new version",
                   description="Gửi lại cùng Idempotency-Key nhận lại câu trả lời đầu; không khóa thì lần gửi lại "
                               "gặp 409 (phiên bản đã có) / a retry with the same key gets the first answer; "
                               "without one it meets a 409 (the version exists).",
                   openapi_extra=idempotency_key_header(required=False),
                   responses=problem_responses(400, 401, 403, 409, 422))
async def add_procedure_version(body: ProcedureVersionIn, tx: TxDep, principal: Principal = ADMIN,
                                idem: Idempotency = KEY_OPTIONAL) -> Response:
    if (replay := await idem.begin()) is not None:
        return replay
    return await idem.remember(201, jsonable_encoder(await admin.add_procedure_version(tx, body, service.today_vn())))


@admin_router.get("/procedures/{code}/versions", summary="Các phiên bản của thủ tục / every version",
                  responses=problem_responses(401, 403, 404))
async def procedure_versions(code: str, tx: TxDep, principal: Principal = ADMIN) -> Any:
    return jsonable_encoder(await admin.versions(tx, code))


@admin_router.post("/calendar/overrides", status_code=201, responses=problem_responses(400, 401, 403, 409, 422),
                   summary="Ngày nghỉ thêm hoặc ngày làm bù (toàn quốc hoặc một cơ quan) / calendar override",
                   description="Gửi lại cùng Idempotency-Key nhận lại câu trả lời đầu; không khóa thì lần gửi lại "
                               "gặp 409 (ngày đã có điều chỉnh) / a retry with the same key gets the first answer; "
                               "without one it meets a 409 (the day has an override).",
                   openapi_extra=idempotency_key_header(required=False))
async def add_override(body: CalendarOverrideIn, tx: TxDep, principal: Principal = ADMIN,
                       idem: Idempotency = KEY_OPTIONAL) -> Response:
    if (replay := await idem.begin()) is not None:
        return replay
    return await idem.remember(201, jsonable_encoder(await admin.add_override(tx, body)))


@admin_router.get("/calendar/overrides", summary="Điều chỉnh lịch làm việc / calendar overrides",
                  responses=problem_responses(401, 403, 422))
async def list_overrides(tx: TxDep, year: int | None = Query(None, ge=2000, le=2100),
                         principal: Principal = ADMIN) -> Any:
    return jsonable_encoder(await admin.list_overrides(tx, year))


@admin_router.delete("/calendar/overrides/{override_id}", status_code=204, response_class=Response,
                     summary="Xóa một điều chỉnh lịch / remove a calendar override",
                     responses=problem_responses(400, 401, 403, 404))
async def remove_override(override_id: int, tx: TxDep, principal: Principal = ADMIN) -> Response:
    await admin.remove_override(tx, override_id)
    return Response(status_code=204)


@admin_router.put("/agencies/{agency_code}/head", response_model=AgencyOut,
                  summary="Thủ trưởng cơ quan (ký mẫu 04, 05) / the agency's head (signs forms 04 and 05)",
                  description="Văn bản xin lỗi và thông báo dừng ban hành từ nay do người này ký; văn bản đã ban hành "
                              "giữ người ký lúc ban hành. Gửi lại cùng nội dung không thay đổi gì / forms issued from "
                              "now on are signed by this head, earlier ones keep theirs; sending it again changes "
                              "nothing.",
                  responses=problem_responses(400, 401, 403, 404, 422))
async def set_agency_head(body: AgencyHeadIn, tx: TxDep,
                          agency_code: str = PathParam(max_length=30, examples=["000.00.21.H29"]),
                          principal: Principal = ADMIN) -> Any:
    return jsonable_encoder(await admin.set_agency_head(tx, agency_code, body))
