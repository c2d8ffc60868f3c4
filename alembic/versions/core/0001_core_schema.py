"""core schema

Revision ID: core_0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "core_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """The schema itself is created by env.py; tables come in later revisions."""


def downgrade() -> None:
    pass
