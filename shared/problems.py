"""RFC 9457 problem+json errors: one exception type and the handlers every app installs."""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://motcua.gov.vn/problems/"

# code -> (Vietnamese title, English title)
TITLES: dict[str, tuple[str, str]] = {
    "bad_request": ("Yêu cầu không hợp lệ", "Bad request"),
    "validation_error": ("Dữ liệu không hợp lệ", "Invalid data"),
    "malformed_json": ("JSON không đúng cú pháp", "Malformed JSON"),
    "unauthorized": ("Chưa xác thực", "Authentication required"),
    "invalid_token": ("Mã truy cập không hợp lệ", "Invalid access token"),
    "forbidden": ("Không có quyền", "Forbidden"),
    "not_found": ("Không tìm thấy", "Not found"),
    "method_not_allowed": ("Phương thức không được hỗ trợ", "Method not allowed"),
    "conflict": ("Xung đột trạng thái", "Conflict"),
    "idempotency_key_in_use": ("Yêu cầu trùng đang được xử lý", "Request with this key is in progress"),
    "idempotency_key_mismatch": ("Idempotency-Key đã dùng cho nội dung khác",
                                 "Idempotency-Key reused with a different body"),
    "idempotency_key_missing": ("Thiếu Idempotency-Key", "Idempotency-Key header required"),
    "precondition_failed": ("Phiên bản dữ liệu đã cũ", "Precondition failed"),
    "precondition_required": ("Thiếu If-Match", "Precondition required"),
    "payload_too_large": ("Dữ liệu quá lớn", "Payload too large"),
    "unsupported_media_type": ("Định dạng không được hỗ trợ", "Unsupported media type"),
    "rate_limited": ("Quá nhiều yêu cầu", "Too many requests"),
    "upstream_unavailable": ("Dịch vụ tạm thời không sẵn sàng", "Upstream service unavailable"),
    "upstream_timeout": ("Dịch vụ phản hồi quá lâu", "Upstream timeout"),
    "bad_gateway": ("Lỗi cổng kết nối", "Bad gateway"),
    "internal_error": ("Lỗi hệ thống", "Internal server error"),
    "busy": ("Hệ thống đang bận", "Service busy"),
    "not_acceptable": ("Không hỗ trợ định dạng yêu cầu", "Not acceptable"),
    "action_not_allowed": ("Thao tác không được phép ở trạng thái này", "Action not allowed in this state"),
    "role_not_allowed": ("Vai trò không được thực hiện thao tác này", "Role may not take this action"),
    "transfer_pending": ("Đang chờ liên thông", "Transfer pending"),
    "transfer_not_pending": ("Yêu cầu liên thông đã được trả lời", "Transfer not pending"),
    "supplement_deadline_passed": ("Quá hạn bổ sung hồ sơ", "Supplement deadline passed"),
    "not_returned": ("Hồ sơ chưa trả kết quả", "Result not returned yet"),
    "already_rated": ("Đã đánh giá", "Already rated"),
    "no_supplement_requested": ("Hồ sơ không chờ bổ sung", "No supplement requested"),
}

log = structlog.get_logger("problems")


def error_item(field: str, message: str, type_: str) -> dict[str, str]:
    """One entry of a problem's `errors`: the field, what is wrong (Vietnamese / English), a stable type."""
    return {"field": field, "message": message, "type": type_}


