"""Form 02 (Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ) and form 03 (Phiếu từ chối tiếp nhận giải quyết hồ sơ),
and what every intake form shares: the place in the date line and how people are named (Circular 03/2025).

Neither form carries a QR code: Circular 03/2025 gives them none, and the catalog's procedure page is JSON,
not a page a citizen can open (the receipt's QR, form 01, opens the public tracking page)."""

from __future__ import annotations

from typing import Any

from shared.admin_units import place_name
from shared.pdf import ONE_STOP_UNIT, SlipDocument, date_line, signature

TITLES = {"completion_request": "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ",
          "refusal": "Phiếu từ chối tiếp nhận giải quyết hồ sơ"}
NUMBER_CODES = {"completion_request": "PBS", "refusal": "PTC"}  # as in the 2025 reproductions of the forms


def place_of(agency: dict[str, Any]) -> str:
    """The place printed before the date: the agency's own `place` if its data gives one, else the
    administrative unit of its `admin_unit_code` (ward or province), else its name."""
    given = agency.get("place")
    if isinstance(given, str) and given.strip():
        return given.strip()
    return place_name(str(agency.get("admin_unit_code") or "")) or str(agency["name"])


def _contact(applicant: dict[str, Any]) -> str:
    return ", ".join(x for x in (applicant.get("phone"), applicant.get("email")) if x)


def render_counter_record(record: dict[str, Any], procedure: dict[str, Any], agency: dict[str, Any]) -> bytes:
    """Form 02 or 03; people by full name and title (`shared.pdf.signature`), never an account name."""
    applicant, kind = record["applicant"], record["kind"]
    doc = SlipDocument(TITLES[kind])
    doc.national_header(agency["name"], date_line(place_of(agency), record["created_at"]), unit=ONE_STOP_UNIT,
                        number=f"{record['id']}/{NUMBER_CODES[kind]}")
    doc.title(TITLES[kind])
    address = (applicant.get("address") or {}).get("line")
    if kind == "completion_request":
        doc.field("Hồ sơ của", applicant["full_name"])
        doc.field("Nội dung yêu cầu giải quyết", f"{procedure['name']} ({procedure['code']})")
        if address:
            doc.field("Địa chỉ", address)
        if _contact(applicant):
            doc.field("Số điện thoại, thư điện tử", _contact(applicant))
        doc.paragraph("Yêu cầu hoàn thiện hồ sơ gồm những nội dung sau:")
        doc.table(["STT", "Nội dung cần bổ sung, hoàn thiện"],
                  [[str(i), name] for i, name in enumerate(record["documents"], 1)], widths=(15, 165))
        doc.field("Lý do", record["reason"])
        officer = record.get("officer_name")
        if isinstance(officer, str) and officer.strip():
            title = record.get("officer_title")
            who = f"{officer.strip()}, {title.strip()}" if isinstance(title, str) and title.strip() else officer.strip()
            doc.paragraph("Trong quá trình hoàn thiện hồ sơ, nếu có vướng mắc, Ông/Bà liên hệ "
                          f"{who}, {ONE_STOP_UNIT} - {agency['name']} để được hướng dẫn.")
        doc.paragraph("Xin trân trọng thông báo.", italic=True)
        guide = signature("NGƯỜI HƯỚNG DẪN", record.get("officer_name"), record.get("officer_title"))
        doc.signature_blocks(None, guide)
        return doc.output()
    doc.paragraph(f"{ONE_STOP_UNIT} - {agency['name']} tiếp nhận hồ sơ của:")
    doc.field("Ông/Bà", applicant["full_name"])
    if applicant.get("id_number"):
        doc.field("Số định danh cá nhân", applicant["id_number"])
    if address:
        doc.field("Địa chỉ", address)
    if _contact(applicant):
        doc.field("Số điện thoại, thư điện tử", _contact(applicant))
    if record.get("dossier_code"):
        doc.field("Mã hồ sơ", record["dossier_code"])
    doc.field("Nội dung yêu cầu giải quyết", f"{procedure['name']} ({procedure['code']})")
    doc.paragraph("Sau khi xem xét thành phần hồ sơ, "
                  f"{ONE_STOP_UNIT} thông báo không tiếp nhận, giải quyết hồ sơ này với lý do cụ thể như sau:")
    doc.paragraph(record["reason"])
    doc.paragraph("Xin trân trọng thông báo.", italic=True)
    doc.signature_blocks(signature("NGƯỜI NỘP HỒ SƠ", applicant.get("full_name")),
                         signature("NGƯỜI TIẾP NHẬN HỒ SƠ", record.get("officer_name"), record.get("officer_title")))
    return doc.output()
