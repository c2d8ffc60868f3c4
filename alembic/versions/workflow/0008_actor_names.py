"""people by full name and title on the forms: history actors, apology issuers; address and sets for form 07

Form 06 (phiếu kiểm soát) names the giver and the receiver of each hand-off, form 07 (sổ theo dõi) the
applicant's address and the number of sets: what the identity records and the receipt gave at the time is
kept with the row (`actor_name`, `actor_title`; `issued_by_name`, `issued_by_title`; `applicant_address`,
`number_of_sets`). Rows written before have none: the forms print the role in words, or leave it blank.

Revision ID: workflow_0008
Revises: workflow_0007
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "workflow_0008"
down_revision: str | None = "workflow_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME, TITLE = "full name from the identity records", "title (chức danh) from the identity records"
COLUMNS = {
    "history": (("actor_name", 200, NAME), ("actor_title", 200, TITLE)),
    "apologies": (("issued_by_name", 200, NAME), ("issued_by_title", 200, TITLE)),
    "dossiers": (("applicant_address", 400, "the applicant's address line (form 07)"),),
}


def upgrade() -> None:
    for table, columns in COLUMNS.items():
        for name, length, comment in columns:
            op.add_column(table, sa.Column(name, sa.String(length), nullable=True, comment=comment), schema="workflow")
    op.add_column("dossiers", sa.Column("number_of_sets", sa.Integer, nullable=True,
                                        comment="sets handed in (số lượng hồ sơ, form 07)"), schema="workflow")


def downgrade() -> None:
    op.drop_column("dossiers", "number_of_sets", schema="workflow")
    for table, columns in COLUMNS.items():
        for name, _, _ in columns:
            op.drop_column(table, name, schema="workflow")
