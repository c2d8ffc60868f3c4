"""The state machine through HTTP: transitions, optimistic concurrency, deadlines, refusals that change nothing."""

from __future__ import annotations

import io
from typing import Any

import asyncpg
import httpx
import pytest
from pypdf import PdfReader

from services.dossier_workflow.app import create_app
from services.dossier_workflow.schemas import DossierOut, HistoryOut
from shared.db import Tx
from tests.conftest import app_client_factory, assert_problem, auth
from tests.workflow.helpers import CITIZEN, PROVINCE, Clock, act, new_dossier, officer, snapshot, vn

client = app_client_factory(create_app)




@pytest.mark.smoke
async def test_happy_path_to_returned_with_history_and_notifications(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch, vn(2026, 11, 30, 9, 30))
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))
    officer_tok, leader = officer(make_token), officer(make_token, "lanhdao.phuong", role="supervisor")
    r = await client.get(f"/v1/dossiers/{code}", headers=auth(officer_tok))
    assert r.status_code == 200 and r.headers["etag"] == '"1"'
    d = r.json()
    assert set(d) == set(DossierOut.model_fields) and set(d["timeline"][0]) == set(HistoryOut.model_fields)
    DossierOut.model_validate(d)
    assert d["status"] == "received" and d["due_at"].startswith("2026-12-03T09:00")
    assert "start" in d["allowed_actions"] and "approve" not in d["allowed_actions"]
    steps = [("assign", officer_tok, {"assignee": "canbo2.phuong"}), ("start", officer_tok, {}),
             ("forward", officer_tok, {}), ("approve", leader, {}), ("return_result", officer_tok, {})]
    for version, (action, tok, extra) in enumerate(steps, start=1):
        clock.set(vn(2026, 11, 30, 10 + version))
        r = await act(client, tok, code, version, action=action, **extra)
        assert r.status_code == 200, r.text
        assert r.headers["etag"] == f'"{version + 1}"'
    d = r.json()
    assert set(d) == set(DossierOut.model_fields) and set(d["timeline"][-1]) == set(HistoryOut.model_fields)
    assert d["status"] == "returned" and d["outcome"] == "approved" and d["assignee"] == "canbo2.phuong"
    assert [h["action"] for h in d["timeline"]] == ["receive", "assign", "start", "forward", "approve",
                                                    "return_result"]
    assert d["timeline"][4]["actor"] == "lanhdao.phuong" and d["timeline"][4]["to_status"] == "resolved"
    # The action's answer (written and read in one statement) shows what a read shows afterwards.
    assert (await client.get(f"/v1/dossiers/{code}", headers=auth(officer_tok))).json()["timeline"] == d["timeline"]
    timing = await db_conn.fetchval(
        "SELECT data->>'timing' FROM workflow.history WHERE dossier_code=$1 AND action='approve'", code)
    assert timing == "early"  # resolved Monday, due Thursday
    sent = [r["template"] for r in await db_conn.fetch(
        "SELECT template FROM workflow.notification_outbox WHERE dossier_code=$1 ORDER BY id", code)]
    assert {"dossier_received", "status_changed", "result_ready", "result_returned"} <= set(sent)


async def test_refusals_change_nothing(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))
    tok = officer(make_token)
    before = await snapshot(db_conn, code)
    assert_problem(await act(client, tok, code, None, action="start"), 428, "precondition_required")
    assert_problem(await act(client, tok, code, 7, action="start"), 412, "precondition_failed")
    r = await client.post(f"/v1/dossiers/{code}/actions", json={"action": "start"},
                          headers=auth(tok, **{"If-Match": "abc"}))
    assert_problem(r, 400, "bad_request")
    body = assert_problem(await act(client, tok, code, 1, action="return_result"), 409, "action_not_allowed")
    assert body["state"] == "received" and "start" in body["allowed_actions"]
    assert_problem(await act(client, tok, code, 1, action="reject", reason="x"), 403, "role_not_allowed")
    assert_problem(await act(client, tok, code, 1, action="assign"), 422, "validation_error")
    assert_problem(await act(client, tok, code, 1, action="fly"), 422, "validation_error")
    other = officer(make_token, "canbo.so", PROVINCE)
    assert_problem(await act(client, other, code, 1, action="start"), 404, "not_found")
    assert_problem(await client.get(f"/v1/dossiers/{code}", headers=auth(other)), 404, "not_found")
    stranger = make_token("citizen", subject="079195001234")
    assert_problem(await client.get(f"/v1/dossiers/{code}", headers=auth(stranger)), 404, "not_found")
    assert_problem(await act(client, tok, "000.00.21.H29-261130-9999", 1, action="start"), 404, "not_found")
    assert_problem(await act(client, tok, code, 1, action="issue_apology", new_due_at="2026-12-20T09:00:00+07:00"),
                   422, "validation_error")
    assert_problem(await act(client, tok, code, 1, action="issue_apology", reason="Chậm xác minh",
                             new_due_at="2020-01-01T09:00:00+07:00"), 422, "validation_error")
    assert await snapshot(db_conn, code) == before
    owner = make_token("citizen", subject=CITIZEN)
    assert (await client.get(f"/v1/dossiers/{code}", headers=auth(owner))).status_code == 200


