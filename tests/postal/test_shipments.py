"""Shipments: creation rules, visibility (a partner sees only its own), listing, the outbound job."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.postal_tracking import jobs, polling_service
from services.postal_tracking.app import create_app
from services.postal_tracking.tracking import SimulatedTrackingClient
from shared.db import Database, Tx
from shared.settings import Settings
from tests.conftest import assert_problem, auth
from tests.postal.helpers import WARD, know_dossier, new_shipment, officer, partner, scalar, shipment_body


async def test_officer_and_partner_create_with_postage_and_s10_numbers(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    s = await new_shipment(client, db_conn, make_token, weight_grams=1200, cod_amount=50_000)
    assert s["postage"] == 48_000 and s["cod_amount"] == 50_000 and s["service_code"] == "HCC-KQ"
    assert s["sender"]["ward_code"] and s["recipient"]["name"] == "Nguyễn Văn An"
    digits = s["tracking_number"][2:10]
    weights = (8, 6, 4, 2, 3, 5, 9, 7)
    check = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    assert int(s["tracking_number"][10]) == {10: 0, 11: 5}.get(check, check)
    code = await know_dossier(db_conn, partner_code="VNPOST", channel="postal", delivery="counter")
    r = await client.post("/v1/shipments", json=shipment_body("inbound", tracking_number="EB123456785VN",
                                                              dossier_code=code), headers=partner(make_token))
    assert r.status_code == 201, r.text
    assert r.json()["tracking_number"] == "EB123456785VN" and r.json()["partner_code"] == "VNPOST"
    assert r.headers["location"] == f"/api/postal/v1/shipments/{r.json()['id']}"


async def test_refusals_list_every_problem(client: httpx.AsyncClient, make_token: Any, db_conn: Tx) -> None:
    async def known(**over: Any) -> dict[str, Any]:
        body = shipment_body(**over)
        await know_dossier(db_conn, body["dossier_code"])
        return body

    bad = await known(recipient=None, sender={"name": "A", "address_line": "x", "ward_code": "99999"},
                      service_code="NOPE")
    body = assert_problem(await client.post("/v1/shipments", json=bad, headers=officer(make_token)),
                          422, "validation_error")
    assert sorted(e["type"] for e in body["errors"]) == ["missing", "unknown_service", "unknown_ward"]
    assert_problem(await client.post("/v1/shipments", json=await known(weight_grams=9000),
                                     headers=officer(make_token)), 422, "validation_error")
    assert_problem(await client.post("/v1/shipments", json=await known(), headers=officer(make_token,
                                                                                         "000.00.07.H29")),
                   403, "forbidden")
    assert_problem(await client.post("/v1/shipments", json=await known(partner_code="VTP"),
                                     headers=partner(make_token)), 403, "forbidden")
    citizen = auth(make_token("citizen", subject="001090012345"), **{"Idempotency-Key": "k1"})
    assert_problem(await client.post("/v1/shipments", json=await known(), headers=citizen), 403, "forbidden")
    assert_problem(await client.post("/v1/shipments", json=await known(),
                                     headers=auth(make_token("officer", agency_code=WARD))),
                   400, "idempotency_key_missing")
    one = await known()
    assert (await client.post("/v1/shipments", json=one, headers=officer(make_token))).status_code == 201
    twin = assert_problem(await client.post("/v1/shipments", json=one, headers=officer(make_token)), 409, "conflict")
    assert twin["shipment_id"]
    h = officer(make_token)
    first = await client.post("/v1/shipments", json=await known(), headers=h)
    replay = await client.post("/v1/shipments", content=first.request.content,
                               headers={**h, "content-type": "application/json"})
    assert replay.status_code == 201 and replay.json()["id"] == first.json()["id"]
    assert replay.headers["idempotent-replayed"] == "true"
    assert await scalar(db_conn, "SELECT count(*) FROM postal.shipments WHERE dossier_code = $1",
                        first.json()["dossier_code"]) == 1


DEPT = "000.00.07.H29"  # a provincial department: another agency than the ward's


async def test_shipments_only_for_known_dossiers_of_the_callers_agency_or_partner(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    """A ward officer cannot create the department's outbound shipment (the hijack of issue 21); "not yours"
    and "does not exist" are one 404 body; a 409 on an existing shipment confirms no other agency's code."""
    dept_code = await know_dossier(db_conn, f"{DEPT}-251124-{uuid.uuid4().hex[:6]}", agency=DEPT)
    ward_officer = officer(make_token)
    hijack = await client.post("/v1/shipments", json=shipment_body(dossier_code=dept_code), headers=ward_officer)
    missing_code = f"{DEPT}-251124-{uuid.uuid4().hex[:6]}"
    missing = await client.post("/v1/shipments", json=shipment_body(dossier_code=missing_code),
                                headers=officer(make_token))
    not_yours, nothing = assert_problem(hijack, 404, "not_found"), assert_problem(missing, 404, "not_found")
    assert {k: v for k, v in not_yours.items() if k != "request_id"} == {
        k: (v.replace(missing_code, dept_code) if isinstance(v, str) else v)
        for k, v in nothing.items() if k != "request_id"}
    dept_officer = officer(make_token, DEPT)
    made = await client.post("/v1/shipments", json=shipment_body(dossier_code=dept_code, agency_code=DEPT),
                             headers=dept_officer)
    assert made.status_code == 201, made.text
    again = await client.post("/v1/shipments", json=shipment_body(dossier_code=dept_code), headers=ward_officer)
    assert_problem(again, 404, "not_found")  # not a 409: the existing shipment is not confirmed
    assert await scalar(db_conn, "SELECT count(*) FROM postal.shipments WHERE dossier_code = $1", dept_code) == 1
    # a dossier the ward received for the department (phi địa giới): both agencies may ship it
    shared = await know_dossier(db_conn, agency=WARD, competent=DEPT)
    r = await client.post("/v1/shipments", json=shipment_body("inbound", dossier_code=shared, agency_code=DEPT),
                          headers=officer(make_token, DEPT))
    assert r.status_code == 201, r.text
    # partners: inbound only, and only for the dossiers they registered
    await db_conn.execute("INSERT INTO postal.partners (code, name, client_id) VALUES ('VTP', 'Viettel Post', 'vtp')")
    theirs = await know_dossier(db_conn, partner_code="VTP", channel="postal")
    mine = await know_dossier(db_conn, partner_code="VNPOST", channel="postal")
    assert_problem(await client.post("/v1/shipments", json=shipment_body("inbound", dossier_code=theirs),
                                     headers=partner(make_token)), 404, "not_found")
    assert_problem(await client.post("/v1/shipments", json=shipment_body("outbound", dossier_code=mine),
                                     headers=partner(make_token)), 403, "forbidden")
    wrong_agency = assert_problem(await client.post(
        "/v1/shipments", json=shipment_body("inbound", dossier_code=mine, agency_code=DEPT),
        headers=partner(make_token)), 422, "validation_error")
    assert wrong_agency["errors"][0]["field"] == "agency_code"
    r = await client.post("/v1/shipments", json=shipment_body("inbound", dossier_code=mine),
                          headers=partner(make_token))
    assert r.status_code == 201 and r.json()["agency_code"] == WARD, r.text


