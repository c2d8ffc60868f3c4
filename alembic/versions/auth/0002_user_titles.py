"""users' titles (chức danh), printed on forms under their full names

Revision ID: auth_0002
Revises: auth_0001
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "auth_0002"
down_revision: str | None = "auth_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("title", sa.String(200), nullable=True,
                                     comment="chức danh, printed on forms under the name"), schema="auth")
    op.alter_column("users", "name", comment="full name (họ và tên), printed on forms", schema="auth",
                    existing_type=sa.String(200), existing_nullable=False)


def downgrade() -> None:
    op.alter_column("users", "name", comment=None, schema="auth", existing_type=sa.String(200),
                    existing_nullable=False)
    op.drop_column("users", "title", schema="auth")