async def test_supplement_twice_moves_due_date_by_the_paused_working_time_to_the_minute(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch, vn(2026, 11, 30, 9, 0))
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))  # Monday 09:00, 3 working days
    tok = officer(make_token)
    assert (await client.get(f"/v1/dossiers/{code}", headers=auth(tok))).json()["due_at"] == \
        "2026-12-03T09:00:00+07:00"
    assert (await act(client, tok, code, 1, action="start")).status_code == 200
    clock.set(vn(2026, 12, 1, 10, 0))  # Tuesday 10:00
    r = await act(client, tok, code, 2, action="request_supplement", documents=["Bản sao CCCD rõ nét"])
    assert r.status_code == 200 and r.json()["status"] == "supplement_requested" and r.json()["paused"]
    clock.set(vn(2026, 12, 2, 10, 0))  # Wednesday 10:00: exactly one working day (7 h 30) paused
    r = await act(client, tok, code, 3, action="receive_supplement")
    assert r.status_code == 200, r.text
    assert r.json()["due_at"] == "2026-12-04T09:00:00+07:00" and r.json()["status"] == "in_progress"
    clock.set(vn(2026, 12, 3, 14, 0))  # Thursday 14:00
    assert (await act(client, tok, code, 4, action="request_supplement", documents=["Tờ khai"])).status_code == 200
    clock.set(vn(2026, 12, 4, 8, 0))  # Friday 08:00: 3 h + 30 min paused
    r = await act(client, tok, code, 5, action="receive_supplement")
    d = r.json()
    assert d["due_at"] == "2026-12-04T14:30:00+07:00" and d["original_due_at"] == "2026-12-04T14:30:00+07:00"
    assert not d["overdue"]
    clock.set(vn(2026, 12, 4, 15, 0))
    d = (await client.get(f"/v1/dossiers/{code}", headers=auth(tok))).json()
    assert d["overdue"]


async def test_supplement_after_its_deadline_is_refused_and_expiry_ends_the_dossier(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.dossier_workflow.jobs import run_deadline_watch

    clock = Clock(monkeypatch, vn(2026, 11, 30, 9, 0))
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))
    tok = officer(make_token)
    r = await act(client, tok, code, 1, action="request_supplement", documents=["Giấy khai sinh"], supplement_days=1)
    assert r.json()["supplement_due_at"] == "2026-12-01T09:00:00+07:00"
    clock.set(vn(2026, 12, 1, 9, 1))
    before = await snapshot(db_conn, code)
    assert_problem(await act(client, tok, code, 2, action="receive_supplement"), 409, "supplement_deadline_passed")
    assert await snapshot(db_conn, code) == before
    counts = await run_deadline_watch(db_conn, vn(2026, 12, 1, 9, 1))
    assert counts["supplements_expired"] >= 1
    d = (await client.get(f"/v1/dossiers/{code}", headers=auth(tok))).json()
    assert d["status"] == "resolved" and d["outcome"] == "rejected" and "bổ sung" in d["outcome_reason"]


async def test_apology_moves_appointment_but_stays_late_against_the_original_date(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch, vn(2026, 12, 3, 10, 0))  # after the due Thursday 09:00
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))
    tok, leader = officer(make_token), officer(make_token, "lanhdao.phuong", role="supervisor")
    assert (await client.get(f"/v1/dossiers/{code}", headers=auth(tok))).json()["overdue"]
    r = await act(client, tok, code, 1, action="issue_apology", reason="Cần xác minh tại nơi cư trú cũ",
                  new_due_at="2026-12-08T16:00:00+07:00")
    d = r.json()
    assert r.status_code == 200 and d["due_at"] == "2026-12-08T16:00:00+07:00"
    assert d["original_due_at"] == "2026-12-03T09:00:00+07:00" and not d["overdue"]
    pdf = await client.get(f"/v1/dossiers/{code}/apology", headers=auth(tok))
    assert pdf.headers["content-type"] == "application/pdf"
    words = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "xin lỗi" in words.lower() and "nơi cư trú cũ" in words and "08/12/2026" in words
    await act(client, tok, code, 2, action="start")
    clock.set(vn(2026, 12, 7, 9, 0))
    assert (await act(client, leader, code, 3, action="approve")).status_code == 200
    timing = await db_conn.fetchval(
        "SELECT data->>'timing' FROM workflow.history WHERE dossier_code=$1 AND action='approve'", code)
    assert timing == "late"


