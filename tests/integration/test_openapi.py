"""Each service's OpenAPI is its routes' own declaration: one route per operation, errors as problem+json."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from services.dossier_workflow.app import create_app as workflow_app
from services.intake.app import create_app as intake_app
from services.postal_tracking.app import create_app as postal_app
from services.queue_ticket.app import create_app as queue_app
from shared.problems import PROBLEM_JSON
from shared.settings import Settings

APPS: dict[str, Callable[[Settings], FastAPI]] = {
    "intake": intake_app, "workflow": workflow_app, "postal": postal_app, "queue": queue_app}


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
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
    declared = Counter((route.path, method) for route in app.routes if isinstance(route, APIRoute)
                       for method in route.methods)
    assert [key for key, n in declared.items() if n > 1] == []
    served_by_hand = [getattr(route, "path", "?") for route in app.routes
                      if not isinstance(route, APIRoute) and getattr(route, "path", "").startswith("/v1/")]
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
