"""no district level since 1 July 2025; the year-specific national calendar decisions as override rows

Revision ID: core_0003
Revises: core_0002
Create Date: 2026-12-01

1. Levels: the two-level local government took effect on 1 July 2025, so an agency or a procedure is
   commune, province or central. A district agency that may exist is kept as history, inactive; a
   district procedure version in force from that day becomes commune level (the district's one-stop
   work passed to the communes), and one whose latest version is older gets a commune version from
   1 July 2025. CHECK constraints keep "district" for history only.
2. Calendar: the `holidays` library gives the standing holidays; the swaps the Prime Minister decides
   each year (a weekday off, a Saturday worked in its place) are national override rows (agency_code
   null) that the admin API lists, edits and deletes. Later years are added through the admin API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from alembic import op

revision: str = "core_0003"
down_revision: str | None = "core_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TWO_LEVELS_FROM = date(2025, 7, 1)  # Law on Organisation of Local Government 2025: no district level

# (day, kind, note): the official decisions for civil servants of each year (sources in the note).
NATIONAL_DECISIONS: tuple[tuple[date, str, str], ...] = (
    (date(2024, 4, 29), "day_off", "Nghỉ thay cho thứ Bảy 04/5/2024 (Công văn 2450/VPCP-KGVX) / "
                                   "day off in place of Saturday 4 May 2024"),
    (date(2024, 5, 4), "working_day", "Làm bù cho thứ Hai 29/4/2024 (Công văn 2450/VPCP-KGVX) / "
                                      "make-up working day for Monday 29 Apr 2024"),
    (date(2025, 4, 26), "working_day", "Làm bù cho thứ Sáu 02/5/2025 (Thông báo 6150/TB-BLĐTBXH) / "
                                       "make-up working day for Friday 2 May 2025"),
    (date(2025, 5, 2), "day_off", "Nghỉ thay cho thứ Bảy 26/4/2025 (Thông báo 6150/TB-BLĐTBXH) / "
                                  "day off in place of Saturday 26 Apr 2025"),
    (date(2026, 8, 22), "working_day", "Làm bù cho thứ Hai 31/8/2026 (nghỉ Quốc khánh 2026) / "
                                       "make-up working day for Monday 31 Aug 2026"),
    (date(2026, 8, 31), "day_off", "Nghỉ thay cho thứ Bảy 22/8/2026 (nghỉ Quốc khánh 2026) / "
                                   "day off in place of Saturday 22 Aug 2026"),
)

LEVELS = "('commune', 'province', 'central')"


def upgrade() -> None:
    op.execute("UPDATE core.agencies SET active = false WHERE level = 'district'")
    op.create_check_constraint("ck_agency_level", "agencies",
                               f"level IN {LEVELS} OR (level = 'district' AND NOT active)", schema="core")
    since = sa.bindparam("since", TWO_LEVELS_FROM, type_=sa.Date)
    op.get_bind().execute(sa.text(  # a procedure still at district level: a commune version from that day
        "INSERT INTO core.procedures (code, effective_from, name, search_text, field_code, level, time_limit, fee, "
        "documents, channels, online_level, urgent, result_delivery, inter_agency, notes) "
        "SELECT code, CAST(:since AS date), name, search_text, field_code, 'commune', time_limit, fee, documents, "
        "channels, online_level, urgent, result_delivery, inter_agency, notes FROM ("
        "  SELECT DISTINCT ON (code) * FROM core.procedures ORDER BY code, effective_from DESC) latest "
        "WHERE latest.level = 'district' AND latest.effective_from < CAST(:since AS date)").bindparams(since))
    op.get_bind().execute(sa.text(
        "UPDATE core.procedures SET level = 'commune' "
        "WHERE level = 'district' AND effective_from >= CAST(:since AS date)")
        .bindparams(since))
    op.create_check_constraint("ck_procedure_level", "procedures",
                               f"level IN {LEVELS} OR (level = 'district' AND effective_from < DATE '2025-07-01')",
                               schema="core")
    insert = sa.text(
        "INSERT INTO core.calendar_overrides (agency_code, day, kind, note) SELECT NULL, CAST(:day AS date), "
        "CAST(:kind AS varchar), CAST(:note AS text) WHERE NOT EXISTS (SELECT 1 FROM core.calendar_overrides "
        "WHERE agency_code IS NULL AND day = CAST(:day AS date))"
    ).bindparams(sa.bindparam("day", type_=sa.Date))
    for day, kind, note in NATIONAL_DECISIONS:
        op.get_bind().execute(insert, {"day": day, "kind": kind, "note": note})


def downgrade() -> None:
    delete = sa.text("DELETE FROM core.calendar_overrides WHERE agency_code IS NULL AND day = :day AND note = :note"
                     ).bindparams(sa.bindparam("day", type_=sa.Date))
    for day, _kind, note in NATIONAL_DECISIONS:
        op.get_bind().execute(delete, {"day": day, "note": note})
    op.drop_constraint("ck_procedure_level", "procedures", schema="core", type_="check")
    op.drop_constraint("ck_agency_level", "agencies", schema="core", type_="check")
