"""Alembic environment shared by every history; each keeps its version table in its schema."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from alembic import context
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

from shared.migrations import HISTORIES, alembic_config, apply_migration_timeouts
from shared.settings import get_settings

config = context.config
history = config.get_main_option("history") or context.get_x_argument(as_dictionary=True).get(
    "history", ""
)
if history not in HISTORIES:
    raise SystemExit(f"choose a history with -x history=<{'|'.join(HISTORIES)}>")
if not config.get_main_option("version_locations"):
    config.set_main_option(
        "version_locations", alembic_config(history).get_main_option("version_locations") or ""
    )
schema, metadata_ref = HISTORIES[history]


def load_metadata() -> MetaData | None:
    if metadata_ref is None:
        return None
    module, _, attr = metadata_ref.partition(":")
    md: MetaData = getattr(importlib.import_module(module), attr)
    return md


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    if type_ == "schema":
        return name == schema
    return True


def do_run_migrations(connection: Connection) -> None:
    # One migrator at a time, across processes and replicas.
    connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('motcua-migrations'))"))
    apply_migration_timeouts(connection)
    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    context.configure(
        connection=connection,
        target_metadata=load_metadata(),
        version_table_schema=schema,
        include_schemas=True,
        include_name=include_name,
        compare_type=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = async_engine_from_config(
        {"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run against a database")
asyncio.run(run_async())
