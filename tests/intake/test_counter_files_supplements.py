"""Forms 02/03 at the counter, uploaded files, supplements handed in, and the postal clock."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pypdf import PdfReader

from services.intake import jobs
from services.intake.app import create_app
from shared.db import Tx
from tests.conftest import app_client_factory, assert_problem, auth
from tests.intake.helpers import WARD, body, counts, officer

client = app_client_factory(create_app)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def pdf_text(content: bytes) -> str:
    return " ".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)


async def test_completion_request_and_refusal_slips_consume_no_code(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    before = await counts(db_conn)
    record = {"kind": "completion_request", "procedure_code": "1.001193", "receiving_agency_code": WARD,
              "applicant": {"full_name": "Nguyễn Văn An", "phone": "0912345678"},
              "reason": "Giấy chứng sinh bị mờ", "documents": ["Giấy chứng sinh (bản chính)"]}
    r = await client.post("/v1/counter-records", json=record, headers=officer(make_token))
    assert r.status_code == 201, r.text
    pdf = await client.get(f"/v1/counter-records/{r.json()['id']}",
                           headers=auth(make_token("officer", agency_code=WARD), Accept="application/pdf"))
    words = pdf_text(pdf.content)
    assert "PHIẾU YÊU CẦU BỔ SUNG" in words and "Giấy chứng sinh (bản chính)" in words
    refusal = {**record, "kind": "refusal", "reason": "Không thuộc thẩm quyền giải quyết", "documents": []}
    r = await client.post("/v1/counter-records", json=refusal, headers=officer(make_token))
    pdf = await client.get(f"/v1/counter-records/{r.json()['id']}",
                           headers=auth(make_token("officer", agency_code=WARD), Accept="application/pdf"))
    assert "TỪ CHỐI TIẾP NHẬN" in pdf_text(pdf.content) and "thẩm quyền" in pdf_text(pdf.content)
    assert await counts(db_conn) == before
    assert_problem(await client.post("/v1/counter-records", json={**record, "documents": []},
                                     headers=officer(make_token)), 422, "validation_error")
    assert_problem(await client.post("/v1/counter-records", json=record,
                                     headers=officer(make_token, "000.00.07.H29")), 403, "forbidden")
    assert_problem(await client.post("/v1/counter-records", json=record,
                                     headers=auth(make_token("citizen", subject="001090012345"))), 403, "forbidden")


async def test_files_sniffed_hashed_and_private(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    me = auth(make_token("citizen", subject="001090012345"))
    r = await client.post("/v1/files", files={"file": ("giay-khai-sinh.pdf", PNG, "application/pdf")}, headers=me)
    assert r.status_code == 201, r.text
    f = r.json()
    assert f["content_type"] == "image/png" and len(f["sha256"]) == 64 and f["size"] == len(PNG)
    got = await client.get(f"/v1/files/{f['id']}", headers=me)
    assert got.content == PNG
    other = auth(make_token("citizen", subject="079195001234"))
    assert_problem(await client.get(f"/v1/files/{f['id']}", headers=other), 404, "not_found")
    assert_problem(await client.post("/v1/files", files={"file": ("virus.pdf", b"MZ" + b"\0" * 50)}, headers=me),
                   415, "unsupported_media_type")
    n = await db_conn.fetchval("SELECT count(*) FROM intake.files")
    big = b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024)
    assert_problem(await client.post("/v1/files", files={"file": ("big.pdf", big)}, headers=me),
                   413, "payload_too_large")
    assert await db_conn.fetchval("SELECT count(*) FROM intake.files") == n
    submission = body(channel="online", documents=[{"name": "Tờ khai đăng ký khai sinh", "file_ids": [f["id"]]},
                                                   {"name": "Giấy chứng sinh", "file_ids": [str(uuid.uuid4())]}])
    r = await client.post("/v1/dossiers", json=submission, headers={**me, "Idempotency-Key": uuid.uuid4().hex})
    problem = assert_problem(r, 422, "validation_error")
    assert [e["type"] for e in problem["errors"]] == ["unknown_file"]


async def test_supplement_only_when_asked_and_before_the_deadline(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    r = await client.post("/v1/dossiers", json=body(), headers=officer(make_token))
    code = r.json()["code"]
    citizen = auth(make_token("citizen", subject="001090012345"))
    supplement = {"documents": [{"name": "Bản sao Giấy chứng sinh"}], "note": "Nộp bổ sung"}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    assert_problem(await client.post(f"/v1/dossiers/{code}/supplements", json=supplement, headers={**citizen, **key}),
                   409, "no_supplement_requested")
    due = datetime.now(UTC) + timedelta(days=3)
    await jobs.on_supplement_requested(db_conn, [{"code": code, "supplement_due_at": due.isoformat(),
                                                  "documents": ["Bản sao Giấy chứng sinh"]}])
    stranger = auth(make_token("citizen", subject="079195001234"), **{"Idempotency-Key": uuid.uuid4().hex})
    assert_problem(await client.post(f"/v1/dossiers/{code}/supplements", json=supplement, headers=stranger),
                   404, "not_found")
    r = await client.post(f"/v1/dossiers/{code}/supplements", json=supplement,
                          headers={**citizen, "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 201, r.text
    job = await db_conn.fetchval(
        "SELECT convert_from(payload, 'UTF8')::jsonb->'data' FROM jobs.pgqueuer WHERE entrypoint = "
        "'dossier.supplemented' AND convert_from(payload, 'UTF8')::jsonb->'data'->>'code' = $1", code)
    assert job["documents"][0]["name"] == "Bản sao Giấy chứng sinh"
    await jobs.on_supplement_requested(db_conn, [{"code": code, "supplement_due_at": "2020-01-01T00:00:00+07:00",
                                                  "documents": ["x"]}])
    assert_problem(await client.post(f"/v1/dossiers/{code}/supplements", json=supplement,
                                     headers={**citizen, "Idempotency-Key": uuid.uuid4().hex}),
                   409, "supplement_deadline_passed")


async def test_postal_certification_clock_starts_when_the_paper_arrives(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    submission = body(channel="postal", procedure_code="2.000815", documents=[
        {"name": d} for d in ("Bản chính giấy tờ", "Bản sao cần chứng thực")])
    partner = auth(make_token("postal_partner", subject="vnpost", partner_code="VNPOST"),
                   **{"Idempotency-Key": uuid.uuid4().hex})
    r = await client.post("/v1/dossiers", json=submission, headers=partner)
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    started = await db_conn.fetchval("SELECT clock_started FROM intake.dossiers WHERE code = $1", code)
    assert started is False
    arrived = {"code": code, "arrived_at": "2026-12-01T09:00:00+07:00", "shipment_id": 1}
    for _ in range(2):
        await jobs.on_paper_arrived(db_conn, [arrived])
    row = await db_conn.fetchrow("SELECT clock_started, due_at FROM intake.dossiers WHERE code = $1", code)
    assert row is not None
    assert row["clock_started"] and row["due_at"].astimezone(UTC) == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    n = await db_conn.fetchval("SELECT count(*) FROM jobs.pgqueuer WHERE entrypoint = 'dossier.clock_started' AND "
                               "convert_from(payload, 'UTF8')::jsonb->'data'->>'code' = $1", code)
    assert n == 1
