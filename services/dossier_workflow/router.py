"""HTTP routes of the dossier workflow service (thin: parse, authorise, call the service layer)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.routing import Route

from services.dossier_workflow import service, slips, stats
from services.dossier_workflow.models import idempotency_keys
from services.dossier_workflow.schemas import (
    ActionIn,
    DossierOut,
    PublicDossierOut,
    RatingIn,
    StatsOut,
    TransferCallbackIn,
)
from shared.auth import CurrentPrincipal, current_principal, require_roles
from shared.db import SessionDep
from shared.idempotency import Idempotency, fingerprint_of, parse_key, scope_of
from shared.lean import json_bytes, parse_body
from shared.problems import ProblemError

router = APIRouter(prefix="/v1", tags=["dossiers"])
STAFF = Depends(require_roles("officer", "supervisor"))


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def now() -> datetime:
    return datetime.now(UTC)


async def read_dossier(request: Request) -> Response:
    """Hot path on a lean route: one statement on plain asyncpg, serialised here (the shape is DossierOut)."""
    principal = await current_principal(request)
    async with request.app.state.db.lean() as tx:
        d = await service.read_for(tx, request.path_params["code"], principal, now())
    return Response(json_bytes(d), media_type="application/json", headers=_etag(d["version"]))


@router.get("/dossiers/{code}", response_model=DossierOut, summary="Hồ sơ: trạng thái, hạn, lịch sử / a dossier",
            dependencies=[Depends(current_principal)])
async def get_dossier(code: str, request: Request) -> Response:
    """Documents the lean route above, which serves it."""
    return await read_dossier(request)


async def act_on_dossier(request: Request) -> Response:
    """Hot path on a lean route: the action, its history row, its jobs and the idempotency key in one
    transaction on plain asyncpg."""
    principal = await current_principal(request)
    body, raw = await parse_body(request, ActionIn)
    idem_key = parse_key(request.headers.get("idempotency-key"))
    async with request.app.state.db.lean() as tx:
        idem = Idempotency(tx, idempotency_keys, scope_of(principal), idem_key,
                           fingerprint_of(raw) if idem_key else "", "POST", request.scope["path"])
        await idem.begin()
        if idem.replay:
            return idem.replay
        at = now()
        acted = await service.act(tx, request.path_params["code"], principal, body,
                                  request.headers.get("if-match"), at)
        out = json_bytes(await service.view(tx, acted.dossier, principal, at, timeline=acted.timeline))
        response = await idem.remember(acted.status, out, headers=_etag(acted.dossier["version"]))
    return response


@router.post("/dossiers/{code}/actions", response_model=DossierOut,
             summary='Thao tác trên hồ sơ (If-Match: "<version>") / act on a dossier',
             responses={202: {"description": "transfer to an outside system, accepted later"},
                        409: {"description": "the action is not allowed in this state"},
                        412: {"description": "stale version"}, 428: {"description": "If-Match missing"}},
             dependencies=[Depends(current_principal)])
async def act(
    code: str, body: ActionIn, request: Request,
    if_match: str | None = Header(None, alias="If-Match", examples=['"3"']),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> Response:
    """Documents the lean route `act_on_dossier`, which serves it."""
    return await act_on_dossier(request)


@router.get("/dossiers", summary="Danh sách công việc của cơ quan / the agency's worklist (keyset pages)")
async def worklist(
    session: SessionDep, principal: Any = STAFF,
    status: str | None = Query(None, pattern="^(received|in_progress|supplement_requested|resolved|returned"
                                             "|withdrawn)$"),
    overdue: bool | None = None, due_before: datetime | None = None,
    procedure_code: str | None = Query(None, max_length=30),
    q: str | None = Query(None, max_length=100, examples=["nguyen van an"]),
    cursor: str | None = None, limit: int = Query(50, ge=1, le=200),
) -> dict[str, Any]:
    return await stats.worklist(session, principal, status=status, overdue=overdue, due_before=due_before,
                                procedure_code=procedure_code, q=q, cursor=cursor, limit=limit, now=now())


@router.get("/dossiers/{code}/control-slip", summary="Phiếu kiểm soát quá trình giải quyết (mẫu 06), JSON hoặc PDF",
            responses={200: {"content": {"application/json": {}, "application/pdf": {}}}})
async def control_slip(code: str, request: Request, session: SessionDep, principal: CurrentPrincipal) -> Any:
    d = await service.readable(session, code, principal)
    slip = await slips.control_slip(session, d)
    if "application/pdf" in request.headers.get("accept", ""):
        return Response(slips.control_slip_pdf(slip), media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="phieu-kiem-soat-{code}.pdf"'})
    return slip


@router.get("/dossiers/{code}/apology", response_class=Response,
            summary="Văn bản xin lỗi và hẹn lại ngày trả kết quả (mẫu 04), PDF",
            responses={200: {"content": {"application/pdf": {}}}})
async def apology(code: str, session: SessionDep, principal: CurrentPrincipal) -> Response:
    d = await service.readable(session, code, principal)
    return Response(await slips.apology_pdf(session, d), media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="xin-loi-{code}.pdf"'})


@router.get("/dossiers/{code}/withdrawal-notice", response_class=Response,
            summary="Thông báo dừng giải quyết hồ sơ (mẫu 05), PDF",
            responses={200: {"content": {"application/pdf": {}}}})
async def withdrawal_notice(code: str, session: SessionDep, principal: CurrentPrincipal) -> Response:
    d = await service.readable(session, code, principal)
    return Response(await slips.withdrawal_pdf(session, d), media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="dung-giai-quyet-{code}.pdf"'})


@router.post("/dossiers/{code}/rating", status_code=201, summary="Đánh giá mức độ hài lòng (1–5), một lần")
async def rate(code: str, body: RatingIn, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return await service.rate(session, code, principal, body.score, body.comment, now())


@router.post("/transfers/{transfer_id}/callback", summary="Hệ thống ngoài trả lời liên thông / transfer callback")
async def transfer_callback(
    transfer_id: int, body: TransferCallbackIn, session: SessionDep,
    principal: Any = Depends(require_roles("gov_system")),
) -> Any:
    return await service.answer_transfer(session, transfer_id, principal, body.decision, body.external_ref,
                                         body.note, now())


@router.get("/tracking-book", summary="Sổ theo dõi hồ sơ (mẫu 07): JSON pages or CSV by Accept")
async def tracking_book(
    request: Request, session: SessionDep, principal: Any = STAFF,
    from_: date = Query(..., alias="from"), to: date = Query(...),
    cursor: str | None = None, limit: int = Query(100, ge=1, le=1000),
) -> Any:
    page = await stats.tracking_book(session, principal, from_, to, cursor, limit)
    if "text/csv" in request.headers.get("accept", ""):
        return Response(stats.tracking_book_csv(page["items"]), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="so-theo-doi-{from_}-{to}.csv"',
                                 **({"Link": f'<?cursor={page["next_cursor"]}>; rel="next"'}
                                    if page["next_cursor"] else {})})
    return page


@router.get("/stats", response_model=list[StatsOut], summary="Số liệu Bộ chỉ số phục vụ (QĐ 766) / statistics")
async def get_stats(
    session: SessionDep, principal: Any = Depends(require_roles("supervisor", "gov_system")),
    agency_code: str | None = Query(None, max_length=30, examples=["000.00.21.H29"]),
    province: str | None = Query(None, max_length=10, examples=["H29"]),
    from_: date = Query(..., alias="from"), to: date = Query(...),
    group_by: str | None = Query(None, pattern="^(field|procedure|channel|month)$"),
) -> list[dict[str, Any]]:
    if from_ > to:
        raise ProblemError(422, "validation_error", "'from' phải trước 'to' / 'from' must not be after 'to'",
                           errors=[{"field": "from", "message": "after 'to'", "type": "range"}])
    return await stats.figures(session, principal, agency_code, province, from_, to, group_by, now())


public_router = APIRouter(prefix="/v1/public", tags=["public"])


@public_router.get("/dossiers/{code}", response_model=PublicDossierOut,
                   summary="Tra cứu hồ sơ không cần đăng nhập (mã + 4 số cuối điện thoại) / public tracking")
async def public_dossier(
    code: str, request: Request, session: SessionDep,
    phone_last4: str = Query(..., pattern=r"^\d{4}$", examples=["5678"]),
) -> dict[str, Any]:
    stats.public_rate_limit(request, code)
    return await service.public_view(session, code, phone_last4)


LEAN_ROUTES = [Route("/v1/dossiers/{code}", read_dossier, methods=["GET"]),
               Route("/v1/dossiers/{code}/actions", act_on_dossier, methods=["POST"])]
