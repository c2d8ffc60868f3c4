"""The signed partner webhook: signatures, windows, rotation, duplicates, disorder, effects, bad input."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.postal_tracking import events_service
from services.postal_tracking.seed import DEMO_WEBHOOK_SECRET
from shared.db import Tx
from tests.conftest import assert_problem
from tests.postal.helpers import EVENTS_URL, ev, jobs_for, new_shipment, post_events, scalar, signed

OTHER_SECRET = "whsec_" + base64.b64encode(b"another-partner-secret-32-bytes!").decode()


async def stored(conn: Tx) -> tuple[int, int]:
    d = await scalar(conn, "SELECT count(*) FROM postal.deliveries")
    e = await scalar(conn, "SELECT count(*) FROM postal.shipment_events")
    return int(d), int(e)


async def shipment_row(conn: Tx, sid: str) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT * FROM postal.shipments WHERE id = $1", sid)
    assert row is not None
    return dict(row)


@pytest.mark.smoke
async def test_signed_batch_moves_the_shipment_and_delivered_tells_workflow(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    s = await new_shipment(client, db_conn, make_token)
    assert s["status"] == "created" and s["tracking_number"].endswith("VN") and s["postage"] == 31_000
    t = s["tracking_number"]
    r = await post_events(client, [ev(t, "picked_up", 30, event_id="e1"), ev(t, "in_transit", 20, event_id="e2"),
                                   ev(t, "out_for_delivery", 10, event_id="e3"), ev(t, "delivered", 1, event_id="e4")])
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 4 and r.json()["duplicate"] is False
    row = await shipment_row(db_conn, s["id"])
    assert row["status"] == "delivered" and row["version"] == 2
    jobs = await jobs_for(db_conn, "dossier.result_delivered", s["id"])
    assert len(jobs) == 1 and jobs[0]["code"] == s["dossier_code"] and jobs[0]["shipment_id"] == s["id"]
    assert datetime.fromisoformat(jobs[0]["delivered_at"]) == row["status_at"]
    assert await jobs_for(db_conn, "dossier.paper_arrived", s["id"]) == []


async def test_inbound_delivered_tells_intake_the_paper_arrived(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    s = await new_shipment(client, db_conn, make_token, "inbound")
    assert s["recipient"]["ward_code"] and s["sender"]["name"] == "Nguyễn Văn An"
    r = await post_events(client, [ev(s["tracking_number"], "delivered", 5)])
    assert r.status_code == 200, r.text
    jobs = await jobs_for(db_conn, "dossier.paper_arrived", s["id"])
    assert [j["code"] for j in jobs] == [s["dossier_code"]] and jobs[0]["arrived_at"]
    assert await jobs_for(db_conn, "dossier.result_delivered", s["id"]) == []


async def test_forged_expired_unknown_and_unsigned_deliveries_store_nothing(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    s = await new_shipment(client, db_conn, make_token)
    events = [ev(s["tracking_number"], "picked_up", 1)]
    before = await stored(db_conn)
    body, h = signed(events, secret=OTHER_SECRET)
    assert_problem(await client.post(EVENTS_URL, content=body, headers=h), 401, "webhook_signature_invalid")
    body, h = signed(events)
    assert_problem(await client.post(EVENTS_URL, content=body.replace(b"picked_up", b"delivered"), headers=h),
                   401, "webhook_signature_invalid")
    for minutes in (-6, 6):
        body, h = signed(events, at=datetime.now(UTC) + timedelta(minutes=minutes))
        assert_problem(await client.post(EVENTS_URL, content=body, headers=h), 401, "webhook_timestamp_out_of_window")
    body, h = signed(events)
    assert_problem(await client.post("/v1/partners/NOPE/events", content=body, headers=h), 401, "unknown_partner")
    assert_problem(await client.post(EVENTS_URL, content=body, headers={"content-type": "application/json"}),
                   401, "webhook_signature_missing")
    assert_problem(await client.post(EVENTS_URL, content=body, headers={**h, "webhook-timestamp": "soon"}),
                   400, "bad_request")
    assert_problem(await client.post(EVENTS_URL, content=body, headers={**h, "webhook-signature": "v1,???"}),
                   401, "webhook_signature_invalid")
    assert await stored(db_conn) == before
    assert (await shipment_row(db_conn, s["id"]))["status"] == "created"


async def test_a_second_secret_is_valid_during_rotation_and_a_revoked_one_is_not(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    s = await new_shipment(client, db_conn, make_token)
    t = s["tracking_number"]
    assert (await post_events(client, [ev(t, "picked_up", 9)])).status_code == 200  # caches the one secret
    await db_conn.execute("INSERT INTO postal.partner_secrets (partner_code, secret) VALUES ('VNPOST', $1)",
                          OTHER_SECRET)
    r = await post_events(client, [ev(t, "in_transit", 8)], secret=OTHER_SECRET)
    assert r.status_code == 200 and r.json()["accepted"] == 1
    r = await post_events(client, [ev(t, "out_for_delivery", 7)])
    assert r.status_code == 200 and r.json()["accepted"] == 1
    await db_conn.execute("UPDATE postal.partner_secrets SET revoked_at = now() WHERE secret = $1",
                          DEMO_WEBHOOK_SECRET)
    events_service.forget_cached_secrets()
    assert_problem(await post_events(client, [ev(t, "delivered", 6)]), 401, "webhook_signature_invalid")
    r = await post_events(client, [ev(t, "delivered", 6)], secret=OTHER_SECRET)
    assert r.status_code == 200 and (await shipment_row(db_conn, s["id"]))["status"] == "delivered"


async def test_the_same_webhook_id_again_changes_nothing(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    s = await new_shipment(client, db_conn, make_token)
    body, h = signed([ev(s["tracking_number"], "failed_attempt", 3, reason_code="KH_VANG_NHA")])
    first = await client.post(EVENTS_URL, content=body, headers=h)
    assert first.status_code == 200 and first.json()["accepted"] == 1
    snapshot = (await shipment_row(db_conn, s["id"]), await stored(db_conn))
    notes = await jobs_for(db_conn, "notification.send", s["tracking_number"])
    assert len(notes) == 1 and notes[0]["template"] == "postal_failed_attempt" and notes[0]["to"] == "0912345678"
    assert notes[0]["channel"] == "sms" and notes[0]["params"]["reason"] == "recipient_not_home"
    for _ in range(3):
        again = await client.post(EVENTS_URL, content=body, headers=h)
        assert again.status_code == 200 and again.json() == {**again.json(), "duplicate": True, "accepted": 0}
    assert (await shipment_row(db_conn, s["id"]), await stored(db_conn)) == snapshot
    assert len(await jobs_for(db_conn, "notification.send", s["tracking_number"])) == 1
    # the same event under a new webhook-id (a partner re-sending) is recognised by its content
    r = await client.post(EVENTS_URL, content=body, headers=signed_headers_for(body))
    assert r.status_code == 200 and r.json()["accepted"] == 0 and r.json()["ignored"] == 1


def signed_headers_for(body: bytes) -> dict[str, str]:
    from services.postal_tracking.webhook import sign

    return sign(DEMO_WEBHOOK_SECRET, f"msg_{uuid.uuid4().hex}", body)


async def test_out_of_order_events_are_placed_by_time_and_a_final_state_stays(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    s = await new_shipment(client, db_conn, make_token)
    t, sid = s["tracking_number"], s["id"]
    assert (await post_events(client, [ev(t, "delivered", 10, event_id="d")])).status_code == 200
    assert (await post_events(client, [ev(t, "out_for_delivery", 30, event_id="o"),
                                       ev(t, "picked_up", 50, event_id="p")])).status_code == 200
    assert (await post_events(client, [ev(t, "in_transit", 40, event_id="i")])).status_code == 200
    row = await shipment_row(db_conn, sid)
    assert row["status"] == "delivered"
    # a late scan after delivery is kept on the timeline but does not move the state back
    r = await post_events(client, [ev(t, "failed_attempt", 5, event_id="late", reason_code="R01")])
    assert r.status_code == 200 and r.json()["accepted"] == 1
    assert (await shipment_row(db_conn, sid))["status"] == "delivered"
    assert await jobs_for(db_conn, "notification.send", t) == []  # no SMS about a stale failure
    got = (await client.get(f"/v1/shipments/{sid}", headers=auth_officer(make_token))).json()
    assert [e["status"] for e in got["timeline"]] == ["picked_up", "in_transit", "out_for_delivery", "delivered",
                                                      "failed_attempt"]
    assert [e["event_id"] for e in got["timeline"]] == ["p", "i", "o", "d", "late"]
    assert len(await jobs_for(db_conn, "dossier.result_delivered", sid)) == 1
    # only the partner's explicit correction leaves a final state
    r = await post_events(client, [ev(t, "out_for_delivery", 4, event_id="fix", correction=True,
                                      note="Phát nhầm, phát lại")])
    assert r.status_code == 200
    row = await shipment_row(db_conn, sid)
    assert row["status"] == "out_for_delivery" and row["failed_attempts"] == 1


def auth_officer(make_token: Any) -> dict[str, str]:
    from tests.conftest import auth

    return auth(make_token("officer", subject="canbo.phuong", agency_code="000.00.21.H29"))


async def test_returned_to_sender_tells_the_office_to_keep_the_result(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    s = await new_shipment(client, db_conn, make_token)
    t = s["tracking_number"]
    r = await post_events(client, [ev(t, "failed_attempt", 30, reason_code="TU_CHOI"),
                                   ev(t, "failed_attempt", 20, reason_code="weird-code"),
                                   ev(t, "returned_to_sender", 10, reason_code="TU_CHOI")])
    assert r.status_code == 200
    row = await shipment_row(db_conn, s["id"])
    assert (row["status"], row["failure_reason"], row["failure_raw_code"], row["failed_attempts"]) == (
        "returned_to_sender", "recipient_refused", "TU_CHOI", 2)
    notes = await jobs_for(db_conn, "notification.send", t)
    assert sorted(n["template"] for n in notes) == ["postal_result_returned_keep", "postal_returned_to_sender"]
    office = next(n for n in notes if n["template"] == "postal_result_returned_keep")
    assert office["to"] == "mot-cua@000.00.21.H29" and office["dossier_code"] == s["dossier_code"]
    timeline = (await client.get(f"/v1/shipments/{s['id']}", headers=auth_officer(make_token))).json()["timeline"]
    assert [(e["failure_reason"], e["raw_code"]) for e in timeline] == [
        ("recipient_refused", "TU_CHOI"), ("other", "weird-code"), ("recipient_refused", "TU_CHOI")]


async def test_unknown_or_other_partners_numbers_and_bad_bodies_store_nothing(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    s = await new_shipment(client, db_conn, make_token)
    await db_conn.execute("INSERT INTO postal.partners (code, name, client_id) VALUES ('VTP', 'Viettel Post', 'vtp')")
    await db_conn.execute("INSERT INTO postal.partner_secrets (partner_code, secret) VALUES ('VTP', $1)",
                          OTHER_SECRET)
    before = await stored(db_conn)
    r = await post_events(client, [ev(s["tracking_number"], "picked_up", 2), ev("XX000000000VN", "picked_up", 2)])
    body = assert_problem(r, 422, "unknown_tracking_number")
    assert [e["message"] for e in body["errors"]] == ["XX000000000VN"]
    # a partner may not move another partner's shipment
    b, h = signed([ev(s["tracking_number"], "delivered", 2)], secret=OTHER_SECRET)
    assert_problem(await client.post("/v1/partners/VTP/events", content=b, headers=h), 422, "unknown_tracking_number")
    b, h = signed([])
    assert_problem(await client.post(EVENTS_URL, content=b"{not json", headers=signed_headers_for(b"{not json")),
                   400, "malformed_json")
    assert_problem(await client.post(EVENTS_URL, content=b, headers=h), 422, "validation_error")
    bad = [{"tracking_number": s["tracking_number"], "status": "teleported", "occurred_at": "yesterday"}]
    assert_problem(await post_events(client, bad), 422, "validation_error")
    naive = [{"tracking_number": s["tracking_number"], "status": "picked_up", "occurred_at": "2026-01-01T10:00:00"}]
    assert_problem(await post_events(client, naive), 422, "validation_error")
    assert_problem(await post_events(client, [ev(s["tracking_number"], "picked_up", -60)]), 422, "validation_error")
    huge = [ev(s["tracking_number"], "in_transit", 1, note="x" * 900, event_id=str(i)) for i in range(700)]
    big, h = signed(huge)
    assert len(big) > 512 * 1024
    assert_problem(await client.post(EVENTS_URL, content=big, headers=h), 413, "payload_too_large")
    assert await stored(db_conn) == before
    # the rejected webhook-id was not stored: the partner's corrected retry goes through
    good, h = signed([ev(s["tracking_number"], "picked_up", 2)], msg_id="retry-me")
    assert (await client.post(EVENTS_URL, content=good, headers=h)).json()["accepted"] == 1


async def test_openapi_declares_the_webhook_body_and_every_problem(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/v1/partners/{partner_code}/events"]["post"]
    body = op["requestBody"]["content"]["application/json"]
    schemas = spec["components"]["schemas"]
    assert body["schema"] == {"$ref": "#/components/schemas/WebhookBody"}
    schema = schemas["WebhookBody"]
    event = schemas[schema["properties"]["events"]["items"]["$ref"].rsplit("/", 1)[-1]]
    assert schema["required"] == ["events"] and "tracking_number" in event["properties"]
    assert body["example"]["events"][0]["tracking_number"] == "HC100000014VN"
    for status in ("400", "401", "413", "422"):
        assert "application/problem+json" in op["responses"][status]["content"]
    for path, ops in spec["paths"].items():
        for method, operation in ops.items():
            if path.startswith("/v1/") and "admin" not in path and path != "/v1/ping":
                assert "422" in operation["responses"] and "application/problem+json" in \
                    operation["responses"]["422"]["content"], (method, path)
