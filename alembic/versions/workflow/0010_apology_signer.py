"""the head who signs an apology (form 04), kept as it was when the apology was issued

Forms 04 and 05 are signed by the agency's head (`core.agencies.head_name/head_title`). A form printed again
after the head changed must still show who signed it: the apology keeps its signer (this migration), the stop
notice keeps it in its history row's data. Rows from before have none: their forms show the head of today.

Revision ID: workflow_0010
Revises: workflow_0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "workflow_0010"
down_revision: str | None = "workflow_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("apologies", sa.Column("signed_by_name", sa.String(200),
                                         comment="the agency's head when issued: signs form 04"), schema="workflow")
    op.add_column("apologies", sa.Column("signed_by_title", sa.String(200),
                                         comment="that head's title, e.g. Chủ tịch"), schema="workflow")


def downgrade() -> None:
    op.drop_column("apologies", "signed_by_title", schema="workflow")
    op.drop_column("apologies", "signed_by_name", schema="workflow")
