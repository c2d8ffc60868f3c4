"""Form 02 (Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ) and form 03 (Phiếu từ chối tiếp nhận giải quyết hồ sơ),
and what every intake form shares: the place in the date line and how people are named (Circular 03/2025)."""

from __future__ import annotations

from typing import Any

from shared.admin_units import place_name
from shared.pdf import SlipDocument, date_line, format_vn_datetime

TITLES = {"completion_request": "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ",
          "refusal": "Phiếu từ chối tiếp nhận giải quyết hồ sơ"}

# Where a name is not known, the form leaves the line to be signed and written by hand.
SIGN_BY_HAND = "(Ký và ghi rõ họ tên)"

def place_of(agency: dict[str, Any]) -> str:
    """The place printed before the date: the agency's own `place` if its data gives one, else the
    administrative unit of its `admin_unit_code` (ward or province), else its name."""
    given = agency.get("place")
    if isinstance(given, str) and given.strip():
        return given.strip()
    return place_name(str(agency.get("admin_unit_code") or "")) or str(agency["name"])


def signer(name: object, title: object = None) -> str:
    """A signature block's text: the full name (and title) from the identity records, never an account
    name; without a name, the line to sign and write by hand."""
    if not isinstance(name, str) or not name.strip():
        return SIGN_BY_HAND
    if isinstance(title, str) and title.strip():
        return f"{title.strip()}\n{name.strip()}"
    return name.strip()


def procedure_page(procedure: dict[str, Any]) -> str | None:
    """A page about the procedure a citizen can open (HTML), if the catalog gives one."""
    url = procedure.get("public_url")
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def render_counter_record(record: dict[str, Any], procedure: dict[str, Any], agency: dict[str, Any],
                          public_base_url: str) -> bytes:
    applicant = record["applicant"]
    officer = signer(record.get("officer_name"), record.get("officer_title"))
    doc = SlipDocument(TITLES[record["kind"]])
    doc.national_header(agency["name"], date_line(place_of(agency), record["created_at"]))
    doc.title(TITLES[record["kind"]], f"Số phiếu: {record['id']}")
    if record["kind"] == "completion_request":
        doc.field("Hồ sơ của Ông/Bà", applicant["full_name"])
    else:
        doc.field(agency["name"], "tiếp nhận hồ sơ của")
        doc.field("Ông/Bà", applicant["full_name"])
        if applicant.get("id_number"):
            doc.field("Số định danh cá nhân", applicant["id_number"])
    address = (applicant.get("address") or {}).get("line")
    if address:
        doc.field("Địa chỉ", address)
    if applicant.get("phone"):
        doc.field("Số điện thoại", applicant["phone"])
    if applicant.get("email"):
        doc.field("Thư điện tử", applicant["email"])
    doc.field("Nội dung yêu cầu giải quyết", f"{procedure['name']} ({procedure['code']})")
    doc.field("Thời điểm", format_vn_datetime(record["created_at"]))
    if record["kind"] == "completion_request":
        doc.paragraph("Yêu cầu hoàn thiện hồ sơ gồm những nội dung sau:")
        doc.table(["STT", "Giấy tờ cần bổ sung, hoàn thiện"],
                  [[str(i), name] for i, name in enumerate(record["documents"], 1)], widths=(15, 165))
        doc.field("Lý do", record["reason"])
        if isinstance(record.get("officer_name"), str) and record["officer_name"].strip():
            doc.paragraph("Trong quá trình hoàn thiện hồ sơ, nếu có vướng mắc, Ông/Bà liên hệ "
                          f"{record['officer_name'].strip()} để được hướng dẫn.")
    else:
        doc.paragraph("Cơ quan tiếp nhận thông báo không tiếp nhận, giải quyết hồ sơ này với lý do cụ thể như sau:")
        doc.field("Lý do", record["reason"])
    doc.paragraph("Xin trân trọng thông báo.", italic=True)
    page = procedure_page(procedure)
    doc.qr(page or f"{public_base_url}/api/intake/v1/procedures/{procedure['code']}",
           "Thành phần hồ sơ của thủ tục")
    if record["kind"] == "completion_request":
        doc.signature_blocks(None, ("NGƯỜI HƯỚNG DẪN", officer))
    else:
        doc.signature_blocks(("NGƯỜI NỘP HỒ SƠ", signer(applicant.get("full_name"))),
                             ("NGƯỜI TIẾP NHẬN HỒ SƠ", officer))
    return doc.output()
