"""Hostile inputs answer 4xx problem+json, never 500; every workflow write retried does its work once."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from services.dossier_workflow.app import create_app
from shared.db import Tx
from shared.pagination import encode_cursor
from tests.conftest import app_client_factory, assert_problem, auth
from tests.workflow.helpers import CITIZEN, PROVINCE, act, new_dossier, officer, snapshot, vn

client = app_client_factory(create_app)
EDGES = ["9999-12-31", "0001-01-01", "1999-12-31", "2100-01-01"]


@pytest.mark.parametrize("edge", EDGES)
async def test_report_dates_outside_the_window_are_a_422_that_says_so(
    client: httpx.AsyncClient, make_token: Any, edge: str,
) -> None:
    tok, leader = officer(make_token), officer(make_token, "lanhdao.phuong", role="supervisor")
    admin = make_token("admin", subject="admin")
    for who in (tok, admin):  # tracking-book?from=9999-12-31 was a 500 (date overflow)
        for params in ({"from": edge, "to": edge}, {"from": "2026-01-01", "to": edge},
                       {"from": edge, "to": "2026-12-31"}):
            body = assert_problem(await client.get("/v1/tracking-book", params=params, headers=auth(who)),
                                  422, "validation_error")
            assert "2000-01-01" in body["detail"] and body["errors"][0]["type"] == "date_range"
    for who in (leader, admin):
        for params in ({"from": edge, "to": edge}, {"from": "2026-01-01", "to": edge}):
            assert_problem(await client.get("/v1/stats", params={**params, "group_by": "month"}, headers=auth(who)),
                           422, "validation_error")
    due = f"{edge}T00:00:00+07:00"
    assert_problem(await client.get("/v1/dossiers", params={"due_before": due}, headers=auth(tok)),
                   422, "validation_error")


async def test_the_window_itself_is_accepted_and_a_reversed_period_is_refused(
    client: httpx.AsyncClient, make_token: Any,
) -> None:
    tok = officer(make_token)
    r = await client.get("/v1/tracking-book", params={"from": "2000-01-01", "to": "2099-12-31"}, headers=auth(tok))
    assert r.status_code == 200, r.text
    assert_problem(await client.get("/v1/tracking-book", params={"from": "2026-12-01", "to": "2026-11-01"},
                                    headers=auth(tok)), 422, "validation_error")


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z",
                                "2200-01-01T00:00:00Z"])
async def test_a_cursor_holding_an_extreme_date_is_a_400(
    client: httpx.AsyncClient, make_token: Any, at: str,
) -> None:
    tok = officer(make_token)
    cursor = encode_cursor([at, "x"])
    assert_problem(await client.get("/v1/dossiers", params={"cursor": cursor}, headers=auth(tok)), 400, "bad_request")
    assert_problem(await client.get("/v1/tracking-book", params={"from": "2026-01-01", "to": "2026-12-31",
                                                                 "cursor": cursor}, headers=auth(tok)),
                   400, "bad_request")


@pytest.mark.parametrize("new_due_at", ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-12:00",
                                        "0001-01-01T00:00:00+14:00", "2099-12-31T17:00:00+07:00"])
async def test_an_apology_date_far_away_is_a_422_and_changes_nothing(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, new_due_at: str,
) -> None:
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))
    before = await snapshot(db_conn, code)
    body = assert_problem(await act(client, officer(make_token), code, 1, action="issue_apology", reason="Xác minh",
                                    new_due_at=new_due_at), 422, "validation_error")
    assert body["errors"][0]["field"] == "new_due_at"
    assert await snapshot(db_conn, code) == before


async def test_an_unknown_transfer_id_out_of_range_is_a_422(client: httpx.AsyncClient, make_token: Any) -> None:
    gov = auth(make_token("gov_system", subject="dvcqg"))
    for transfer_id in ("99999999999999999999999", "0", "-1"):
        assert_problem(await client.post(f"/v1/transfers/{transfer_id}/callback", json={"decision": "accepted"},
                                         headers=gov), 422, "validation_error")


async def _returned(client: httpx.AsyncClient, make_token: Any, db_conn: Tx) -> str:
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))
    tok, leader = officer(make_token), officer(make_token, "lanhdao.phuong", role="supervisor")
    for version, (who, action) in enumerate([(tok, "start"), (leader, "approve"), (tok, "return_result")], start=1):
        assert (await act(client, who, code, version, action=action)).status_code == 200
    return code


async def test_a_retried_rating_with_its_key_is_answered_again_not_counted_twice(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    code = await _returned(client, make_token, db_conn)
    key = uuid.uuid4().hex
    citizen = auth(make_token("citizen", subject=CITIZEN), **{"Idempotency-Key": key})
    first = await client.post(f"/v1/dossiers/{code}/rating", json={"score": 4, "comment": "Tốt"}, headers=citizen)
    again = await client.post(f"/v1/dossiers/{code}/rating", json={"comment": "Tốt", "score": 4}, headers=citizen)
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert_problem(await client.post(f"/v1/dossiers/{code}/rating", json={"score": 1}, headers=citizen),
                   422, "idempotency_key_mismatch")
    rated = await db_conn.fetchrow(
        "SELECT (SELECT count(*) FROM workflow.history WHERE dossier_code = $1 AND action = 'rate') AS n, "
        "(SELECT rating FROM workflow.dossiers WHERE code = $1) AS rating", code)
    assert rated is not None and rated["n"] == 1 and rated["rating"] == 4
    keyless = auth(make_token("citizen", subject=CITIZEN))  # a retry without a key: refused, not counted
    assert_problem(await client.post(f"/v1/dossiers/{code}/rating", json={"score": 4}, headers=keyless),
                   409, "already_rated")


async def test_a_retried_transfer_callback_with_its_key_is_answered_again_not_applied_twice(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))
    ward, dept = officer(make_token), officer(make_token, "canbo.so", PROVINCE)
    assert (await act(client, ward, code, 1, action="transfer", target_agency=PROVINCE)).status_code == 200
    r = await act(client, dept, code, 2, action="transfer", external_system="BHXH")
    transfer_id = r.json()["pending_transfer"]["id"]
    gov = auth(make_token("gov_system", subject="dvcqg"), **{"Idempotency-Key": uuid.uuid4().hex})
    body = {"decision": "accepted", "external_ref": "BHXH-9"}
    first = await client.post(f"/v1/transfers/{transfer_id}/callback", json=body, headers=gov)
    after = await snapshot(db_conn, code)
    again = await client.post(f"/v1/transfers/{transfer_id}/callback", json=body, headers=gov)
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true" and first.json()["status"] == "accepted"
    assert await snapshot(db_conn, code) == after  # no second history row, no second version
    n = await db_conn.fetchval(
        "SELECT count(*) FROM workflow.history WHERE dossier_code = $1 AND action = 'transfer_accepted'", code)
    assert n == 1


async def test_a_retried_action_without_a_key_is_refused_by_its_version_not_done_twice(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    """Actions are naturally idempotent through If-Match: the retry names a version that no longer is."""
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))
    tok = officer(make_token)
    assert (await act(client, tok, code, 1, action="assign", assignee="canbo2.phuong")).status_code == 200
    after = await snapshot(db_conn, code)
    assert_problem(await act(client, tok, code, 1, action="assign", assignee="canbo2.phuong"),
                   412, "precondition_failed")
    assert await snapshot(db_conn, code) == after
