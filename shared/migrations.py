"""Alembic histories: one per owner (core, jobs, auth, and each service), each in its schema."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

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
        cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def head_revisions(history: str) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(history)).get_heads())


def upgrade_all(database_url: str) -> None:
    """Migrate every history to head, in order (what `make run` and `make test` both do)."""
    from alembic import command

    for history in HISTORIES:
        command.upgrade(alembic_config(history, database_url), "head")
