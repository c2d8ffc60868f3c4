"""Issue 21 (postal): nested and back-dated bodies, cross-agency reads; issue 20: every postal write retried
does its work once (Idempotency-Key, or naturally idempotent)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.postal_tracking.events_service import MAX_NESTING
from shared.db import Tx
from tests.conftest import assert_problem, auth
from tests.postal.helpers import EVENTS_URL, WARD, ev, new_shipment, officer, partner, post_events, scalar, signed

DEPT = "000.00.07.H29"
SIGNERS = {"office_signer": {"name": "Lê Thị Hoa", "title": "Công chức Bộ phận Một cửa"},
           "postal_signer": {"name": "Trần Văn Bưu", "title": "Bưu tá Bưu cục Ba Đình"}}


def handover(ids: list[str], **over: Any) -> dict[str, Any]:
    return {"kind": "to_postal", "agency_code": WARD, "shipment_ids": ids, **SIGNERS, **over}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


async def deliveries(tx: Tx) -> int:
    return int(await scalar(tx, "SELECT count(*) FROM postal.deliveries"))


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 1000, 100_000])
async def test_a_signed_deeply_nested_delivery_is_refused_before_any_work(
    client: httpx.AsyncClient, db_conn: Tx, depth: int,
) -> None:
    """A signed body nested 100,000 deep was a 500 (the parser's recursion): now a 4xx, nothing stored."""
    before = await deliveries(db_conn)
    if depth < 10_000:
        content = ('{"events": [{"tracking_number": "HC1", "status": "created", "occurred_at": '
                   '"2026-12-01T10:00:00+07:00", "note": ' + "[" * depth + "1" + "]" * depth + "}]}")
    else:
        content = "[" * depth + "]" * depth
    body = content.encode()
    from services.postal_tracking.seed import DEMO_WEBHOOK_SECRET
    from services.postal_tracking.webhook import sign

    r = await client.post(EVENTS_URL, content=body, headers=sign(DEMO_WEBHOOK_SECRET, f"msg_{uuid.uuid4().hex}",
                                                                 body))
    assert r.status_code in (400, 422), r.text[:300]
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await deliveries(db_conn) == before


async def test_a_delivery_just_within_the_nesting_bound_is_validated_as_usual(client: httpx.AsyncClient) -> None:
    body, headers = signed([{"tracking_number": "HC1", "status": "created",
                             "occurred_at": "2026-12-01T10:00:00+07:00", "extra": nested(MAX_NESTING - 4)}])
    r = await client.post(EVENTS_URL, content=body, headers=headers)
    assert_problem(r, 422, "unknown_tracking_number")  # parsed and validated: only the number is unknown


@pytest.mark.parametrize("occurred_at", ["0001-01-01T00:00:00+07:00", "9999-12-31T23:59:59+00:00",
                                         "1999-12-31T10:00:00+07:00"])
async def test_event_times_outside_the_calendar_years_are_refused(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, occurred_at: str,
) -> None:
    s = await new_shipment(client, db_conn, make_token)
    before = await deliveries(db_conn)
    r = await post_events(client, [{"tracking_number": s["tracking_number"], "status": "picked_up",
                                    "occurred_at": occurred_at}])
    problem = assert_problem(r, 422, "validation_error")
    assert "2100-12-31" in str(problem["errors"])
    assert await deliveries(db_conn) == before


async def test_handover_times_are_bounded(client: httpx.AsyncClient, make_token: Any, db_conn: Tx) -> None:
    s = await new_shipment(client, db_conn, make_token)
    n = await scalar(db_conn, "SELECT count(*) FROM postal.handovers")
    now = datetime.now(UTC)
    for at in ("0001-01-01T00:00:00+07:00", "9999-12-31T23:59:59+00:00", (now - timedelta(days=31)).isoformat(),
               (now + timedelta(hours=1)).isoformat(), "2026-12-01T10:00:00"):
        r = await client.post("/v1/handovers", json=handover([s["id"]], handed_over_at=at),
                              headers=officer(make_token))
        problem = assert_problem(r, 422, "validation_error")
        assert any("handed_over_at" in e["field"] for e in problem["errors"]), (at, problem)
    assert await scalar(db_conn, "SELECT count(*) FROM postal.handovers") == n


@pytest.mark.parametrize("path", ["/v1/shipments", "/v1/handovers"])
async def test_hostile_bodies_are_4xx_never_500(client: httpx.AsyncClient, make_token: Any, path: str) -> None:
    for content, content_type in ((b"[" * 100_000 + b"]" * 100_000, "application/json"),
                                  (b'{"a":' * 5000 + b"1" + b"}" * 5000, "application/json"),
                                  (b"\xff\xfe\x00", "application/json"), (b"<x/>", "application/xml"),
                                  (b"", "application/json"), (b"x" * 2_000_000, "text/plain")):
        r = await client.post(path, content=content, headers={**officer(make_token), "content-type": content_type})
        assert 400 <= r.status_code < 500, (path, content[:20], r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_another_agencys_officer_sees_no_shipment_or_handover(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    s = await new_shipment(client, db_conn, make_token)
    h = (await client.post("/v1/handovers", json=handover([s["id"]]), headers=officer(make_token))).json()
    dept = officer(make_token, DEPT)
    for path in (f"/v1/shipments/{s['id']}", f"/v1/handovers/{h['id']}"):
        assert_problem(await client.get(path, headers=dept), 404, "not_found")
    for action in ("confirm", "cancel"):
        assert_problem(await client.post(f"/v1/handovers/{h['id']}/{action}", headers=dept), 404, "not_found")
    listed = await client.get("/v1/shipments", params={"dossier_code": s["dossier_code"]}, headers=dept)
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert_problem(await client.get("/v1/shipments", params={"agency_code": WARD}, headers=dept), 403, "forbidden")
    # nor may it put the ward's shipment in its own handover: the same answer as an unknown id
    r = await client.post("/v1/handovers", json=handover([s["id"], str(uuid.uuid4())], agency_code=DEPT),
                          headers=dept)
    problem = assert_problem(r, 422, "validation_error")
    assert [e["type"] for e in problem["errors"]] == ["unknown", "unknown"]


# ---- retries (issue 20 part 2) ----

async def test_a_handover_retried_with_its_key_is_recorded_once(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    s = await new_shipment(client, db_conn, make_token)
    h = officer(make_token)
    first, again = [await client.post("/v1/handovers", json=handover([s["id"]]), headers=h) for _ in range(2)]
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert await scalar(db_conn, "SELECT count(*) FROM postal.handover_items WHERE shipment_id = $1", s["id"]) == 1


async def test_confirm_and_cancel_retried_do_nothing_twice(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    a, b = [await new_shipment(client, db_conn, make_token) for _ in range(2)]
    one = (await client.post("/v1/handovers", json=handover([a["id"]]), headers=officer(make_token))).json()
    confirms = [await client.post(f"/v1/handovers/{one['id']}/confirm", headers=h)
                for h in (officer(make_token), officer(make_token), partner(make_token))]
    assert [r.status_code for r in confirms] == [200] * 3 and {r.json()["status"] for r in confirms} == {"confirmed"}
    assert confirms[0].json()["confirmed_at"] == confirms[2].json()["confirmed_at"]
    assert await scalar(db_conn, "SELECT count(*) FROM postal.shipment_events WHERE shipment_id = $1", a["id"]) == 1
    assert_problem(await client.post(f"/v1/handovers/{one['id']}/cancel", headers=officer(make_token)),
                   409, "conflict")
    two = (await client.post("/v1/handovers", json=handover([b["id"]]), headers=officer(make_token))).json()
    cancels = [await client.post(f"/v1/handovers/{two['id']}/cancel", headers=officer(make_token))
               for _ in range(2)]
    assert [r.status_code for r in cancels] == [200, 200] and cancels[1].json()["status"] == "cancelled"
    assert_problem(await client.post(f"/v1/handovers/{two['id']}/confirm", headers=officer(make_token)),
                   409, "conflict")
    assert await scalar(db_conn, "SELECT count(*) FROM postal.shipment_events WHERE shipment_id = $1", b["id"]) == 0


async def test_a_delivery_retried_places_its_events_once(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    s = await new_shipment(client, db_conn, make_token)
    body, headers = signed([ev(s["tracking_number"], "picked_up", 30), ev(s["tracking_number"], "in_transit", 10)])
    rs = [await client.post(EVENTS_URL, content=body, headers=headers) for _ in range(3)]
    assert [r.json()["duplicate"] for r in rs] == [False, True, True]
    assert await scalar(db_conn, "SELECT count(*) FROM postal.shipment_events WHERE shipment_id = $1", s["id"]) == 2
    # the same events under a new webhook-id (a partner's own retry) are known events: ignored
    body2, headers2 = signed(json.loads(body)["events"])
    r = await client.post(EVENTS_URL, content=body2, headers=headers2)
    assert r.json()["accepted"] == 0 and r.json()["ignored"] == 2
    got = await client.get(f"/v1/shipments/{s['id']}", headers=auth(make_token("officer", agency_code=WARD)))
    assert got.json()["status"] == "in_transit"
