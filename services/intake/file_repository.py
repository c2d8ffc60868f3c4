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


async def found_ids(tx: Tx, ids: list[str], owner: tuple[str, str] | None) -> set[str]:
    """Which of `ids` exist (and were uploaded by `owner`, its subject and role, when given). Files never
    change once stored, so this is one statement with no BEGIN: the submission that asks stays free for
    group commit."""
    subject, role = owner if owner is not None else (None, None)
    rows = await tx.statement("SELECT id FROM intake.files WHERE id = ANY($1::text[]) "
                              "AND ($2::text IS NULL OR (owner = $2 AND owner_role = $3))", ids, subject, role)
    return {str(r["id"]) for r in rows}


async def attached_to_agency(tx: Tx, file_id: str, agency_code: str) -> bool:
    """Whether the file is attached to a dossier (or its supplement) that this agency receives or decides."""
    return bool(await tx.fetchval(
        "SELECT EXISTS (SELECT 1 FROM intake.file_links l JOIN intake.dossiers d ON d.code = l.dossier_code "
        "WHERE l.file_id = $1 AND $2 IN (d.receiving_agency, d.competent_agency))", file_id, agency_code))
