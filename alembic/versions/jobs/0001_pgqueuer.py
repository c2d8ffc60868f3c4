"""pgqueuer tables in schema jobs

Revision ID: jobs_0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from pgqueuer.adapters.persistence.qb import QueryBuilderEnvironment
from pgqueuer.domain.settings import DBSettings

revision: str = "jobs_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _env() -> QueryBuilderEnvironment:
    return QueryBuilderEnvironment(settings=DBSettings(db_schema="jobs"))


def _execute_script(sql: str) -> None:
    """Multi-statement DDL: asyncpg's simple-query path (prepared statements take one command)."""
    adapted = op.get_bind().connection.dbapi_connection
    adapted.run_async(lambda conn: conn.execute(sql))  # type: ignore[union-attr]


def upgrade() -> None:
    _execute_script(_env().build_install_query(create_schema=False))


def downgrade() -> None:
    _execute_script(_env().build_uninstall_query())
