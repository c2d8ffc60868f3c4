"""SQL of uploaded files (rows only: the bytes are in a `FileStorage`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select

from services.intake.models import files
from shared.db import Tx


async def insert_file(tx: Tx, row: dict[str, Any]) -> None:
    await tx.execute(insert(files).values(**row))


async def get_file(tx: Tx, file_id: str) -> dict[str, Any] | None:
    row = await tx.fetchrow(select(files).where(files.c.id == file_id))
    return dict(row) if row else None


async def found_ids(tx: Tx, ids: list[str], owner: str | None) -> set[str]:
    """Which of `ids` exist (and belong to `owner` when given). Files never change once stored, so this
    is one statement with no BEGIN: the submission that asks stays free for group commit."""
    rows = await tx.statement("SELECT id FROM intake.files WHERE id = ANY($1::text[]) "
                              "AND ($2::text IS NULL OR owner = $2)", ids, owner)
    return {str(r["id"]) for r in rows}
