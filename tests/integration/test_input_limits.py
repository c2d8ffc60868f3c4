"""A body that is not JSON, or JSON nested too deep, gets the same problem on every JSON route: hot
routes (`shared.hot_routes.json_body`) and routes with a FastAPI body parameter alike."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from pydantic import BaseModel

from services.queue_ticket.app import create_app as create_queue
from shared.hot_routes import MAX_JSON_DEPTH, guard_json_body, json_body, nested_deeper_than
from shared.problems import install_problem_handlers
from tests.conftest import TokenFactory, app_client_factory, assert_problem, auth

queue = app_client_factory(create_queue)

TICKET = {"office_code": "PBD", "category_code": "HT"}


def nested(depth: int) -> bytes:
    """A valid JSON object with an extra field nested `depth` levels in all (the object counts as one)."""
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    return json.dumps({**TICKET, "x": "PLACEHOLDER"}).replace('"PLACEHOLDER"', inner).encode()


WRONG_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
               "application/jsonp", "text/json", None]


@pytest.mark.parametrize("content_type", WRONG_TYPES)
async def test_a_hot_route_refuses_a_body_that_is_not_declared_json(
        queue: httpx.AsyncClient, make_token: TokenFactory, content_type: str | None) -> None:
    headers = auth(make_token("kiosk", office_code="PBD"))
    if content_type:
        headers["Content-Type"] = content_type
    r = await queue.post("/v1/tickets", content=json.dumps(TICKET).encode(), headers=headers)
    assert_problem(r, 415, "unsupported_media_type")


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON", "application/problem+json"])
async def test_a_hot_route_takes_json_media_types(
        queue: httpx.AsyncClient, make_token: TokenFactory, content_type: str) -> None:
    r = await queue.post("/v1/tickets", content=b'{"office_code": 1}',
                         headers={**auth(make_token("kiosk", office_code="PBD")), "Content-Type": content_type})
    assert_problem(r, 422, "validation_error")  # the model saw it


async def test_a_hot_route_refuses_json_nested_too_deep(queue: httpx.AsyncClient, make_token: TokenFactory) -> None:
    headers = {**auth(make_token("kiosk", office_code="PBD")), "Content-Type": "application/json"}
    for depth in (MAX_JSON_DEPTH + 1, 200, 1100, 100_000):
        r = await queue.post("/v1/tickets", content=nested(depth), headers=headers)
        assert_problem(r, 400, "malformed_json")
    r = await queue.post("/v1/tickets", content=nested(MAX_JSON_DEPTH), headers=headers)
    assert r.status_code != 400, r.text  # at the limit: the model decides


async def test_a_body_parameter_route_answers_alike(queue: httpx.AsyncClient, make_token: TokenFactory) -> None:
    headers = auth(make_token("citizen"))
    r = await queue.post("/v1/appointments", content=b'{"office_code": "PBD"}',
                         headers={**headers, "Content-Type": "text/plain"})
    assert_problem(r, 415, "unsupported_media_type")
    r = await queue.post("/v1/appointments", content=nested(MAX_JSON_DEPTH + 1),
                         headers={**headers, "Content-Type": "application/json"})
    assert_problem(r, 400, "malformed_json")


class Item(BaseModel):
    name: str
    extra: Any = None


def guarded_app() -> FastAPI:
    """Wired as a service app should be: the guard as an app-wide dependency."""
    app = FastAPI(dependencies=[Depends(guard_json_body)])
    install_problem_handlers(app)

    @app.post("/normal")
    async def normal(item: Item) -> dict[str, str]:
        return {"name": item.name}

    @app.post("/hot")
    async def hot(request: Request) -> dict[str, str]:
        item, _raw = await json_body(request, Item)
        return {"name": item.name}

    @app.post("/form")
    async def form(name: str = Form(...)) -> dict[str, str]:
        return {"name": name}

    @app.post("/upload")
    async def upload(file: UploadFile = File(...)) -> dict[str, str]:
        return {"name": file.filename or ""}

    @app.get("/read")
    async def read() -> dict[str, str]:
        return {"ok": "yes"}

    return app


@pytest.fixture
async def guarded() -> Any:
    transport = httpx.ASGITransport(app=guarded_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.mark.parametrize("path", ["/normal", "/hot"])
async def test_hot_and_body_parameter_routes_give_the_same_problems(guarded: httpx.AsyncClient, path: str) -> None:
    ok = b'{"name": "An"}'
    assert (await guarded.post(path, content=ok, headers={"Content-Type": "application/json"})).json() == {
        "name": "An"}
    assert (await guarded.post(path, content=ok, headers={"Content-Type": "application/vnd.x+json"})).status_code == 200
    for content_type in WRONG_TYPES:
        headers = {"Content-Type": content_type} if content_type else {}
        assert_problem(await guarded.post(path, content=ok, headers=headers), 415, "unsupported_media_type")
    deep = b'{"name": "An", "extra": ' + b"[" * 40 + b"]" * 40 + b"}"
    assert_problem(await guarded.post(path, content=deep, headers={"Content-Type": "application/json"}),
                   400, "malformed_json")
    assert_problem(await guarded.post(path, content=b'{"name": ', headers={"Content-Type": "application/json"}),
                   400, "malformed_json")
    assert_problem(await guarded.post(path, content=b'{"name": 1}', headers={"Content-Type": "application/json"}),
                   422, "validation_error")


async def test_the_guard_leaves_forms_uploads_and_reads_alone(guarded: httpx.AsyncClient) -> None:
    assert (await guarded.post("/form", data={"name": "An"})).json() == {"name": "An"}
    assert (await guarded.post("/upload", files={"file": ("a.pdf", b"%PDF-1.4")})).json() == {"name": "a.pdf"}
    assert (await guarded.get("/read")).status_code == 200


def test_depth_is_walked_without_recursion() -> None:
    value: Any = []
    for _ in range(100_000):
        value = [value]
    assert nested_deeper_than(value, 32) and not nested_deeper_than([[{"a": [1]}]], 4)
    assert nested_deeper_than([[{"a": [1]}]], 3)
