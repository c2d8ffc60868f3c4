"""dossiers postal knows of (copied from intake's `postal.dossier_received` jobs)

A shipment is created only for a dossier of the caller's agency (or, inbound, one the partner
registered): postal keeps the few facts that decide it, as it never reads intake's schema.

Revision ID: postal_0003
Revises: postal_0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "postal_0003"
down_revision: str | None = "postal_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dossiers",
        sa.Column("code", sa.String(40), primary_key=True, comment="mã hồ sơ, as intake gave it"),
        sa.Column("receiving_agency", sa.String(30), nullable=False),
        sa.Column("competent_agency", sa.String(30), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("result_delivery", sa.String(20), nullable=False),
        sa.Column("partner_code", sa.String(30),
                  comment="the postal partner that registered it (postal channel), else null"),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("known_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="postal",
        comment="dossiers that may travel by post, copied from intake's `postal.dossier_received` jobs: "
                "who may create their shipments",
    )


def downgrade() -> None:
    op.drop_table("dossiers", schema="postal")
