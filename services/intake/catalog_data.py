"""Seed catalog from ../shared/reference/procedures.md (commune level). Data, not code: edit freely.

Rows the reference marks "unverified" keep that word in `notes`; procedures without a national
code in the reference get a local code `DP.*` until the national one is confirmed.
"""

from __future__ import annotations

from typing import Any

from services.intake.bodies import PROVINCE_BODIES

WARD = "000.00.21.H29"
DEPARTMENT = "000.00.07.H29"
DEFAULT_SESSIONS = [{"start": "07:30", "end": "11:30"}, {"start": "13:30", "end": "17:00"}]
HANOI = "01"  # province codes (mã tỉnh) as `shared.admin_units` knows them
HCMC = "79"


def _agency(code: str, name: str, level: str, unit: str, body: str = "commune_people_committee",
            department: str | None = None, head: tuple[str, str] | None = None) -> dict[str, Any]:
    """`head`: (full name, title) of the head who signs forms 04 and 05 (demo names)."""
    return {"code": code, "name": name, "level": level, "parent_code": None, "admin_unit_code": unit,
            "sessions": DEFAULT_SESSIONS, "body_type": body, "department": department,
            "head_name": head[0] if head else None, "head_title": head[1] if head else None}


# Demo agencies. Identifier codes other than the first two are demo values in the same pattern (the real
# e-ID codes of each body are not in the reference): replace them with the province's published codes.
AGENCIES: list[dict[str, Any]] = [
    _agency(DEPARTMENT, "Sở Tư pháp thành phố Hà Nội", "province", HANOI, "province_department", "tu_phap",
            head=("Trần Minh Đức", "Giám đốc")),
    _agency(WARD, "UBND phường Ba Đình", "commune", "00004", head=("Hoàng Văn Dũng", "Chủ tịch")),
    _agency("000.00.00.H29", "Trung tâm Phục vụ hành chính công thành phố Hà Nội", "province", HANOI,
            "public_service_centre"),
    _agency("000.00.03.H29", "UBND thành phố Hà Nội", "province", HANOI, "province_people_committee"),
    _agency("000.00.05.H29", "Sở Xây dựng thành phố Hà Nội", "province", HANOI, "province_department", "xay_dung"),
    _agency("000.00.09.H29", "Sở Nông nghiệp và Môi trường thành phố Hà Nội", "province", HANOI,
            "province_department", "nong_nghiep_moi_truong"),
    _agency("000.00.06.H29", "Sở Công Thương thành phố Hà Nội", "province", HANOI, "province_department",
            "cong_thuong"),
    _agency("000.00.10.H29", "Sở Khoa học và Công nghệ thành phố Hà Nội", "province", HANOI,
            "province_department", "khoa_hoc_cong_nghe"),
    _agency("000.00.04.H29", "Sở Tài chính thành phố Hà Nội", "province", HANOI, "province_department",
            "tai_chinh"),
    _agency("000.30.21.H29", "Công an phường Ba Đình", "commune", "00004", "commune_police"),
    _agency("000.00.22.H29", "UBND phường Hoàn Kiếm", "commune", "00070"),
    _agency("000.30.22.H29", "Công an phường Hoàn Kiếm", "commune", "00070", "commune_police"),
    # another province, for cross-province cases (Decree 118 Art. 14: boundary-free within a province only)
    _agency("000.00.21.H79", "UBND phường Sài Gòn", "commune", "26740"),
]

FIELDS = {"HT": "Hộ tịch", "CT": "Chứng thực", "CTR": "Cư trú", "HKD": "Thành lập và hoạt động của hộ kinh doanh",
          "BTXH": "Bảo trợ xã hội", "DD": "Đất đai", "LT": "Liên thông",
          "TNN": "Tài nguyên nước", "DL": "Điện lực", "GDTP": "Giám định tư pháp", "KHCN": "Khoa học và công nghệ",
          "DTH": "Đấu thầu", "NO": "Nhà ở"}

# Commune procedures decided by another body than the commune People's Committee (legal-2025.md §3.1):
# residence registration by the commune police (Luật Cư trú 2020 Art. 2.4), certification by the chair.
COMMUNE_BODY_BY_FIELD = {"CTR": "commune_police", "CT": "commune_chair"}