async def test_transfers_internal_and_external_with_callback(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))
    ward, dept = officer(make_token), officer(make_token, "canbo.so", PROVINCE)
    r = await act(client, ward, code, 1, action="transfer", target_agency=PROVINCE, note="Chuyển Sở")
    assert r.status_code == 200 and r.json()["current_agency"] == PROVINCE
    assert_problem(await act(client, ward, code, 2, action="assign", assignee="x"), 403, "forbidden")
    r = await act(client, dept, code, 2, action="transfer", external_system="BHXH")
    assert r.status_code == 202 and r.json()["pending_transfer"]["status"] == "pending"
    transfer_id = r.json()["pending_transfer"]["id"]
    assert r.json()["pending_transfer"]["part_code"] == f"{code}-LT2"
    assert_problem(await act(client, dept, code, 3, action="forward"), 409, "transfer_pending")
    gov = make_token("gov_system", subject="dvcqg")
    assert_problem(await client.post(f"/v1/transfers/{transfer_id}/callback", json={"decision": "accepted"},
                                     headers=auth(dept)), 403, "forbidden")
    r = await client.post(f"/v1/transfers/{transfer_id}/callback",
                          json={"decision": "accepted", "external_ref": "BHXH-1"}, headers=auth(gov))
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    before = await snapshot(db_conn, code)
    assert_problem(await client.post(f"/v1/transfers/{transfer_id}/callback", json={"decision": "rejected"},
                                     headers=auth(gov)), 409, "transfer_not_pending")
    assert_problem(await client.post("/v1/transfers/999999/callback", json={"decision": "rejected"},
                                     headers=auth(gov)), 404, "not_found")
    assert await snapshot(db_conn, code) == before
    d = (await client.get(f"/v1/dossiers/{code}", headers=auth(dept))).json()
    assert d["pending_transfer"] is None
    assert [h["action"] for h in d["timeline"]][-3:] == ["transfer", "transfer", "transfer_accepted"]
    counted = await db_conn.fetchval("SELECT count(*) FROM workflow.dossiers WHERE code LIKE $1", f"{code}%")
    assert counted == 1  # the parts are linked records, the dossier is counted once


async def test_history_is_append_only_in_the_database(db_conn: Tx) -> None:
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))
    for sql, args in (("UPDATE workflow.history SET note = 'sửa' WHERE dossier_code = $1", [code]),
                      ("DELETE FROM workflow.history WHERE dossier_code = $1", [code]),
                      ("TRUNCATE workflow.history", [])):
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await db_conn.statement(sql, *args)  # its own savepoint: the test's transaction stays usable
    assert await db_conn.fetchval("SELECT count(*) FROM workflow.history WHERE dossier_code = $1", code) == 1


async def test_control_slip_json_and_pdf(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch, vn(2026, 11, 30, 9, 10))
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))
    tok = officer(make_token)
    await act(client, tok, code, 1, action="start")  # closes 'receive' (10 % of 22 h 30 = 2 h 15) early? same day
    clock.set(vn(2026, 12, 3, 16, 0))  # review had 60 % = 13 h 30 from 09:10 Monday: Wednesday ~15:10 -> late
    await act(client, tok, code, 2, action="forward")
    slip = (await client.get(f"/v1/dossiers/{code}/control-slip", headers=auth(tok))).json()
    # Hand-offs only: the reception is the header ("Ngày nhận"); the first hand-off leaves the one-stop unit.
    assert [e["action"] for e in slip["entries"]] == ["start", "forward"]
    assert [e["timing"] for e in slip["entries"]] == ["on_time", "late"]
    assert slip["entries"][0]["from_unit"] == "Bộ phận Tiếp nhận và Trả kết quả"
    assert "intake" not in str(slip) and "canbo.phuong" not in str(slip)
    r = await client.get(f"/v1/dossiers/{code}/control-slip", headers=auth(tok, Accept="application/pdf"))
    text_ = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)
    assert "PHIẾU KIỂM SOÁT" in text_ and "Quá hạn" in text_ and code in text_.replace("\n", "")
