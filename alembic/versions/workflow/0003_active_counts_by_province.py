"""live in-progress counts by agency or province from index-only scans

Revision ID: workflow_0003
Revises: workflow_0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "workflow_0003"
down_revision: str | None = "workflow_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "status IN ('received', 'in_progress', 'supplement_requested')"


def upgrade() -> None:
    op.add_column("dossiers", sa.Column(
        "province", sa.String(10), sa.Computed("split_part(receiving_agency, '.', 4)", persisted=True),
        comment="last part of the agency code (statistics by province)"), schema="workflow")
    op.drop_index("ix_dossiers_counted_active", "dossiers", schema="workflow")
    op.create_index("ix_dossiers_active_agency", "dossiers", ["receiving_agency", "status", "due_at"],
                    schema="workflow", postgresql_where=sa.text(ACTIVE))
    op.create_index("ix_dossiers_active_province", "dossiers", ["province", "status", "due_at"],
                    schema="workflow", postgresql_where=sa.text(ACTIVE))


def downgrade() -> None:
    op.drop_index("ix_dossiers_active_province", "dossiers", schema="workflow")
    op.drop_index("ix_dossiers_active_agency", "dossiers", schema="workflow")
    op.create_index("ix_dossiers_counted_active", "dossiers", ["receiving_agency"], schema="workflow",
                    postgresql_where=sa.text(ACTIVE))
    op.drop_column("dossiers", "province", schema="workflow")
