"""dossiers and the daily code counters

Revision ID: intake_0002
Revises: intake_0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "intake_0002"
down_revision: str | None = "intake_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dossiers",
        sa.Column("code", sa.String(40), primary_key=True, comment="mã hồ sơ, never changed"),
        sa.Column("procedure_code", sa.String(30), nullable=False),
        sa.Column("procedure_version_id", sa.Integer, nullable=False),
        sa.Column("receiving_agency", sa.String(30), nullable=False),
        sa.Column("competent_agency", sa.String(30), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("applicant", JSONB, nullable=False),
        sa.Column("applicant_id_number", sa.String(12), nullable=False),
        sa.Column("submitted_by", sa.String(100), nullable=False),
        sa.Column("submitted_role", sa.String(30), nullable=False),
        sa.Column("documents", JSONB, nullable=False),
        sa.Column("number_of_sets", sa.Integer, nullable=False),
        sa.Column("result_delivery", sa.String(20), nullable=False),
        sa.Column("delivery_address", JSONB),
        sa.Column("fee", sa.Integer, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clock_started", sa.Boolean, nullable=False),
        sa.Column("queue_ticket_id", sa.String(40)),
        sa.Column("notes", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="intake",
    )
    op.create_index("ix_intake_dossiers_applicant_id_number", "dossiers", ["applicant_id_number"],
                    schema="intake")
    op.create_table(
        "daily_counters",
        sa.Column("agency_code", sa.String(30), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True, comment="receipt date in Viet Nam time"),
        sa.Column("last_number", sa.Integer, nullable=False),
        schema="intake",
    )


def downgrade() -> None:
    op.drop_table("daily_counters", schema="intake")
    op.drop_table("dossiers", schema="intake")
