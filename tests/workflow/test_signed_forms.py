"""Forms 01–07 as an auditor reads them: one dossier received at the counter (intake's API), handed through the
workflow (its API) by named officers, transferred to the province department, returned; each form rendered to
PDF, its text compared with the expected fields (full names and titles from the token's identity claims, no
account names, official agency names and places, Circular 03/2025 titles, Vietnamese only), and rendered to PNG
once (`.data/forms-png/`) to be looked at."""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pypdfium2 as pdfium
from pypdf import PdfReader

from services.dossier_workflow import outbox_repository, service, slips
from services.dossier_workflow.app import create_app as workflow_app
from services.intake.app import create_app as intake_app
from shared.db import Tx
from shared.pagination import encode_cursor
from tests.conftest import app_client_factory, auth
from tests.intake.helpers import body
from tests.workflow.helpers import new_dossier

WARD, PROVINCE = "000.00.21.H29", "000.00.07.H29"
PEOPLE = {  # the demo identity records (scripts/demo_data.py): username -> (role, agency, full name, title)
    "canbo.phuong": ("officer", WARD, "Lê Thị Hoa", "Công chức Tư pháp - Hộ tịch"),
    "canbo2.phuong": ("officer", WARD, "Phạm Minh Tuấn", "Công chức Văn phòng - Thống kê"),
    "canbo.so": ("officer", PROVINCE, "Vũ Thị Lan", "Chuyên viên Phòng Hành chính tư pháp"),
    "lanhdao.so": ("supervisor", PROVINCE, "Đặng Quốc Huy", "Phó Giám đốc Sở Tư pháp"),
}
ACCOUNTS = re.compile(r"canbo|lanhdao|intake|vnpost|dvcqg|\bsystem\b|test-")
ENGLISH = re.compile(r"\b(we|you|the|of|by|received|officer|dossier|head|apology|early|late|on time|slip|"
                     r"portal|synced|receipt|system)\b", re.IGNORECASE)
PNG_DIR = Path(".data/forms-png")


def token(make_token: Any, username: str) -> str:
    role, agency, name, title = PEOPLE[username]
    return str(make_token(role, subject=username, agency_code=agency, name=name, title=title))


def pdf_text(r: httpx.Response) -> str:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf", r.headers
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)


def assert_clean(text: str) -> None:
    """No account name, no client id, no English word."""
    assert not ACCOUNTS.search(text), ACCOUNTS.search(text)
    assert not ENGLISH.search(text), ENGLISH.search(text)


