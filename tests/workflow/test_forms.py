"""Forms 04 and 05 read back from their rendered PDFs: place and date line, names, titles, Vietnamese only."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from services.dossier_workflow import router as workflow_router
from services.dossier_workflow.app import create_app
from shared.db import Tx
from tests.conftest import app_client_factory, assert_problem, auth
from tests.workflow.helpers import CITIZEN, act, new_dossier, officer, vn

client = app_client_factory(create_app)


def pdf_text(r: httpx.Response) -> str:
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf", r.text
    return " ".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)


def assert_vietnamese_only(text: str) -> None:
    for english in (" the ", " was ", "apology", "head", "officer"):
        assert english not in text.lower(), english


async def test_form_04_title_place_date_line_head_of_agency_and_the_original_due_date(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workflow_router, "now", lambda: vn(2026, 12, 7, 10, 0))
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))  # due Thursday 03/12 09:00
    tok = officer(make_token)
    r = await act(client, tok, code, 1, action="issue_apology", reason="Cần xác minh tại nơi cư trú cũ",
                  new_due_at="2026-12-10T16:00:00+07:00")
    assert r.status_code == 200, r.text
    text = pdf_text(await client.get(f"/v1/dossiers/{code}/apology", headers=auth(tok)))
    assert "Ba Đình, ngày 07 tháng 12 năm 2026" in text  # the ward's own place, not "Hà Nội", no "Ngày ngày"
    assert "ngày ngày" not in text.lower() and "Hà Nội" not in text
    assert "VĂN BẢN XIN LỖI VÀ ĐỀ NGHỊ GIA HẠN THỜI GIAN GIẢI QUYẾT" in text and "HẸN LẠI NGÀY" not in text
    assert "CHỦ TỊCH" in text and "Hoàng Văn Dũng" in text and "UBND PHƯỜNG BA ĐÌNH" in text
    assert "canbo.phuong" not in text and "Nguyễn Văn An" in text and CITIZEN in text
    assert "09 giờ 00 phút, ngày 03/12/2026" in text and "16 giờ 00 phút, ngày 10/12/2026" in text
    assert_vietnamese_only(text)


async def test_a_second_apology_is_refused_and_the_form_keeps_the_original_due_date(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workflow_router, "now", lambda: vn(2026, 12, 3, 10, 0))
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))
    tok = officer(make_token)
    first = await act(client, tok, code, 1, action="issue_apology", reason="Chậm xác minh",
                      new_due_at="2026-12-08T16:00:00+07:00")
    assert first.status_code == 200, first.text
    again = await act(client, tok, code, 2, action="issue_apology", reason="Lại chậm",
                      new_due_at="2026-12-15T16:00:00+07:00")
    body = assert_problem(again, 409, "apology_already_issued")
    assert body["original_due_at"] == "2026-12-03T09:00:00+07:00"
    d = (await client.get(f"/v1/dossiers/{code}", headers=auth(tok))).json()
    assert d["due_at"] == "2026-12-08T16:00:00+07:00" and d["version"] == 2
    n = await db_conn.fetchval("SELECT count(*) FROM workflow.apologies WHERE dossier_code = $1", code)
    assert n == 1
    text = pdf_text(await client.get(f"/v1/dossiers/{code}/apology", headers=auth(tok)))
    assert "09 giờ 00 phút, ngày 03/12/2026" in text and "15/12/2026" not in text


@pytest.mark.parametrize("who", ["citizen", "officer"])
async def test_form_05_is_the_agency_s_notice_on_the_applicant_s_request(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, monkeypatch: pytest.MonkeyPatch, who: str,
) -> None:
    monkeypatch.setattr(workflow_router, "now", lambda: vn(2026, 12, 1, 14, 0))
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))
    tok = make_token("citizen", subject=CITIZEN) if who == "citizen" else officer(make_token)
    assert (await act(client, tok, code, 1, action="withdraw", note="Tôi không cần nữa")).status_code == 200
    text = pdf_text(await client.get(f"/v1/dossiers/{code}/withdrawal-notice", headers=auth(tok)))
    assert "Ba Đình, ngày 01 tháng 12 năm 2026" in text and "ngày ngày" not in text.lower()
    assert "THÔNG BÁO DỪNG GIẢI QUYẾT HỒ SƠ" in text and "CHỦ TỊCH" in text and "Hoàng Văn Dũng" in text
    assert "Theo đề nghị của Ông/Bà Nguyễn Văn An" in text
    signature = text[text.index("CHỦ TỊCH"):]
    assert CITIZEN not in signature and "canbo.phuong" not in signature and "NGƯỜI TIẾP NHẬN" not in text
    assert_vietnamese_only(text)
