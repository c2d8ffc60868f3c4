"""When a dossier's time limit starts, at intake (issue 22 item 2): limits per channel, the limit with its
verification extension passed to the workflow, online dossiers waiting for acceptance, postal certification
waiting for the paper (no due date, no past date on the receipt, the code of the registration day)."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pypdf import PdfReader

from services.intake import jobs
from services.intake.app import create_app
from shared.calendar import VN_TZ
from shared.db import Tx
from tests.conftest import app_client_factory, auth
from tests.intake.helpers import WARD, body, officer

client = app_client_factory(create_app)
BUNDLE = {"procedure_code": "DP.LT.01", "documents": [{"name": "Tờ khai liên thông"}, {"name": "Giấy chứng sinh"}]}
CERTIFY = {"procedure_code": "2.000815",
           "documents": [{"name": "Bản chính giấy tờ"}, {"name": "Bản sao cần chứng thực"}]}


async def received_event(tx: Tx, code: str) -> dict[str, Any]:
    data = await tx.fetchval(
        "SELECT convert_from(payload, 'UTF8')::jsonb->'data' FROM jobs.pgqueuer WHERE entrypoint = 'dossier.received' "
        "AND convert_from(payload, 'UTF8')::jsonb->'data'->>'code' = $1", code)
    assert data is not None
    return dict(data)


def pdf_text(content: bytes) -> str:
    return " ".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)


async def test_limits_per_channel_and_the_verification_extension_reach_the_workflow(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    r = await client.post("/v1/dossiers", json=body(**BUNDLE), headers=officer(make_token))
    assert r.status_code == 201, r.text
    event = await received_event(db_conn, r.json()["code"])
    assert event["time_limit"] == {"value": 20, "unit": "working_days", "verification_extension": 5}
    assert event["clock_started"] is True and event["due_at"] is not None
    citizen = auth(make_token("citizen", subject="001090012345"), **{"Idempotency-Key": uuid.uuid4().hex})
    r = await client.post("/v1/dossiers", json=body(channel="online", **BUNDLE), headers=citizen)
    assert r.status_code == 201, r.text
    event = await received_event(db_conn, r.json()["code"])
    assert event["time_limit"] == {"value": 3, "unit": "working_days", "verification_extension": 5}
    # The due-date calculator takes the channel.
    params = {"procedure_code": "DP.LT.01", "agency_code": WARD, "received_at": "2026-03-02T09:00:00+07:00"}
    paper = (await client.get("/v1/calendar/due", params={**params, "channel": "counter"})).json()
    online = (await client.get("/v1/calendar/due", params={**params, "channel": "online"})).json()
    assert paper["due_at"] == "2026-03-30T09:00:00+07:00" and online["due_at"] == "2026-03-05T09:00:00+07:00"
    assert (await client.get("/v1/calendar/due", params=params)).json()["due_at"] == online["due_at"]


async def test_online_dossier_has_no_due_date_until_accepted(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    citizen = make_token("citizen", subject="001090012345")
    r = await client.post("/v1/dossiers", json=body(channel="online"),
                          headers=auth(citizen, **{"Idempotency-Key": uuid.uuid4().hex}))
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    assert r.json()["due_at"] is None
    event = await received_event(db_conn, code)
    assert event["due_at"] is None and event["clock_started"] is False
    receipt = await client.get(f"/v1/dossiers/{code}/receipt", headers=auth(citizen))
    assert "Tính từ khi cán bộ tiếp nhận hồ sơ trực tuyến" in pdf_text(receipt.content)
    # The workflow accepted it: the receipt shows the due date from then on (the job may run twice).
    for _ in range(2):
        await jobs.on_due_set(db_conn, [{"code": code, "started_at": "2026-12-01T10:00:00+07:00",
                                         "due_at": "2026-12-01T17:00:00+07:00"}])
    row = await db_conn.fetchrow("SELECT clock_started, due_at FROM intake.dossiers WHERE code = $1", code)
    assert row is not None and row["clock_started"] and row["due_at"] == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert "17 giờ 00 phút, ngày 01/12/2026" in pdf_text((await client.get(f"/v1/dossiers/{code}/receipt",
                                                                 headers=auth(citizen))).content)


async def test_postal_certification_waits_for_the_paper_and_is_coded_on_its_registration_day(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    now = datetime.now(UTC)
    handover = now - timedelta(days=3)
    partner = auth(make_token("postal_partner", subject="vnpost", partner_code="VNPOST"),
                   **{"Idempotency-Key": uuid.uuid4().hex})
    r = await client.post("/v1/dossiers", json=body(channel="postal", received_at=handover.isoformat(), **CERTIFY),
                          headers=partner)
    assert r.status_code == 201, r.text
    answer = r.json()
    code = answer["code"]
    assert answer["due_at"] is None and datetime.fromisoformat(answer["received_at"]) == handover
    assert f"-{now.astimezone(VN_TZ):%y%m%d}-" in code and f"-{handover.astimezone(VN_TZ):%y%m%d}-" not in code
    event = await received_event(db_conn, code)
    assert event["due_at"] is None and event["clock_started"] is False
    assert event["time_limit"]["verification_extension"] == 2
    text = pdf_text((await client.get(f"/v1/dossiers/{code}/receipt", headers=officer(make_token))).content)
    assert "Tính từ khi nhận được hồ sơ giấy" in text
    # Any other postal dossier: the time runs from the handover record (the partner's received_at).
    r = await client.post("/v1/dossiers", json=body(channel="postal", received_at=handover.isoformat()),
                          headers={**partner, "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 201 and r.json()["due_at"] is not None
    assert f"-{now.astimezone(VN_TZ):%y%m%d}-" in r.json()["code"]
