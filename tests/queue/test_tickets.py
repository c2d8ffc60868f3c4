"""Kiosk tickets and counter actions, in process on a rolled-back transaction, with a movable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.queue_ticket.app import create_app
from services.queue_ticket.jobs import close_day
from shared.db import Tx
from tests.conftest import app_client_factory, auth
from tests.queue.helpers import Clock, kiosk, new_code, officer, setup_office

client = app_client_factory(create_app)
MONDAY_9AM = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 09:00 in Viet Nam


async def take(client: httpx.AsyncClient, make_token: Any, office: str, cat: str = "HT", **extra: Any) -> Any:
    r = await client.post("/v1/tickets", json={"office_code": office, "category_code": cat, **extra},
                          headers=kiosk(make_token, office))
    assert r.status_code == 201, r.text
    return r.json()


async def count_rows(tx: Tx) -> tuple[int, ...]:
    row = await tx.fetchrow(
        "SELECT (SELECT count(*) FROM queue.tickets), (SELECT coalesce(sum(last_number), 0) FROM queue.ticket_numbers),"
        " (SELECT count(*) FROM queue.tickets WHERE status <> 'waiting'), (SELECT count(*) FROM queue.board_events),"
        " (SELECT count(*) FROM queue.appointments), (SELECT coalesce(sum(taken), 0) FROM queue.slots)")
    assert row is not None
    return tuple(int(v) for v in row.values())


@pytest.mark.smoke
async def test_numbers_reset_at_local_midnight_not_utc(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = new_code()
    await setup_office(client, make_token, code)
    clk = Clock(monkeypatch, datetime(2026, 3, 2, 16, 58, tzinfo=UTC))  # 23:58 Monday in Viet Nam
    a1 = await take(client, make_token, code)
    a2 = await take(client, make_token, code)
    b1 = await take(client, make_token, code, "CT")
    assert (a1["number"], a2["number"], b1["number"]) == ("A001", "A002", "B001")
    assert a1["day"] == "2026-03-02"
    clk.set(datetime(2026, 3, 2, 17, 0, tzinfo=UTC))  # the same UTC day, but 00:00 Tuesday locally
    a3 = await take(client, make_token, code)
    assert (a3["number"], a3["day"]) == ("A001", "2026-03-03")
    clk.set(datetime(2026, 3, 2, 23, 59, tzinfo=UTC))
    assert (await take(client, make_token, code))["number"] == "A002"


async def test_position_priority_and_wait_learnt_from_service_times(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = new_code()
    office = await setup_office(client, make_token, code, counters=1)
    clk = Clock(monkeypatch, MONDAY_9AM)
    first = await take(client, make_token, code)
    assert first["position"] == 1 and first["estimated_wait"]["samples"] == 0
    second = await take(client, make_token, code)
    assert second["position"] == 2
    assert second["estimated_wait"] == {"minutes": 5, "average_service_seconds": 300, "samples": 0, "counters": 1}
    elder = await take(client, make_token, code, priority="elderly")
    assert elder["position"] == 1 and elder["priority_group"] == "elderly"
    # three services of 2 minutes each: the estimate learns them
    staff = officer(make_token, code)
    order = []
    for _ in range(3):
        r = await client.post(f"/v1/counters/{office['counters'][0]}/call-next", headers=staff)
        assert r.status_code == 200, r.text
        order.append(r.json()["ticket"]["number"])
        clk.set(clk.t + timedelta(minutes=2))
    assert order == [elder["number"], first["number"], second["number"]]
    r = await client.post(f"/v1/counters/{office['counters'][0]}/tickets/{second['id']}/finish", headers=staff,
                          json={"dossier_codes": ["000.00.21.H29-260302-0001"]})
    assert r.status_code == 200 and r.json()["dossier_codes"] == ["000.00.21.H29-260302-0001"]
    for _ in range(3):
        await take(client, make_token, code)
    last = await take(client, make_token, code)
    assert last["people_ahead"] == 3
    assert last["estimated_wait"]["samples"] == 3 and last["estimated_wait"]["average_service_seconds"] == 120
    assert last["estimated_wait"]["minutes"] == 6


async def test_cap_refuses_and_offers_next_free_slot(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch, db_conn: Tx,
) -> None:
    code = new_code()
    await setup_office(client, make_token, code, cap=2)
    Clock(monkeypatch, MONDAY_9AM)
    await take(client, make_token, code)
    await take(client, make_token, code, "CT")
    before = await count_rows(db_conn)
    r = await client.post("/v1/tickets", json={"office_code": code, "category_code": "HT"},
                          headers=kiosk(make_token, code))
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    p = r.json()
    assert p["code"] == "office_full" and p["occupancy_cap"] == 2 and p["waiting"] == 2
    assert p["next_free_slot"]["start_at"] == "2026-03-02T09:30:00+07:00"
    assert p["next_free_slot"]["free"] == 2
    assert await count_rows(db_conn) == before


async def test_outside_opening_hours_refused_with_next_opening(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clk = Clock(monkeypatch, datetime(2026, 3, 7, 3, 0, tzinfo=UTC))  # Saturday 10:00 locally
    r = await client.post("/v1/tickets", json={"office_code": "PBD", "category_code": "HT"},
                          headers=kiosk(make_token, "PBD"))
    assert r.status_code == 409 and r.json()["code"] == "office_closed"
    assert r.json()["next_opening_at"] == "2026-03-09T07:30:00+07:00"
    clk.set(datetime(2026, 3, 9, 5, 0, tzinfo=UTC))  # Monday 12:00, lunch break
    r = await client.post("/v1/tickets", json={"office_code": "PBD", "category_code": "HT"},
                          headers=kiosk(make_token, "PBD"))
    assert r.json()["next_opening_at"] == "2026-03-09T13:30:00+07:00"
    clk.set(datetime(2026, 3, 9, 7, 0, tzinfo=UTC))  # 14:00
    r = await client.post("/v1/tickets", json={"office_code": "PBD", "category_code": "HT"},
                          headers=kiosk(make_token, "PBD"))
    assert r.status_code == 201 and r.json()["number"] == "A001"


async def test_counter_actions_keep_state_times_and_report(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = new_code()
    office = await setup_office(client, make_token, code, counters=3)
    c1, c2, c3 = office["counters"]
    clk = Clock(monkeypatch, MONDAY_9AM)
    staff = officer(make_token, code)
    t1 = await take(client, make_token, code)
    t2 = await take(client, make_token, code)
    t3 = await take(client, make_token, code, "CT")
    clk.set(clk.t + timedelta(minutes=5))
    called = (await client.post(f"/v1/counters/{c1}/call-next", headers=staff)).json()["ticket"]
    assert called["id"] == t1["id"] and called["status"] == "called" and called["counter_number"] == 1
    r = await client.post(f"/v1/counters/{c1}/tickets/{t1['id']}/recall", headers=staff)
    assert r.status_code == 200
    board = (await client.get(f"/v1/offices/{code}/board")).json()
    assert [e["kind"] for e in board["latest_calls"]] == ["recall", "call"]
    assert board["counters"][0]["ticket_number"] == "A001"
    assert {w["category_code"]: w["waiting"] for w in board["waiting"]} == {"HT": 1, "CT": 1}
    # skip, come back once, no second time
    r = await client.post(f"/v1/counters/{c1}/tickets/{t1['id']}/skip", headers=staff)
    assert r.json()["status"] == "skipped" and r.json()["skipped_at"]
    r = await client.post(f"/v1/counters/{c1}/tickets/{t1['id']}/return", headers=staff)
    assert r.json()["status"] == "waiting"
    called = (await client.post(f"/v1/counters/{c1}/call-next", headers=staff)).json()["ticket"]
    assert called["id"] == t1["id"]  # kept its place ahead of A002
    await client.post(f"/v1/counters/{c1}/tickets/{t1['id']}/skip", headers=staff)
    r = await client.post(f"/v1/counters/{c1}/tickets/{t1['id']}/return", headers=staff)
    assert r.status_code == 409 and r.json()["code"] == "ticket_closed"
    # transfer A002 to category CT keeps its place ahead of B001; counter 1 does not serve CT
    r = await client.post(f"/v1/tickets/{t2['id']}/transfer", headers=staff, json={"category_code": "CT"})
    assert r.status_code == 200 and r.json()["category_code"] == "CT" and r.json()["number"] == "A002"
    r = await client.post(f"/v1/counters/{c1}/call-next", headers=staff)
    assert r.json()["ticket"] is None
    clk.set(clk.t + timedelta(minutes=1))
    called = (await client.post(f"/v1/counters/{c3}/call-next", headers=staff)).json()["ticket"]
    assert called["id"] == t2["id"]
    # transfer to a counter: only that counter gets it
    r = await client.post(f"/v1/counters/{c3}/tickets/{t2['id']}/transfer", headers=staff, json={"counter_id": c2})
    assert r.status_code == 200 and r.json()["status"] == "waiting"
    called = (await client.post(f"/v1/counters/{c3}/call-next", headers=staff)).json()["ticket"]
    assert called["id"] == t3["id"]
    called = (await client.post(f"/v1/counters/{c2}/call-next", headers=staff)).json()["ticket"]
    assert called["id"] == t2["id"]
    r = await client.post(f"/v1/counters/{c2}/tickets/{t2['id']}/start", headers=staff)
    assert r.json()["status"] == "serving"
    clk.set(clk.t + timedelta(minutes=4))
    r = await client.post(f"/v1/counters/{c2}/tickets/{t2['id']}/finish", headers=staff, json={})
    done = r.json()
    assert done["status"] == "finished"
    for k in ("issued_at", "called_at", "serving_at", "finished_at"):
        assert done[k] is not None
    r = await client.get(f"/v1/offices/{code}/report", params={"date": "2026-03-02"}, headers=staff)
    assert r.status_code == 200, r.text
    rep = r.json()
    ct = next(x for x in rep["by_category"] if x["category_code"] == "CT")
    assert ct["issued"] == 2 and ct["finished"] == 1 and ct["avg_service_seconds"] == 240
    assert [h["hour"] for h in rep["by_hour"]] == [9]
    assert {c["counter_number"] for c in rep["by_counter"]} == {1, 2, 3}


async def test_bad_input_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch, db_conn: Tx,
) -> None:
    code, other = new_code(), new_code()
    office = await setup_office(client, make_token, code)
    other_office = await setup_office(client, make_token, other)
    Clock(monkeypatch, MONDAY_9AM)
    t = await take(client, make_token, code)
    staff = officer(make_token, code)
    c1 = office["counters"][0]
    done = (await client.post(f"/v1/counters/{c1}/call-next", headers=staff)).json()["ticket"]
    await client.post(f"/v1/counters/{c1}/tickets/{done['id']}/finish", headers=staff, json={})
    waiting = await take(client, make_token, code, "CT")
    before = await count_rows(db_conn)

    async def refused(method: str, url: str, status: int, problem_code: str, headers: dict[str, str],
                      **kw: Any) -> dict[str, Any]:
        r = await client.request(method, url, headers=headers, **kw)
        assert r.status_code == status, (url, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        body: dict[str, Any] = r.json()
        assert body["code"] == problem_code and " / " in body["detail"], body
        return body

    k = kiosk(make_token, code)
    p = await refused("POST", "/v1/tickets", 422, "validation_error", kiosk(make_token, "NOPE"),
                      json={"office_code": "NOPE", "category_code": "HT"})
    assert p["errors"][0]["type"] == "unknown_office"
    p = await refused("POST", "/v1/tickets", 422, "validation_error", k,
                      json={"office_code": code, "category_code": "XX"})
    assert p["errors"][0]["type"] == "unknown_category"
    await refused("POST", "/v1/tickets", 422, "validation_error", k,
                  json={"office_code": code, "category_code": "HT", "priority": "vip"})
    await refused("POST", "/v1/tickets", 403, "forbidden", kiosk(make_token, other),
                  json={"office_code": code, "category_code": "HT"})
    await refused("POST", "/v1/tickets", 403, "forbidden", auth(make_token("postal_partner")),
                  json={"office_code": code, "category_code": "HT"})
    # counter 1 serves HT only
    await refused("POST", f"/v1/counters/{c1}/call-next", 409, "category_not_served", staff,
                  json={"category_code": "CT"})
    # a counter of another office, an officer of another office
    # (another office's ticket answers as a ticket that does not exist: its ids are not confirmed)
    await refused("POST", f"/v1/counters/{other_office['counters'][0]}/tickets/{waiting['id']}/transfer", 404,
                  "not_found", officer(make_token, other), json={"category_code": "HT"})
    await refused("POST", f"/v1/tickets/{waiting['id']}/skip", 404, "not_found", officer(make_token, other))
    await refused("POST", f"/v1/counters/{c1}/call-next", 403, "forbidden", officer(make_token, other))
    # a finished ticket acted on again
    for action in ("finish", "recall", "skip", "transfer", "start"):
        await refused("POST", f"/v1/counters/{c1}/tickets/{t['id']}/{action}", 409, "ticket_closed", staff,
                      json={"category_code": "CT"} if action == "transfer" else {})
    # a waiting ticket cannot be finished; transfer needs exactly one target
    await refused("POST", f"/v1/counters/{c1}/tickets/{waiting['id']}/finish", 409, "invalid_state", staff, json={})
    await refused("POST", f"/v1/tickets/{waiting['id']}/transfer", 422, "validation_error", staff,
                  json={"category_code": "HT", "counter_id": c1})
    await refused("POST", f"/v1/tickets/{waiting['id']}/transfer", 422, "validation_error", staff,
                  json={"counter_id": other_office["counters"][0]})
    await refused("POST", "/v1/tickets/999999999/recall", 404, "not_found", staff)
    await refused("POST", f"/v1/counters/{c1}/tickets/{waiting['id']}/explode", 422, "validation_error", staff)
    await refused("GET", f"/v1/offices/{code}/report", 403, "forbidden", officer(make_token, other))
    await refused("GET", "/v1/offices/NOPE/board", 404, "not_found", {})
    assert await count_rows(db_conn) == before


async def test_tickets_left_from_yesterday_are_closed_after_local_midnight(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch, db_conn: Tx,
) -> None:
    code = new_code()
    await setup_office(client, make_token, code, cap=1)
    clk = Clock(monkeypatch, datetime(2026, 3, 2, 10, 0, tzinfo=UTC))  # 17:00 locally
    old = await take(client, make_token, code)
    clk.set(datetime(2026, 3, 2, 17, 5, tzinfo=UTC))  # 00:05 the next local day
    await close_day(db_conn)  # the job's unit of work, inside the test's rolled-back transaction
    status = await db_conn.fetchval("SELECT status FROM queue.tickets WHERE id = $1", old["id"])
    assert status == "skipped"
    fresh = await take(client, make_token, code)  # the cap of 1 counts today's waiting people only
    assert (fresh["number"], fresh["position"]) == ("A001", 1)


async def test_retry_with_the_same_idempotency_key_gets_the_same_ticket(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch, db_conn: Tx,
) -> None:
    code = new_code()
    await setup_office(client, make_token, code)
    Clock(monkeypatch, MONDAY_9AM)
    headers = {**kiosk(make_token, code), "Idempotency-Key": "kiosk-retry-1"}
    body = {"office_code": code, "category_code": "HT"}
    first = await client.post("/v1/tickets", json=body, headers=headers)
    again = await client.post("/v1/tickets", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    r = await client.post("/v1/tickets", json={**body, "category_code": "CT"}, headers=headers)
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_mismatch"
    # a citizen taking a number remotely holds one open ticket per office
    me = auth(make_token("citizen", subject="001090012345"))
    assert (await client.post("/v1/tickets", json=body, headers=me)).status_code == 201
    r = await client.post("/v1/tickets", json={**body, "category_code": "CT"}, headers=me)
    assert r.status_code == 409 and r.json()["code"] == "ticket_limit"
    r = await client.get(f"/v1/tickets/{first.json()['id']}", headers=kiosk(make_token, code))
    assert r.status_code == 200 and r.json()["position"] == 1


async def test_sign_in_holds_the_counter_and_sign_out_finishes_its_ticket(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = new_code()
    office = await setup_office(client, make_token, code, counters=1)
    Clock(monkeypatch, MONDAY_9AM)
    counter = office["counters"][0]
    staff, other = officer(make_token, code), officer(make_token, code, subject="canbo.khac")
    r = await client.post(f"/v1/counters/{counter}/sign-in", headers=staff)
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["officer_subject"], r.json()["signed_in_at"]) == (
        counter, "canbo.test", MONDAY_9AM.isoformat().replace("+00:00", "Z"))
    r = await client.post(f"/v1/counters/{counter}/sign-in", headers=other)
    assert r.status_code == 409 and r.json()["code"] == "counter_taken"
    ticket = await take(client, make_token, code)
    r = await client.post(f"/v1/counters/{counter}/call-next", headers=staff)
    assert r.status_code == 200 and r.json()["ticket"]["id"] == ticket["id"]
    r = await client.post(f"/v1/counters/{counter}/sign-out", headers=staff)
    assert r.status_code == 200, r.text
    assert (r.json()["officer_subject"], r.json()["signed_in_at"]) == (None, None)
    r = await client.get(f"/v1/tickets/{ticket['id']}", headers=staff)
    assert r.json()["status"] == "finished"
    r = await client.post(f"/v1/counters/{counter}/sign-in", headers=other)
    assert r.status_code == 200 and r.json()["officer_subject"] == "canbo.khac"
