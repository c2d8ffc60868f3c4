"""identity provider tables

Revision ID: auth_0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "auth_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _stamps() -> list[sa.Column[object]]:
    return [
        sa.Column("active", sa.Boolean, nullable=False, server_default="true"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("username", sa.String(100), primary_key=True),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("role", sa.String(30), nullable=False),
        sa.Column("subject", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("agency_code", sa.String(50)),
        sa.Column("office_code", sa.String(50)),
        *_stamps(),
        schema="auth",
    )
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(100), primary_key=True),
        sa.Column("secret_hash", sa.String(300), nullable=False),
        sa.Column("role", sa.String(30), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("partner_code", sa.String(50)),
        sa.Column("agency_code", sa.String(50)),
        sa.Column("office_code", sa.String(50)),
        *_stamps(),
        schema="auth",
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("private_pem", sa.Text, nullable=False),
        *_stamps(),
        schema="auth",
    )


def downgrade() -> None:
    for table in ("signing_keys", "clients", "users"):
        op.drop_table(table, schema="auth")
