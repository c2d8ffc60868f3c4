"""jobs: a connection with motcua.wake_after_commit = on inserts jobs without NOTIFY

Service processes set it on their connections and wake the workers themselves once the request
has committed (shared.waker.JobWaker), so the counters' commits do not queue on the notify lock.
Workers, tests and any other client keep the in-transaction NOTIFY.

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

FUNCTION = """
CREATE OR REPLACE FUNCTION jobs.fn_pgqueuer_changed() RETURNS TRIGGER AS $$
BEGIN
    -- Statement-level trigger: OLD and NEW are NULL here, so an UPDATE never notified either.
    IF TG_OP IN ('INSERT', 'TRUNCATE') {quiet}THEN
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
QUIET = "AND coalesce(current_setting('motcua.wake_after_commit', true), '') <> 'on' "


def upgrade() -> None:
    op.execute(FUNCTION.format(quiet=QUIET))


def downgrade() -> None:
    op.execute(FUNCTION.format(quiet=""))
