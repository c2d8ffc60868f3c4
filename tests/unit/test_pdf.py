"""Slips render real Vietnamese text (found again by extracting it) and a QR image."""

from __future__ import annotations

import io
import time
from datetime import UTC, date, datetime

from pypdf import PdfReader

from shared.pdf import SlipDocument, format_vn_date, format_vn_datetime, format_vnd


def receipt() -> bytes:
    doc = SlipDocument("Giấy tiếp nhận")
    doc.national_header("UBND phường Ba Đình", "Hà Nội, " + format_vn_date(date(2026, 3, 5)))
    doc.title("Giấy tiếp nhận hồ sơ và hẹn trả kết quả", "Mã hồ sơ: 000.00.21.H29-260305-0001")
    doc.field("Người nộp", "Nguyễn Thị Hồng Nhung").field("Thủ tục", "Đăng ký khai sinh")
    doc.table(["STT", "Tên giấy tờ", "Bản chính", "Bản sao"],
              [["1", "Tờ khai đăng ký khai sinh", "1", "0"], ["2", "Giấy chứng sinh", "1", "0"]],
              widths=(10, 110, 30, 30))
    doc.field("Lệ phí", format_vnd(200_000))
    doc.qr("http://localhost:8000/api/workflow/v1/public/dossiers/000.00.21.H29-260305-0001",
           "Tra cứu hồ sơ")
    doc.signature_blocks(("NGƯỜI NỘP HỒ SƠ", "(Ký và ghi rõ họ tên)"), ("NGƯỜI TIẾP NHẬN", "Lê Thị Hoa"))
    return doc.output()


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_receipt_has_vietnamese_text_and_a_qr_image() -> None:
    pdf = receipt()
    assert pdf.startswith(b"%PDF")
    text = text_of(pdf)
    for expected in ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Đăng ký khai sinh", "Nguyễn Thị Hồng Nhung",
                     "200.000 đồng", "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ", "ngày 05 tháng 03 năm 2026"):
        assert expected in text, expected
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    assert len(page.images) == 1


def test_long_table_spans_pages() -> None:
    doc = SlipDocument()
    doc.table(["STT", "Giấy tờ"], [[str(i), f"Bản sao giấy tờ số {i}"] for i in range(120)])
    reader = PdfReader(io.BytesIO(doc.output()))
    assert len(reader.pages) >= 2
    assert "Bản sao giấy tờ số 119" in reader.pages[-1].extract_text()


def test_format_helpers() -> None:
    assert format_vnd(1_234_567) == "1.234.567 đồng"
    assert format_vn_datetime(datetime(2026, 3, 5, 17, 30, tzinfo=UTC)) == "00 giờ 30 phút, ngày 06/03/2026"
    assert format_vn_date(datetime(2026, 3, 5, 17, 30, tzinfo=UTC)) == "ngày 06 tháng 03 năm 2026"


def test_a_slip_renders_quickly() -> None:
    receipt()
    started = time.perf_counter()
    receipt()
    assert time.perf_counter() - started < 2.0  # generous: a guard against pathologies, not a benchmark