class ProblemError(Exception):
    """Raise anywhere in a request to answer with a problem+json body."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: tuple[str, str] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title
        self.errors = list(errors) if errors else None
        self.headers = dict(headers) if headers else None
        self.extra = dict(extra) if extra else None


def prefers_english(accept_language: str | None) -> bool:
    """Vietnamese first: English only when the caller asks for it before Vietnamese."""
    if not accept_language:
        return False
    for part in accept_language.split(","):
        lang = part.split(";")[0].strip().lower()
        if lang.startswith("vi"):
            return False
        if lang.startswith("en"):
            return True
    return False


def problem_body(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str,
    request_id: str | None,
    accept_language: str | None,
    title: tuple[str, str] | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    vi, en = title or TITLES.get(code, TITLES["bad_request"])
    body: dict[str, Any] = {
        "type": TYPE_BASE + code.replace("_", "-"),
        "title": en if prefers_english(accept_language) else vi,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        "request_id": request_id,
    }
    if errors:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    return body


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    title: tuple[str, str] | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body = problem_body(
        status,
        code,
        detail,
        instance=request.url.path,
        request_id=getattr(request.state, "request_id", None) or request.headers.get("x-request-id"),
        accept_language=request.headers.get("accept-language"),
        title=title,
        errors=errors,
        extra=extra,
    )
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        out.append(
            {
                "field": _field_path(err.get("loc", ())),
                "in": str(err.get("loc", ("body",))[0]),
                "message": err.get("msg", "invalid"),
                "type": err.get("type", "value_error"),
            }
        )
    return out


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    428: "precondition_required",
    429: "rate_limited",
}


def is_bad_value(exc: BaseException) -> bool:
    """asyncpg refused a parameter (client side) or PostgreSQL a value (SQLSTATE class 22)."""
    import asyncpg.exceptions as pg_errors
    from asyncpg.exceptions import _base as pg_base

    seen: BaseException | None = exc
    for _ in range(4):  # SQLAlchemy wraps the driver's error once or twice
        if seen is None:
            return False
        if isinstance(seen, (pg_errors.DataError, pg_base.DataError)):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def install_problem_handlers(app: FastAPI) -> None:
    """Every error an app can produce leaves as problem+json, never as a stack trace."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            request, exc.status, exc.code, exc.detail, title=exc.title, errors=exc.errors,
            headers=exc.headers, extra=exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response(
                request, 400, "malformed_json",
                "Nội dung không phải JSON hợp lệ / The request body is not valid JSON.",
                errors=errors,
            )
        fields = ", ".join(sorted({e["field"] for e in errors}))
        return problem_response(
            request, 422, "validation_error",
            f"Kiểm tra lại các trường / Check these fields: {fields}", errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "bad_request")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"Không có đường dẫn {request.url.path} / No route {request.url.path}"
        if exc.status_code == 405:
            detail = (f"{request.method} không dùng được cho {request.url.path} / "
                      f"{request.method} is not allowed on {request.url.path}")
        return problem_response(request, exc.status_code, code, detail, headers=exc.headers)

    @app.exception_handler(sqlalchemy.exc.TimeoutError)
    async def _busy(request: Request, exc: sqlalchemy.exc.TimeoutError) -> JSONResponse:
        log.warning("database_pool_exhausted", path=request.url.path)
        return problem_response(
            request, 503, "busy", "Hệ thống đang bận, vui lòng thử lại sau giây lát / The service is busy; "
            "retry in a moment.", headers={"Retry-After": "1"},
        )

    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_bad_value(exc):  # e.g. an id past int64 in the path: the client's value, not our fault
            return problem_response(
                request, 400, "bad_request",
                "Giá trị ngoài phạm vi cho phép (ví dụ mã số quá lớn) / A value is out of range or malformed "
                "(for example an id that is too large)",
            )
        log.exception("unhandled_error", path=request.url.path)
        return problem_response(
            request, 500, "internal_error",
            "Đã có lỗi, vui lòng thử lại / Something went wrong; please retry.",
        )

    # Answered where they are raised: Starlette sends the catch-all `Exception` handler's answer and then
    # raises again, and uvicorn closes the connection under it; a proxy reusing that connection answered
    # 502 to a value the client got wrong (found by `make fuzz`).
    for cls in _database_value_errors():
        app.add_exception_handler(cls, _unexpected)
    app.add_exception_handler(Exception, _unexpected)


def _database_value_errors() -> tuple[type[Exception], ...]:
    import asyncpg.exceptions as pg_errors
    from asyncpg.exceptions import _base as pg_base

    return pg_errors.DataError, pg_base.DataError, sqlalchemy.exc.DBAPIError


class Problem(BaseModel):
    """An error (RFC 9457 problem+json): `detail` in Vietnamese, then English; `code` is stable."""

    model_config = ConfigDict(extra="allow", title="Problem", json_schema_extra={"examples": [{
        "type": "https://motcua.gov.vn/problems/validation-error", "title": "Dữ liệu không hợp lệ", "status": 422,
        "detail": "Hồ sơ chưa hợp lệ: thiếu giấy tờ bắt buộc: Giấy chứng sinh / missing mandatory document: "
                  "Giấy chứng sinh", "instance": "/v1/dossiers", "code": "validation_error",
        "request_id": "5f0c3b0e6a7d4f1e", "errors": [{
            "field": "documents", "in": "body", "message": "thiếu giấy tờ bắt buộc: Giấy chứng sinh / missing "
            "mandatory document: Giấy chứng sinh", "type": "missing_document"}]}]})

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    code: str
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = Field(None, description="mỗi trường sai một mục / one entry per wrong field")


