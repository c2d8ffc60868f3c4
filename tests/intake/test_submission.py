"""Submitting dossiers: the happy paths, every refusal, the receipt, and races on codes and keys."""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest
from pypdf import PdfReader

from services.intake import dossier_repository
from services.intake.app import create_app
from shared.calendar import VN_TZ
from shared.db import Tx
from tests.conftest import app_client_factory, auth
from tests.intake.helpers import WARD, body, counts, officer

client = app_client_factory(create_app)


def dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.mark.smoke
async def test_counter_submission_gets_code_due_date_fee_and_event(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    r = await client.post("/v1/dossiers", json=body(), headers=officer(make_token))
    assert r.status_code == 201, r.text
    d = r.json()
    assert re.fullmatch(r"000\.00\.21\.H29-\d{6}-\d{4}", d["code"])
    assert d["status"] == "received" and d["fee"] == 0 and d["competent_agency"] == WARD
    assert d["receipt_url"] == f"/api/intake/v1/dossiers/{d['code']}/receipt"
    jobs = await db_conn.fetchval(
        "SELECT convert_from(payload, 'UTF8')::jsonb->'data' FROM jobs.pgqueuer "
        "WHERE entrypoint = 'dossier.received' ORDER BY id DESC LIMIT 1")
    assert jobs["code"] == d["code"] and jobs["applicant"]["name"] == "Nguyễn Văn An"


async def test_citizen_online_for_self_and_not_for_others(client: httpx.AsyncClient, make_token: Any) -> None:
    citizen = auth(make_token("citizen", subject="001090012345"), **{"Idempotency-Key": uuid.uuid4().hex})
    r = await client.post("/v1/dossiers", json=body(channel="online"), headers=citizen)
    assert r.status_code == 201, r.text
    other = body(channel="online")
    other["applicant"] = {**other["applicant"], "id_number": "079195001234", "date_of_birth": "1995-01-01",
                          "full_name": "Trần Thị Bình"}
    citizen["Idempotency-Key"] = uuid.uuid4().hex
    r = await client.post("/v1/dossiers", json=other, headers=citizen)
    assert r.status_code == 422 and [e["type"] for e in r.json()["errors"]] == ["not_self"]
    other["representative"] = {"full_name": "Nguyễn Văn An", "id_number": "001090012345", "relation": "anh"}
    citizen["Idempotency-Key"] = uuid.uuid4().hex
    assert (await client.post("/v1/dossiers", json=other, headers=citizen)).status_code == 201


async def test_every_problem_is_listed_and_nothing_is_written(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    before = await counts(db_conn)
    bad = body(procedure_code="2.000815", channel="counter", documents=[])
    bad["applicant"] = {**bad["applicant"], "id_number": "999290012345",
                        "address": {"line": "x", "ward_code": "99999"}}
    r = await client.post("/v1/dossiers", json=bad, headers=officer(make_token))
    assert r.status_code == 422, r.text
    types = sorted(e["type"] for e in r.json()["errors"])
    assert types == ["id_number", "id_number", "missing_document", "missing_document", "unknown_ward"]
    r = await client.post("/v1/dossiers", json=body(channel="online", procedure_code="2.000815"),
                          headers=auth(make_token("citizen", subject="001090012345"),
                                       **{"Idempotency-Key": uuid.uuid4().hex}))
    assert "channel_not_allowed" in [e["type"] for e in r.json()["errors"]]
    r = await client.post("/v1/dossiers", json=body(procedure_code="0.000000", receiving_agency_code="nope"),
                          headers=officer(make_token))
    assert sorted(e["type"] for e in r.json()["errors"]) == ["unknown_agency", "unknown_procedure"]
    r = await client.post("/v1/dossiers", json=body(result_delivery="postal"), headers=officer(make_token))
    assert [e["field"] for e in r.json()["errors"]] == ["delivery_address"]
    r = await client.post("/v1/dossiers", json={"channel": "fax"}, headers=officer(make_token))
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    assert await counts(db_conn) == before


async def test_roles_and_agency_scope(client: httpx.AsyncClient, make_token: Any) -> None:
    r = await client.post("/v1/dossiers", json=body(), headers=officer(make_token, agency="000.00.07.H29"))
    assert r.status_code == 403
    r = await client.post("/v1/dossiers", json=body(), headers=auth(
        make_token("citizen", subject="001090012345"), **{"Idempotency-Key": "k"}))
    assert r.status_code == 403
    r = await client.post("/v1/dossiers", json=body(), headers=auth(make_token("officer", agency_code=WARD)))
    assert r.status_code == 400 and r.json()["code"] == "idempotency_key_missing"


async def test_receipt_pdf_and_read_scope(client: httpx.AsyncClient, make_token: Any) -> None:
    code = (await client.post("/v1/dossiers", json=body(), headers=officer(make_token))).json()["code"]
    r = await client.get(f"/v1/dossiers/{code}/receipt", headers=officer(make_token))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text_ = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)
    for expected in (code, "Nguyễn Văn An", "Đăng ký khai sinh", "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ"):
        assert expected in text_
    own = auth(make_token("citizen", subject="001090012345"))
    assert (await client.get(f"/v1/dossiers/{code}", headers=own)).status_code == 200
    stranger = auth(make_token("citizen", subject="079195001234"))
    assert (await client.get(f"/v1/dossiers/{code}", headers=stranger)).status_code == 404
    other_agency = auth(make_token("officer", agency_code="000.00.07.H29"))
    assert (await client.get(f"/v1/dossiers/{code}/receipt", headers=other_agency)).status_code == 404


async def test_fifty_concurrent_submissions_get_consecutive_codes(
    committed_client_factory: Any, make_token: Any, database_url: str,
) -> None:
    dossier_repository._group().sizes.clear()  # the loop (and its group) lives for the whole session
    async with committed_client_factory(create_app) as c:
        rs = await asyncio.gather(*(c.post("/v1/dossiers", json=body(), headers=officer(make_token))
                                    for _ in range(50)))
    assert [r.status_code for r in rs] == [201] * 50, [r.text for r in rs if r.status_code != 201][:2]
    numbers = sorted(int(r.json()["code"][-4:]) for r in rs)
    assert numbers == list(range(numbers[0], numbers[0] + 50))
    assert len({r.json()["code"] for r in rs}) == 50
    assert max(dossier_repository._group().sizes) > 1  # they shared statements (group commit)
    codes = [r.json()["code"] for r in rs]
    conn = await asyncpg.connect(dsn(database_url))
    try:
        jobs = await conn.fetchval(
            "SELECT count(*) FROM jobs.pgqueuer WHERE entrypoint = 'dossier.received' "
            "AND convert_from(payload, 'UTF8')::jsonb->'data'->>'code' = ANY($1::text[])", codes)
        kept = await conn.fetch("SELECT convert_from(body, 'UTF8')::jsonb->>'code' AS code FROM "
                                "intake.idempotency_keys WHERE convert_from(body, 'UTF8')::jsonb->>'code' = ANY($1)",
                                codes)
    finally:
        await conn.close()
    assert jobs == 50 and sorted(k["code"] for k in kept) == sorted(codes)  # one job and one kept answer each


async def test_a_group_crossing_the_daily_limit_gives_each_submission_its_own_answer(
    committed_client_factory: Any, make_token: Any, database_url: str,
) -> None:
    agency = f"000.00.98.T{uuid.uuid4().hex[:4]}"
    conn = await asyncpg.connect(dsn(database_url))
    try:
        await conn.execute(
            "INSERT INTO core.agencies (code, name, search_text, level, admin_unit_code, sessions) VALUES "
            "($1, 'UBND xã thử', 'ubnd xa thu', 'commune', '01', '[{\"start\": \"00:00\", \"end\": \"23:59\"}]')",
            agency)
        await conn.execute("INSERT INTO intake.daily_counters (agency_code, day, last_number) VALUES ($1, $2, 9990)",
                           agency, datetime.now(VN_TZ).date())
        admin = auth(make_token("admin", subject="quantri"))
        dossier_repository._group().sizes.clear()
        async with committed_client_factory(create_app) as c:
            rs = await asyncio.gather(*(c.post("/v1/dossiers", json=body(receiving_agency_code=agency), headers={
                **admin, "Idempotency-Key": uuid.uuid4().hex}) for _ in range(20)))
        ok = sorted(r.json()["code"][-4:] for r in rs if r.status_code == 201)
        full = [r.json()["code"] for r in rs if r.status_code == 409]
        assert ok == [str(n) for n in range(9991, 10000)], [r.text for r in rs][:3]
        assert full == ["daily_sequence_exhausted"] * 11
        assert await conn.fetchval("SELECT last_number FROM intake.daily_counters WHERE agency_code = $1",
                                   agency) == 9999
        assert await conn.fetchval("SELECT count(*) FROM intake.dossiers WHERE receiving_agency = $1", agency) == 9
        assert max(dossier_repository._group().sizes) > 1
    finally:
        await conn.close()


async def test_concurrent_retries_of_one_key_make_one_dossier(
    committed_client_factory: Any, make_token: Any, database_url: str,
) -> None:
    h = officer(make_token)
    async with committed_client_factory(create_app) as c:
        rs = await asyncio.gather(*(c.post("/v1/dossiers", json=body(), headers=h) for _ in range(20)))
        again = await c.post("/v1/dossiers", json=body(), headers=h)
    codes = {r.json()["code"] for r in rs if r.status_code == 201}
    assert len(codes) == 1 and {r.status_code for r in rs} <= {201, 409}
    assert again.json()["code"] in codes
    conn = await asyncpg.connect(dsn(database_url))
    try:
        n = await conn.fetchval("SELECT count(*) FROM intake.dossiers WHERE code = $1", codes.pop())
    finally:
        await conn.close()
    assert n == 1


async def test_a_retry_gets_the_same_bytes_and_the_day_stops_at_9999_with_nothing_written(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    h = officer(make_token)
    first = await client.post("/v1/dossiers", json=body(), headers={**h, "X-Request-ID": "rid-retry-1"})
    again = await client.post("/v1/dossiers", json=body(), headers=h)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert first.headers["location"] == f"/api/intake/v1/dossiers/{first.json()['code']}"
    event = await db_conn.fetchval(
        "SELECT convert_from(payload, 'UTF8')::jsonb FROM jobs.pgqueuer WHERE entrypoint = 'dossier.received' "
        "AND convert_from(payload, 'UTF8')::jsonb->'data'->>'code' = $1", first.json()["code"])
    assert event["request_id"] == "rid-retry-1"
    other = await client.post("/v1/dossiers", json=body(notes="khác"), headers=h)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_mismatch"

    await db_conn.execute("UPDATE intake.daily_counters SET last_number = 9999")
    before = await counts(db_conn)
    jobs_before = await db_conn.fetchval("SELECT count(*) FROM jobs.pgqueuer")
    full = officer(make_token)
    r = await client.post("/v1/dossiers", json=body(), headers=full)
    assert r.status_code == 409 and r.json()["code"] == "daily_sequence_exhausted", r.text
    assert await counts(db_conn) == before
    assert await db_conn.fetchval("SELECT count(*) FROM jobs.pgqueuer") == jobs_before
    kept = await db_conn.fetchval("SELECT count(*) FROM intake.idempotency_keys WHERE key = $1",
                                  full["Idempotency-Key"])
    assert kept == 0


async def test_a_body_with_many_arrays_is_parsed_once_and_judged_the_same(
    client: httpx.AsyncClient, make_token: Any,
) -> None:
    """Past 32 brackets the depth guard parses the body itself and the model validates that parse
    (`shared.hot_routes.json_body`): the dossier is received, and a bad field is named as in a small body."""
    documents = [{"name": "Tờ khai đăng ký khai sinh", "file_ids": []}, {"name": "Giấy chứng sinh", "file_ids": []},
                 *({"name": f"Giấy tờ kèm theo {i}", "file_ids": []} for i in range(20))]
    big = body(documents=documents)
    assert sum(str(big).count(c) for c in "[{") > 32
    r = await client.post("/v1/dossiers", json=big, headers=officer(make_token))
    assert r.status_code == 201, r.text
    assert len((await client.get(f"/v1/dossiers/{r.json()['code']}", headers=officer(make_token))).json()[
        "documents"]) == 22
    bad = {**big, "number_of_sets": "nhiều"}
    for sent in (bad, {**body(), "number_of_sets": "nhiều"}):
        problem = (await client.post("/v1/dossiers", json=sent, headers=officer(make_token))).json()
        assert problem["status"] == 422 and [e["field"] for e in problem["errors"]] == ["number_of_sets"], problem
