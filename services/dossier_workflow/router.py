"""HTTP routes of the dossier workflow service (thin: parse, authorise, call the service layer)."""

from __future__ import annotations

import pathlib
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import FileResponse

from services.dossier_workflow import book, bounds, service, slips, stats
from services.dossier_workflow import worklist as worklists
from services.dossier_workflow.models import idempotency_keys
from services.dossier_workflow.schemas import (
    ActionIn,
    DossierOut,
    PublicDossierOut,
    RatingIn,
    StatsOut,
    TransferCallbackIn,
)
from shared.auth import CurrentPrincipal, Principal, current_principal, require_roles
from shared.db import TxDep
from shared.encoding import json_bytes
from shared.hot_routes import json_body, json_body_doc
from shared.idempotency import Idempotency, idempotency_key_header
from shared.problems import ProblemError, problem_responses

router = APIRouter(prefix="/v1", tags=["dossiers"])
STAFF = Depends(require_roles("officer", "supervisor"))
ROUTE_NOTES = {  # what the statuses mean on this service's routes (the others: shared PROBLEM_STATUS_TEXT)
    400: "Yêu cầu sai (If-Match, Idempotency-Key, cursor hoặc JSON) / bad request",
    404: "Không có hồ sơ (hoặc bạn không được xem) / not found (or not yours to see)",
    412: "Phiên bản đã cũ: tải lại rồi thử lại (ETag hiện tại trong header) / stale version (current ETag sent)",
    428: 'Thiếu If-Match: "<phiên bản>" / If-Match is required',
    429: "Quá nhiều lần tra cứu / too many look-ups",
}
ETAG_HEADER = {"ETag": {"description": 'phiên bản hồ sơ / the dossier\'s version, e.g. "3"',
                        "schema": {"type": "string"}}}
ACTION_HEADERS = {**ETAG_HEADER, "Idempotent-Replayed": {
    "description": "true: câu trả lời đã lưu cho cùng Idempotency-Key / the answer kept for this Idempotency-Key",
    "schema": {"type": "string"}}}


