"""Reference data every service reads (schema `core`): agencies, fields, procedures, calendar.

Written only by intake (its admin API and seed); read by all services.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(schema="core")

agencies = Table(
    "agencies", metadata,
    Column("code", String(30), primary_key=True, comment="identifier code, the dossier-code prefix"),
    Column("name", String(300), nullable=False),
    Column("search_text", Text, nullable=False, comment="name without accents, lower case"),
    Column("level", String(20), nullable=False, comment="province | commune | district (history)"),
    Column("parent_code", String(30), ForeignKey("core.agencies.code")),
    Column("admin_unit_code", String(20), nullable=False, comment="province or ward code"),
    Column("sessions", JSONB, nullable=False, comment='[{"start": "07:30", "end": "11:30"}, ...]'),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("body_type", String(40), nullable=False, server_default="commune_people_committee",
           comment="what the agency is (services.intake.bodies.BodyType): commune_people_committee | "
                   "commune_police | province_people_committee | province_department | social_insurance | "
                   "public_service_centre"),
    Column("department", String(40), comment="province_department: which one (tu_phap, xay_dung, ...)"),
    Column("head_name", String(200), comment="full name of the head (signs forms 04, 05)"),
    Column("head_title", String(200), comment="the head's title, e.g. Chủ tịch"),
    CheckConstraint("body_type <> 'province_department' OR department IS NOT NULL",
                    name="ck_agency_department"),
)

fields = Table(
    "fields", metadata,
    Column("code", String(30), primary_key=True),
    Column("name", String(200), nullable=False),
)

procedures = Table(
    "procedures", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(30), nullable=False, comment="national procedure code, e.g. 1.001193"),
    Column("effective_from", Date, nullable=False),
    Column("name", String(400), nullable=False),
    Column("search_text", Text, nullable=False),
    Column("field_code", String(30), ForeignKey("core.fields.code"), nullable=False),
    Column("level", String(20), nullable=False),
    Column("time_limit", JSONB, nullable=False, comment='{"value", "unit", "verification_extension"}'),
    Column("fee", JSONB, nullable=False, comment='{"kind": "free|fixed|per_copy|per_page", ...}'),
    Column("documents", JSONB, nullable=False),
    Column("channels", JSONB, nullable=False),
    Column("online_level", String(20), nullable=False),
    Column("urgent", Boolean, nullable=False, server_default="false"),
    Column("result_delivery", JSONB, nullable=False),
    Column("inter_agency", Text),
    Column("notes", Text),
    Column("deciding_body", String(40), nullable=False, server_default="commune_people_committee",
           comment="who decides (services.intake.bodies.DecidingBody): commune_people_committee | commune_chair | "
                   "commune_police | province_people_committee | province_chair | province_department | "
                   "social_insurance"),
    Column("department", String(40), comment="the provincial department that decides or appraises"),
    CheckConstraint("deciding_body <> 'province_department' OR department IS NOT NULL",
                    name="ck_procedure_department"),
    UniqueConstraint("code", "effective_from", name="uq_procedure_version"),
)

calendar_overrides = Table(
    "calendar_overrides", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agency_code", String(30), ForeignKey("core.agencies.code"), comment="null: every agency"),
    Column("day", Date, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("sessions", JSONB),
    Column("note", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
