"""Alembic histories: one per owner (core, jobs, auth, and each service), each in its schema."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from shared.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent

# history name -> (schema, "module:metadata" or None). Order is the upgrade order.
HISTORIES: dict[str, tuple[str, str | None]] = {
    "core": ("core", "shared.core_models:metadata"),
    "jobs": ("jobs", None),
    "auth": ("auth", "gateway.models:metadata"),
    "intake": ("intake", "services.intake.models:metadata"),
    "workflow": ("workflow", "services.dossier_workflow.models:metadata"),
    "postal": ("postal", "services.postal_tracking.models:metadata"),
    "queue": ("queue", "services.queue_ticket.models:metadata"),
}


def alembic_config(history: str, database_url: str | None = None) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.set_main_option("version_locations", str(ROOT / "alembic" / "versions" / history))
    cfg.set_main_option("history", history)
    if database_url:
        cfg.set_main_option("sqlalchemy.url", with_command_timeout(database_url).replace("%", "%%"))
    return cfg


def with_command_timeout(database_url: str, settings: Settings | None = None) -> str:
    """The URL with asyncpg's client-side `command_timeout` for migrations (the server's statement timeout
    plus a margin), unless the URL sets one itself."""
    url = make_url(database_url)
    timeout = (settings or get_settings()).db_timeouts("migration").command_timeout
    if timeout is None or "command_timeout" in url.query:
        return database_url
    return url.update_query_dict({"command_timeout": str(timeout)}).render_as_string(hide_password=False)


def migration_timeouts(settings: Settings | None = None) -> list[str]:
    """`SET LOCAL` statements bounding a migration's transaction. Taken after the migrators' advisory lock (a
    second migrator waits for the first, however long): a short lock_timeout so that a migration needing a
    table's lock fails (and is run again) instead of queueing behind traffic, with every request queued
    behind it meanwhile; a generous statement_timeout for long DDL and data migrations."""
    bounds = (settings or get_settings()).db_timeouts("migration").server_settings
    return [f"SET LOCAL {name} = '{value}'" for name, value in bounds.items()]


def apply_migration_timeouts(connection: Connection, settings: Settings | None = None) -> None:
    """alembic/env.py calls this in the migration's transaction, right after taking the advisory lock."""
    for statement in migration_timeouts(settings):
        connection.execute(text(statement))


def head_revisions(history: str) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(history)).get_heads())


def upgrade_all(database_url: str) -> None:
    """Migrate every history to head, in order (what `make run` and `make test` both do)."""
    from alembic import command

    for history in HISTORIES:
        command.upgrade(alembic_config(history, database_url), "head")