ALL = ["counter", "online", "postal"]
PAPER = ["counter", "postal"]


def _doc(name: str, original: int = 1, copy: int = 0, mandatory: bool = True) -> dict[str, Any]:
    return {"name": name, "original": original, "copy": copy, "mandatory": mandatory}


def _p(code: str, name: str, field: str, limit: tuple[int, str], fee: dict[str, Any],
       docs: list[dict[str, Any]], channels: list[str] = ALL, verification: int = 0,
       urgent: bool = False, notes: str | None = None, inter_agency: str | None = None,
       by_channel: dict[str, tuple[int, str]] | None = None, body: str | None = None,
       department: str | None = None) -> dict[str, Any]:
    body = body or COMMUNE_BODY_BY_FIELD.get(field, "commune_people_committee")
    time_limit: dict[str, Any] = {"value": limit[0], "unit": limit[1], "verification_extension": verification}
    if by_channel:  # a channel's own limit (e.g. paper vs electronic), else the row's
        time_limit["by_channel"] = {ch: {"value": v, "unit": u} for ch, (v, u) in by_channel.items()}
    return {"code": code, "name": name, "field_code": field, "deciding_body": body, "department": department,
            "level": "province" if body in PROVINCE_BODIES else "commune", "time_limit": time_limit,
            "fee": fee, "documents": docs, "channels": channels,
            "online_level": "full" if "online" in channels else "partial", "urgent": urgent,
            "result_delivery": ["counter", "postal", "electronic"], "inter_agency": inter_agency,
            "notes": notes}


FREE = {"kind": "free"}
TO_KHAI = _doc("Tờ khai theo mẫu")

