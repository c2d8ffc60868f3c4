"""Biên bản bàn giao (handover record) between the one-stop office and the postal staff, as PDF."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.admin_units import place_name
from shared.pdf import SlipDocument, date_line, format_vn_datetime, format_vnd

KIND_TEXT = {
    "to_postal": "Bộ phận Một cửa giao kết quả giải quyết thủ tục hành chính cho nhân viên bưu chính",
    "to_office": "Nhân viên bưu chính giao hồ sơ thủ tục hành chính cho Bộ phận Một cửa",
}
STATUS_TEXT = {"open": "Đang mở (chờ xác nhận)", "confirmed": "Đã xác nhận", "cancelled": "Đã hủy"}


def render_handover(h: dict[str, Any], agency: dict[str, Any] | None, partner: dict[str, Any] | None) -> bytes:
    at = datetime.fromisoformat(h["handed_over_at"])
    agency_name = agency["name"] if agency else h["agency_code"]
    partner_name = partner["name"] if partner else h["partner_code"]
    doc = SlipDocument(title=f"Biên bản bàn giao {h['id']}")
    doc.national_header(agency_name, date_line(place_name(agency["admin_unit_code"]) if agency else None, at))
    doc.title("Biên bản bàn giao hồ sơ, kết quả giải quyết thủ tục hành chính qua dịch vụ bưu chính công ích",
              "(Quyết định số 45/2016/QĐ-TTg)")
    doc.field("Số biên bản", h["id"])
    doc.field("Nội dung", KIND_TEXT[h["kind"]])
    doc.field("Thời điểm bàn giao", format_vn_datetime(at))
    if h.get("location"):
        doc.field("Địa điểm", h["location"])
    doc.field("Bên cơ quan", f"{agency_name} — {h['office_signer']['name']}, {h['office_signer']['title']}")
    doc.field("Bên bưu chính", f"{partner_name} — {h['postal_signer']['name']}, {h['postal_signer']['title']}")
    doc.field("Trạng thái", STATUS_TEXT.get(h["status"], h["status"]))
    rows = [[str(i), it["dossier_code"], it["tracking_number"], it["citizen"], f"{it['weight_grams']} g",
             format_vnd(it["postage"]), format_vnd(it["cod_amount"])]
            for i, it in enumerate(h["items"], 1)]
    doc.table(["STT", "Mã hồ sơ", "Số hiệu bưu gửi", "Người nộp / nhận", "Khối lượng", "Cước", "Thu hộ (COD)"],
              rows, widths=(9, 50, 30, 31, 16, 22, 22))
    totals = h["totals"]
    doc.field("Tổng số bưu gửi", str(totals["count"]))
    doc.field("Tổng cước", format_vnd(totals["postage"]))
    doc.field("Tổng tiền thu hộ", format_vnd(totals["cod_amount"]))
    if h.get("note"):
        doc.paragraph(f"Ghi chú: {h['note']}", italic=True)
    doc.paragraph("Biên bản được lập thành 02 bản, mỗi bên giữ 01 bản.", italic=True)
    doc.signature_blocks(
        ("ĐẠI DIỆN BÊN CƠ QUAN", f"(Ký, ghi rõ họ tên)\n{h['office_signer']['name']}\n{h['office_signer']['title']}"),
        ("ĐẠI DIỆN BÊN BƯU CHÍNH", f"(Ký, ghi rõ họ tên)\n{h['postal_signer']['name']}\n{h['postal_signer']['title']}"),
    )
    return doc.output()
