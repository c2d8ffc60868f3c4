"""Hot routes: still one FastAPI route each (its declaration is its OpenAPI), but taking the `Request`
and doing by hand what dependencies do, where `make bench` shows dependency injection costs more than
the route's own work (docs/performance.md): the principal, the JSON body, one unit of work.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from shared.problems import ProblemError

Model = TypeVar("Model", bound=BaseModel)
BODY_MODELS: dict[str, type[BaseModel]] = {}  # models documented by `json_body_doc`, added to each OpenAPI
MAX_JSON_BYTES = 1_000_000


async def json_body(request: Request, model: type[Model]) -> tuple[Model, bytes]:
    """The JSON body as `model` and its bytes, with the same problem+json errors as a body parameter."""
    raw = await request.body()
    if len(raw) > MAX_JSON_BYTES:
        raise ProblemError(413, "payload_too_large",
                           f"Nội dung vượt quá {MAX_JSON_BYTES} byte / Body larger than {MAX_JSON_BYTES} bytes")
    try:
        return model.model_validate_json(raw or b"null"), raw
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]) from exc


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
