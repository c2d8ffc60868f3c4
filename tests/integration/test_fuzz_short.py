"""The short `make fuzz`: Schemathesis against the whole stack's merged OpenAPI, as an officer and an admin,
finds no server error and no answer (status, content type, body) that the OpenAPI does not declare.

Its own database (`<test database>_fuzz`) and its own processes: what fuzzing creates (calendar days off,
dossiers, counters signed in) must not reach the other end-to-end tests.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from scripts.fuzz import Result, fuzz, fuzz_database, read_ndjson

pytestmark = pytest.mark.e2e

SLOW = "/board/stream$"  # an event stream answers until the request timeout: `make fuzz` covers it
OPERATIONS_AT_LEAST = 70  # the merged OpenAPI has 78 today; a run that reaches far fewer tested little


def test_short_fuzz_finds_no_server_error_and_no_undeclared_answer(database_url: str, tmp_path: Path) -> None:
    started = time.monotonic()
    result = fuzz(fuzz_database(database_url), max_examples=2, phases="examples,fuzzing", report_dir=tmp_path,
                  request_timeout=15.0, extra=["--exclude-path-regex", SLOW])
    print(result.summary(), f"\ntook {time.monotonic() - started:.0f} s")
    assert len(result.operations) >= OPERATIONS_AT_LEAST and result.requests > 2 * OPERATIONS_AT_LEAST
    assert [f"{f.operation}: {f.request} -> {f.answer}" for f in result.server_errors] == []
    assert [f"{f.operation}: {f.message[:300]} ({f.request} -> {f.answer})" for f in result.undeclared] == []


def test_the_report_reader_counts_requests_and_sorts_failures(tmp_path: Path) -> None:
    """The counts the fuzz run prints come from Schemathesis' NDJSON events: a 500, an undeclared status."""
    import base64
    import json

    def b64(text: str) -> dict[str, str]:
        return {"$base64": base64.b64encode(text.encode()).decode()}

    def exchange(status: int, body: str) -> dict[str, object]:
        return {"request": {"method": "POST", "uri": "http://gw/api/queue/v1/x", "body": b64("{}")},
                "response": {"status_code": status, "content": b64(body)}}

    def failed(code: str, message: str) -> dict[str, object]:
        return {"name": "check", "status": "failure",
                "failure_info": {"failure": {"code": code, "title": "t", "message": message}}}

    events = [
        {"Initialize": {}},
        {"ScenarioFinished": {"recorder": {
            "label": "POST /api/queue/v1/x",
            "interactions": {"a": exchange(500, "boom"), "b": exchange(418, "teapot"), "c": exchange(200, "{}")},
            "checks": {"a": [failed("ST101", ""), failed("ST103", "Received: 500")],
                       "b": [failed("ST103", "Received: 418"), failed("ST103", "Received: 418")],
                       "c": [{"name": "not_a_server_error", "status": "success"}]}}}},
        {"ScenarioFinished": {"recorder": {"label": "Stateful tests", "interactions": {"d": exchange(200, "")}}}},
    ]
    path = tmp_path / "run.ndjson"
    path.write_text("\n".join(json.dumps(e) for e in events))
    result = Result()
    read_ndjson(path, "officer", result)
    assert result.operations == {"POST /api/queue/v1/x"} and result.requests == 4
    assert [f.answer for f in result.server_errors] == ["500 boom"]
    assert [f.answer for f in result.undeclared] == ["418 teapot"]
    assert not result.ok


@pytest.mark.parametrize("error", ["server", "client"])
async def test_a_value_the_database_refuses_is_a_400_answered_without_raising_again(error: str) -> None:
    """`make fuzz` found 502s: an id past int64 went through the catch-all handler, which Starlette follows by
    raising again, and uvicorn then closed the connection under the gateway. Answered where it is raised now:
    in process, an exception that leaves the app fails the call (raise_app_exceptions)."""
    import asyncpg.exceptions as pg_errors
    import httpx
    from asyncpg.exceptions import _base as pg_base
    from fastapi import FastAPI

    from shared.problems import install_problem_handlers

    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        if error == "server":  # PostgreSQL's own refusal (SQLSTATE class 22)
            raise pg_errors.NumericValueOutOfRangeError("value out of range for type integer")
        raise pg_base.DataError(f"invalid input for query argument $1: {thing_id} (value out of int64 range)")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        r = await c.get("/v1/things/167631693972046241652015104")
    assert r.status_code == 400 and r.json()["code"] == "bad_request"