PROCEDURES: list[dict[str, Any]] = [
    _p("1.001193", "Đăng ký khai sinh", "HT", (0, "same_day"),
       {"kind": "fixed", "amount": 0, "note": "miễn phí nếu đăng ký đúng hạn; quá hạn: 8.000đ"},
       [_doc("Tờ khai đăng ký khai sinh"), _doc("Giấy chứng sinh")], urgent=True),
    _p("DP.HT.01", "Đăng ký khai sinh kết hợp nhận cha, mẹ, con", "HT", (3, "working_days"),
       {"kind": "fixed", "amount": 15000}, [TO_KHAI, _doc("Giấy chứng sinh"), _doc("Chứng cứ quan hệ cha, mẹ, con")],
       verification=8),
    _p("1.003583", "Đăng ký khai sinh lưu động", "HT", (5, "working_days"), FREE,
       [TO_KHAI, _doc("Giấy chứng sinh")], channels=["counter"], notes="unverified code"),
    _p("1.000894", "Đăng ký kết hôn", "HT", (0, "same_day"), FREE,
       [_doc("Tờ khai đăng ký kết hôn"), _doc("Giấy xác nhận tình trạng hôn nhân", mandatory=False)],
       channels=["counter", "online"], verification=5, notes="cả hai bên có mặt"),
    _p("1.000656", "Đăng ký khai tử", "HT", (0, "same_day"), FREE,
       [_doc("Tờ khai đăng ký khai tử"), _doc("Giấy báo tử")], urgent=True),
    _p("1.000419", "Đăng ký khai tử lưu động", "HT", (5, "working_days"), FREE,
       [_doc("Tờ khai đăng ký khai tử"), _doc("Giấy báo tử")], channels=["counter"],
       notes="unverified code and time"),
    _p("1.004873", "Cấp Giấy xác nhận tình trạng hôn nhân", "HT", (3, "working_days"),
       {"kind": "fixed", "amount": 15000}, [TO_KHAI], verification=23),
    _p("DP.HT.02", "Thay đổi, cải chính, bổ sung thông tin hộ tịch", "HT", (3, "working_days"),
       {"kind": "fixed", "amount": 28000}, [TO_KHAI, _doc("Giấy tờ làm căn cứ", copy=1)]),
    _p("1.001022", "Đăng ký nhận cha, mẹ, con", "HT", (3, "working_days"), {"kind": "fixed", "amount": 15000},
       [TO_KHAI, _doc("Chứng cứ quan hệ cha, mẹ, con")], verification=5, notes="unverified"),
    _p("1.004837", "Đăng ký giám hộ", "HT", (3, "working_days"), FREE,
       [TO_KHAI, _doc("Văn bản cử người giám hộ")], notes="unverified"),
    _p("1.004884", "Đăng ký lại khai sinh", "HT", (5, "working_days"), {"kind": "fixed", "amount": 8000},
       [TO_KHAI, _doc("Bản sao giấy khai sinh", original=0, copy=1, mandatory=False)], verification=10,
       notes="unverified"),
    _p("DP.HT.03", "Cấp bản sao trích lục hộ tịch", "HT", (0, "same_day"),
       {"kind": "per_copy", "amount": 8000}, [TO_KHAI]),
    _p("2.000815", "Chứng thực bản sao từ bản chính", "CT", (0, "same_day"),
       {"kind": "per_page", "first_pages": 2, "first_rate": 2000, "rate": 1000, "cap_per_copy": 200000},
       [_doc("Bản chính giấy tờ"), _doc("Bản sao cần chứng thực", original=0, copy=1)], channels=PAPER,
       verification=2, urgent=True),
    _p("2.000884", "Chứng thực chữ ký", "CT", (0, "same_day"), {"kind": "fixed", "amount": 10000},
       [_doc("Giấy tờ cần chứng thực chữ ký"), _doc("Giấy tờ tùy thân")], channels=["counter"]),
    _p("2.000908", "Cấp bản sao từ sổ gốc", "CT", (0, "same_day"), FREE, [TO_KHAI], notes="unverified code"),
    _p("DP.CT.01", "Chứng thực hợp đồng, giao dịch", "CT", (2, "working_days"),
       {"kind": "fixed", "amount": 50000}, [_doc("Dự thảo hợp đồng"), _doc("Giấy tờ tùy thân", copy=1)],
       channels=["counter"], notes="time and main fee unverified"),
    _p("DP.LT.01", "Liên thông: đăng ký khai sinh – đăng ký thường trú – cấp thẻ BHYT cho trẻ dưới 6 tuổi",
       "LT", (3, "working_days"), FREE, [_doc("Tờ khai liên thông"), _doc("Giấy chứng sinh")],
       verification=5, inter_agency="UBND xã + Công an xã + Bảo hiểm xã hội",
       by_channel={"counter": (20, "working_days"), "postal": (20, "working_days")},
       notes="3 working days electronically (online), up to 20 on paper (counter, postal): the reference gives "
             "'electronic 3, paper up to 20'; assumed: a dossier filed at the counter or by post is the paper case"),
    _p("DP.LT.02", "Liên thông: đăng ký khai tử – xóa đăng ký thường trú – trợ cấp mai táng phí", "LT",
       (5, "working_days"), FREE, [_doc("Tờ khai liên thông"), _doc("Giấy báo tử")],
       inter_agency="UBND xã + Công an xã + Phòng Lao động", notes="time not found: 5 working days assumed"),
    _p("1.004222", "Đăng ký thường trú", "CTR", (7, "working_days"), {"kind": "fixed", "amount": 20000},
       [_doc("Tờ khai thay đổi thông tin cư trú"), _doc("Giấy tờ chứng minh chỗ ở hợp pháp", copy=1)],
       notes="unverified code"),
    _p("1.004194", "Đăng ký tạm trú", "CTR", (3, "working_days"), {"kind": "fixed", "amount": 15000},
       [_doc("Tờ khai thay đổi thông tin cư trú")], notes="unverified"),
    _p("1.001612", "Đăng ký hộ kinh doanh", "HKD", (3, "working_days"), {"kind": "fixed", "amount": 100000},
       [_doc("Giấy đề nghị đăng ký hộ kinh doanh"), _doc("Bản sao giấy tờ pháp lý", original=0, copy=1)],
       notes="unverified"),
    _p("1.001699", "Xác định mức độ khuyết tật", "BTXH", (20, "working_days"), FREE,
       [_doc("Đơn đề nghị xác định mức độ khuyết tật")], notes="time not found: 20 working days assumed"),
    _p("DP.BTXH.01", "Trợ cấp xã hội hằng tháng", "BTXH", (20, "working_days"), FREE,
       [_doc("Tờ khai đề nghị trợ cấp xã hội")], notes="Decree 20/2021; time not found"),
    _p("DP.DD.01", "Đăng ký biến động đất đai", "DD", (10, "working_days"),
       {"kind": "fixed", "amount": 30000}, [_doc("Đơn đăng ký biến động"), _doc("Giấy chứng nhận")],
       channels=PAPER, notes="5–10 working days in local listings"),
]

