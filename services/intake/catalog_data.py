"""Seed catalog from ../shared/reference/procedures.md (commune level). Data, not code: edit freely.

Rows the reference marks "unverified" keep that word in `notes`; procedures without a national
code in the reference get a local code `DP.*` until the national one is confirmed.
"""

from __future__ import annotations

from typing import Any

WARD = "000.00.21.H29"
DEPARTMENT = "000.00.07.H29"
DEFAULT_SESSIONS = [{"start": "07:30", "end": "11:30"}, {"start": "13:30", "end": "17:00"}]

AGENCIES: list[dict[str, Any]] = [
    {"code": DEPARTMENT, "name": "Sở Tư pháp thành phố Hà Nội", "level": "province",
     "parent_code": None, "admin_unit_code": "01", "sessions": DEFAULT_SESSIONS},
    {"code": WARD, "name": "UBND phường Ba Đình", "level": "commune", "parent_code": None,
     "admin_unit_code": "00004", "sessions": DEFAULT_SESSIONS},
]

FIELDS = {"HT": "Hộ tịch", "CT": "Chứng thực", "CTR": "Cư trú", "HKD": "Thành lập và hoạt động của hộ kinh doanh",
          "BTXH": "Bảo trợ xã hội", "DD": "Đất đai", "LT": "Liên thông"}

ALL = ["counter", "online", "postal"]
PAPER = ["counter", "postal"]


def _doc(name: str, original: int = 1, copy: int = 0, mandatory: bool = True) -> dict[str, Any]:
    return {"name": name, "original": original, "copy": copy, "mandatory": mandatory}


def _p(code: str, name: str, field: str, limit: tuple[int, str], fee: dict[str, Any],
       docs: list[dict[str, Any]], channels: list[str] = ALL, verification: int = 0,
       urgent: bool = False, notes: str | None = None, inter_agency: str | None = None,
       by_channel: dict[str, tuple[int, str]] | None = None) -> dict[str, Any]:
    time_limit: dict[str, Any] = {"value": limit[0], "unit": limit[1], "verification_extension": verification}
    if by_channel:  # a channel's own limit (e.g. paper vs electronic), else the row's
        time_limit["by_channel"] = {ch: {"value": v, "unit": u} for ch, (v, u) in by_channel.items()}
    return {"code": code, "name": name, "field_code": field, "level": "commune", "time_limit": time_limit,
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
