"""Models and migrations agree, for every history; every version table sits in its schema."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, text

from shared.migrations import HISTORIES, head_revisions

pytestmark = pytest.mark.smoke


def _sync_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="module")
def sync_engine(database_url: str):  # type: ignore[no-untyped-def]
    pytest.importorskip("psycopg")
    engine = create_engine(_sync_url(database_url))
    yield engine
    engine.dispose()


@pytest.mark.parametrize("history", [h for h, (_, ref) in HISTORIES.items() if ref])
def test_models_match_migrations(sync_engine, history: str) -> None:  # type: ignore[no-untyped-def]
    schema, ref = HISTORIES[history]
    assert ref is not None
    module, _, attr = ref.partition(":")
    metadata: MetaData = getattr(importlib.import_module(module), attr)

    def include_name(name: str | None, type_: str, _parents: object) -> bool:
        return name == schema if type_ == "schema" else True

    def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        return not (type_ == "table" and name == "alembic_version")

    with sync_engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={
            "include_schemas": True, "include_name": include_name,
            "include_object": include_object, "compare_type": True,
        })
        diff = compare_metadata(ctx, metadata)
    assert diff == [], f"{history}: models and migrations differ: {diff}"


@pytest.mark.parametrize("history", list(HISTORIES))
def test_each_history_is_at_head_in_its_own_schema(sync_engine, history: str) -> None:  # type: ignore[no-untyped-def]
    schema = HISTORIES[history][0]
    with sync_engine.connect() as conn:
        current = {r[0] for r in conn.execute(text(f'SELECT version_num FROM "{schema}".alembic_version'))}
    assert current == head_revisions(history)
