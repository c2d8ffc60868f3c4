"""agency heads: who signs forms 04 and 05 for the agency (Circular 03/2025: THỦ TRƯỞNG CƠ QUAN, ĐƠN VỊ)

The apology (form 04) and the notice that a dossier is stopped (form 05) are signed by the head of the
agency, named by full name and title (e.g. "Chủ tịch", "Giám đốc"). Without them the forms print the
generic heading and a blank line to sign.

Revision ID: core_0005
Revises: core_0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0005"
down_revision: str | None = "core_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("agencies", sa.Column("head_name", sa.String(200),
                                        comment="full name of the head (signs forms 04, 05)"), schema="core")
    op.add_column("agencies", sa.Column("head_title", sa.String(200), comment="the head's title, e.g. Chủ tịch"),
                  schema="core")


def downgrade() -> None:
    op.drop_column("agencies", "head_title", schema="core")
    op.drop_column("agencies", "head_name", schema="core")
