"""when the dossier's clock started: processing time counts from it; `clock_started` is derived from it

The clock starts at receipt, at an online dossier's acceptance, when a dossier asked to be completed
before acceptance is complete, or when a postal certification's paper arrives. The average processing
time (Decision 766) counted from receipt, or from the acceptance only, so it included the waits before
the clock started. `clock_started_at` keeps the moment; `clock_started` becomes a generated column of it
(one fact, stored once). Existing rows: the history's `clock_started` row, else the acceptance, else
the receipt, for dossiers whose clock had started.

Revision ID: workflow_0011
Revises: workflow_0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "workflow_0011"
down_revision: str | None = "workflow_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("dossiers", sa.Column("clock_started_at", sa.DateTime(timezone=True),
                                        comment="when the time limit started to run (null: not yet)"),
                  schema="workflow")
    op.execute("""
        UPDATE workflow.dossiers d SET clock_started_at = coalesce(
            (SELECT max(h.at) FROM workflow.history h WHERE h.dossier_code = d.code AND h.action = 'clock_started'),
            d.accepted_at, d.received_at)
        WHERE d.clock_started""")
    op.drop_column("dossiers", "clock_started", schema="workflow")
    op.add_column("dossiers", sa.Column("clock_started", sa.Boolean, sa.Computed("clock_started_at IS NOT NULL",
                                                                                 persisted=True), nullable=False),
                  schema="workflow")


def downgrade() -> None:
    op.drop_column("dossiers", "clock_started", schema="workflow")
    op.add_column("dossiers", sa.Column("clock_started", sa.Boolean, nullable=True), schema="workflow")
    op.execute("UPDATE workflow.dossiers SET clock_started = clock_started_at IS NOT NULL")
    op.alter_column("dossiers", "clock_started", nullable=False, schema="workflow")
    op.drop_column("dossiers", "clock_started_at", schema="workflow")
