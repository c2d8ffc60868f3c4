"""supplements, counter refusals and completion requests (forms 02, 03), uploaded files

Revision ID: intake_0003
Revises: intake_0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "intake_0003"
down_revision: str | None = "intake_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "intake"
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("dossiers", sa.Column("supplement_due_at", TZ,
                                        comment="set while the workflow waits for a supplement"), schema=S)
    op.add_column("dossiers", sa.Column("supplement_documents", JSONB, comment="what the workflow asked for"),
                  schema=S)
    op.create_table(
        "supplements",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("dossier_code", sa.String(40), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("received_by", sa.String(100), nullable=False),
        sa.Column("documents", JSONB, nullable=False),
        sa.Column("note", sa.Text),
        schema=S,
    )
    op.create_index("ix_intake_supplements_dossier_code", "supplements", ["dossier_code"], schema=S)
    op.create_table(
        "counter_records",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False, comment="refusal (form 03) | completion_request (form 02)"),
        sa.Column("agency_code", sa.String(30), nullable=False),
        sa.Column("procedure_code", sa.String(30), nullable=False),
        sa.Column("applicant", JSONB, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("documents", JSONB, nullable=False, comment="documents to add or complete (form 02)"),
        sa.Column("officer", sa.String(100), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        schema=S,
    )
    op.create_table(
        "files",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False, comment="subject of the uploader"),
        sa.Column("owner_role", sa.String(30), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False, comment="sniffed from the content"),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        schema=S,
    )


def downgrade() -> None:
    for table in ("files", "counter_records", "supplements"):
        op.drop_table(table, schema=S)
    op.drop_column("dossiers", "supplement_documents", schema=S)
    op.drop_column("dossiers", "supplement_due_at", schema=S)