async def test_a_partner_sees_only_its_shipments(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    await db_conn.execute("INSERT INTO postal.partners (code, name, client_id) VALUES ('VTP', 'Viettel Post', 'vtp')")
    mine = await new_shipment(client, db_conn, make_token)
    other = auth(make_token("postal_partner", subject="vtp", partner_code="VTP"))
    assert_problem(await client.get(f"/v1/shipments/{mine['id']}", headers=other), 404, "not_found")
    listed = await client.get("/v1/shipments", params={"dossier_code": mine["dossier_code"]}, headers=other)
    assert listed.status_code == 200 and listed.json()["items"] == []
    own = auth(make_token("postal_partner", subject="vnpost", partner_code="VNPOST"))
    got = await client.get(f"/v1/shipments/{mine['id']}", headers=own)
    assert got.status_code == 200 and got.json()["timeline"] == []
    other_agency = auth(make_token("officer", agency_code="000.00.07.H29"))
    assert_problem(await client.get(f"/v1/shipments/{mine['id']}", headers=other_agency), 404, "not_found")
    assert_problem(await client.get("/v1/shipments/not-a-uuid", headers=own), 404, "not_found")
    assert_problem(await client.get("/v1/shipments", headers=auth(make_token("citizen", subject="001090012345"))),
                   403, "forbidden")


async def test_listing_filters_and_keyset_pages(client: httpx.AsyncClient, make_token: Any, db_conn: Tx) -> None:
    made = [await new_shipment(client, db_conn, make_token) for _ in range(5)]
    h = auth(make_token("officer", agency_code=WARD))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "status": "created", "direction": "outbound"}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/shipments", params=params, headers=h)).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert {s["id"] for s in made} <= set(seen) and len(seen) == len(set(seen))
    one = (await client.get("/v1/shipments", params={"dossier_code": made[0]["dossier_code"]}, headers=h)).json()
    assert [s["id"] for s in one["items"]] == [made[0]["id"]]
    assert_problem(await client.get("/v1/shipments", params={"cursor": "???"}, headers=h), 400, "bad_request")
    assert_problem(await client.get("/v1/shipments", params={"status": "lost"}, headers=h), 422, "validation_error")


