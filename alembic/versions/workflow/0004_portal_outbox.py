"""outboxes: dossiers waiting for the national portal, messages waiting for the citizen; flushed in batches

Revision ID: workflow_0004
Revises: workflow_0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

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
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
        sa.Column("dossier_code", sa.String(40)),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("template", sa.String(60), nullable=False),
        sa.Column("params", JSONB, nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="workflow",
        comment="messages to send (a row leaves when it is sent or handed to its own retried job)",
    )


def downgrade() -> None:
    op.drop_table("notification_outbox", schema="workflow")
    op.drop_table("portal_outbox", schema="workflow")
