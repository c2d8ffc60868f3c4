"""jobs: NOTIFY only for new jobs, and not from connections that wake the workers after commit

A NOTIFY takes one lock for the whole database at commit and holds it through the WAL flush, so
every notifying commit waits for the others.
- A finished job (DELETE) no longer notifies: workers finish jobs in batches all the time and
  nothing listens for that (there are no per-entrypoint concurrency limits to free).
- A connection with `motcua.wake_after_commit = on` inserts jobs without NOTIFY: service processes
  set it and wake the workers themselves once the request has committed (shared.waker.JobWaker),
  so the counters' commits do not queue on the notify lock. Workers, tests and any other client
  keep the in-transaction NOTIFY.

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
    IF {emit} THEN
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
NEW_JOBS_UNLESS_WOKEN_AFTER = ("TG_OP IN ('INSERT', 'TRUNCATE') "
                               "AND coalesce(current_setting('motcua.wake_after_commit', true), '') <> 'on'")
AS_INSTALLED = "TG_OP IN ('INSERT', 'DELETE', 'TRUNCATE')"


def upgrade() -> None:
    op.execute(FUNCTION.format(emit=NEW_JOBS_UNLESS_WOKEN_AFTER))


def downgrade() -> None:
    op.execute(FUNCTION.format(emit=AS_INSTALLED))