# Province-level procedures (legal-2025.md §3.3: national code, deciding body, limit and fee from the 2025
# publication decisions of the province named in the note; Hà Nội's own decisions were not read, so every
# row says whose it is). A fee "per the provincial council" is not known for Hà Nội: 0 is collected at
# reception and the note says so. "unverified" as in procedures.md.
PROVINCIAL_COUNCIL_FEE = {"kind": "fixed", "amount": 0,
                          "note": "theo Nghị quyết HĐND tỉnh (Cao Bằng: NQ 22/2025/NQ-HĐND; nộp trực tuyến giảm "
                                  "50%); mức của Hà Nội chưa xác minh"}
PER_MOF_FEE = {"kind": "fixed", "amount": 0, "note": "theo quy định của Bộ Tài chính; mức chưa xác minh"}
DEPT = "province_department"
WATER = "nong_nghiep_moi_truong"
POWER = "cong_thuong"
DON = _doc("Đơn đề nghị theo mẫu")

PROVINCE_PROCEDURES: list[dict[str, Any]] = [
    _p("1.004122", "Cấp giấy phép hành nghề khoan nước dưới đất", "TNN", (22, "working_days"),
       PROVINCIAL_COUNCIL_FEE, [DON, _doc("Bản sao văn bằng, chứng chỉ của người chịu trách nhiệm kỹ thuật",
                                          original=0, copy=1)],
       notes="Cao Bằng QĐ 1949/QĐ-UBND 2025: 22 ngày làm việc từ khi nhận đủ hồ sơ", body=DEPT, department=WATER),
    _p("2.001738", "Gia hạn, điều chỉnh nội dung giấy phép hành nghề khoan nước dưới đất", "TNN",
       (15, "working_days"), PROVINCIAL_COUNCIL_FEE, [DON, _doc("Bản sao giấy phép đã được cấp", original=0, copy=1)],
       notes="Cao Bằng QĐ 1949/QĐ-UBND 2025", body=DEPT, department=WATER),
    _p("1.004253", "Cấp lại giấy phép hành nghề khoan nước dưới đất", "TNN", (8, "working_days"), FREE, [DON],
       notes="Cao Bằng QĐ 1949/QĐ-UBND 2025; phí: không quy định", body=DEPT, department=WATER),
    _p("1.012498", "Chấp thuận nội dung về phương án chuyển nước", "TNN", (43, "working_days"), FREE,
       [DON, _doc("Phương án chuyển nước")],
       notes="Cao Bằng QĐ 1949/QĐ-UBND 2025; listed under Sở NN&MT, decision level not read (unverified body)",
       body=DEPT, department=WATER),
    _p("1.004232", "Cấp giấy phép thăm dò nước dưới đất đối với công trình có lưu lượng dưới 5.000 m³/ngày đêm",
       "TNN", (45, "working_days"), PROVINCIAL_COUNCIL_FEE, [DON, _doc("Đề án thăm dò nước dưới đất")],
       notes="Cao Bằng QĐ 1949/QĐ-UBND 2025", body=DEPT, department=WATER),
    _p("1.013401", "Cấp giấy phép hoạt động phát điện thuộc thẩm quyền cấp của UBND cấp tỉnh", "DL",
       (14, "working_days"), PER_MOF_FEE, [DON, _doc("Hồ sơ năng lực của tổ chức")],
       notes="Quảng Trị QĐ 2715/QĐ-UBND 2025 (mã 1.013401.H50): Sở Công Thương / UBND tỉnh",
       body=DEPT, department=POWER),
    _p("1.013411", "Cấp giấy phép hoạt động phân phối điện", "DL", (14, "working_days"), PER_MOF_FEE,
       [DON, _doc("Hồ sơ năng lực của tổ chức")], notes="Quảng Trị QĐ 2715/QĐ-UBND 2025 (mã 1.013411.H50)",
       body=DEPT, department=POWER),
    _p("1.013416", "Cấp giấy phép hoạt động bán lẻ điện", "DL", (14, "working_days"), PER_MOF_FEE,
       [DON, _doc("Hồ sơ năng lực của tổ chức")], notes="Quảng Trị QĐ 2715/QĐ-UBND 2025 (mã 1.013416.H50)",
       body=DEPT, department=POWER),
    _p("1.013418", "Cấp gia hạn giấy phép hoạt động điện lực", "DL", (10, "working_days"), PER_MOF_FEE,
       [DON, _doc("Bản sao giấy phép đã được cấp", original=0, copy=1)],
       notes="Quảng Trị QĐ 2715/QĐ-UBND 2025 (mã 1.013418.H50)", body=DEPT, department=POWER),
    _p("1.001122", "Bổ nhiệm và cấp thẻ giám định viên tư pháp", "GDTP", (30, "working_days"), FREE,
       [_doc("Văn bản đề nghị bổ nhiệm"), _doc("Bản sao bằng tốt nghiệp đại học", original=0, copy=1)],
       body="province_chair", department="tu_phap",
       notes="Quảng Ngãi QĐ 1628/QĐ-UBND 2025 (mã 1.001122.000.00.00.H48): 20 ngày bổ nhiệm + 10 ngày cấp thẻ; "
             "working days assumed (unverified unit)"),
    _p("2.000890", "Cấp phép thành lập văn phòng giám định tư pháp", "GDTP", (45, "working_days"), FREE,
       [DON, _doc("Đề án thành lập văn phòng giám định tư pháp")], body="province_chair", department="tu_phap",
       notes="Quảng Ngãi QĐ 1628/QĐ-UBND 2025 (mã 2.000890.000.00.00.H48): Sở Tư pháp thẩm định 30 ngày, "
             "Chủ tịch UBND tỉnh 15 ngày; working days assumed (unverified unit)"),
    _p("2.000823", "Đăng ký hoạt động văn phòng giám định tư pháp", "GDTP", (30, "working_days"), FREE,
       [DON, _doc("Bản sao quyết định cho phép thành lập", original=0, copy=1)],
       body=DEPT, department="tu_phap",
       notes="Quảng Ngãi QĐ 1628/QĐ-UBND 2025 (mã 2.000823.000.00.00.H48); fee not read (unverified); "
             "working days assumed"),
    _p("1.014445", "Cấp Giấy chứng nhận doanh nghiệp khoa học và công nghệ", "KHCN", (15, "working_days"), FREE,
       [DON, _doc("Bản sao Giấy chứng nhận đăng ký doanh nghiệp", original=0, copy=1)],
       body=DEPT, department="khoa_hoc_cong_nghe",
       notes="Phú Thọ QĐ 1805/QĐ-UBND 2025: 15 ngày từ khi nhận hồ sơ hợp lệ, toàn trình; working days assumed"),
    _p("1.012507", "Cấp chứng chỉ nghiệp vụ chuyên môn về đấu thầu", "DTH", (15, "working_days"),
       {"kind": "fixed", "amount": 0, "note": "0đ với người đạt kỳ thi; cấp lại 100.000đ (chưa gồm VAT), "
                                               "7 ngày làm việc"},
       [DON], body=DEPT, department="tai_chinh",
       notes="An Giang QĐ 2015/QĐ-UBND 2025: 15 ngày làm việc từ quyết định cấp (người đạt kỳ thi)"),
    _p("1.013769", "Chuyển đổi công năng nhà ở", "NO", (15, "working_days"), FREE,
       [DON, _doc("Giấy tờ chứng minh quyền sở hữu nhà ở", original=0, copy=1)],
       body=DEPT, department="xay_dung",
       notes="Đồng Nai list of Sở Xây dựng (code only); time and fee not found: 15 working days and no fee "
             "assumed (unverified)"),
]
PROCEDURES += PROVINCE_PROCEDURES