def problems(*statuses: int, notes: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    return problem_responses(*statuses, notes={**ROUTE_NOTES, **(notes or {})})


def etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def now() -> datetime:
    return datetime.now(UTC)


@router.get("/dossiers/{code}", response_model=DossierOut, summary="Hồ sơ: trạng thái, hạn, lịch sử / a dossier",
            responses={200: {"description": "Hồ sơ; ETag là phiên bản / the dossier; ETag is its version",
                             "headers": ETAG_HEADER}, **problems(401, 404, 422, 503)})
async def get_dossier(code: str, request: Request) -> Response:
    """The hot read: one statement with no BEGIN, serialised once (the shape is DossierOut)."""
    principal = await current_principal(request)
    async with request.app.state.db.transaction() as tx:
        d = await service.read_for(tx, code, principal, now())
    return Response(json_bytes(d), media_type="application/json", headers=etag(d["version"]))


@router.post(
    "/dossiers/{code}/actions", response_model=DossierOut,
    summary='Thao tác trên hồ sơ (If-Match: "<phiên bản>") / act on a dossier',
    openapi_extra=json_body_doc(ActionIn, **idempotency_key_header(required=False)),
    responses={
        200: {"description": "Hồ sơ sau thao tác / the dossier after the action", "headers": ACTION_HEADERS},
        202: {"model": DossierOut, "headers": ACTION_HEADERS,
              "description": "Đã gửi liên thông tới hệ thống ngoài, chờ trả lời / transfer to an outside system, "
                             "answered later"},
        **problems(400, 401, 403, 404, 409, 412, 422, 428, 503, notes={
            409: "Thao tác không được phép ở trạng thái này (`allowed_actions`), đang chờ liên thông, quá hạn bổ "
                 "sung, đã xin lỗi và hẹn lại một lần (`apology_already_issued`), hoặc cùng Idempotency-Key đang xử "
                 "lý / action not allowed in this state, transfer pending, supplement deadline passed, the one "
                 "apology already issued, or the same Idempotency-Key in progress",
            422: "Dữ liệu không hợp lệ, hoặc Idempotency-Key đã dùng cho nội dung khác / invalid data, or the "
                 "Idempotency-Key was used for another body"}),
    },
)
async def act(
    code: str, request: Request,
    if_match: str | None = Header(None, alias="If-Match", examples=['"3"'],
                                  description="the version read (ETag); required"),
) -> Response:
    """The action, its history row, its jobs and messages, and the idempotency key in one transaction."""
    principal = await current_principal(request)
    body, raw = await json_body(request, ActionIn)
    async with request.app.state.db.transaction() as tx:
        idem = Idempotency.of_request(request, tx, idempotency_keys, principal, raw, required=False)
        if (replay := await idem.begin()) is not None:
            return replay
        at = now()
        acted = await service.act(tx, code, principal, body, if_match, at)
        view = await service.view(tx, acted.dossier, principal, at, timeline=acted.timeline)
        answer = await idem.remember(acted.status, json_bytes(view), headers=etag(acted.dossier["version"]))
    return answer


@router.get("/dossiers", summary="Danh sách công việc của cơ quan / the agency's worklist (keyset pages)",
            responses=problems(400, 401, 403, 422))
async def worklist(
    tx: TxDep, principal: Principal = STAFF,
    status: str | None = Query(None, pattern="^(received|in_progress|supplement_requested|resolved|returned"
                                             "|withdrawn)$"),
    overdue: bool | None = None, due_before: datetime | None = None,
    procedure_code: str | None = Query(None, max_length=30),
    q: str | None = Query(None, max_length=100, examples=["nguyen van an"]),
    cursor: str | None = None, limit: int = Query(50, ge=1, le=200),
) -> dict[str, Any]:
    bounds.within("due_before", due_before)
    return await worklists.worklist(tx, principal, status=status, overdue=overdue, due_before=due_before,
                                procedure_code=procedure_code, q=q, cursor=cursor, limit=limit, now=now())


@router.get("/dossiers/{code}/control-slip", summary="Phiếu kiểm soát quá trình giải quyết (mẫu 06), JSON hoặc PDF",
            responses={200: {"content": {"application/json": {}, "application/pdf": {}}}, **problems(401, 404, 422)})
async def control_slip(code: str, request: Request, tx: TxDep, principal: CurrentPrincipal) -> Any:
    d = await service.readable(tx, code, principal)
    slip = await slips.control_slip(tx, d)
    if "application/pdf" in request.headers.get("accept", ""):
        return Response(slips.control_slip_pdf(slip), media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="phieu-kiem-soat-{code}.pdf"'})
    return slip


@router.get("/dossiers/{code}/apology", response_class=Response,
            summary="Văn bản xin lỗi và hẹn lại ngày trả kết quả (mẫu 04), PDF",
            responses={200: {"content": {"application/pdf": {}}}, **problems(401, 404, 422)})
async def apology(code: str, tx: TxDep, principal: CurrentPrincipal) -> Response:
    d = await service.readable(tx, code, principal)
    return Response(await slips.apology_pdf(tx, d), media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="xin-loi-{code}.pdf"'})


@router.get("/dossiers/{code}/withdrawal-notice", response_class=Response,
            summary="Thông báo dừng giải quyết hồ sơ (mẫu 05), PDF",
            responses={200: {"content": {"application/pdf": {}}}, **problems(401, 404, 409, 422)})
async def withdrawal_notice(code: str, tx: TxDep, principal: CurrentPrincipal) -> Response:
    d = await service.readable(tx, code, principal)
    return Response(await slips.withdrawal_pdf(tx, d), media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="dung-giai-quyet-{code}.pdf"'})


KEY_MISMATCH = ("Dữ liệu không hợp lệ, hoặc Idempotency-Key đã dùng cho nội dung khác / invalid data, or the "
                "Idempotency-Key was used for another body")


async def _once(request: Request, tx: TxDep, principal: Principal) -> Idempotency:
    """The request's optional Idempotency-Key: a retry with it gets the first answer, the work is not redone."""
    return Idempotency.of_request(request, tx, idempotency_keys, principal, await request.body(), required=False)


@router.post("/dossiers/{code}/rating", status_code=201, summary="Đánh giá mức độ hài lòng (1–5), một lần",
             openapi_extra=idempotency_key_header(required=False),
             responses={201: {"headers": ACTION_HEADERS}, **problems(400, 401, 404, 409, 422, notes={
                 409: "Chưa trả kết quả, đã đánh giá, hoặc cùng Idempotency-Key đang xử lý / not returned yet, "
                      "already rated, or the same Idempotency-Key in progress", 422: KEY_MISMATCH})})
async def rate(code: str, body: RatingIn, request: Request, tx: TxDep, principal: CurrentPrincipal) -> Response:
    idem = await _once(request, tx, principal)
    if (replay := await idem.begin()) is not None:
        return replay
    return await idem.remember(201, await service.rate(tx, code, principal, body.score, body.comment, now()))


@router.post("/transfers/{transfer_id}/callback", summary="Hệ thống ngoài trả lời liên thông / transfer callback",
             openapi_extra=idempotency_key_header(required=False),
             responses={200: {"headers": ACTION_HEADERS}, **problems(400, 401, 403, 404, 409, 422, notes={
                 409: "Liên thông đã được trả lời, hoặc cùng Idempotency-Key đang xử lý / already answered, or the "
                      "same Idempotency-Key in progress", 422: KEY_MISMATCH})})
async def transfer_callback(
    body: TransferCallbackIn, request: Request, tx: TxDep, transfer_id: int = Path(ge=1, le=2**63 - 1),
    principal: Principal = Depends(require_roles("gov_system")),
) -> Response:
    idem = await _once(request, tx, principal)
    if (replay := await idem.begin()) is not None:
        return replay
    return await idem.remember(200, await service.answer_transfer(
        tx, transfer_id, principal, body.decision, body.external_ref, body.note, now()))


@router.get("/tracking-book", summary="Sổ theo dõi hồ sơ (mẫu 07): JSON pages, CSV or PDF (by Accept or ?format=)",
            responses={200: {"content": {"application/json": {}, "text/csv": {}, "application/pdf": {}},
                             "description": "JSON: a page of entries; CSV; PDF: form 07 (landscape A4) with its "
                                            "legal columns. The next page, if any: `next_cursor` or the Link header"},
                       **problems(400, 401, 403, 422)})
async def tracking_book(
    request: Request, tx: TxDep, principal: Principal = STAFF,
    from_: date = Query(..., alias="from"), to: date = Query(...),
    cursor: str | None = None, limit: int = Query(100, ge=1, le=1000),
    format_: str | None = Query(None, alias="format", pattern="^(json|csv|pdf)$",
                                description="instead of Accept: json, csv or pdf (form 07)"),
) -> Any:
    bounds.date_range(from_, to)
    accept = request.headers.get("accept", "")
    if format_ == "pdf" or (format_ is None and "application/pdf" in accept):
        pdf, following = await book.tracking_book_pdf(tx, principal, from_, to, cursor, limit, now())
        return Response(pdf, media_type="application/pdf", headers={
            "Content-Disposition": f'inline; filename="so-theo-doi-{from_}-{to}.pdf"',
            **({"Link": f'<?cursor={following}>; rel="next"'} if following else {})})
    page = await book.tracking_book(tx, principal, from_, to, cursor, limit)
    if format_ == "csv" or (format_ is None and "text/csv" in accept):
        return Response(book.tracking_book_csv(page["items"]), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="so-theo-doi-{from_}-{to}.csv"',
                                 **({"Link": f'<?cursor={page["next_cursor"]}>; rel="next"'}
                                    if page["next_cursor"] else {})})
    return page


@router.get("/stats", response_model=list[StatsOut], summary="Số liệu Bộ chỉ số phục vụ (QĐ 766) / statistics",
            responses=problems(401, 403, 422))
async def get_stats(
    tx: TxDep, principal: Principal = Depends(require_roles("supervisor", "gov_system")),
    agency_code: str | None = Query(None, max_length=30, examples=["000.00.21.H29"]),
    province: str | None = Query(None, max_length=10, examples=["H29"]),
    from_: date = Query(..., alias="from"), to: date = Query(...),
    group_by: str | None = Query(None, pattern="^(field|procedure|channel|month)$"),
) -> list[dict[str, Any]]:
    bounds.date_range(from_, to)
    return await stats.figures(tx, principal, agency_code, province, from_, to, group_by, now())


public_router = APIRouter(prefix="/v1/public", tags=["public"])


@public_router.get("/dossiers/{code}", response_model=PublicDossierOut,
                   summary="Tra cứu hồ sơ không cần đăng nhập (mã + 4 số cuối điện thoại) / public tracking",
                   responses=problems(404, 422, 429))
async def public_dossier(
    code: str, request: Request, tx: TxDep,
    phone_last4: str = Query(..., pattern=r"^\d{4}$", examples=["5678"]),
) -> dict[str, Any]:
    return await service.public_view(tx, code, phone_last4, client=stats.client_of(request))


# --- the public tracking page (the QR on form 01 opens it: /api/workflow/v1/public/tra-cuu/<code>) -------------

STATIC = pathlib.Path(__file__).resolve().parent / "static"
PAGE_ASSETS = {"tra-cuu.css": "text/css", "tra-cuu.js": "text/javascript"}
# The page loads only its own script and style and calls only its own origin; it is never framed.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "public, max-age=300",
}


@public_router.get("/tra-cuu/{code}", include_in_schema=False)
async def tracking_page(
    code: str = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,63}$", examples=["000.00.21.H29-260305-0001"]),
) -> FileResponse:
    """Trang tra cứu cho người dân: hỏi 4 số cuối điện thoại rồi gọi /v1/public/dossiers/<code>."""
    return FileResponse(STATIC / "tra-cuu.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@public_router.get("/assets/{name}", include_in_schema=False)
async def tracking_asset(name: str) -> FileResponse:
    if name not in PAGE_ASSETS:
        raise ProblemError(404, "not_found", f"Không có tệp {name} / No file {name}")
    return FileResponse(STATIC / name, media_type=PAGE_ASSETS[name] + "; charset=utf-8", headers=PAGE_HEADERS)
