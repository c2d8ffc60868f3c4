"""portal outbox: dossiers waiting to be synced to the national portal, flushed in batches

Revision ID: workflow_0004
Revises: workflow_0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "workflow_0004"
down_revision: str | None = "workflow_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "portal_outbox",
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="workflow",
        comment="dossiers received and not yet synced to the national portal (Cổng DVCQG); a row leaves once synced",
    )


def downgrade() -> None:
    op.drop_table("portal_outbox", schema="workflow")
