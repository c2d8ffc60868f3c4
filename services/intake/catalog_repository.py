"""All SQL of the intake service."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from shared.core_models import agencies, fields, procedures
from shared.db import Tx, autocommit_connection


def _current_versions(as_of: date) -> Select[Any]:
    """The version of each procedure in force on `as_of` (a dossier keeps the one it got)."""
    return (select(procedures, fields.c.name.label("field_name"))
            .join(fields, fields.c.code == procedures.c.field_code)
            .where(procedures.c.effective_from <= as_of)
            .ext(distinct_on(procedures.c.code))
            .order_by(procedures.c.code, procedures.c.effective_from.desc()))


async def search_procedures(
    session: AsyncSession, key: str | None, field_code: str | None, as_of: date, limit: int,
) -> list[dict[str, Any]]:
    current = _current_versions(as_of).subquery()
    query = select(current)
    if field_code:
        query = query.where(current.c.field_code == field_code)
    if key:
        words = key.split()
        phrase = current.c.search_text.contains(key, autoescape=True)
        all_words = and_(*(current.c.search_text.contains(w, autoescape=True) for w in words))
        query = query.where(or_(phrase, all_words)).order_by(
            case((current.c.search_text == key, 0),
                 (current.c.search_text.startswith(key, autoescape=True), 1),
                 (phrase, 2), else_=3),
            func.length(current.c.name), current.c.code)
    else:
        query = query.order_by(current.c.field_code, current.c.code)
    rows = await session.execute(query.limit(limit))
    return [dict(r._mapping) for r in rows]


CURRENT_PROCEDURE = """
SELECT DISTINCT ON (p.code) p.*, f.name AS field_name
FROM core.procedures p JOIN core.fields f ON f.code = p.field_code
WHERE p.code = $1 AND p.effective_from <= $2
ORDER BY p.code, p.effective_from DESC
"""


async def get_procedure(session: Tx, code: str, as_of: date) -> dict[str, Any] | None:
    """The version in force on `as_of` (the same as `_current_versions`, for one code: plain SQL, hot path)."""
    row = await (await autocommit_connection(session)).fetchrow(CURRENT_PROCEDURE, code, as_of)
    return dict(row) if row else None


async def list_agencies(session: AsyncSession, key: str | None, level: str | None) -> list[dict[str, Any]]:
    query = select(agencies).where(agencies.c.active)
    if key:
        query = query.where(or_(agencies.c.search_text.contains(key, autoescape=True),
                                agencies.c.code == key))
    if level:
        query = query.where(agencies.c.level == level)
    rows = await session.execute(query.order_by(agencies.c.level, agencies.c.name))
    return [dict(r._mapping) for r in rows]


async def get_agency(session: Tx, code: str) -> dict[str, Any] | None:
    row = await (await autocommit_connection(session)).fetchrow("SELECT * FROM core.agencies WHERE code = $1", code)
    return dict(row) if row else None
