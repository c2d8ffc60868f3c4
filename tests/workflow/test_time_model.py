"""The time-limit model through the API (issue 22 item 2): verification extension, online acceptance timer,
no due date before the clock starts, the stop request (form 05), the apology setting."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from services.dossier_workflow import jobs, service
from services.dossier_workflow.app import create_app
from shared.db import Tx
from shared.settings import get_settings
from tests.conftest import app_client_factory, assert_problem, auth
from tests.workflow.helpers import CITIZEN, WARD, Clock, act, job_unit, officer, received_job, vn

client = app_client_factory(create_app)
PHONE_LAST4 = "5678"




async def enter(tx: Tx, received_at: datetime, *, extension: int = 5, online: bool = False,
                **kw: Any) -> str:
    """A dossier as intake's `dossier.received` now carries it: the limit with its verification extension;
    an online dossier without a due date (its clock waits for the acceptance)."""
    data = await received_job(tx, received_at, channel="online" if online else kw.pop("channel", "counter"), **kw)
    data["time_limit"] = {**data["time_limit"], "verification_extension": extension}
    if online:
        data.update(due_at=None, clock_started=False)
    assert await service.receive(tx, data)
    return str(data["code"])


async def history_data(tx: Tx, code: str, action: str) -> list[dict[str, Any]]:
    rows = await tx.fetch("SELECT data FROM workflow.history WHERE dossier_code = $1 AND action = $2 ORDER BY id",
                          code, action)
    return [dict(r["data"]) for r in rows]


async def templates(tx: Tx, code: str | None = None) -> list[str]:
    rows = await tx.fetch("SELECT template FROM workflow.notification_outbox WHERE dossier_code IS NOT DISTINCT "
                          "FROM $1 ORDER BY id", code)
    return [r["template"] for r in rows]


async def test_verification_extension_moves_both_due_dates_within_the_allowance(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch, vn(2026, 12, 1, 9, 0))
    code = await enter(db_conn, vn(2026, 11, 30, 9, 0))  # 3 working days: due Thu 3 Dec 09:00
    tok, leader = officer(make_token), officer(make_token, "lanhdao.phuong", role="supervisor")
    d = (await client.get(f"/v1/dossiers/{code}", headers=auth(tok))).json()
    assert "extend_for_verification" in d["allowed_actions"] and d["verification_days"] == 0
    assert_problem(await act(client, tok, code, 1, action="extend_for_verification", days=2), 422, "validation_error")
    r = await act(client, tok, code, 1, action="extend_for_verification", days=2,
                  reason="Xác minh tình trạng hôn nhân tại nơi cư trú trước đây")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["due_at"] == "2026-12-07T09:00:00+07:00" and d["original_due_at"] == "2026-12-07T09:00:00+07:00"
    assert d["verification_days"] == 2 and not d["overdue"]
    [data] = await history_data(db_conn, code, "extend_for_verification")
    assert data["days"] == 2 and data["previous_due_at"] == "2026-12-03T09:00:00+07:00"
    assert data["new_due_at"] == "2026-12-07T09:00:00+07:00"
    assert "verification_extended" in await templates(db_conn, code)
    # Beyond the catalog's allowance (5 in total): 422, nothing moves.
    problem = assert_problem(await act(client, tok, code, 2, action="extend_for_verification", days=4,
                                       reason="Thêm"), 422, "validation_error")
    assert problem["allowance"] == 5 and problem["used"] == 2
    r = await act(client, leader, code, 2, action="extend_for_verification", days=3, reason="Chờ trả lời xác minh")
    assert r.status_code == 200 and r.json()["due_at"] == "2026-12-10T09:00:00+07:00"
    assert "extend_for_verification" not in r.json()["allowed_actions"]
    assert_problem(await act(client, tok, code, 3, action="extend_for_verification", days=1, reason="x"),
                   422, "validation_error")
    # The citizen sees the new date (public tracking), the control slip has the history row with the reason.
    public = (await client.get(f"/v1/public/dossiers/{code}", params={"phone_last4": PHONE_LAST4})).json()
    assert public["due_at"] == "2026-12-10T09:00:00+07:00"
    slip = (await client.get(f"/v1/dossiers/{code}/control-slip", headers=auth(tok))).json()
    extensions = slip["verification_extensions"]
    assert [e["days"] for e in extensions] == [2, 3]
    assert extensions[0]["reason"].startswith("Xác minh tình trạng hôn nhân")
    assert slip["original_due_at"] == "2026-12-10T09:00:00+07:00"  # the legal date moved: not counted late
    pdf = await client.get(f"/v1/dossiers/{code}/control-slip", headers={**auth(tok), "Accept": "application/pdf"})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages).split())
    assert "Gia hạn để xác minh: 2 ngày làm việc" in text and "Gia hạn để xác minh: 3 ngày làm việc" in text
    # Not late: resolved after the first due date, before the extended one.
    await act(client, tok, code, 3, action="start")
    clock.set(vn(2026, 12, 8, 10, 0))
    assert (await act(client, leader, code, 4, action="approve")).status_code == 200
    [approved] = await history_data(db_conn, code, "approve")
    assert approved["timing"] == "early"


async def test_no_verification_extension_when_the_procedure_has_none(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    code = await enter(db_conn, vn(2026, 11, 30, 9, 0), extension=0)
    tok = officer(make_token)
    assert "extend_for_verification" not in (await client.get(f"/v1/dossiers/{code}", headers=auth(tok))).json()[
        "allowed_actions"]
    assert_problem(await act(client, tok, code, 1, action="extend_for_verification", days=1, reason="Xác minh"),
                   409, "no_verification_extension")


async def test_online_dossier_waits_for_acceptance_then_runs_from_it(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch, vn(2026, 11, 30, 10, 0))
    code = await enter(db_conn, vn(2026, 11, 30, 9, 0), online=True)
    tok = officer(make_token)
    d = (await client.get(f"/v1/dossiers/{code}", headers=auth(tok))).json()
    # 8 working hours from Mon 09:00: 2 h 30 + 3 h 30 on Monday, 2 h on Tuesday.
    assert d["due_at"] is None and d["original_due_at"] is None and not d["overdue"] and d["awaiting_acceptance"]
    assert d["acceptance_due_at"] == "2026-12-01T09:30:00+07:00"
    assert "accept" in d["allowed_actions"] and "start" not in d["allowed_actions"]
    assert "dossier_submitted" in await templates(db_conn, code)
    problem = assert_problem(await act(client, tok, code, 1, action="start"), 409, "not_accepted")
    assert "accept" in problem["allowed_actions"]
    public = (await client.get(f"/v1/public/dossiers/{code}", params={"phone_last4": PHONE_LAST4})).json()
    assert public["due_at"] is None and public["acceptance_due_at"] == "2026-12-01T09:30:00+07:00"
    # The one-stop officers and their supervisors are alerted once, 2 working hours after submission.
    assert await jobs.run_acceptance_watch(db_conn, vn(2026, 11, 30, 10, 59)) == 0
    assert await jobs.run_acceptance_watch(db_conn, vn(2026, 11, 30, 11, 5)) == 1
    assert await jobs.run_acceptance_watch(db_conn, vn(2026, 11, 30, 11, 10)) == 0
    alerts = await db_conn.fetch("SELECT recipient, template FROM workflow.notification_outbox WHERE dossier_code "
                                 "IS NULL AND template LIKE '%acceptance_due'")
    assert {(a["recipient"], a["template"]) for a in alerts} == {
        (f"mot-cua@{WARD}", "staff_acceptance_due"), (f"lanh-dao@{WARD}", "supervisor_acceptance_due")}
    # Never overdue while it has no due date, whatever the time.
    await jobs.run_deadline_watch(db_conn, vn(2027, 6, 1, 9, 0))
    assert await db_conn.fetchval("SELECT overdue_marked_at FROM workflow.dossiers WHERE code = $1", code) is None
    # Accepted Tuesday 10:00, after the 09:30 acceptance deadline: due 3 working days from the acceptance.
    clock.set(vn(2026, 12, 1, 10, 0))
    # Until then the statistics count it as waiting, and late, apart from the overdue (a direct count agrees).
    leader = auth(make_token("supervisor", subject="lanhdao", agency_code=WARD))
    [figures] = (await client.get("/v1/stats", params={"from": "2026-12-01", "to": "2026-12-01"},
                                  headers=leader)).json()
    direct = await db_conn.fetchrow(
        "SELECT count(*) AS waiting, count(*) FILTER (WHERE acceptance_due_at < $2) AS late FROM workflow.dossiers "
        "WHERE receiving_agency = $1 AND status = 'received' AND acceptance_due_at IS NOT NULL "
        "AND accepted_at IS NULL", WARD, vn(2026, 12, 1, 10, 0))
    assert (figures["awaiting_acceptance"], figures["awaiting_acceptance_late"]) == (direct["waiting"], direct["late"])
    assert direct["late"] >= 1
    r = await act(client, tok, code, 1, action="accept")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["due_at"] == "2026-12-04T10:00:00+07:00" and d["original_due_at"] == d["due_at"]
    assert not d["awaiting_acceptance"] and d["accepted_at"] == "2026-12-01T10:00:00+07:00"
    assert "start" in d["allowed_actions"] and "accept" not in d["allowed_actions"]
    [data] = await history_data(db_conn, code, "accept")
    assert data["accepted_late"] is True and data["acceptance_due_at"] == "2026-12-01T09:30:00+07:00"
    job = await db_conn.fetchval(
        "SELECT convert_from(payload, 'UTF8')::jsonb->'data' FROM jobs.pgqueuer WHERE entrypoint = 'dossier.due_set' "
        "AND convert_from(payload, 'UTF8')::jsonb->'data'->>'code' = $1", code)
    assert job["due_at"] == "2026-12-04T10:00:00+07:00"
    assert "accepted" in await templates(db_conn, code)
    assert_problem(await act(client, tok, code, 2, action="accept"), 409, "not_awaiting_acceptance")
    # Accepted in time: not late.
    other = await enter(db_conn, vn(2026, 11, 30, 9, 0), online=True)
    clock.set(vn(2026, 11, 30, 16, 0))
    r = await act(client, tok, other, 1, action="accept")
    assert r.status_code == 200 and (await history_data(db_conn, other, "accept"))[0]["accepted_late"] is False


async def test_a_supplement_request_answers_an_online_dossier_and_its_clock_starts_when_complete(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, monkeypatch: pytest.MonkeyPatch,
) -> None:
    Clock(monkeypatch, vn(2026, 11, 30, 11, 0))
    code = await enter(db_conn, vn(2026, 11, 30, 9, 0), online=True)
    tok = officer(make_token)
    r = await act(client, tok, code, 1, action="request_supplement", documents=["Bản sao Giấy chứng sinh"])
    assert r.status_code == 200 and r.json()["due_at"] is None
    async with job_unit(db_conn) as tx:
        await jobs.on_supplemented(tx, [{"code": code, "supplemented_at": "2026-12-02T14:00:00+07:00"}])
    d = (await client.get(f"/v1/dossiers/{code}", headers=auth(tok))).json()
    assert d["status"] == "in_progress" and d["due_at"] == "2026-12-07T14:00:00+07:00" and d["clock_started"]
    assert d["step_due_at"] is not None  # the step's share of the time runs from then too
    told = await db_conn.fetchval(
        "SELECT convert_from(payload, 'UTF8')::jsonb->'data'->>'due_at' FROM jobs.pgqueuer WHERE entrypoint = "
        "'dossier.due_set' AND convert_from(payload, 'UTF8')::jsonb->'data'->>'code' = $1", code)
    assert told == "2026-12-07T14:00:00+07:00"  # intake's receipt learns the date, in Viet Nam time


async def test_worklist_pages_dossiers_without_a_due_date_last(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    agency = "000.00.07.H29"
    dated = [await enter(db_conn, vn(2026, 11, 30, 9, day), agency=agency) for day in range(2)]
    waiting = [await enter(db_conn, vn(2026, 11, 30, 9, 0), online=True, agency=agency) for _ in range(2)]
    tok = officer(make_token, agency=agency)
    seen: list[str] = []
    cursor = None
    while True:
        page = (await client.get("/v1/dossiers", params={"limit": 1, **({"cursor": cursor} if cursor else {})},
                                 headers=auth(tok))).json()
        seen += [i["code"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [*dated, *sorted(waiting)]
    on_time = (await client.get("/v1/dossiers", params={"overdue": "false"}, headers=auth(tok))).json()["items"]
    assert set(waiting) <= {i["code"] for i in on_time}


async def test_the_applicant_stops_the_procedure_until_a_decision_is_issued(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    citizen = make_token("citizen", subject=CITIZEN)
    tok, leader = officer(make_token), officer(make_token, "lanhdao.phuong", role="supervisor")
    mine = await enter(db_conn, vn(2026, 11, 30, 9, 0))
    r = await act(client, citizen, mine, 1, action="withdraw", reason="Tôi đã ra nước ngoài, không cần nữa")
    assert r.status_code == 200 and r.json()["status"] == "withdrawn", r.text
    [data] = await history_data(db_conn, mine, "withdraw")
    assert data == {"requested_by": "applicant", "recorded_by_role": "citizen",
                    "reason": "Tôi đã ra nước ngoài, không cần nữa",
                    "signed_by_name": "Hoàng Văn Dũng", "signed_by_title": "Chủ tịch"}  # the head who signs form 05
    pdf = await client.get(f"/v1/dossiers/{mine}/withdrawal-notice", headers=auth(citizen))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "dừng giải quyết" in text.lower() and "Tôi đã ra nước ngoài" in text and mine in text
    # An officer records the request the applicant made at the counter.
    recorded = await enter(db_conn, vn(2026, 11, 30, 9, 0))
    r = await act(client, tok, recorded, 1, action="withdraw", reason="Công dân đề nghị dừng tại quầy")
    assert r.status_code == 200
    assert (await history_data(db_conn, recorded, "withdraw"))[0]["recorded_by_role"] == "officer"
    # Another citizen cannot; once a decision is issued, nobody can.
    stranger = make_token("citizen", subject="079195001234")
    decided = await enter(db_conn, vn(2026, 11, 30, 9, 0))
    assert_problem(await act(client, stranger, decided, 1, action="withdraw", reason="x"), 404, "not_found")
    assert (await act(client, tok, decided, 1, action="start")).status_code == 200
    assert (await act(client, leader, decided, 2, action="approve")).status_code == 200
    assert_problem(await act(client, citizen, decided, 3, action="withdraw", reason="Muộn"), 409, "decision_issued")
    assert_problem(await client.get(f"/v1/dossiers/{decided}/withdrawal-notice", headers=auth(tok)), 409, "conflict")


async def test_apology_once_only_is_a_setting(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, monkeypatch: pytest.MonkeyPatch,
) -> None:
    Clock(monkeypatch, vn(2026, 12, 3, 10, 0))
    tok = officer(make_token)
    once, twice = [await enter(db_conn, vn(2026, 11, 30, 9, 0)) for _ in range(2)]
    for code in (once, twice):
        r = await act(client, tok, code, 1, action="issue_apology", reason="Chậm xác minh",
                      new_due_at="2026-12-08T16:00:00+07:00")
        assert r.status_code == 200
    assert_problem(await act(client, tok, once, 2, action="issue_apology", reason="Lần hai",
                             new_due_at="2026-12-10T16:00:00+07:00"), 409, "apology_already_issued")
    monkeypatch.setattr(get_settings(), "apology_once_only", False)
    r = await act(client, tok, twice, 2, action="issue_apology", reason="Lần hai",
                  new_due_at="2026-12-10T16:00:00+07:00")
    assert r.status_code == 200 and r.json()["due_at"] == "2026-12-10T16:00:00+07:00"
    assert r.json()["original_due_at"] == "2026-12-03T09:00:00+07:00"


async def test_processing_time_counts_from_when_the_clock_started(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A postal certification received Monday whose paper arrives Thursday 09:00 and is approved at 11:00 took
    two working hours (the average processing time of the service index), not three days."""
    Clock(monkeypatch, vn(2026, 12, 3, 11, 0))  # the officers act at 11:00
    data = await received_job(db_conn, vn(2026, 11, 30, 9, 0), channel="postal")
    data.update(due_at=None, clock_started=False)  # a certification by post: waits for the paper
    data["time_limit"] = {**data["time_limit"], "verification_extension": 2}
    assert await service.receive(db_conn, data)
    code = str(data["code"])
    tok, leader = officer(make_token), officer(make_token, "lanhdao.phuong", role="supervisor")
    # no due date yet: nothing to extend or apologise for
    for action in ({"action": "extend_for_verification", "days": 1, "reason": "Xác minh"},
                   {"action": "issue_apology", "reason": "Chậm", "new_due_at": "2026-12-20T09:00:00+07:00"}):
        assert_problem(await act(client, tok, code, 1, **action), 409, "clock_not_started")
    arrived = vn(2026, 12, 3, 9, 0)
    await service.clock_started(db_conn, code, arrived, vn(2026, 12, 8, 9, 0))
    assert (await act(client, tok, code, 2, action="start")).status_code == 200
    assert (await act(client, leader, code, 3, action="approve")).status_code == 200
    [approved] = await history_data(db_conn, code, "approve")
    assert approved["processing_minutes"] == 120 and approved["timing"] == "early"
