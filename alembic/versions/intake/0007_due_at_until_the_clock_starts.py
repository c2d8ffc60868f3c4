"""a dossier has no due date until its clock starts

Revision ID: intake_0007
Revises: intake_0006
Create Date: 2026-12-08

`intake.dossiers.due_at` is null until the time limit starts to run: an online dossier when an officer
accepts it (workflow's `dossier.due_set`), a certification sent by post when the paper arrives
(`dossier.paper_arrived`). The receipt then prints a phrase, never a past date.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "intake_0007"
down_revision: str | None = "intake_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COMMENT = ("null until the clock starts (online: acceptance; postal certification: the paper's arrival)")


def upgrade() -> None:
    op.alter_column("dossiers", "due_at", existing_type=sa.DateTime(timezone=True), nullable=True,
                    comment=COMMENT, schema="intake")


def downgrade() -> None:
    op.execute("UPDATE intake.dossiers SET due_at = received_at WHERE due_at IS NULL")
    op.alter_column("dossiers", "due_at", existing_type=sa.DateTime(timezone=True), nullable=False,
                    comment=None, existing_comment=COMMENT, schema="intake")
