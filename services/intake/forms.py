"""Form 02 (Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ) and form 03 (Phiếu từ chối tiếp nhận hồ sơ)."""

from __future__ import annotations

from typing import Any

from shared.pdf import SlipDocument, format_vn_date, format_vn_datetime

TITLES = {"completion_request": "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ",
          "refusal": "Phiếu từ chối tiếp nhận giải quyết hồ sơ"}


def render_counter_record(record: dict[str, Any], procedure: dict[str, Any], agency: dict[str, Any],
                          public_base_url: str) -> bytes:
    applicant = record["applicant"]
    doc = SlipDocument(TITLES[record["kind"]])
    doc.national_header(agency["name"], "Hà Nội, " + format_vn_date(record["created_at"]))
    doc.title(TITLES[record["kind"]], f"Số phiếu: {record['id']}")
    doc.field("Kính gửi Ông/Bà", applicant["full_name"])
    if applicant.get("phone"):
        doc.field("Số điện thoại", applicant["phone"])
    doc.field("Thủ tục", f"{procedure['name']} ({procedure['code']})")
    doc.field("Thời điểm", format_vn_datetime(record["created_at"]))
    if record["kind"] == "completion_request":
        doc.paragraph("Sau khi xem xét, hồ sơ của Ông/Bà cần bổ sung, hoàn thiện những nội dung sau:")
        doc.table(["STT", "Giấy tờ cần bổ sung, hoàn thiện"],
                  [[str(i), name] for i, name in enumerate(record["documents"], 1)], widths=(15, 165))
        doc.field("Lý do", record["reason"])
    else:
        doc.paragraph("Cơ quan tiếp nhận từ chối tiếp nhận hồ sơ của Ông/Bà với lý do sau:")
        doc.field("Lý do", record["reason"])
    doc.paragraph("Xin trân trọng thông báo. / We respectfully inform you.", italic=True)
    doc.qr(f"{public_base_url}/api/intake/v1/procedures/{procedure['code']}", "Thành phần hồ sơ của thủ tục")
    doc.signature_blocks(None, ("NGƯỜI TIẾP NHẬN HỒ SƠ", record["officer"]))
    return doc.output()
