"""jobs: a finished job (DELETE) no longer sends NOTIFY; only new jobs wake the workers

A NOTIFY takes one lock for the whole database at commit and holds it through the WAL flush,
so every notifying commit waits for the others. Workers finish jobs in batches all the time;
nothing listens for that (there are no per-entrypoint concurrency limits to free), so those
commits need not queue behind each other and behind the counters' submissions.

Revision ID: jobs_0002
Revises: jobs_0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "jobs_0002"
down_revision: str | None = "jobs_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE OR REPLACE FUNCTION jobs.fn_pgqueuer_changed() RETURNS TRIGGER AS $$
BEGIN
    -- Statement-level trigger: OLD and NEW are NULL here, so an UPDATE never notified either.
    IF TG_OP IN ('INSERT', 'TRUNCATE') {deletes}THEN
        PERFORM pg_notify(
            'ch_pgqueuer',
            json_build_object(
                'channel', 'ch_pgqueuer',
                'operation', lower(TG_OP),
                'sent_at', NOW(),
                'table', TG_TABLE_NAME,
                'type', 'table_changed_event'
            )::text
        );
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


def upgrade() -> None:
    op.execute(FUNCTION.format(deletes=""))


def downgrade() -> None:
    op.execute(FUNCTION.format(deletes="OR TG_OP = 'DELETE' "))
