"""deciding bodies: each procedure names the body that decides it, each agency the body it is

Decree 118/2025 Art. 14: any one-stop office of a province receives the province's procedures, and the
dossier goes to the competent body: a commune body of the applicant's ward (People's Committee, its
chair, the commune police for residence) or a provincial one (a department, the provincial chair or
People's Committee, social insurance). `procedures.deciding_body` (+ `department`) says which;
`agencies.body_type` (+ `department`) lets the router find "the commune police of ward X" or "Sở Tư
pháp of province P" (services.intake.bodies).

Existing rows: residence procedures (field CTR) are decided by the commune police, certifications
(CT) by the commune chair, other commune procedures by the commune People's Committee, province-level
ones by the provincial People's Committee. A provincial agency named "Sở …" becomes that department,
another provincial agency the provincial People's Committee.

Revision ID: core_0004
Revises: core_0003
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0004"
down_revision: str | None = "core_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COMMUNE_PC = "commune_people_committee"
# The department an existing "Sở …" agency is, by the start of its name (longest first).
DEPARTMENT_NAMES: tuple[tuple[str, str], ...] = (
    ("Sở Nông nghiệp và Môi trường", "nong_nghiep_moi_truong"),
    ("Sở Khoa học và Công nghệ", "khoa_hoc_cong_nghe"),
    ("Sở Giáo dục và Đào tạo", "giao_duc_dao_tao"),
    ("Sở Dân tộc và Tôn giáo", "dan_toc_ton_giao"),
    ("Sở Công Thương", "cong_thuong"),
    ("Sở Xây dựng", "xay_dung"),
    ("Sở Tài chính", "tai_chinh"),
    ("Sở Tư pháp", "tu_phap"),
    ("Sở Nội vụ", "noi_vu"),
    ("Sở Ngoại vụ", "ngoai_vu"),
    ("Sở Văn hóa", "van_hoa_the_thao_du_lich"),
    ("Sở Y tế", "y_te"),
)


def upgrade() -> None:
    op.add_column("agencies", sa.Column(
        "body_type", sa.String(40), nullable=False, server_default=COMMUNE_PC,
        comment="what the agency is (services.intake.bodies.BodyType): commune_people_committee | "
                "commune_police | province_people_committee | province_department | social_insurance | "
                "public_service_centre"), schema="core")
    op.add_column("agencies", sa.Column(
        "department", sa.String(40), comment="province_department: which one (tu_phap, xay_dung, ...)"),
        schema="core")
    op.add_column("procedures", sa.Column(
        "deciding_body", sa.String(40), nullable=False, server_default=COMMUNE_PC,
        comment="who decides (services.intake.bodies.DecidingBody): commune_people_committee | commune_chair | "
                "commune_police | province_people_committee | province_chair | province_department | "
                "social_insurance"), schema="core")
    op.add_column("procedures", sa.Column(
        "department", sa.String(40), comment="the provincial department that decides or appraises"), schema="core")
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE core.agencies SET body_type = 'province_people_committee' WHERE level = 'province'"))
    for prefix, department in DEPARTMENT_NAMES:
        bind.execute(sa.text(
            "UPDATE core.agencies SET body_type = 'province_department', department = :department "
            "WHERE level = 'province' AND department IS NULL AND name LIKE :prefix"),
            {"department": department, "prefix": prefix + "%"})
    bind.execute(sa.text("UPDATE core.procedures SET deciding_body = 'commune_police' "
                         "WHERE field_code = 'CTR' AND level = 'commune'"))
    bind.execute(sa.text("UPDATE core.procedures SET deciding_body = 'commune_chair' "
                         "WHERE field_code = 'CT' AND level = 'commune'"))
    bind.execute(sa.text("UPDATE core.procedures SET deciding_body = 'province_people_committee' "
                         "WHERE level = 'province'"))
    op.create_check_constraint("ck_agency_department", "agencies",
                               "body_type <> 'province_department' OR department IS NOT NULL", schema="core")
    op.create_check_constraint("ck_procedure_department", "procedures",
                               "deciding_body <> 'province_department' OR department IS NOT NULL", schema="core")


def downgrade() -> None:
    op.drop_constraint("ck_procedure_department", "procedures", schema="core", type_="check")
    op.drop_constraint("ck_agency_department", "agencies", schema="core", type_="check")
    op.drop_column("procedures", "department", schema="core")
    op.drop_column("procedures", "deciding_body", schema="core")
    op.drop_column("agencies", "department", schema="core")
    op.drop_column("agencies", "body_type", schema="core")
