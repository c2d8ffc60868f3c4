"""Forms 01, 02 and 03 rendered to PDF and read back: people by full name (never an account), Vietnamese
only, the agency's own place in the date line, and a QR a citizen can open."""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from services.intake.app import create_app
from services.intake.forms import place_of, render_counter_record
from services.intake.receipt import render_receipt
from shared.pdf import SlipDocument
from tests.conftest import app_client_factory, auth
from tests.intake.helpers import WARD, body, officer

client = app_client_factory(create_app)

BA_DINH = {"code": WARD, "name": "UBND phường Ba Đình", "level": "commune", "admin_unit_code": "00004"}
HANOI_JUSTICE = {"code": "000.00.07.H29", "name": "Sở Tư pháp thành phố Hà Nội", "level": "province",
                 "admin_unit_code": "01"}
HUE_WARD = {"code": "000.00.21.H57", "name": "UBND phường Thuận Hóa", "level": "commune", "place": "Thuận Hóa"}
PROCEDURE = {"code": "1.001193", "name": "Đăng ký khai sinh", "time_limit": {"value": 0, "unit": "same_day"}}
APPLICANT = {"full_name": "Nguyễn Văn An", "id_number": "001090012345", "phone": "0912345678",
             "address": {"line": "12 phố Kim Mã", "ward_code": "00004"}}
WHEN = datetime(2026, 3, 5, 2, 30, tzinfo=UTC)  # 09:30 on 05/03/2026 in Việt Nam
ENGLISH = re.compile(r"\b(we|you|the|respectfully|inform|receipt|dossier|officer)\b", re.IGNORECASE)
SIGN = "(Ký và ghi rõ họ tên)"


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def after(text: str, heading: str) -> str:
    """What follows a signature heading: the signer's lines."""
    return text.split(heading, 1)[1]


def dossier(submitted_by: str, role: str, **extra: Any) -> dict[str, Any]:
    return {"code": "000.00.21.H29-260305-0001", "applicant": APPLICANT, "submitted_by": submitted_by,
            "submitted_role": role, "documents": [{"name": "Tờ khai đăng ký khai sinh", "original": 1}],
            "number_of_sets": 1, "received_at": WHEN, "due_at": WHEN, "result_delivery": "counter",
            "fee": 0, **extra}


def record(kind: str, **extra: Any) -> dict[str, Any]:
    return {"id": 7, "kind": kind, "applicant": APPLICANT, "reason": "Giấy chứng sinh bị mờ",
            "documents": ["Giấy chứng sinh (bản chính)"] if kind == "completion_request" else [],
            "officer": "canbo.phuong", "created_at": WHEN, **extra}


@pytest.mark.parametrize(("account", "role"), [("canbo.phuong", "officer"), ("vnpost", "postal_partner"),
                                               ("001090012345", "citizen")])
def test_form_01_never_names_the_receiver_by_an_account(account: str, role: str) -> None:
    text = text_of(render_receipt(dossier(account, role), PROCEDURE, BA_DINH, "http://localhost"))
    signers = after(text, "NGƯỜI TIẾP NHẬN HỒ SƠ")
    assert account not in signers and SIGN in signers, signers
    assert "Nguyễn Văn An" in after(text, "NGƯỜI NỘP HỒ SƠ")


def test_form_01_names_the_receiver_by_full_name_and_title_when_known() -> None:
    d = dossier("canbo.phuong", "officer", receiver_name="Lê Thị Hoa", receiver_title="Công chức Tư pháp - Hộ tịch")
    text = text_of(render_receipt(d, PROCEDURE, BA_DINH, "http://localhost"))
    signers = after(text, "NGƯỜI TIẾP NHẬN HỒ SƠ")
    assert "Lê Thị Hoa" in signers and "Công chức Tư pháp - Hộ tịch" in signers
    assert "canbo.phuong" not in text


@pytest.mark.parametrize(("agency", "place"), [(BA_DINH, "Ba Đình"), (HANOI_JUSTICE, "Hà Nội"),
                                               (HUE_WARD, "Thuận Hóa")])
def test_every_form_dates_at_the_agency_place(agency: dict[str, Any], place: str) -> None:
    line = f"{place}, ngày 05 tháng 03 năm 2026"
    receipt = text_of(render_receipt(dossier("canbo.phuong", "officer"), PROCEDURE, agency, "http://localhost"))
    assert line in receipt, receipt
    for kind in ("completion_request", "refusal"):
        slip = text_of(render_counter_record(record(kind), PROCEDURE, agency))
        assert line in slip, slip
        if place != "Hà Nội":
            assert "Hà Nội," not in slip


def test_place_comes_from_the_ward_or_province_code() -> None:
    assert place_of(BA_DINH) == "Ba Đình"
    assert place_of(HANOI_JUSTICE) == "Hà Nội"
    assert place_of({"name": "UBND xã X", "admin_unit_code": "99999999"}) == "UBND xã X"