def outbound_job(code: str) -> dict[str, Any]:
    return {"code": code, "agency_code": WARD, "recipient_name": "Trần Thị Bình", "phone": "0987654321",
            "address_line": "5 phố Đội Cấn", "ward_code": "00004", "cod_amount": 15_000}


async def test_create_outbound_job_makes_one_shipment_however_often_it_runs(settings: Settings) -> None:
    code = f"{WARD}-251124-J{uuid.uuid4().hex[:6]}"
    db = Database(settings, application_name="motcua-test-postal-jobs")
    try:
        async def run_once() -> None:
            async with db.transaction() as tx:
                await jobs.on_create_outbound(tx, [outbound_job(code)])

        await run_once()
        await run_once()
        await asyncio.gather(*(run_once() for _ in range(5)))  # racing twins: ON CONFLICT DO NOTHING
        async with db.transaction() as tx:
            rows = await tx.fetch(
                "SELECT direction, status, cod_amount, recipient->>'name', partner_code FROM postal.shipments "
                "WHERE dossier_code = $1", code)
        assert [tuple(r) for r in rows] == [("outbound", "created", 15_000, "Trần Thị Bình", "VNPOST")]
    finally:
        await db.dispose()


async def test_polling_fallback_fills_in_a_shipment_whose_webhooks_were_lost(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    s = await new_shipment(client, db_conn, make_token)
    await db_conn.execute("UPDATE postal.shipments SET created_at = now() - interval '10 hours', "
                          "last_heard_at = now() - interval '10 hours' WHERE id = $1", s["id"])
    now = datetime.now(UTC)
    result = await polling_service.poll_stale(db_conn, now, timedelta(hours=1),
                                              clients={"VNPOST": SimulatedTrackingClient()})
    assert result["polled"] >= 1 and result["accepted"] >= 4
    row = await db_conn.fetchrow("SELECT status, last_heard_at FROM postal.shipments WHERE id = $1", s["id"])
    assert row is not None
    assert row[0] in ("delivered", "returned_to_sender") and row[1] >= now - timedelta(seconds=5)
    n = await scalar(db_conn, "SELECT count(*) FROM postal.shipment_events WHERE shipment_id = $1 AND source='poll'",
                     s["id"])
    await polling_service.poll_stale(db_conn, now + timedelta(hours=2), timedelta(hours=1),
                                     clients={"VNPOST": SimulatedTrackingClient()})
    # a final shipment is not polled again, and known events would not be added twice
    assert await scalar(db_conn, "SELECT count(*) FROM postal.shipment_events WHERE shipment_id = $1",
                        s["id"]) == n


async def test_committed_client_create_and_read(
    committed_client_factory: Any, make_token: Any, settings: Settings,
) -> None:
    db = Database(settings, application_name="motcua-test-postal-committed")
    async with committed_client_factory(create_app) as c:
        s = await new_shipment(c, db, make_token)
        await db.dispose()
        r = await c.get(f"/v1/shipments/{s['id']}", headers=auth(make_token("admin", subject="quantri")))
    assert r.status_code == 200 and r.json()["dossier_code"] == s["dossier_code"]
