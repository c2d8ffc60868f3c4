"""queue: the ticket a counter is serving, kept on the counter row (the precondition of call-next)

Revision ID: queue_0003
Revises: queue_0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "queue_0003"
down_revision: str | None = "queue_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("counters", sa.Column(
        "current_ticket_id", sa.BigInteger(), nullable=True,
        comment="the ticket called or being served here (call-next's If-Match is checked against it)"),
        schema="queue")
    op.execute(
        "UPDATE queue.counters c SET current_ticket_id = (SELECT t.id FROM queue.tickets t "
        "WHERE t.counter_id = c.id AND t.status IN ('called', 'serving') ORDER BY t.called_at DESC, t.id DESC "
        "LIMIT 1)")


def downgrade() -> None:
    op.drop_column("counters", "current_ticket_id", schema="queue")
