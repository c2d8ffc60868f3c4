"""Form 01: Giấy tiếp nhận hồ sơ và hẹn trả kết quả (receipt and appointment slip)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from services.intake.forms import place_of
from shared.calendar import limit_for
from shared.pdf import ONE_STOP_UNIT, SlipDocument, date_line, format_vn_datetime, format_vnd, signature

DELIVERY = {"counter": "Tại Bộ phận Một cửa", "postal": "Qua dịch vụ bưu chính công ích",
            "electronic": "Bản điện tử qua Cổng dịch vụ công"}

# No date before the clock starts (never a past date): the phrase says from when the time limit runs.
CLOCK_NOT_STARTED = {
    "postal": "Tính từ khi nhận được hồ sơ giấy (theo dấu bưu điện đến)",
    "online": "Tính từ khi cán bộ tiếp nhận hồ sơ trực tuyến",
}

# The workflow service's public tracking page (Vietnamese, asks for the last four phone digits).
TRACKING_PAGE = "/api/workflow/v1/public/tra-cuu/"


def tracking_url(public_base_url: str, code: str) -> str:
    """Where the QR on form 01 leads: the tracking page of this dossier, not the JSON API."""
    return public_base_url.rstrip("/") + TRACKING_PAGE + quote(code, safe="")


def render_receipt(d: dict[str, Any], procedure: dict[str, Any], agency: dict[str, Any],
                   public_base_url: str, *, competent: dict[str, Any] | None = None) -> bytes:
    applicant = d["applicant"]
    doc = SlipDocument(f"Giấy tiếp nhận {d['code']}")
    doc.national_header(agency["name"], date_line(place_of(agency), d["received_at"]), unit=ONE_STOP_UNIT)
    doc.title("Giấy tiếp nhận hồ sơ và hẹn trả kết quả", f"Mã hồ sơ: {d['code']}")
    doc.paragraph(f"{ONE_STOP_UNIT} - {agency['name']} tiếp nhận hồ sơ của:")
    doc.field("Ông/Bà", applicant["full_name"])
    doc.field("Số định danh cá nhân", applicant["id_number"])
    doc.field("Địa chỉ", applicant["address"]["line"])
    doc.field("Số điện thoại", applicant.get("phone") or "")
    doc.field("Thư điện tử", applicant.get("email") or "")
    proxy = d.get("representative")
    if proxy:  # filed on the applicant's behalf: the person who filed, and their relation to the applicant
        doc.field("Người nộp thay", f"{proxy['full_name']}, số định danh cá nhân {proxy['id_number']}, "
                  f"quan hệ với người có yêu cầu: {proxy['relation']}")
    doc.field("Nội dung yêu cầu giải quyết", f"{procedure['name']} ({procedure['code']})")
    doc.field("Cơ quan tiếp nhận", agency["name"])  # the route (Decree 118/2025 Art. 14): receiver, decider
    doc.field("Cơ quan có thẩm quyền giải quyết", (competent or agency)["name"])
    rows = [[str(i), x["name"], str(x.get("original", 0)), str(x.get("copy", 0))]
            for i, x in enumerate(d["documents"], 1)]
    doc.table(["STT", "Tên giấy tờ", "Bản chính", "Bản sao"], rows or [["", "(không có)", "", ""]],
              widths=(12, 108, 30, 30))
    doc.field("Số lượng hồ sơ", f"{d['number_of_sets']} bộ")
    limit = limit_for(procedure["time_limit"], d.get("channel"))
    doc.field("Thời hạn giải quyết theo quy định", _limit_text(limit))
    doc.field("Thời gian nhận hồ sơ", format_vn_datetime(d["received_at"]))
    doc.field("Thời gian trả kết quả", format_vn_datetime(d["due_at"]) if d["due_at"] is not None else
              CLOCK_NOT_STARTED.get(d.get("channel") or "postal", CLOCK_NOT_STARTED["postal"]))
    doc.field("Đăng ký nhận kết quả tại", DELIVERY.get(d["result_delivery"], d["result_delivery"]))
    # The electronic tracking book replaces the printed one (Circular 03/2025, form 07 note): its entry is the code.
    doc.field("Vào Sổ theo dõi hồ sơ", f"Sổ theo dõi hồ sơ điện tử, mã hồ sơ {d['code']}")
    doc.field("Lệ phí, phí", format_vnd(d["fee"]))
    doc.qr(tracking_url(public_base_url, d["code"]), "Tra cứu tình trạng hồ sơ")
    # The receiver is named from the identity records stored with the dossier, never by the account that
    # submitted it (an officer's username, a postal partner's client id or the citizen's id number).
    doc.signature_blocks(signature("NGƯỜI NỘP HỒ SƠ", (proxy or applicant).get("full_name")),
                         signature("NGƯỜI TIẾP NHẬN HỒ SƠ", d.get("receiver_name"), d.get("receiver_title")))
    return doc.output()


def _limit_text(limit: dict[str, Any]) -> str:
    if limit["unit"] == "working_half_days":
        return f"{limit['value'] / 2:g} ngày làm việc".replace(".", ",")
    unit = {"same_day": "trong ngày", "working_days": "ngày làm việc", "calendar_days": "ngày",
            "hours": "giờ làm việc"}[limit["unit"]]
    return unit if limit["unit"] == "same_day" else f"{limit['value']} {unit}"
