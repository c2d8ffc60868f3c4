"""Handover records (biên bản bàn giao): one open handover per shipment, confirm, cancel, PDF."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from pypdf import PdfReader

from services.postal_tracking.app import create_app
from shared.calendar import VN_TZ
from shared.db import Database, Tx
from shared.settings import Settings
from tests.conftest import assert_problem, auth
from tests.postal.helpers import WARD, jobs_for, new_shipment, officer, partner, scalar

SIGNERS = {"office_signer": {"name": "Lê Thị Hoa", "title": "Công chức Bộ phận Một cửa"},
           "postal_signer": {"name": "Trần Văn Bưu", "title": "Bưu tá Bưu cục Ba Đình"}}


def handover(ids: list[str], kind: str = "to_postal", **over: Any) -> dict[str, Any]:
    return {"kind": kind, "agency_code": WARD, "shipment_ids": ids, "location": "Bộ phận Một cửa phường Ba Đình",
            **SIGNERS, **over}


async def test_handover_then_conflict_then_confirm_moves_the_shipments(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    a, b, c = [await new_shipment(client, db_conn, make_token, cod_amount=10_000) for _ in range(3)]
    r = await client.post("/v1/handovers", json=handover([a["id"], b["id"]]), headers=officer(make_token))
    assert r.status_code == 201, r.text
    h = r.json()
    assert h["status"] == "open" and [i["shipment_id"] for i in h["items"]] == [a["id"], b["id"]]
    assert h["totals"] == {"count": 2, "postage": 62_000, "cod_amount": 20_000}
    before = await scalar(db_conn, "SELECT count(*) FROM postal.handovers")
    busy = assert_problem(await client.post("/v1/handovers", json=handover([c["id"], b["id"]]),
                                            headers=officer(make_token)), 409, "shipment_in_open_handover")
    assert b["id"] in busy["errors"][0]["message"] and len(busy["errors"]) == 1
    assert await scalar(db_conn, "SELECT count(*) FROM postal.handovers") == before
    # the partner confirms: both signed, the shipments were picked up at the handover time
    r = await client.post(f"/v1/handovers/{h['id']}/confirm", headers=partner(make_token))
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    got = (await client.get(f"/v1/shipments/{a['id']}", headers=officer(make_token))).json()
    assert got["status"] == "picked_up" and got["timeline"][0]["source"] == "api"
    assert_problem(await client.post(f"/v1/handovers/{h['id']}/cancel", headers=officer(make_token)), 409, "conflict")
    # once closed, the shipment may go into another handover
    r = await client.post("/v1/handovers", json=handover([c["id"], b["id"]]), headers=officer(make_token))
    assert r.status_code == 201, r.text


async def test_bad_lists_are_refused_and_change_nothing(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    out = await new_shipment(client, db_conn, make_token)
    inb = await new_shipment(client, db_conn, make_token, "inbound")
    before = await scalar(db_conn, "SELECT count(*) FROM postal.handover_items")
    body = assert_problem(await client.post("/v1/handovers", json=handover([out["id"], inb["id"], str(uuid.uuid4())]),
                                            headers=officer(make_token)), 422, "validation_error")
    assert sorted(e["type"] for e in body["errors"]) == ["unknown", "wrong_direction"]
    assert_problem(await client.post("/v1/handovers", json=handover([out["id"], out["id"]]),
                                     headers=officer(make_token)), 422, "validation_error")
    assert_problem(await client.post("/v1/handovers", json=handover(["nope"]), headers=officer(make_token)),
                   422, "validation_error")
    assert_problem(await client.post("/v1/handovers", json=handover([out["id"]]),
                                     headers=officer(make_token, "000.00.07.H29")), 403, "forbidden")
    assert await scalar(db_conn, "SELECT count(*) FROM postal.handover_items") == before


async def test_inbound_handover_confirmed_is_the_papers_arrival(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    inb = await new_shipment(client, db_conn, make_token, "inbound")
    at = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    h = (await client.post("/v1/handovers", json=handover([inb["id"]], "to_office",
                                                          handed_over_at=at.astimezone(VN_TZ).isoformat()),
                           headers=partner(make_token))).json()
    r = await client.post(f"/v1/handovers/{h['id']}/confirm", headers=officer(make_token))
    assert r.status_code == 200
    jobs = await jobs_for(db_conn, "dossier.paper_arrived", inb["id"])
    assert [j["arrived_at"] for j in jobs] == [at.isoformat()]


async def test_json_or_pdf_by_accept_and_visibility(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    s = await new_shipment(client, db_conn, make_token,
                           dossier_code=f"{WARD}-251124-{uuid.uuid4().int % 10_000:04d}")
    h = (await client.post("/v1/handovers", json=handover([s["id"]], note="Giao 01 kết quả"),
                           headers=officer(make_token))).json()
    r = await client.get(f"/v1/handovers/{h['id']}", headers=auth(make_token("officer", agency_code=WARD),
                                                                     Accept="application/pdf"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text_ = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)
    for expected in ("BIÊN BẢN BÀN GIAO", s["dossier_code"], s["tracking_number"], "Trần Văn Bưu",
                     "Bưu điện Việt Nam (VNPost)", "Lê Thị Hoa", "Ba Đình, ngày"):
        assert expected in text_ or expected in text_.replace("\n", ""), expected
    assert "Hà Nội" not in text_  # the agency's own place, not a hard-coded city
    r = await client.get(f"/v1/handovers/{h['id']}", headers=auth(make_token("postal_partner", partner_code="VNPOST")))
    assert r.status_code == 200 and r.json()["items"][0]["tracking_number"] == s["tracking_number"]
    other = auth(make_token("postal_partner", partner_code="VTP"))
    assert_problem(await client.get(f"/v1/handovers/{h['id']}", headers=other), 404, "not_found")
    assert_problem(await client.post(f"/v1/handovers/{h['id']}/cancel", headers=other), 404, "not_found")
    r = await client.post(f"/v1/handovers/{h['id']}/cancel", headers=officer(make_token))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


async def test_racing_handovers_of_one_shipment_make_one(
    committed_client_factory: Any, make_token: Any, settings: Settings,
) -> None:
    db = Database(settings, application_name="motcua-test-postal-handovers")
    async with committed_client_factory(create_app) as c:
        ships = [await new_shipment(c, db, make_token) for _ in range(3)]
        await db.dispose()
        ids = [s["id"] for s in ships]
        rs = await asyncio.gather(*(c.post("/v1/handovers", json=handover(ids[i % 3:] + ids[:i % 3]),
                                           headers=officer(make_token)) for i in range(12)))
    assert sorted(r.status_code for r in rs) == [201] + [409] * 11, [r.text for r in rs]
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        n = await conn.fetchval("SELECT count(*) FROM postal.handover_items WHERE is_open AND "
                                "shipment_id = ANY($1::uuid[])", ids)
    finally:
        await conn.close()
    assert n == 3