@pytest.mark.parametrize(("kind", "title", "heading"), [
    ("completion_request", "PHIẾU YÊU CẦU BỔ SUNG, HOÀN THIỆN HỒ SƠ", "NGƯỜI HƯỚNG DẪN"),
    ("refusal", "PHIẾU TỪ CHỐI TIẾP NHẬN GIẢI QUYẾT HỒ SƠ", "NGƯỜI TIẾP NHẬN HỒ SƠ")])
def test_forms_02_03_are_vietnamese_and_name_no_account(kind: str, title: str, heading: str) -> None:
    text = text_of(render_counter_record(record(kind), PROCEDURE, BA_DINH))
    assert title in text and "Nguyễn Văn An" in text and "Giấy chứng sinh bị mờ" in text
    assert not ENGLISH.search(text), ENGLISH.search(text)
    signers = after(text, heading)
    assert "canbo.phuong" not in signers and SIGN in signers, signers
    if kind == "refusal":
        assert "Nguyễn Văn An" in after(text, "NGƯỜI NỘP HỒ SƠ") and "001090012345" in text


def test_forms_02_03_name_the_officer_when_known() -> None:
    for kind in ("completion_request", "refusal"):
        r = record(kind, officer_name="Lê Thị Hoa", officer_title="Công chức Tư pháp - Hộ tịch")
        text = text_of(render_counter_record(r, PROCEDURE, BA_DINH))
        assert "Lê Thị Hoa" in text and "Công chức Tư pháp - Hộ tịch" in text and "canbo.phuong" not in text


def test_forms_02_03_carry_no_qr_code(monkeypatch: Any) -> None:
    """Circular 03/2025 gives forms 02 and 03 no QR code, and the catalog's procedure route is JSON, not a page a
    citizen can open: neither form carries one, even when the catalog names a public page."""
    seen: list[str] = []
    original = SlipDocument.qr

    def spy(self: SlipDocument, url: str, caption: str | None = None, size_mm: float = 28) -> SlipDocument:
        seen.append(url)
        return original(self, url, caption, size_mm)

    monkeypatch.setattr(SlipDocument, "qr", spy)
    page = "https://dichvucong.gov.vn/p/home/dvc-tthc-thu-tuc-hanh-chinh-chi-tiet.html?ma_thu_tuc=1.001193"
    for kind in ("completion_request", "refusal"):
        pdf = render_counter_record(record(kind), {**PROCEDURE, "public_url": page}, BA_DINH)
        assert not PdfReader(io.BytesIO(pdf)).pages[0].images
        assert "/api/intake" not in text_of(pdf)
    assert seen == []


async def test_slips_through_the_api_show_no_username_and_the_ward(
    client: httpx.AsyncClient, make_token: Any,
) -> None:
    for kind in ("completion_request", "refusal"):
        slip = {"kind": kind, "procedure_code": "1.001193", "receiving_agency_code": WARD,
                "applicant": {"full_name": "Nguyễn Văn An", "phone": "0912345678"},
                "reason": "Giấy chứng sinh bị mờ", "documents": ["Giấy chứng sinh"] if kind != "refusal" else []}
        created = await client.post("/v1/counter-records", json=slip, headers=officer(make_token))
        assert created.status_code == 201, created.text
        pdf = await client.get(f"/v1/counter-records/{created.json()['id']}",
                               headers=auth(make_token("officer", agency_code=WARD), Accept="application/pdf",
                                            **{"Idempotency-Key": uuid.uuid4().hex}))
        text = text_of(pdf.content)
        assert "canbo.phuong" not in text and "Ba Đình, ngày" in text and not ENGLISH.search(text), text


async def test_a_dossier_filed_by_a_representative_names_them_on_form_01_and_they_sign(
    client: httpx.AsyncClient, make_token: Any,
) -> None:
    """Circular 03/2025 form 01: the person who filed for the applicant (người nộp thay) is printed, and the
    submitter's signature is theirs, not the applicant's."""
    proxy = {"full_name": "Trần Thị Bình", "id_number": "001185012346", "relation": "mẹ"}
    r = await client.post("/v1/dossiers", json=body(representative=proxy), headers=officer(make_token))
    assert r.status_code == 201, r.text
    pdf = await client.get(f"/v1/dossiers/{r.json()['code']}/receipt",
                           headers=auth(make_token("officer", agency_code=WARD)))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = " ".join(text_of(pdf.content).split())
    assert "Người nộp thay: Trần Thị Bình, số định danh cá nhân 001185012346, quan hệ với người có yêu cầu: mẹ" in text
    signatures = text[text.index("NGƯỜI NỘP HỒ SƠ"):]
    assert "Trần Thị Bình" in signatures and "Nguyễn Văn An" not in signatures
    # without a representative the applicant signs
    r = await client.post("/v1/dossiers", json=body(), headers=officer(make_token))
    text = " ".join(text_of((await client.get(f"/v1/dossiers/{r.json()['code']}/receipt", headers=auth(
        make_token("officer", agency_code=WARD)))).content).split())
    assert "Người nộp thay" not in text and "Nguyễn Văn An" in text[text.index("NGƯỜI NỘP HỒ SƠ"):]