PROBLEM_STATUS_TEXT = {
    400: "Yêu cầu không hợp lệ / Bad request",
    401: "Chưa đăng nhập hoặc mã truy cập không hợp lệ / Not authenticated or invalid token",
    403: "Không có quyền / Forbidden",
    404: "Không tìm thấy / Not found",
    405: "Phương thức không được hỗ trợ / Method not allowed",
    406: "Không hỗ trợ định dạng yêu cầu (Accept) / Not acceptable",
    409: "Xung đột trạng thái / Conflict with the current state",
    412: "Phiên bản đã cũ: tải lại rồi thử lại / Stale version: reload and retry",
    413: "Dữ liệu quá lớn / Payload too large",
    415: "Định dạng không được hỗ trợ / Unsupported media type",
    422: "Dữ liệu không hợp lệ (từng trường trong `errors`) / Invalid data, each field in `errors`",
    428: "Thiếu điều kiện tiên quyết (If-Match) / Precondition required (If-Match)",
    429: "Quá nhiều yêu cầu, thử lại sau (Retry-After) / Too many requests, retry later",
    502: "Lỗi cổng kết nối / Bad gateway",
    503: "Hệ thống đang bận hoặc cơ sở dữ liệu không sẵn sàng, thử lại sau (Retry-After) / "
         "Busy or database unavailable, retry later",
    504: "Dịch vụ phản hồi quá lâu / Upstream timeout",
}
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# Media types of success answers that are files or text, not JSON: their schema when a route gives none.
FILE_SCHEMA = {"type": "string", "format": "binary"}
TEXT_SCHEMA = {"type": "string"}


def problem_responses(*statuses: int, notes: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for the problem+json answers a route can give (`notes`: what they mean there);
    `add_problem_schema` gives every error answer its problem+json content."""
    notes = notes or {}
    return {status: {"description": notes.get(status, PROBLEM_STATUS_TEXT[status])} for status in statuses}


def operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) of every operation of an OpenAPI document."""
    return [(method, path, op) for path, item in openapi.get("paths", {}).items() if isinstance(item, dict)
            for method, op in item.items() if method in HTTP_METHODS and isinstance(op, dict)]


def generic_problem_statuses(op: dict[str, Any], *, authenticated: bool) -> set[int]:
    """The refusals any operation of this shape can give, whatever its route's own rules: 401/403 where a
    token is read, 400/413/415/422 with a body, 400/422 with parameters, 404 with path parameters, 503
    (pool exhausted, database unavailable) everywhere. Never 500."""
    params = [p for p in op.get("parameters", []) if isinstance(p, dict)]
    statuses = {503}
    if authenticated:
        statuses |= {401, 403}
    if "requestBody" in op:
        statuses |= {400, 413, 415, 422}
    if params:
        statuses |= {400, 422}
    if any(p.get("in") == "path" for p in params):
        statuses.add(404)
    return statuses


PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def declare_problems(op: dict[str, Any], statuses: set[int]) -> None:
    """Adds these error answers, as problem+json, to an operation (the route's own descriptions stay)."""
    responses = op.setdefault("responses", {})
    for status in sorted(statuses):
        if str(status) not in responses and status not in responses:
            responses[str(status)] = {"description": PROBLEM_STATUS_TEXT[status],
                                      "content": copy.deepcopy(PROBLEM_CONTENT)}
    op["responses"] = {str(k): v for k, v in sorted(responses.items(), key=lambda kv: str(kv[0]))}


def _schema_for_files(op: dict[str, Any]) -> None:
    for status, response in op.get("responses", {}).items():
        if not str(status).startswith(("2", "3")) or not isinstance(response, dict):
            continue
        for media_type, content in (response.get("content") or {}).items():
            if (not isinstance(content, dict) or content.get("schema") or "json" in media_type
                    or media_type == "text/event-stream"):  # a stream of events, each its own document
                continue
            content["schema"] = dict(TEXT_SCHEMA if media_type.startswith("text/") else FILE_SCHEMA)


def add_problem_schema(openapi: dict[str, Any], *,
                       authenticated: Collection[tuple[str, str]] = ()) -> dict[str, Any]:
    """The `Problem` component, every error answer of every operation as problem+json (FastAPI's own 422
    entry, `HTTPValidationError` as application/json, is not what the service sends), the refusals of
    `generic_problem_statuses` on each operation (`authenticated`: (method, path) of the operations whose
    dependencies read the token; hot routes declare theirs) and a schema for file answers (PDF, images, CSV)."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    auth = {(method.lower(), path) for method, path in authenticated}
    for method, path, op in operations(openapi):
        declare_problems(op, generic_problem_statuses(op, authenticated=(method, path) in auth))
        responses = op["responses"]
        for status, response in list(responses.items()):
            if str(status) == "500":
                del responses[status]
            elif str(status).startswith(("4", "5")):
                response["content"] = copy.deepcopy(PROBLEM_CONTENT)
                if response.get("description") == "Validation Error":
                    response["description"] = PROBLEM_STATUS_TEXT[422]
        _schema_for_files(op)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return openapi
