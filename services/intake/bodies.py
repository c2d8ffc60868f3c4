"""Deciding bodies (cơ quan có thẩm quyền giải quyết) after the two-level reform, and where a dossier goes.

Data, not rules of code: the names are the official ones (legal-2025.md §3.1, §3.3). A procedure names
the body that decides it (`deciding_body`, with `department` for a provincial department); an agency of
`core.agencies` names the body it is (`body_type`, `department`). Routing (Decree 118/2025 Art. 14: any
one-stop office of the province receives) maps the procedure's body to the agency that handles the
dossier: a commune body of the applicant's ward, or a provincial body of the receiving office's province.
"""

from __future__ import annotations

from typing import Literal

# Bodies that decide a procedure. The commune chair decides through the commune People's Committee
# (one agency); the provincial chair or People's Committee through the department that appraises the
# dossier (the procedure's `department`), else through the provincial People's Committee itself.
DecidingBody = Literal[
    "commune_people_committee", "commune_chair", "commune_police",
    "province_people_committee", "province_chair", "province_department", "social_insurance",
]
# What an agency is. `public_service_centre` (Trung tâm Phục vụ hành chính công) receives and returns,
# it decides nothing.
BodyType = Literal[
    "commune_people_committee", "commune_police", "province_people_committee", "province_department",
    "social_insurance", "public_service_centre",
]

# Provincial departments after the 2025 merger (Decree 45/2025 on provincial specialised agencies).
DEPARTMENTS: dict[str, str] = {
    "tu_phap": "Sở Tư pháp",
    "xay_dung": "Sở Xây dựng",
    "nong_nghiep_moi_truong": "Sở Nông nghiệp và Môi trường",
    "cong_thuong": "Sở Công Thương",
    "khoa_hoc_cong_nghe": "Sở Khoa học và Công nghệ",
    "tai_chinh": "Sở Tài chính",
    "noi_vu": "Sở Nội vụ",
    "y_te": "Sở Y tế",
    "giao_duc_dao_tao": "Sở Giáo dục và Đào tạo",
    "van_hoa_the_thao_du_lich": "Sở Văn hóa, Thể thao và Du lịch",
    "dan_toc_ton_giao": "Sở Dân tộc và Tôn giáo",
    "ngoai_vu": "Sở Ngoại vụ",
}
Department = Literal[
    "tu_phap", "xay_dung", "nong_nghiep_moi_truong", "cong_thuong", "khoa_hoc_cong_nghe", "tai_chinh",
    "noi_vu", "y_te", "giao_duc_dao_tao", "van_hoa_the_thao_du_lich", "dan_toc_ton_giao", "ngoai_vu",
]

BODY_NAMES: dict[str, str] = {
    "commune_people_committee": "Ủy ban nhân dân cấp xã",
    "commune_chair": "Chủ tịch Ủy ban nhân dân cấp xã",
    "commune_police": "Công an cấp xã",
    "province_people_committee": "Ủy ban nhân dân cấp tỉnh",
    "province_chair": "Chủ tịch Ủy ban nhân dân cấp tỉnh",
    "province_department": "Sở chuyên ngành cấp tỉnh",
    "social_insurance": "Bảo hiểm xã hội",
    "public_service_centre": "Trung tâm Phục vụ hành chính công",
}
COMMUNE_BODIES = frozenset({"commune_people_committee", "commune_chair", "commune_police"})
PROVINCE_BODIES = frozenset({"province_people_committee", "province_chair", "province_department"})


def body_name(body: str, department: str | None) -> str:
    """'Công an cấp xã', 'Sở Tư pháp', 'Chủ tịch Ủy ban nhân dân cấp tỉnh (qua Sở Tư pháp)'."""
    if body == "province_department" and department:
        return DEPARTMENTS.get(department, department)
    name = BODY_NAMES.get(body, body)
    return f"{name} (qua {DEPARTMENTS.get(department, department)})" if department else name


def level_fits(body: str, level: str) -> bool:
    """A commune body decides commune-level procedures, a provincial one province-level ones."""
    if body in COMMUNE_BODIES:
        return level == "commune"
    if body in PROVINCE_BODIES:
        return level == "province"
    return level in ("commune", "province")  # social insurance (vertical): either


def handling_agency(body: str, department: str | None) -> tuple[str, str | None, bool]:
    """The agency type (and department) that handles a dossier the body decides, and whether it is found
    by the applicant's ward (True) or by the province (False)."""
    if body in ("commune_people_committee", "commune_chair"):
        return "commune_people_committee", None, True
    if body == "commune_police":
        return "commune_police", None, True
    if body in ("province_chair", "province_people_committee") and not department:
        return "province_people_committee", None, False
    if body in PROVINCE_BODIES:
        return "province_department", department, False
    return body, department, False  # social insurance of the province
