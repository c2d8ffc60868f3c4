"""agencies, fields, procedures (versioned), calendar overrides

Revision ID: core_0002
Revises: core_0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "core_0002"
down_revision: str | None = "core_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agencies",
        sa.Column("code", sa.String(30), primary_key=True, comment="identifier code, the dossier-code prefix"),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("search_text", sa.Text, nullable=False, comment="name without accents, lower case"),
        sa.Column("level", sa.String(20), nullable=False, comment="province | commune | district (history)"),
        sa.Column("parent_code", sa.String(30), sa.ForeignKey("core.agencies.code")),
        sa.Column("admin_unit_code", sa.String(20), nullable=False, comment="province or ward code"),
        sa.Column("sessions", JSONB, nullable=False, comment='[{"start": "07:30", "end": "11:30"}, ...]'),
        sa.Column("active", sa.Boolean, nullable=False, server_default="true"),
        schema="core",
    )
    op.create_table(
        "fields",
        sa.Column("code", sa.String(30), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        schema="core",
    )
    op.create_table(
        "procedures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(30), nullable=False, comment="national procedure code, e.g. 1.001193"),
        sa.Column("effective_from", sa.Date, nullable=False),
        sa.Column("name", sa.String(400), nullable=False),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("field_code", sa.String(30), sa.ForeignKey("core.fields.code"), nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("time_limit", JSONB, nullable=False, comment='{"value", "unit", "verification_extension"}'),
        sa.Column("fee", JSONB, nullable=False, comment='{"kind": "free|fixed|per_copy|per_page", ...}'),
        sa.Column("documents", JSONB, nullable=False),
        sa.Column("channels", JSONB, nullable=False),
        sa.Column("online_level", sa.String(20), nullable=False),
        sa.Column("urgent", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("result_delivery", JSONB, nullable=False),
        sa.Column("inter_agency", sa.Text),
        sa.Column("notes", sa.Text),
        sa.UniqueConstraint("code", "effective_from", name="uq_procedure_version"),
        schema="core",
    )
    op.create_table(
        "calendar_overrides",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agency_code", sa.String(30), sa.ForeignKey("core.agencies.code"), comment="null: every agency"),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("sessions", JSONB),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="core",
    )


def downgrade() -> None:
    for table in ("calendar_overrides", "procedures", "fields", "agencies"):
        op.drop_table(table, schema="core")