def to_png(name: str, pdf: bytes) -> None:
    """Each page rendered to an image (pdfium) and kept under .data/forms-png/ for a person to look at; a page
    that renders without ink, or without its upper part (header and title), fails."""
    PNG_DIR.mkdir(parents=True, exist_ok=True)
    for stale in PNG_DIR.glob(f"{name}-*.png"):
        stale.unlink()
    for number, page in enumerate(pdfium.PdfDocument(pdf), 1):
        image = page.render(scale=1).to_pil().convert("L")
        top = image.crop((0, 0, image.width, image.height // 5))
        assert sum(image.histogram()[:128]) > 2000, f"{name} page {number} renders blank"
        assert sum(top.histogram()[:128]) > 500, f"{name} page {number} has no header or title"
        image.save(PNG_DIR / f"{name}-{number}.png")


intake = app_client_factory(intake_app)
workflow = app_client_factory(workflow_app)


async def receive(intake: httpx.AsyncClient, db_conn: Tx, make_token: Any, **over: Any) -> tuple[str, Any]:
    """Submitted at the counter by Lê Thị Hoa; the workflow gets intake's own `dossier.received` payload."""
    headers = auth(token(make_token, "canbo.phuong"), **{"Idempotency-Key": uuid.uuid4().hex})
    r = await intake.post("/v1/dossiers", json=body(number_of_sets=2, **over), headers=headers)
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    payload = await db_conn.fetchval(
        "SELECT convert_from(payload, 'UTF8')::jsonb->'data' FROM jobs.pgqueuer "
        "WHERE entrypoint = 'dossier.received' AND convert_from(payload, 'UTF8')::jsonb->'data'->>'code' = $1", code)
    assert payload["receiver"] == {"name": "Lê Thị Hoa", "title": "Công chức Tư pháp - Hộ tịch"}
    assert await service.receive(db_conn, payload)
    return code, payload


async def act(workflow: httpx.AsyncClient, tok: str, code: str, **action: Any) -> dict[str, Any]:
    version = (await workflow.get(f"/v1/dossiers/{code}", headers=auth(tok))).headers["etag"]
    r = await workflow.post(f"/v1/dossiers/{code}/actions", json=action, headers=auth(tok, **{"If-Match": version}))
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_forms_01_to_07_name_people_and_agencies_as_an_auditor_signs(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    hoa, tuan, lan, huy = (token(make_token, u) for u in ("canbo.phuong", "canbo2.phuong", "canbo.so", "lanhdao.so"))
    code, payload = await receive(intake, db_conn, make_token)
    assert payload["number_of_sets"] == 2 and payload["applicant"]["address"] == "12 phố Kim Mã"

    # Form 01: the receiver by full name and title, the ward's place
    r = await intake.get(f"/v1/dossiers/{code}/receipt", headers=auth(hoa))
    text = pdf_text(r)
    to_png("form-01", r.content)
    assert "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ" in text and "Ba Đình, ngày" in text
    signers = text.split("NGƯỜI TIẾP NHẬN HỒ SƠ", 1)[1]
    assert "Lê Thị Hoa" in signers and "Công chức Tư pháp - Hộ tịch" in signers
    assert "Nguyễn Văn An" in text.split("NGƯỜI NỘP HỒ SƠ", 1)[1]
    assert_clean(text)

    # Forms 02 and 03 written by Lê Thị Hoa at the counter
    for kind, title, heading in (("completion_request", "PHIẾU YÊU CẦU BỔ SUNG, HOÀN THIỆN HỒ SƠ", "NGƯỜI HƯỚNG DẪN"),
                                 ("refusal", "PHIẾU TỪ CHỐI TIẾP NHẬN GIẢI QUYẾT HỒ SƠ", "NGƯỜI TIẾP NHẬN HỒ SƠ")):
        slip = {"kind": kind, "procedure_code": "1.001193", "receiving_agency_code": WARD,
                "applicant": {"full_name": "Nguyễn Văn An", "phone": "0912345678", "id_number": "001090012345"},
                "reason": "Giấy chứng sinh bị mờ", "documents": ["Giấy chứng sinh (bản chính)"]}
        created = await intake.post("/v1/counter-records", json=slip,
                                    headers=auth(hoa, **{"Idempotency-Key": uuid.uuid4().hex}))
        assert created.status_code == 201, created.text
        r = await intake.get(f"/v1/counter-records/{created.json()['id']}", headers=auth(hoa, Accept="application/pdf"))
        text = pdf_text(r)
        to_png(f"form-0{2 if kind == 'completion_request' else 3}", r.content)
        assert title in text and "UBND PHƯỜNG BA ĐÌNH" in text and "BỘ PHẬN TIẾP NHẬN VÀ TRẢ KẾT QUẢ" in text
        assert "Ba Đình, ngày" in text and "Giấy chứng sinh bị mờ" in text
        signers = text.split(heading, 1)[1]
        assert "Lê Thị Hoa" in signers and "Công chức Tư pháp - Hộ tịch" in signers
        assert not PdfReader(io.BytesIO(r.content)).pages[0].images  # no QR code (Circular 03 gives none)
        assert_clean(text)

    # The workflow: Phạm Minh Tuấn takes it, apologises (form 04), transfers it to the province department, where
    # Vũ Thị Lan forwards it and Đặng Quốc Huy approves; Vũ Thị Lan returns the result. The portal sync is logged.
    await act(workflow, tuan, code, action="start")
    await outbox_repository.mark_synced(db_conn, code, datetime.now(UTC), {})
    d = (await workflow.get(f"/v1/dossiers/{code}", headers=auth(tuan))).json()
    new_due = (datetime.fromisoformat(d["due_at"]) + timedelta(days=3)).isoformat()
    await act(workflow, tuan, code, action="issue_apology", reason="Cần xác minh tại nơi cư trú cũ", new_due_at=new_due)
    apology = await db_conn.fetchrow("SELECT issued_by_name, issued_by_title FROM workflow.apologies "
                                     "WHERE dossier_code = $1", code)
    assert tuple(apology.values()) == ("Phạm Minh Tuấn", "Công chức Văn phòng - Thống kê")
    r = await workflow.get(f"/v1/dossiers/{code}/apology", headers=auth(tuan))
    text = pdf_text(r)
    to_png("form-04", r.content)
    assert "VĂN BẢN XIN LỖI VÀ ĐỀ NGHỊ GIA HẠN THỜI GIAN GIẢI QUYẾT" in text and "Ba Đình, ngày" in text
    head = text.split("CHỦ TỊCH", 1)[1]  # the ward's head, from core.agencies (head_name, head_title)
    assert "Phạm Minh Tuấn" not in head and "(Ký, ghi rõ họ tên, đóng dấu)" in head  # the head signs, not Tuấn
    assert "Hoàng Văn Dũng" in head
    assert "ngày ngày" not in text.lower()
    assert_clean(text)

    await act(workflow, tuan, code, action="transfer", target_agency=PROVINCE, note="Chuyển Sở Tư pháp")
    await act(workflow, lan, code, action="forward")
    await act(workflow, huy, code, action="approve")
    await act(workflow, lan, code, action="return_result")
    history = await db_conn.fetch("SELECT action, actor_name, actor_title FROM workflow.history "
                                  "WHERE dossier_code = $1 ORDER BY id", code)
    named = {h["action"]: (h["actor_name"], h["actor_title"]) for h in history}
    assert named["receive"] == ("Lê Thị Hoa", "Công chức Tư pháp - Hộ tịch")
    assert named["approve"] == ("Đặng Quốc Huy", "Phó Giám đốc Sở Tư pháp")
    assert named["portal_synced"] == (None, None)

    # Form 06: hand-offs only, units named, the transfer names the department, people by full name
    slip = (await workflow.get(f"/v1/dossiers/{code}/control-slip", headers=auth(lan))).json()
    assert slip["competent_agency_name"] == "UBND phường Ba Đình"
    assert slip["coordinating_agencies"] == ["Sở Tư pháp thành phố Hà Nội"]
    entries = slip["entries"]
    assert [e["action"] for e in entries] == ["start", "transfer", "forward", "approve", "return_result"]
    assert entries[0]["from_unit"] == "Bộ phận Tiếp nhận và Trả kết quả"
    assert entries[0]["to_unit"] == "UBND phường Ba Đình"
    assert entries[0]["handed_over_by"].startswith("Lê Thị Hoa") and entries[0]["received_by"].startswith("Phạm Minh")
    assert entries[1]["to_unit"] == "Sở Tư pháp thành phố Hà Nội" and entries[1]["received_by"].startswith("Vũ Thị Lan")
    assert entries[1]["note"] == "Chuyển liên thông: Chuyển Sở Tư pháp"  # the kind of hand-off, then the officer's note
    assert entries[2]["to_unit"] == "Lãnh đạo Sở Tư pháp thành phố Hà Nội"
    assert entries[2]["received_by"] == "Đặng Quốc Huy (Phó Giám đốc Sở Tư pháp)"
    assert entries[4]["received_by"] == "Nguyễn Văn An"
    assert all(e["timing_text"] in ("Trước hạn", "Đúng hạn", "Quá hạn") for e in entries)
    r = await workflow.get(f"/v1/dossiers/{code}/control-slip", headers=auth(lan, Accept="application/pdf"))
    text = pdf_text(r)
    to_png("form-06", r.content)
    flat = text.replace("\n", " ")
    for expected in ("PHIẾU KIỂM SOÁT QUÁ TRÌNH GIẢI QUYẾT HỒ SƠ", "Mã số hồ sơ", code,
                     "Cơ quan (bộ phận) giải quyết hồ sơ: UBND phường Ba Đình",
                     "Cơ quan phối hợp giải quyết hồ sơ: Sở Tư pháp thành phố Hà Nội", "Ngày nhận",
                     "Hẹn trả kết quả", "TÊN ĐƠN VỊ", "Người giao", "Người nhận", "GHI CHÚ",
                     "Giao: Bộ phận Tiếp nhận và Trả kết quả", "Lê Thị Hoa", "Phạm Minh Tuấn", "Vũ Thị Lan",
                     "Đặng Quốc Huy", "Ba Đình, ngày"):
        assert expected in flat, expected
    assert "Sớm hạn" not in flat
    assert_clean(text)

    # Form 07: the tracking book as a PDF with its legal columns (Accept or ?format=pdf)
    received = datetime.fromisoformat(d["received_at"])
    day = received.date().isoformat()
    # the page that starts at this dossier (other tests may have filled the day's book before it)
    start = encode_cursor([(received - timedelta(microseconds=1)).isoformat(), ""])
    r = await workflow.get("/v1/tracking-book", params={"from": day, "to": day, "format": "pdf", "cursor": start},
                           headers=auth(hoa))
    text = pdf_text(r)
    to_png("form-07", r.content)
    # STT goes on across pages: this dossier's number is one more than the book's entries before it
    await new_dossier(db_conn, received - timedelta(seconds=30))  # at least one entry comes before it
    before = await db_conn.fetchval(
        "SELECT count(*) FROM workflow.dossiers WHERE received_at >= $1 AND received_at < $2 "
        "AND (receiving_agency = $3 OR current_agency = $3)",
        datetime.combine(received.date(), datetime.min.time(), received.tzinfo), received, WARD)
    one = pdf_text(await workflow.get("/v1/tracking-book", headers=auth(hoa), params={
        "from": day, "to": day, "format": "pdf", "cursor": start, "limit": 1}))
    assert before >= 1 and re.search(rf"\n{before + 1} {re.escape(code[:14])}", one), one
    flat = text.replace("\n", " ")
    for expected in ("SỔ THEO DÕI HỒ SƠ", "STT", "Mã hồ sơ", "Tên TTHC", "Tên tổ chức, cá nhân",
                     "Địa chỉ, số điện thoại", "Cơ quan chủ trì giải quyết", "Nhận hồ sơ", "Hẹn trả kết quả",
                     "Trả kết quả",
                     "Phương thức nhận kết quả", "Ký nhận", "Số bộ hồ sơ", "12 phố Kim Mã", "0912345678",
                     "Sở Tư pháp thành phố Hà Nội", "Nguyễn Văn An", "Ba Đình, ngày", "UBND PHƯỜNG BA ĐÌNH"):
        assert expected in flat, expected
    assert code in re.sub(r"\s", "", text)
    assert_clean(text)
    by_accept = await workflow.get("/v1/tracking-book", params={"from": day, "to": day},
                                   headers=auth(hoa, Accept="application/pdf"))
    assert by_accept.headers["content-type"] == "application/pdf"


async def test_form_05_is_signed_by_the_head_and_names_no_account(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    code, _ = await receive(intake, db_conn, make_token)
    citizen = make_token("citizen", subject="001090012345", name="Nguyễn Văn An")
    await act(workflow, citizen, code, action="withdraw", note="Tôi không cần nữa")
    r = await workflow.get(f"/v1/dossiers/{code}/withdrawal-notice", headers=auth(citizen))
    text = pdf_text(r)
    to_png("form-05", r.content)
    assert "THÔNG BÁO DỪNG GIẢI QUYẾT HỒ SƠ" in text and "Ba Đình, ngày" in text
    head = text.split("CHỦ TỊCH", 1)[1]
    assert "001090012345" not in head and "Nguyễn Văn An" not in head and "Hoàng Văn Dũng" in head
    assert_clean(text)


def test_the_head_of_agency_signs_by_name_and_title_when_the_agency_data_gives_them() -> None:
    named = slips._head({"name": "UBND phường Ba Đình", "head_name": "Hoàng Văn Dũng", "head_title": "Chủ tịch"})
    assert (named.heading, named.name) == ("CHỦ TỊCH", "Hoàng Văn Dũng")
    blank = slips._head({"name": "UBND phường Ba Đình"})
    assert (blank.heading, blank.name) == ("THỦ TRƯỞNG CƠ QUAN, ĐƠN VỊ", None)


def test_people_without_a_name_are_named_by_their_role_in_words() -> None:
    from shared.pdf import person

    assert person(None, None, "postal_partner") == "Nhân viên bưu chính"
    assert person(None, None, "system") == "Hệ thống thông tin giải quyết TTHC"
    assert person("Lê Thị Hoa", "Công chức Tư pháp - Hộ tịch", "officer") == "Lê Thị Hoa (Công chức Tư pháp - Hộ tịch)"


async def test_the_route_from_the_ward_to_the_department_shows_on_the_control_slip(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    """A province procedure received at the ward's one-stop unit (Decree 118/2025 Art. 14): form 06 names where
    it was received and the department that decides it."""
    proc = (await intake.get("/v1/procedures/2.000823")).json()
    code, payload = await receive(intake, db_conn, make_token, procedure_code="2.000823",
                                  documents=[{"name": d["name"]} for d in proc["documents"]])
    assert (payload["receiving_agency"], payload["competent_agency"]) == (WARD, PROVINCE)
    lan = token(make_token, "canbo.so")
    slip = (await workflow.get(f"/v1/dossiers/{code}/control-slip", headers=auth(lan))).json()
    assert (slip["receiving_agency_name"], slip["competent_agency_name"]) == (
        "UBND phường Ba Đình", "Sở Tư pháp thành phố Hà Nội")
    r = await workflow.get(f"/v1/dossiers/{code}/control-slip", headers=auth(lan, Accept="application/pdf"))
    flat = pdf_text(r).replace("\n", " ")
    assert "Nơi tiếp nhận hồ sơ: UBND phường Ba Đình" in flat
    assert "Cơ quan (bộ phận) giải quyết hồ sơ: Sở Tư pháp thành phố Hà Nội" in flat
    assert_clean(flat)


async def test_a_form_keeps_the_head_who_signed_it_when_issued(
    intake: httpx.AsyncClient, workflow: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    """The ward's chair changes (admin, intake's API): the apology issued before is still signed by the former
    chair; a stop notice issued after is signed by the new one."""
    tuan = token(make_token, "canbo2.phuong")
    code, _ = await receive(intake, db_conn, make_token)
    await act(workflow, tuan, code, action="start")
    d = (await workflow.get(f"/v1/dossiers/{code}", headers=auth(tuan))).json()
    new_due = (datetime.fromisoformat(d["due_at"]) + timedelta(days=3)).isoformat()
    await act(workflow, tuan, code, action="issue_apology", reason="Cần xác minh thêm", new_due_at=new_due)
    admin = auth(make_token("admin", subject="quantri"))
    r = await intake.put(f"/v1/admin/agencies/{WARD}/head", json={"head_name": "Nguyễn Thị Mai",
                                                                   "head_title": "Chủ tịch"}, headers=admin)
    assert r.status_code == 200 and r.json()["head_name"] == "Nguyễn Thị Mai", r.text
    apology = pdf_text(await workflow.get(f"/v1/dossiers/{code}/apology", headers=auth(tuan)))
    head = apology.split("CHỦ TỊCH", 1)[1]
    assert "Hoàng Văn Dũng" in head and "Nguyễn Thị Mai" not in head
    other, _ = await receive(intake, db_conn, make_token)
    await act(workflow, tuan, other, action="withdraw", note="Người dân đề nghị dừng")
    notice = pdf_text(await workflow.get(f"/v1/dossiers/{other}/withdrawal-notice", headers=auth(tuan)))
    assert "Nguyễn Thị Mai" in notice.split("CHỦ TỊCH", 1)[1]
    # refusals: not an admin, an unknown agency, a name too short
    assert (await intake.put(f"/v1/admin/agencies/{WARD}/head", json={"head_name": "Lê Văn A", "head_title": "X y"},
                             headers=auth(tuan))).status_code == 403
    assert (await intake.put("/v1/admin/agencies/000.99.99.H29/head", json={
        "head_name": "Lê Văn A", "head_title": "Chủ tịch"}, headers=admin)).status_code == 404
    assert (await intake.put(f"/v1/admin/agencies/{WARD}/head", json={"head_name": "A", "head_title": "Chủ tịch"},
                             headers=admin)).status_code == 422
