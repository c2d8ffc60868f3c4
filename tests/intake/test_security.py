"""Issue 21 (intake): who reads and uploads files, every date bounded, hostile bodies; issue 20: every
intake write retried with its Idempotency-Key (or naturally idempotent) does its work once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.intake import jobs
from services.intake.app import create_app
from services.postal_tracking import jobs as postal_jobs
from shared.db import Tx
from shared.settings import Settings
from tests.conftest import app_client_factory, assert_problem, auth
from tests.intake.helpers import WARD, body, counts, officer

client = app_client_factory(create_app)
DEPT = "000.00.07.H29"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
CITIZEN = "001090012345"


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def upload(client: httpx.AsyncClient, headers: dict[str, str], content: bytes = PNG) -> dict[str, Any]:
    r = await client.post("/v1/files", files={"file": ("giay-to.png", content, "image/png")}, headers=headers)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_files_are_read_by_their_uploader_and_the_handling_agencys_staff_only(
    client: httpx.AsyncClient, make_token: Any,
) -> None:
    me = auth(make_token("citizen", subject=CITIZEN))
    attached, loose = await upload(client, me), await upload(client, me, PNG + b"\x01")
    submission = body(channel="online", documents=[
        {"name": "Tờ khai đăng ký khai sinh", "file_ids": [attached["id"]]}, {"name": "Giấy chứng sinh"}])
    assert (await client.post("/v1/dossiers", json=submission, headers={**me, **key()})).status_code == 201
    ward_officer = auth(make_token("officer", subject="canbo.phuong", agency_code=WARD))
    ward_lead = auth(make_token("supervisor", subject="lanhdao.phuong", agency_code=WARD))
    dept_officer = auth(make_token("officer", subject="canbo.so", agency_code=DEPT))
    dept_lead = auth(make_token("supervisor", subject="lanhdao.so", agency_code=DEPT))
    admin = auth(make_token("admin", subject="quantri"))
    for who in (me, ward_officer, ward_lead, admin):
        r = await client.get(f"/v1/files/{attached['id']}", headers=who)
        assert r.status_code == 200 and r.content == PNG, r.text
    nothing = assert_problem(await client.get(f"/v1/files/{uuid.uuid4()}", headers=dept_officer), 404, "not_found")
    for who in (dept_officer, dept_lead, auth(make_token("kiosk", subject="kiosk-1")),
                auth(make_token("postal_partner", subject="vnpost", partner_code="VNPOST"))):
        not_yours = assert_problem(await client.get(f"/v1/files/{attached['id']}", headers=who), 404, "not_found")
        assert not_yours["title"] == nothing["title"] and not_yours["type"] == nothing["type"]
    # a file attached to no dossier: its uploader (and an admin) only
    assert (await client.get(f"/v1/files/{loose['id']}", headers=me)).status_code == 200
    assert (await client.get(f"/v1/files/{loose['id']}", headers=admin)).status_code == 200
    assert_problem(await client.get(f"/v1/files/{loose['id']}", headers=ward_officer), 404, "not_found")
    assert_problem(await client.get(f"/v1/files/{'x' * 5000}", headers=me), 404, "not_found")


async def test_nobody_attaches_someone_elses_file_to_read_it(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    citizens_file = await upload(client, auth(make_token("citizen", subject=CITIZEN)))
    before = await counts(db_conn)
    theft = body(documents=[{"name": "Tờ khai đăng ký khai sinh", "file_ids": [citizens_file["id"]]},
                            {"name": "Giấy chứng sinh"}])
    problem = assert_problem(await client.post("/v1/dossiers", json=theft, headers=officer(make_token, DEPT)),
                             403, "forbidden")  # another agency: refused before anything else
    problem = assert_problem(await client.post("/v1/dossiers", json=theft, headers=officer(make_token)),
                             422, "validation_error")
    assert [e["type"] for e in problem["errors"]] == ["unknown_file"]
    assert await counts(db_conn) == before
    # nor through a supplement
    code = (await client.post("/v1/dossiers", json=body(), headers=officer(make_token))).json()["code"]
    await jobs.on_supplement_requested(db_conn, [{"code": code, "documents": ["Bản sao"],
                                                  "supplement_due_at": (datetime.now(UTC) + timedelta(days=3))
                                                  .isoformat()}])
    supplement = {"documents": [{"name": "Bản sao", "file_ids": [citizens_file["id"]]}]}
    problem = assert_problem(await client.post(f"/v1/dossiers/{code}/supplements", json=supplement,
                                               headers=officer(make_token)), 422, "validation_error")
    assert [e["type"] for e in problem["errors"]] == ["unknown_file"]
    own = await upload(client, auth(make_token("officer", subject="canbo.phuong", agency_code=WARD)))
    r = await client.post(f"/v1/dossiers/{code}/supplements", json={"documents": [
        {"name": "Bản sao", "file_ids": [own["id"]]}]}, headers=officer(make_token))
    assert r.status_code == 201, r.text
    lead = auth(make_token("supervisor", subject="lanhdao.phuong", agency_code=WARD))
    assert (await client.get(f"/v1/files/{own['id']}", headers=lead)).status_code == 200  # via the supplement


async def test_upload_is_for_the_roles_that_need_it(client: httpx.AsyncClient, make_token: Any) -> None:
    for role, claims in (("kiosk", {"office_code": "HN-BD"}), ("postal_partner", {"partner_code": "VNPOST"}),
                         ("gov_system", {})):
        r = await client.post("/v1/files", files={"file": ("a.png", PNG, "image/png")},
                              headers=auth(make_token(role, **claims)))
        assert_problem(r, 403, "forbidden")
    for role, claims in (("citizen", {}), ("officer", {"agency_code": WARD}), ("supervisor", {"agency_code": WARD}),
                         ("admin", {})):
        await upload(client, auth(make_token(role, **claims)))


async def test_an_upload_retried_with_its_key_stores_one_file(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    me = auth(make_token("citizen", subject=CITIZEN), **key())
    n = await db_conn.fetchval("SELECT count(*) FROM intake.files")
    first = await upload(client, me)
    again = await client.post("/v1/files", files={"file": ("giay-to.png", PNG, "image/png")}, headers=me)
    assert again.status_code == 201 and again.json()["id"] == first["id"]  # a new multipart boundary, same file
    assert again.headers["idempotent-replayed"] == "true"
    assert await db_conn.fetchval("SELECT count(*) FROM intake.files") == n + 1
    other = await client.post("/v1/files", files={"file": ("giay-to.png", PNG + b"x", "image/png")}, headers=me)
    assert_problem(other, 422, "idempotency_key_mismatch")


async def test_a_back_dated_or_future_postal_dossier_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    """received_at 0001-01-01 was answered 201 with code …-010101-0001, then its job failed (issue 21)."""
    partner = auth(make_token("postal_partner", subject="vnpost", partner_code="VNPOST"))
    before = await counts(db_conn)
    now = datetime.now(UTC)
    for when in ("0001-01-01T00:00:00+07:00", "9999-12-31T23:59:59+00:00", "1999-12-31T23:00:00+07:00",
                 (now - timedelta(days=31)).isoformat(), (now + timedelta(hours=1)).isoformat(),
                 "2026-03-02T09:00:00"):
        r = await client.post("/v1/dossiers", json=body(channel="postal", received_at=when),
                              headers={**partner, **key()})
        problem = assert_problem(r, 422, "validation_error")
        assert [e["field"] for e in problem["errors"]] == ["received_at"], when
        assert "30" in problem["detail"]
    assert await counts(db_conn) == before
    two_days_ago = now - timedelta(days=2)
    r = await client.post("/v1/dossiers", json=body(channel="postal", received_at=two_days_ago.isoformat()),
                          headers={**partner, **key()})
    assert r.status_code == 201, r.text
    assert datetime.fromisoformat(r.json()["received_at"]) == two_days_ago
    # The code is numbered in the register of the day it is registered, never the back-dated handover day.
    assert f"-{now.astimezone(_vn()).strftime('%y%m%d')}-" in r.json()["code"]
    skewed = await client.post("/v1/dossiers", json=body(channel="postal", received_at=(
        datetime.now(UTC) + timedelta(minutes=2)).isoformat()), headers={**partner, **key()})
    assert skewed.status_code == 201 and datetime.fromisoformat(skewed.json()["received_at"]) <= datetime.now(UTC)


def _vn() -> Any:
    from shared.calendar import VN_TZ

    return VN_TZ


@pytest.mark.parametrize("received_at", [
    "9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00+07:00", "1999-12-31T12:00:00+07:00", "2101-01-01T00:00:00+07:00",
])
async def test_calendar_due_with_extreme_dates_is_a_422_that_says_so(
    client: httpx.AsyncClient, received_at: str,
) -> None:
    r = await client.get("/v1/calendar/due", params={"procedure_code": "1.004873", "agency_code": WARD,
                                                    "received_at": received_at})
    problem = assert_problem(r, 422, "validation_error")
    assert "2000-01-01" in problem["detail"] and "2100-12-31" in problem["detail"]


async def test_admin_dates_are_bounded(client: httpx.AsyncClient, make_token: Any) -> None:
    admin = auth(make_token("admin", subject="quantri"))
    for day in ("0001-01-01", "9999-12-31", "1999-12-31"):
        r = await client.post("/v1/admin/calendar/overrides", json={"day": day, "kind": "day_off"}, headers=admin)
        assert "2100-12-31" in str(assert_problem(r, 422, "validation_error")["errors"])
    version = {"code": "1.004873", "effective_from": "9999-12-31", "name": "Cấp Giấy xác nhận tình trạng hôn nhân",
               "field_code": "HT", "level": "commune", "time_limit": {"value": 2, "unit": "working_days"},
               "fee": {"kind": "fixed", "amount": 15000}, "documents": [], "channels": ["counter"],
               "result_delivery": ["counter"]}
    assert_problem(await client.post("/v1/admin/procedures", json=version, headers=admin), 422, "validation_error")


@pytest.mark.parametrize("path", ["/v1/counter-records", "/v1/admin/calendar/overrides", "/v1/admin/procedures",
                                  "/v1/dossiers/000.00.21.H29-260101-0001/supplements", "/v1/dossiers"])
async def test_hostile_bodies_are_4xx_never_500(client: httpx.AsyncClient, make_token: Any, path: str) -> None:
    headers = {**auth(make_token("admin", subject="quantri")), **key()}
    deep = b"[" * 100_000 + b"]" * 100_000
    for content, content_type in ((deep, "application/json"), (b'{"a":' * 5000 + b"1" + b"}" * 5000,
                                                               "application/json"),
                                  (b"\xff\xfe\x00", "application/json"), (b"<x/>", "application/xml"),
                                  (b"null", "application/json"), (b"", "application/json")):
        r = await client.post(path, content=content, headers={**headers, "content-type": content_type,
                                                               "Idempotency-Key": uuid.uuid4().hex})
        assert 400 <= r.status_code < 500, (path, content[:20], r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("application/problem+json")


# ---- retries (issue 20 part 2): the same request again never does its work twice ----

RECORD = {"kind": "refusal", "procedure_code": "1.001193", "receiving_agency_code": WARD,
          "applicant": {"full_name": "Nguyễn Văn An", "phone": "0912345678"},
          "reason": "Không thuộc thẩm quyền giải quyết"}


async def test_a_counter_record_needs_a_key_and_its_retry_writes_no_second_slip(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    bare = auth(make_token("officer", subject="canbo.phuong", agency_code=WARD))
    assert_problem(await client.post("/v1/counter-records", json=RECORD, headers=bare), 400,
                   "idempotency_key_missing")
    n = await db_conn.fetchval("SELECT count(*) FROM intake.counter_records")
    h = officer(make_token)
    first, again = [await client.post("/v1/counter-records", json=RECORD, headers=h) for _ in range(2)]
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await db_conn.fetchval("SELECT count(*) FROM intake.counter_records") == n + 1


async def test_a_supplement_retried_is_handed_in_once(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    code = (await client.post("/v1/dossiers", json=body(), headers=officer(make_token))).json()["code"]
    await jobs.on_supplement_requested(db_conn, [{"code": code, "documents": ["Bản sao"],
                                                  "supplement_due_at": (datetime.now(UTC) + timedelta(days=3))
                                                  .isoformat()}])
    h = auth(make_token("citizen", subject=CITIZEN), **key())
    supplement = {"documents": [{"name": "Bản sao"}], "note": "Nộp bổ sung"}
    rs = [await client.post(f"/v1/dossiers/{code}/supplements", json=supplement, headers=h) for _ in range(3)]
    assert [r.status_code for r in rs] == [201] * 3 and rs[0].json() == rs[2].json()
    assert await db_conn.fetchval("SELECT count(*) FROM intake.supplements WHERE dossier_code = $1", code) == 1
    assert await db_conn.fetchval(
        "SELECT count(*) FROM jobs.pgqueuer WHERE entrypoint = 'dossier.supplemented' "
        "AND convert_from(payload, 'UTF8')::jsonb->'data'->>'code' = $1", code) == 1


async def test_admin_writes_retried_are_done_once(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    admin = auth(make_token("admin", subject="quantri"), **key())
    day = (date.today() + timedelta(days=400)).isoformat()
    override = {"agency_code": WARD, "day": day, "kind": "day_off", "note": "Nghỉ"}
    first, again = [await client.post("/v1/admin/calendar/overrides", json=override, headers=admin)
                    for _ in range(2)]
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    no_key = auth(make_token("admin", subject="quantri"))
    assert_problem(await client.post("/v1/admin/calendar/overrides", json=override, headers=no_key), 409, "conflict")
    assert await db_conn.fetchval("SELECT count(*) FROM core.calendar_overrides WHERE day = $1 AND agency_code = $2",
                                  date.fromisoformat(day), WARD) == 1
    deletes = [await client.delete(f"/v1/admin/calendar/overrides/{first.json()['id']}", headers=no_key)
               for _ in range(2)]
    assert [r.status_code for r in deletes] == [204, 404]
    version = {"code": "1.004873", "effective_from": (date.today() + timedelta(days=45)).isoformat(),
               "name": "Cấp Giấy xác nhận tình trạng hôn nhân", "field_code": "HT", "level": "commune",
               "time_limit": {"value": 2, "unit": "working_days"}, "fee": {"kind": "fixed", "amount": 15000},
               "documents": [], "channels": ["counter"], "result_delivery": ["counter"]}
    admin = auth(make_token("admin", subject="quantri"), **key())
    first, again = [await client.post("/v1/admin/procedures", json=version, headers=admin) for _ in range(2)]
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert_problem(await client.post("/v1/admin/procedures", json=version, headers=no_key), 409, "conflict")


# ---- what postal learns of a dossier (the shipments' authorization, issue 21) ----

async def postal_jobs_for(tx: Tx, code: str) -> list[dict[str, Any]]:
    rows = await tx.fetch("SELECT convert_from(payload, 'UTF8')::jsonb->'data' AS data FROM jobs.pgqueuer "
                          "WHERE entrypoint = 'postal.dossier_received' "
                          "AND convert_from(payload, 'UTF8')::jsonb->'data'->>'code' = $1", code)
    return [r["data"] for r in rows]


async def test_postal_learns_of_the_dossiers_that_may_travel_by_post(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    partner = auth(make_token("postal_partner", subject="vnpost", partner_code="VNPOST"), **key())
    by_post = (await client.post("/v1/dossiers", json=body(channel="postal"), headers=partner)).json()["code"]
    at_counter = (await client.post("/v1/dossiers", json=body(), headers=officer(make_token))).json()["code"]
    address = {"line": "5 phố Đội Cấn", "ward_code": "00004", "recipient_name": "Nguyễn Văn An",
               "phone": "0912345678"}
    result_by_post = (await client.post("/v1/dossiers", json=body(result_delivery="postal", delivery_address=address),
                                        headers=officer(make_token))).json()["code"]
    assert await postal_jobs_for(db_conn, at_counter) == []
    [fact] = await postal_jobs_for(db_conn, by_post)
    assert (fact["partner_code"], fact["receiving_agency"], fact["channel"]) == ("VNPOST", WARD, "postal")
    [fact2] = await postal_jobs_for(db_conn, result_by_post)
    assert fact2["partner_code"] is None and fact2["result_delivery"] == "postal"
    await postal_jobs.on_dossier_received(db_conn, [fact, fact2, fact])  # at least once: twice changes nothing
    rows = await db_conn.fetch("SELECT code, partner_code FROM postal.dossiers WHERE code = ANY($1::text[]) "
                               "ORDER BY code", [by_post, result_by_post])
    assert sorted((r["code"], r["partner_code"]) for r in rows) == sorted(
        [(by_post, "VNPOST"), (result_by_post, None)])


async def test_grouped_submissions_tell_postal_and_link_files_too(
    committed_client_factory: Any, make_token: Any, settings: Settings,
) -> None:
    """Submissions written together in one statement (group commit) enqueue the same facts and file links."""
    import asyncpg

    async with committed_client_factory(create_app) as c:
        me = auth(make_token("citizen", subject=CITIZEN))
        f = await upload(c, me)
        address = {"line": "5 phố Đội Cấn", "ward_code": "00004", "recipient_name": "Nguyễn Văn An",
                   "phone": "0912345678"}
        rs = await asyncio.gather(*(c.post("/v1/dossiers", json=body(
            channel="online", result_delivery="postal" if i % 2 else "counter",
            delivery_address=address if i % 2 else None,
            documents=[{"name": "Tờ khai đăng ký khai sinh", "file_ids": [f["id"]]}, {"name": "Giấy chứng sinh"}]),
            headers={**me, **key()}) for i in range(12)))
    assert [r.status_code for r in rs] == [201] * 12, [r.text for r in rs]
    codes = [r.json()["code"] for r in rs]
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        told = {r[0] for r in await conn.fetch(
            "SELECT convert_from(payload, 'UTF8')::jsonb->'data'->>'code' FROM jobs.pgqueuer "
            "WHERE entrypoint = 'postal.dossier_received' AND "
            "convert_from(payload, 'UTF8')::jsonb->'data'->>'code' = ANY($1::text[])", codes)}
        linked = {r[0] for r in await conn.fetch(
            "SELECT dossier_code FROM intake.file_links WHERE file_id = $1", f["id"])}
    finally:
        await conn.close()
    assert told == {codes[i] for i in range(12) if i % 2} and linked == set(codes)


async def test_grouped_submissions_keep_each_representative(
    committed_client_factory: Any, make_token: Any, settings: Settings,
) -> None:
    """The group statement stores the person who filed (form 01's người nộp thay) for each dossier, or none."""
    import asyncpg

    from services.intake import dossier_repository

    proxy = {"full_name": "Trần Thị Bình", "id_number": "001185012346", "relation": "mẹ"}
    async with committed_client_factory(create_app) as c:
        dossier_repository._group().sizes.clear()
        rs = await asyncio.gather(*(c.post("/v1/dossiers", json=body(**({"representative": proxy} if i % 2 else {})),
                                           headers=officer(make_token)) for i in range(12)))
        assert [r.status_code for r in rs] == [201] * 12, [r.text for r in rs]
        assert max(dossier_repository._group().sizes) > 1  # written together
    codes = [r.json()["code"] for r in rs]
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        stored = {r["code"]: r["representative"] for r in await conn.fetch(
            "SELECT code, representative::text AS representative FROM intake.dossiers WHERE code = ANY($1::text[])",
            codes)}
    finally:
        await conn.close()
    for i, code in enumerate(codes):
        assert (stored[code] is not None and "Trần Thị Bình" in stored[code]) if i % 2 else stored[code] is None
