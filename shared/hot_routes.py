"""Hot routes: still one FastAPI route each (its declaration is its OpenAPI), but taking the `Request`
and doing by hand what dependencies do, where `make bench` shows dependency injection costs more than
the route's own work (docs/performance.md): the principal, the JSON body, one unit of work.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import Request, params
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from shared.problems import ProblemError

Model = TypeVar("Model", bound=BaseModel)
BODY_MODELS: dict[str, type[BaseModel]] = {}  # models documented by `json_body_doc`, added to each OpenAPI
MAX_JSON_BYTES = 1_000_000
MAX_JSON_DEPTH = 32  # objects and arrays nested deeper than this are refused before any model sees them


def is_json_media_type(content_type: str | None) -> bool:
    """application/json or application/<anything>+json, with any parameters (as FastAPI decides)."""
    media = (content_type or "").partition(";")[0].strip().lower()
    main, slash, sub = media.partition("/")
    return main == "application" and bool(slash) and (sub == "json" or sub.endswith("+json"))


def unsupported_media_type() -> ProblemError:
    return ProblemError(415, "unsupported_media_type",
                        "Nội dung phải là JSON (Content-Type: application/json) / "
                        "The body must be JSON (Content-Type: application/json)")


def too_deep() -> ProblemError:
    return ProblemError(400, "malformed_json",
                        f"JSON lồng quá {MAX_JSON_DEPTH} cấp / JSON nested deeper than {MAX_JSON_DEPTH} levels")


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether objects/arrays in `value` nest more than `limit` levels (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


NOT_PARSED = object()  # `check_json_bytes` did not need to parse the body


def check_json_bytes(raw: bytes) -> Any:
    """400 for JSON nested deeper than `MAX_JSON_DEPTH`. A body with no more brackets than the limit
    cannot be that deep (bytes.count, no parse: returns NOT_PARSED); others are parsed by orjson (which
    refuses past 1024 levels itself), walked, and returned so the caller need not parse them again."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return NOT_PARSED
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:  # malformed, or deeper than orjson goes
        raise ProblemError(400, "malformed_json",
                           f"JSON không hợp lệ hoặc lồng quá {MAX_JSON_DEPTH} cấp / "
                           f"Malformed JSON, or nested deeper than {MAX_JSON_DEPTH} levels") from exc
    if isinstance(data, (dict, list)) and nested_deeper_than(data, MAX_JSON_DEPTH):
        raise too_deep()
    return data


async def json_body(request: Request, model: type[Model]) -> tuple[Model, bytes]:
    """The JSON body as `model` and its bytes, with the same problem+json errors as a body parameter
    guarded by `guard_json_body`: 415 unless the body is JSON, 413, 400 (malformed or too deep), 422."""
    raw = await request.body()
    if len(raw) > MAX_JSON_BYTES:
        raise ProblemError(413, "payload_too_large",
                           f"Nội dung vượt quá {MAX_JSON_BYTES} byte / Body larger than {MAX_JSON_BYTES} bytes")
    if raw and not is_json_media_type(request.headers.get("content-type")):
        raise unsupported_media_type()
    parsed = check_json_bytes(raw)
    try:
        if parsed is NOT_PARSED:
            return model.model_validate_json(raw or b"null"), raw
        return model.model_validate(parsed), raw  # parsed once already (a body with many arrays or objects)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]) from exc


async def guard_json_body(request: Request) -> None:
    """App-wide dependency (`FastAPI(dependencies=[Depends(guard_json_body)])`): a route with a JSON body
    parameter answers a body that is not JSON with 415 and JSON nested too deep with 400, before its
    model sees it, as `json_body` does on hot routes. Routes without a body parameter (hot routes
    included) and form/multipart routes are left alone. FastAPI reads the body before dependencies
    run, so `request.body()` is its cached copy."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    if body_field is None or isinstance(body_field.field_info, params.Form):
        return
    raw = await request.body()
    if not raw:
        return
    if not is_json_media_type(request.headers.get("content-type")):
        raise unsupported_media_type()
    check_json_bytes(raw)


def json_body_doc(model: type[BaseModel], **extra: Any) -> dict[str, Any]:
    """`openapi_extra=` declaring the JSON body a hot route parses with `json_body`."""
    BODY_MODELS[model.__name__] = model
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}, **extra}


def add_body_schemas(openapi: dict[str, Any]) -> dict[str, Any]:
    """The schemas of the bodies `json_body_doc` refers to (FastAPI adds only those of body parameters)."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    referenced = str(openapi.get("paths", {}))
    for name, model in BODY_MODELS.items():
        if f"#/components/schemas/{name}" in referenced and name not in schemas:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for def_name, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(def_name, definition)
            schemas[name] = schema
    return openapi
