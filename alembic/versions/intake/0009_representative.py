"""the person who filed on the applicant's behalf (người nộp thay), as form 01 prints it

Circular 03/2025 form 01 names, for a dossier filed through a representative, that person beside the
applicant, and the submitter's signature is theirs. Until now the representative was checked and dropped.
Rows written before this migration have none.

Revision ID: intake_0009
Revises: intake_0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "intake_0009"
down_revision: str | None = "intake_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("dossiers", sa.Column("representative", JSONB, nullable=True,
                                        comment="who filed for the applicant: {full_name, id_number, relation}"),
                  schema="intake")


def downgrade() -> None:
    op.drop_column("dossiers", "representative", schema="intake")
