"""Each service's OpenAPI is its routes' own declaration: one route per operation, errors as problem+json."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from gateway.app import Gateway
from gateway.openapi import merge
from services.dossier_workflow.app import create_app as workflow_app
from services.intake.app import create_app as intake_app
from services.postal_tracking.app import create_app as postal_app
from services.queue_ticket.app import create_app as queue_app
from shared.problems import PROBLEM_JSON
from shared.settings import Settings

APPS: dict[str, Callable[[Settings], FastAPI]] = {
    "intake": intake_app, "workflow": workflow_app, "postal": postal_app, "queue": queue_app}


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation)."""
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, op


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


@pytest.mark.parametrize("name", sorted(APPS))
def test_one_route_per_operation_and_no_plain_starlette_routes(name: str) -> None:
    app = APPS[name](Settings(environment="test"))
    routes = list(iter_route_contexts(app.routes))  # through included routers
    declared = Counter((ctx.path_format, method) for ctx in routes if isinstance(ctx.original_route, APIRoute)
                       for method in ctx.methods or ())
    assert len(declared) > 5
    assert [key for key, n in declared.items() if n > 1] == []
    served_by_hand = [ctx.path for ctx in routes
                      if not isinstance(ctx.original_route, APIRoute) and (ctx.path or "").startswith("/v1/")]
    assert served_by_hand == []


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_error_is_a_documented_problem(name: str) -> None:
    spec = APPS[name](Settings(environment="test")).openapi()
    schemas = spec["components"]["schemas"]
    assert {"type", "title", "status", "detail", "code"} <= set(schemas["Problem"]["properties"])
    wrong: list[str] = []
    for path, method, op in operations(spec):
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                content = response.get("content", {})
                if set(content) != {PROBLEM_JSON} or content[PROBLEM_JSON]["schema"] != {
                        "$ref": "#/components/schemas/Problem"}:
                    wrong.append(f"{method.upper()} {path} {status}")
        takes_input = op.get("parameters") or "requestBody" in op
        if takes_input and "422" not in op["responses"]:
            wrong.append(f"{method.upper()} {path}: 422 undocumented")
    assert wrong == []
    missing = {ref for ref in refs(spec) if ref.removeprefix("#/components/schemas/") not in schemas}
    assert missing == set()


def merged_spec() -> dict[str, Any]:
    """The gateway's /openapi.json, built in process from the same parts."""
    settings = Settings(environment="test")
    docs = {name: create(settings).openapi() for name, create in APPS.items()}
    return merge(Gateway(settings).control_app.openapi(), docs)


def test_the_merged_openapi_has_unique_operation_ids_and_schema_titles() -> None:
    spec = merged_spec()
    ops = list(operations(spec))
    assert len(ops) > 70
    op_ids = Counter(op.get("operationId") for _, _, op in ops)
    assert [op_id for op_id, n in op_ids.items() if n > 1 or op_id is None] == []
    schemas = spec["components"]["schemas"]
    titles = Counter(schema.get("title", name) for name, schema in schemas.items())
    assert [title for title, n in titles.items() if n > 1] == []
    assert {"HTTPValidationError", "ValidationError"} & set(schemas) == set()
    # the names two services define differently, each under its service's name
    assert {"IntakeAddressIn", "PostalAddressIn", "IntakeDossierOut", "WorkflowDossierOut"} <= set(schemas)
    assert "AddressIn" not in schemas and "DossierOut" not in schemas
    assert {"Problem", "FailedJob"} <= set(schemas)  # alike everywhere: once, under its own name
    missing = {ref for ref in refs(spec) if ref.removeprefix("#/components/schemas/") not in schemas}
    assert missing == set()


def test_every_merged_answer_is_declared_with_its_content() -> None:
    spec = merged_spec()
    wrong: list[str] = []
    for path, method, op in operations(spec):
        where = f"{method.upper()} {path}"
        statuses = set(op["responses"])
        if "500" in statuses:
            wrong.append(f"{where}: declares 500")
        if "503" not in statuses:
            wrong.append(f"{where}: no 503")
        if path.startswith(("/api/intake/", "/api/workflow/", "/api/postal/", "/api/queue/")):
            if not {"401", "429", "502", "504"} <= statuses:
                wrong.append(f"{where}: the gateway's refusals missing")
            if "requestBody" in op and not {"400", "413", "415", "422"} <= statuses:
                wrong.append(f"{where}: a body's refusals missing")
            if "{" in path and "404" not in statuses:
                wrong.append(f"{where}: no 404")
            if op.get("security") == [{"bearer": []}] and "403" not in statuses:
                wrong.append(f"{where}: no 403")
        for status, response in op["responses"].items():
            for media_type, content in (response.get("content") or {}).items():
                if media_type != "text/event-stream" and not content.get("schema") and "json" not in media_type:
                    wrong.append(f"{where} {status} {media_type}: no schema")
            if status.startswith(("4", "5")) and set(response.get("content", {})) != {PROBLEM_JSON}:
                wrong.append(f"{where} {status}: not problem+json")
    assert wrong == []
    receipt = spec["paths"]["/api/intake/v1/dossiers/{code}/receipt"]["get"]["responses"]["200"]["content"]
    assert receipt["application/pdf"]["schema"] == {"type": "string", "format": "binary"}
    ping = spec["paths"]["/api/intake/v1/ping"]["get"]
    assert ping["security"] == [{"bearer": []}] and "403" in ping["responses"]
    public = spec["paths"]["/api/intake/v1/procedures"]["get"]
    assert "security" not in public and "403" not in public["responses"] and "401" in public["responses"]


def test_a_schema_name_two_services_define_differently_is_prefixed_and_what_refers_to_it_too() -> None:
    def doc(address: dict[str, Any], path: str) -> dict[str, Any]:
        ref = {"$ref": "#/components/schemas/AddressIn"}
        return {"paths": {path: {"post": {"operationId": "create", "requestBody": {"content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ShipIn"}}}},
                    "responses": {"200": {"description": "ok"}}}}},
                "components": {"schemas": {
                    "AddressIn": {"title": "AddressIn", "type": "object", "properties": address},
                    "ShipIn": {"title": "ShipIn", "type": "object", "properties": {"to": ref}},
                    "Same": {"title": "Same", "type": "string"}}}}

    merged = merge({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}},
                   {"intake": doc({"a": {"type": "string"}}, "/v1/a"),
                    "postal": doc({"b": {"type": "string"}}, "/v1/b")})
    schemas = merged["components"]["schemas"]
    assert {"IntakeAddressIn", "PostalAddressIn", "IntakeShipIn", "PostalShipIn", "Same", "Problem"} <= set(schemas)
    assert schemas["PostalShipIn"]["properties"]["to"] == {"$ref": "#/components/schemas/PostalAddressIn"}
    assert schemas["IntakeAddressIn"]["title"] == "IntakeAddressIn" and schemas["Same"]["title"] == "Same"
    body = merged["paths"]["/api/postal/v1/b"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/PostalShipIn"}
    assert {merged["paths"][p]["post"]["operationId"] for p in ("/api/intake/v1/a", "/api/postal/v1/b")} == {
        "intake_create", "postal_create"}
