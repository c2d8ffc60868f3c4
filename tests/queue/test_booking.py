"""Online booking: slots, holds that expire by themselves, limits, check-in ahead of walk-ins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.queue_ticket.app import create_app
from services.queue_ticket.jobs import release_bookings
from shared.db import Tx
from tests.conftest import app_client_factory
from tests.queue.helpers import Clock, citizen, kiosk, new_code, officer, setup_office
from tests.queue.test_tickets import MONDAY_9AM, count_rows, take

client = app_client_factory(create_app)
SLOT_10 = "2026-03-02T10:00:00+07:00"


async def book(client: httpx.AsyncClient, make_token: Any, code: str, slot: str = SLOT_10,
               who: str = "001090012345", cat: str = "HT") -> httpx.Response:
    return await client.post("/v1/appointments", headers=citizen(make_token, who), json={
        "office_code": code, "category_code": cat, "slot_start": slot, "phone": "0912345678"})


async def test_slots_hold_confirm_and_check_in_served_ahead_of_walk_ins(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = new_code()
    office = await setup_office(client, make_token, code, counters=1, slot_capacity=2)
    clk = Clock(monkeypatch, MONDAY_9AM)
    r = await client.get(f"/v1/offices/{code}/slots", params={"date": "2026-03-02", "category_code": "HT"})
    assert r.status_code == 200, r.text
    slots = r.json()
    assert slots[0]["start_at"] == "2026-03-02T09:30:00+07:00" and slots[0]["free"] == 2  # 09:00 slot has begun
    r = await book(client, make_token, code)
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["status"] == "held" and a["hold_expires_at"] == "2026-03-02T02:05:00Z"
    r = await client.get(f"/v1/offices/{code}/slots", params={"date": "2026-03-02", "category_code": "HT"})
    assert next(s for s in r.json() if s["start_at"] == SLOT_10)["free"] == 1
    r = await client.post(f"/v1/appointments/{a['booking_code']}/confirm", headers=citizen(make_token))
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    # too early (check-in opens 30 minutes before), then on time
    r = await client.post(f"/v1/appointments/{a['booking_code']}/check-in", headers=citizen(make_token))
    assert r.status_code == 409 and r.json()["code"] == "too_early"
    walk_in = await take(client, make_token, code)
    clk.set(datetime(2026, 3, 2, 2, 45, tzinfo=UTC))  # 09:45
    r = await client.post(f"/v1/appointments/{a['booking_code']}/check-in", headers=kiosk(make_token, code))
    assert r.status_code == 201, r.text
    booked_ticket = r.json()["ticket"]
    assert r.json()["booking"]["status"] == "checked_in" and booked_ticket["booking_code"] == a["booking_code"]
    staff = officer(make_token, code)
    # before its slot the booking waits its turn; from 10:00 it is served ahead of walk-ins
    r = await client.post(f"/v1/counters/{office['counters'][0]}/call-next", headers=staff)
    assert r.json()["ticket"]["id"] == walk_in["id"]
    later = await take(client, make_token, code, priority="pregnant")
    clk.set(datetime(2026, 3, 2, 3, 0, tzinfo=UTC))
    r = await client.post(f"/v1/counters/{office['counters'][0]}/call-next", headers=staff)
    assert r.json()["ticket"]["id"] == booked_ticket["id"]
    r = await client.post(f"/v1/counters/{office['counters'][0]}/call-next", headers=staff)
    assert r.json()["ticket"]["id"] == later["id"]
    r = await client.get(f"/v1/appointments/{a['booking_code']}", headers=citizen(make_token))
    assert r.json()["ticket_number"] == booked_ticket["number"]


async def test_hold_expires_by_itself_and_frees_the_place(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch, db_conn: Tx,
) -> None:
    code = new_code()
    await setup_office(client, make_token, code, slot_capacity=1, hold_seconds=60)
    clk = Clock(monkeypatch, MONDAY_9AM)
    a = (await book(client, make_token, code)).json()
    r = await book(client, make_token, code, who="079195001234")
    assert r.status_code == 409 and r.json()["code"] == "slot_full"
    clk.set(clk.t + timedelta(seconds=61))
    before = await count_rows(db_conn)
    r = await client.post(f"/v1/appointments/{a['booking_code']}/confirm", headers=citizen(make_token))
    assert r.status_code == 409 and r.json()["code"] == "hold_expired"
    assert await count_rows(db_conn) == before
    r = await client.get(f"/v1/offices/{code}/slots", params={"date": "2026-03-02", "category_code": "HT"})
    assert next(s for s in r.json() if s["start_at"] == SLOT_10)["free"] == 1
    r = await book(client, make_token, code, who="079195001234")
    assert r.status_code == 201
    second = r.json()["booking_code"]
    r = await client.get(f"/v1/appointments/{a['booking_code']}", headers=citizen(make_token))
    assert r.json()["status"] == "expired"
    # the periodic job releases a hold without any request
    clk.set(clk.t + timedelta(seconds=61))
    await release_bookings(db_conn)  # inside the test's transaction, rolled back later
    status = await db_conn.fetchval("SELECT status FROM queue.appointments WHERE booking_code = $1", second)
    taken = await db_conn.fetchval("SELECT taken FROM queue.slots WHERE office_code = $1", code)
    assert (status, taken) == ("expired", 0)


async def test_booking_refusals_change_nothing(
    client: httpx.AsyncClient, make_token: Any, monkeypatch: pytest.MonkeyPatch, db_conn: Tx,
) -> None:
    code = new_code()
    await setup_office(client, make_token, code, slot_capacity=1)
    clk = Clock(monkeypatch, MONDAY_9AM)
    a = (await book(client, make_token, code)).json()
    await client.post(f"/v1/appointments/{a['booking_code']}/confirm", headers=citizen(make_token))
    before = await count_rows(db_conn)
    cases = [
        (await book(client, make_token, code, slot="2026-03-02T11:00:00+07:00"), 409, "booking_limit"),
        (await book(client, make_token, code, who="079195001234"), 409, "slot_full"),
        (await book(client, make_token, code, slot="2026-03-02T08:30:00+07:00", who="079195001234"), 409,
         "slot_past"),
        (await book(client, make_token, code, slot="2026-03-02T10:10:00+07:00", who="079195001234"), 422,
         "validation_error"),
        (await book(client, make_token, code, cat="XX", who="079195001234"), 422, "validation_error"),
        (await book(client, make_token, "NOPE", who="079195001234"), 422, "validation_error"),
        (await client.post(f"/v1/appointments/{a['booking_code']}/confirm",
                           headers=citizen(make_token, "079195001234")), 404, "not_found"),
        (await client.post("/v1/appointments", headers=kiosk(make_token, code), json={
            "office_code": code, "category_code": "HT", "slot_start": SLOT_10}), 403, "forbidden"),
    ]
    for r, status, problem in cases:
        assert (r.status_code, r.json()["code"]) == (status, problem), r.text
        assert r.headers["content-type"] == "application/problem+json"
    clk.set(datetime(2026, 3, 2, 3, 30, tzinfo=UTC))  # 10:30: the slot is over
    r = await client.post(f"/v1/appointments/{a['booking_code']}/check-in", headers=citizen(make_token))
    assert r.status_code == 409 and r.json()["code"] == "too_late"
    assert await count_rows(db_conn) == before
    # cancel frees the place
    clk.set(MONDAY_9AM)
    r = await client.post(f"/v1/appointments/{a['booking_code']}/cancel", headers=citizen(make_token))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert (await book(client, make_token, code, who="079195001234")).status_code == 201
    r = await client.post(f"/v1/appointments/{a['booking_code']}/cancel", headers=citizen(make_token))
    assert r.status_code == 409 and r.json()["code"] == "booking_closed"
