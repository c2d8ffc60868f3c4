"""Every retry is safe: call-next and the counter actions with Idempotency-Key and the counter's current ticket as
precondition (If-Match), every other write retried, and dates bounded (in process; races with real commits)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.queue_ticket.app import create_app
from services.queue_ticket.jobs import close_day
from shared.db import Tx
from tests.conftest import app_client_factory, assert_problem
from tests.queue.helpers import Clock, citizen, kiosk, new_code, officer, setup_office
from tests.queue.test_races import ClientFactory
from tests.queue.test_tickets import MONDAY_9AM, count_rows, take

client = app_client_factory(create_app)


def call_headers(staff: dict[str, str], current: int | None, key: str | None = None) -> dict[str, str]:
    headers = {**staff, "If-Match": f'"{"none" if current is None else current}"'}
    return {**headers, "Idempotency-Key": key} if key else headers


async def statuses(tx: Tx, *ids: int) -> list[str]:
    rows = await tx.fetch("SELECT id, status FROM queue.tickets WHERE id = ANY($1::bigint[])", list(ids))
    found = {r["id"]: r["status"] for r in rows}
    return [found[i] for i in ids]


async def test_a_retried_call_next_after_a_lost_answer_calls_no_other_ticket(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch, db_conn: Tx,
) -> None:
    """The fault the issue saw: the answer of a call-next is lost (502, reset after commit) and the counter sends
    it again. With the same Idempotency-Key it gets the same ticket; with only If-Match it is told what it is
    serving (412); either way the ticket just called is neither finished unseen nor skipped."""
    code = new_code()
    office = await setup_office(client, make_token, code, counters=1)
    Clock(monkeypatch, MONDAY_9AM)
    t1, t2, t3 = [await take(client, make_token, code) for _ in range(3)]
    staff, counter = officer(make_token, code), office["counters"][0]
    url = f"/v1/counters/{counter}/call-next"
    first = await client.post(url, headers=call_headers(staff, None, "k-1"))
    assert first.status_code == 200 and first.json()["ticket"]["id"] == t1["id"]
    assert first.headers["etag"] == f'"{t1["id"]}"'
    lost = await client.post(url, headers=call_headers(staff, t1["id"], "k-2"))  # the answer never arrives
    assert lost.json()["ticket"]["id"] == t2["id"]
    retry = await client.post(url, headers=call_headers(staff, t1["id"], "k-2"))
    assert retry.status_code == 200 and retry.content == lost.content
    assert retry.headers["idempotent-replayed"] == "true"
    assert await statuses(db_conn, t1["id"], t2["id"], t3["id"]) == ["finished", "called", "waiting"]
    before = await count_rows(db_conn)
    again = await client.post(url, headers=call_headers(staff, t1["id"]))  # the same retry, without a key
    body = assert_problem(again, 412, "precondition_failed")
    assert body["current_ticket_id"] == t2["id"] and body["current_ticket"]["number"] == t2["number"]
    assert again.headers["etag"] == f'"{t2["id"]}"'
    again = await client.post(url, headers=call_headers(staff, None, "k-3"))  # a counter restarted, believing none
    assert assert_problem(again, 412, "precondition_failed")["current_ticket_id"] == t2["id"]
    assert await count_rows(db_conn) == before
    assert await statuses(db_conn, t1["id"], t2["id"], t3["id"]) == ["finished", "called", "waiting"]
    nxt = await client.post(url, headers=call_headers(staff, t2["id"]))
    assert nxt.json()["ticket"]["id"] == t3["id"]
    empty = await client.post(url, headers=call_headers(staff, t3["id"]))
    assert empty.json()["ticket"] is None and empty.headers["etag"] == '"none"'
    assert (await client.post(url, headers=call_headers(staff, None))).json()["ticket"] is None
    # the same key with another body is refused, a malformed If-Match is a 400
    assert_problem(await client.post(url, headers=call_headers(staff, t1["id"], "k-2"), json={"category_code": "HT"}),
                   422, "idempotency_key_mismatch")
    assert_problem(await client.post(url, headers={**staff, "If-Match": '"A001"'}), 400, "bad_request")


async def test_the_counter_knows_its_current_ticket_after_every_action(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch, db_conn: Tx,
) -> None:
    """finish, skip and transfer (by the counter or by another officer of the office), sign-out and the day's
    close leave the counter serving nothing: the next call-next with If-Match "none" is accepted."""
    code = new_code()
    office = await setup_office(client, make_token, code, counters=2)
    clk = Clock(monkeypatch, MONDAY_9AM)
    staff, counter = officer(make_token, code), office["counters"][1]
    url = f"/v1/counters/{counter}/call-next"
    ends: list[Callable[[int], Awaitable[httpx.Response]]] = [
        lambda t: client.post(f"/v1/counters/{counter}/tickets/{t}/finish", headers=staff, json={}),
        lambda t: client.post(f"/v1/tickets/{t}/finish", headers=staff),
        lambda t: client.post(f"/v1/counters/{counter}/tickets/{t}/skip", headers=staff),
        lambda t: client.post(f"/v1/tickets/{t}/skip", headers=staff),
        lambda t: client.post(f"/v1/tickets/{t}/transfer", headers=staff, json={"category_code": "CT"}),
        lambda t: client.post(f"/v1/counters/{counter}/tickets/{t}/transfer", headers=staff,
                              json={"counter_id": office["counters"][0]}),
        lambda t: client.post(f"/v1/counters/{counter}/sign-out", headers=staff),
    ]
    for end in ends:
        t = await take(client, make_token, code)
        r = await client.post(url, headers=call_headers(staff, None))
        assert r.status_code == 200 and r.json()["ticket"]["id"] == t["id"], r.text
        r = await client.post(f"/v1/counters/{counter}/tickets/{t['id']}/recall", headers=staff)  # stays current
        assert r.status_code == 200
        assert_problem(await client.post(url, headers=call_headers(staff, None)), 412, "precondition_failed")
        assert (await end(t["id"])).status_code == 200
        r = await client.post(url, headers=call_headers(staff, None))  # nothing current any more
        assert r.status_code == 200, r.text
        if r.json()["ticket"] is not None:  # a transferred ticket comes back: finish it
            await client.post(f"/v1/tickets/{r.json()['ticket']['id']}/finish", headers=staff)
        await db_conn.execute("UPDATE queue.tickets SET status = 'finished' WHERE office_code = $1 "
                              "AND status = 'waiting'", code)
    t = await take(client, make_token, code)
    await client.post(url, headers=call_headers(staff, None))
    clk.set(MONDAY_9AM + timedelta(days=1))
    await close_day(db_conn)
    current = await db_conn.fetchval("SELECT current_ticket_id FROM queue.counters WHERE id = $1", counter)
    assert current is None and await statuses(db_conn, t["id"]) == ["skipped"]


async def test_counter_actions_with_a_key_are_done_once(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch, db_conn: Tx,
) -> None:
    """recall, skip, transfer and finish sent twice with one Idempotency-Key: one change, one board event, the
    same answer; a retried transfer does not pull back a ticket another counter has called meanwhile."""
    code = new_code()
    office = await setup_office(client, make_token, code, counters=2)
    Clock(monkeypatch, MONDAY_9AM)
    staff = officer(make_token, code)
    c1, c2 = office["counters"]
    t = await take(client, make_token, code)
    await client.post(f"/v1/counters/{c1}/call-next", headers=staff)
    events = "SELECT count(*) FROM queue.board_events WHERE office_code = $1"
    n = await db_conn.fetchval(events, code)
    key = {**staff, "Idempotency-Key": "recall-1"}
    first = await client.post(f"/v1/counters/{c1}/tickets/{t['id']}/recall", headers=key)
    second = await client.post(f"/v1/counters/{c1}/tickets/{t['id']}/recall", headers=key)
    assert (first.status_code, second.status_code) == (200, 200) and first.content == second.content
    assert second.headers["idempotent-replayed"] == "true"
    assert await db_conn.fetchval(events, code) == n + 1
    assert await db_conn.fetchval("SELECT recalls FROM queue.tickets WHERE id = $1", t["id"]) == 1
    # transfer to CT, answer lost; counter 2 calls it; the retry must not take it back
    key = {**staff, "Idempotency-Key": "transfer-1"}
    first = await client.post(f"/v1/tickets/{t['id']}/transfer", headers=key, json={"category_code": "CT"})
    assert first.status_code == 200 and first.json()["status"] == "waiting"
    r = await client.post(f"/v1/counters/{c2}/call-next", headers=staff)
    assert r.json()["ticket"]["id"] == t["id"]
    retry = await client.post(f"/v1/tickets/{t['id']}/transfer", headers=key, json={"category_code": "CT"})
    assert retry.content == first.content
    row = await db_conn.fetchrow("SELECT status, counter_id FROM queue.tickets WHERE id = $1", t["id"])
    assert row is not None and (row["status"], row["counter_id"]) == ("called", c2)
    for action, body in (("skip", None), ("finish", {"dossier_codes": ["000.00.21.H29-260302-0001"]})):
        t = await take(client, make_token, code)
        await client.post(f"/v1/counters/{c1}/call-next", headers=staff)
        key = {**staff, "Idempotency-Key": f"{action}-1"}
        url = f"/v1/counters/{c1}/tickets/{t['id']}/{action}"
        first = await client.post(url, headers=key, json=body)
        retry = await client.post(url, headers=key, json=body)
        assert first.status_code == retry.status_code == 200 and first.content == retry.content, retry.text
        assert_problem(await client.post(url, headers=staff, json=body), 409, "ticket_closed")  # no key: refused


async def test_every_other_write_retried_does_its_work_once(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch, db_conn: Tx,
) -> None:
    """Configuration PUTs, sign-in/sign-out, tickets, booking, confirm, cancel, check-in: each sent twice (with an
    Idempotency-Key where the route takes one, and without): one row, one ticket, one place, the same answer."""
    code = new_code()
    office = await setup_office(client, make_token, code, counters=1, slot_capacity=3)
    await setup_office(client, make_token, code, counters=1, slot_capacity=3)  # every PUT again: same state
    assert await db_conn.fetchval("SELECT count(*) FROM queue.counters WHERE office_code = $1", code) == 1
    assert await db_conn.fetchval("SELECT count(*) FROM queue.categories WHERE office_code = $1", code) == 2
    clk = Clock(monkeypatch, MONDAY_9AM)
    staff, counter = officer(make_token, code), office["counters"][0]

    async def twice(method: str, url: str, headers: dict[str, str], status: int = 200,
                    **kw: Any) -> httpx.Response:
        first = await client.request(method, url, headers=headers, **kw)
        again = await client.request(method, url, headers=headers, **kw)
        assert first.status_code == again.status_code == status, again.text
        assert first.content == again.content and again.headers.get("idempotent-replayed") == "true"
        return first

    signed = await twice("POST", f"/v1/counters/{counter}/sign-in", {**staff, "Idempotency-Key": "in-1"})
    assert signed.json()["officer_subject"] == "canbo.test"
    ticket = (await twice("POST", "/v1/tickets", {**kiosk(make_token, code), "Idempotency-Key": "t-1"}, 201,
                          json={"office_code": code, "category_code": "HT"})).json()
    await client.post(f"/v1/counters/{counter}/call-next", headers=staff)
    await twice("POST", f"/v1/counters/{counter}/sign-out", {**staff, "Idempotency-Key": "out-1"})
    assert await statuses(db_conn, ticket["id"]) == ["finished"]
    who = citizen(make_token)
    slot = "2026-03-02T10:00:00+07:00"
    booked = (await twice("POST", "/v1/appointments", {**who, "Idempotency-Key": "b-1"}, 201,
                          json={"office_code": code, "category_code": "HT", "slot_start": slot})).json()
    url = f"/v1/appointments/{booked['booking_code']}"
    await twice("POST", f"{url}/confirm", {**who, "Idempotency-Key": "c-1"})
    assert (await client.post(f"{url}/confirm", headers=who)).json()["status"] == "confirmed"  # natural
    taken = "SELECT taken FROM queue.slots WHERE office_code = $1"
    assert await db_conn.fetchval(taken, code) == 1
    clk.set(MONDAY_9AM + timedelta(minutes=45))  # check-in opens 30 minutes before the 10:00 slot
    checked = (await twice("POST", f"{url}/check-in", {**who, "Idempotency-Key": "ci-1"}, 201)).json()
    assert_problem(await client.post(f"{url}/check-in", headers=who), 409, "booking_closed")  # no key: refused
    assert await db_conn.fetchval("SELECT count(*) FROM queue.tickets WHERE booking_code = $1",
                                  booked["booking_code"]) == 1
    assert checked["ticket"]["booking_code"] == booked["booking_code"]
    other = (await client.post("/v1/appointments", headers={**who, "Idempotency-Key": "b-2"}, json={
        "office_code": code, "category_code": "CT", "slot_start": slot})).json()
    await twice("POST", f"/v1/appointments/{other['booking_code']}/cancel", {**who, "Idempotency-Key": "x-1"})
    assert_problem(await client.post(f"/v1/appointments/{other['booking_code']}/cancel", headers=who), 409,
                   "booking_closed")
    assert await db_conn.fetchval(taken + " AND category_code = 'CT'", code) == 0  # given back once
    # a booking retried without a key: the second is refused, one place taken
    r = await client.post("/v1/appointments", headers=who, json={
        "office_code": code, "category_code": "CT", "slot_start": slot})
    assert r.status_code == 201
    r = await client.post("/v1/appointments", headers=who, json={
        "office_code": code, "category_code": "CT", "slot_start": slot})
    assert_problem(r, 409, "booking_limit")
    assert await db_conn.fetchval(taken + " AND category_code = 'CT'", code) == 1


@pytest.mark.parametrize("slot", ["9999-12-31T23:30:00+07:00", "9999-12-31T20:00:00-12:00",
                                  "0001-01-01T00:00:00+07:00", "0001-01-01T08:00:00+14:00",
                                  "1990-01-01T08:00:00+07:00", "2026-06-01T08:00:00+07:00"])
async def test_an_appointment_out_of_the_booking_window_is_a_422(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch, db_conn: Tx, slot: str,
) -> None:
    code = new_code()
    await setup_office(client, make_token, code)
    Clock(monkeypatch, MONDAY_9AM)
    before = await count_rows(db_conn)
    r = await client.post("/v1/appointments", headers=citizen(make_token), json={
        "office_code": code, "category_code": "HT", "slot_start": slot})
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"][0]["field"] == "slot_start" and body["errors"][0]["type"] == "out_of_range"
    assert "2026-03-02 – 2026-05-01" in body["detail"]
    assert await count_rows(db_conn) == before


async def test_slot_and_report_dates_are_bounded(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = new_code()
    await setup_office(client, make_token, code)
    Clock(monkeypatch, MONDAY_9AM)
    for day in ("0001-01-01", "2026-03-01", "9999-12-31"):
        r = await client.get(f"/v1/offices/{code}/slots", params={"category_code": "HT", "date": day})
        assert_problem(r, 422, "validation_error")
    for day in ("0001-01-01", "1999-12-31", "2101-01-01", "9999-12-31"):
        r = await client.get(f"/v1/offices/{code}/report", params={"date": day}, headers=officer(make_token, code))
        assert assert_problem(r, 422, "validation_error")["errors"][0]["type"] == "out_of_range"
    r = await client.get(f"/v1/offices/{code}/report", params={"date": "2026-03-02"},
                         headers=officer(make_token, code))
    assert r.status_code == 200


async def test_call_next_and_actions_document_retries_in_openapi(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/v1/counters/{counter_id}/call-next"]["post"]
    assert {p["name"] for p in op["parameters"]} >= {"If-Match", "Idempotency-Key"}
    assert {"400", "409", "412"} <= set(op["responses"]) and "ETag" in op["responses"]["200"]["headers"]
    for path in ("/v1/counters/{counter_id}/tickets/{ticket_id}/finish", "/v1/tickets/{ticket_id}/{action}",
                 "/v1/counters/{counter_id}/sign-out", "/v1/appointments/{booking_code}/check-in"):
        op = spec["paths"][path]["post"]
        assert "Idempotency-Key" in {p["name"] for p in op["parameters"]}, path


# --- races with real commits ---------------------------------------------------------------------------------------

async def committed_office(factory: ClientFactory, make_token: Any, counters: int,
                           waiting: int) -> tuple[list[httpx.AsyncClient], dict[str, Any], list[int]]:
    apps = [factory(create_app), factory(create_app)]
    code = new_code()
    office = await setup_office(apps[0], make_token, code, counters=counters, cap=10_000)
    ids = []
    for _ in range(waiting):
        r = await apps[0].post("/v1/tickets", headers=kiosk(make_token, code),
                               json={"office_code": code, "category_code": "HT"})
        ids.append(r.json()["id"])
    return apps, office, ids


async def post_until_answered(c: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
    """A careful client: `409 idempotency_key_in_use` means the first is still in flight; ask again."""
    for _ in range(200):
        r = await c.post(url, headers=headers)
        if not (r.status_code == 409 and r.json()["code"] == "idempotency_key_in_use"):
            return r
        await asyncio.sleep(0.02)
    raise AssertionError("the key stayed in use")


async def ticket_rows(database_url: str, office: str) -> dict[int, dict[str, Any]]:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        rows = await conn.fetch("SELECT id, status, counter_id FROM queue.tickets WHERE office_code = $1", office)
    finally:
        await conn.close()
    return {r["id"]: dict(r) for r in rows}


async def test_the_same_call_next_sent_twice_at_once_calls_one_ticket(
    committed_client_factory: ClientFactory, make_token: Any, database_url: str,
) -> None:
    """A counter sends each call-next twice at once over two instances (same key, same If-Match): every pair
    gets one answer, the same ticket twice; each ticket is called once and finished only after it was seen."""
    apps, office, ids = await committed_office(committed_client_factory, make_token, 1, 12)
    staff, counter = officer(make_token, office["code"]), office["counters"][0]
    url = f"/v1/counters/{counter}/call-next"
    current: int | None = None
    seen: list[int] = []
    for i in range(len(ids) + 1):
        headers = call_headers(staff, current, f"pair-{i}")
        a, b = await asyncio.gather(*(post_until_answered(apps[j], url, headers) for j in range(2)))
        assert (a.status_code, b.status_code) == (200, 200), (a.text, b.text)
        assert json.loads(a.content) == json.loads(b.content)
        ticket = a.json()["ticket"]
        current = ticket["id"] if ticket else None
        if current is not None:
            seen.append(current)
    assert seen == ids  # in order, none skipped, none twice
    rows = await ticket_rows(database_url, office["code"])
    assert all(r["status"] == "finished" for r in rows.values())
    for c in apps:
        await c.aclose()


async def test_a_retry_with_a_new_key_racing_the_first_is_refused(
    committed_client_factory: ClientFactory, make_token: Any, database_url: str,
) -> None:
    """Two call-next at once with the same If-Match but different keys (an app that makes a new key per try):
    the counter row is locked and its current ticket checked again after the first commits, so exactly one
    calls and the other gets 412 naming the ticket the first called."""
    apps, office, ids = await committed_office(committed_client_factory, make_token, 1, 20)
    staff, counter = officer(make_token, office["code"]), office["counters"][0]
    url = f"/v1/counters/{counter}/call-next"
    current: int | None = None
    seen = []
    for i in range(10):
        results = await asyncio.gather(*(apps[j].post(url, headers=call_headers(staff, current, f"r{i}-{j}"))
                                         for j in range(2)))
        assert sorted(r.status_code for r in results) == [200, 412], [r.text for r in results]
        won = next(r for r in results if r.status_code == 200).json()["ticket"]["id"]
        lost = next(r for r in results if r.status_code == 412).json()
        assert lost["current_ticket_id"] == won
        seen.append(won)
        current = won
    assert seen == ids[:10]
    rows = await ticket_rows(database_url, office["code"])
    assert [rows[t]["status"] for t in ids[:11]] == ["finished"] * 9 + ["called", "waiting"]
    for c in apps:
        await c.aclose()


async def test_finish_and_call_next_at_one_counter_at_once_never_fail(
    committed_client_factory: ClientFactory, make_token: Any,
) -> None:
    """A finish and a call-next of one counter at the same moment lock the counter before the ticket, both: no
    deadlock (a 500 after PostgreSQL's one-second detection)."""
    apps, office, _ = await committed_office(committed_client_factory, make_token, 1, 16)
    staff, counter = officer(make_token, office["code"]), office["counters"][0]
    current = (await apps[0].post(f"/v1/counters/{counter}/call-next", headers=staff)).json()["ticket"]["id"]
    for _ in range(8):
        fin, nxt = await asyncio.gather(
            apps[0].post(f"/v1/tickets/{current}/finish", headers=staff),
            apps[1].post(f"/v1/counters/{counter}/call-next", headers=staff))
        assert fin.status_code in (200, 409) and nxt.status_code == 200, (fin.text, nxt.text)
        current = nxt.json()["ticket"]["id"]
    for c in apps:
        await c.aclose()

