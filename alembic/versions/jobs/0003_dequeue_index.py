"""jobs: drop the (priority, id) index the planner took for pgqueuer's dequeue

pgqueuer 1.6 dequeues per entrypoint (`LATERAL ... WHERE entrypoint = ... ORDER BY priority DESC,
id`), which `pgqueuer_ep_prio_id_idx` answers in a few index pages. With a backlog the planner
preferred `pgqueuer_priority_id_id1_idx` (priority, id DESC), walking the whole queue once per
entrypoint and filtering: measured 77 ms per dequeue with 11,500 queued jobs, 5.9 ms without it,
on a single connection that every worker's claims go through. No pgqueuer query of this version
needs the index (its older dequeue did).

Revision ID: jobs_0003
Revises: jobs_0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "jobs_0003"
down_revision: str | None = "jobs_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS jobs.pgqueuer_priority_id_id1_idx")


def downgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS pgqueuer_priority_id_id1_idx ON jobs.pgqueuer "
               "USING btree (priority, id DESC) INCLUDE (id) WHERE (status = 'queued'::jobs.pgqueuer_status)")
