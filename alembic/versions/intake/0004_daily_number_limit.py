"""a day's dossier numbers stop at 9999 in the database itself

Receipt is one statement (counter, dossier, job and kept answer together): the limit is a CHECK
on the counter, so a 10,000th dossier fails that statement and nothing is written.

Revision ID: intake_0004
Revises: intake_0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "intake_0004"
down_revision: str | None = "intake_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_check_constraint("daily_counters_at_most_9999", "daily_counters", "last_number <= 9999",
                               schema="intake")


def downgrade() -> None:
    op.drop_constraint("daily_counters_at_most_9999", "daily_counters", schema="intake", type_="check")
