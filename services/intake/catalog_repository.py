"""SQL of the reference data intake owns (schema `core`): catalog, agencies, calendar overrides."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
from sqlalchemy import Select, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as upsert

from shared.core_models import agencies, calendar_overrides, fields, procedures
from shared.db import Tx


async def read_alone(tx: Tx, sql: str, *args: Any) -> asyncpg.Record | None:
    """A read of data that does not change under it, as one statement with no BEGIN: a submission
    that reads it stays free to be written by group commit (which needs no open transaction)."""
    rows = await tx.statement(sql, *args)
    return rows[0] if rows else None


def _current_versions(as_of: date) -> Select[Any]:
    """The version of each procedure in force on `as_of` (a dossier keeps the one it got)."""
    return (select(procedures, fields.c.name.label("field_name"))
            .join(fields, fields.c.code == procedures.c.field_code)
            .where(procedures.c.effective_from <= as_of)
            .ext(distinct_on(procedures.c.code))
            .order_by(procedures.c.code, procedures.c.effective_from.desc()))


async def search_procedures(
    tx: Tx, key: str | None, field_code: str | None, as_of: date, limit: int, level: str | None = None,
) -> list[dict[str, Any]]:
    current = _current_versions(as_of).subquery()
    query = select(current)
    if field_code:
        query = query.where(current.c.field_code == field_code)
    if level:
        query = query.where(current.c.level == level)
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
    return [dict(r) for r in await tx.fetch(query.limit(limit))]


CURRENT_PROCEDURE = """
SELECT DISTINCT ON (p.code) p.*, f.name AS field_name
FROM core.procedures p JOIN core.fields f ON f.code = p.field_code
WHERE p.code = $1 AND p.effective_from <= $2
ORDER BY p.code, p.effective_from DESC
"""


async def get_procedure(tx: Tx, code: str, as_of: date) -> dict[str, Any] | None:
    """The version in force on `as_of` (the same as `_current_versions`, for one code: plain SQL, hot path)."""
    row = await read_alone(tx, CURRENT_PROCEDURE, code, as_of)
    return dict(row) if row else None


async def list_agencies(tx: Tx, key: str | None, level: str | None,
                        body_type: str | None = None) -> list[dict[str, Any]]:
    query = select(agencies).where(agencies.c.active)
    if body_type:
        query = query.where(agencies.c.body_type == body_type)
    if key:
        query = query.where(or_(agencies.c.search_text.contains(key, autoescape=True),
                                agencies.c.code == key))
    if level:
        query = query.where(agencies.c.level == level)
    return [dict(r) for r in await tx.fetch(query.order_by(agencies.c.level, agencies.c.name))]


async def get_agency(tx: Tx, code: str) -> dict[str, Any] | None:
    row = await read_alone(tx, "SELECT * FROM core.agencies WHERE code = $1", code)
    return dict(row) if row else None


async def set_agency_head(tx: Tx, code: str, name: str, title: str) -> dict[str, Any] | None:
    row = await tx.fetchrow(update(agencies).where(agencies.c.code == code)
                            .values(head_name=name, head_title=title).returning(*agencies.c))
    return dict(row) if row else None


async def agency_of_body(tx: Tx, body_type: str, department: str | None, admin_unit_code: str) -> dict[str, Any] | None:
    """The active agency of a body type (and department) for a ward or province code: "the commune police of
    ward X", "Sở Tư pháp of province P" (the lowest code if there are several)."""
    row = await read_alone(
        tx, "SELECT code, name FROM core.agencies WHERE body_type = $1 AND department IS NOT DISTINCT FROM $2 "
            "AND admin_unit_code = $3 AND active ORDER BY code LIMIT 1", body_type, department, admin_unit_code)
    return dict(row) if row else None


async def field_exists(tx: Tx, code: str) -> bool:
    return await tx.fetchval(select(fields.c.code).where(fields.c.code == code)) is not None


async def procedure_version_exists(tx: Tx, code: str, effective_from: date) -> bool:
    return await tx.fetchval(select(procedures.c.id).where(
        procedures.c.code == code, procedures.c.effective_from == effective_from)) is not None


async def insert_procedure_version(tx: Tx, values: dict[str, Any]) -> int:
    new_id: int = await tx.fetchval(insert(procedures).values(**values).returning(procedures.c.id))
    return new_id


async def procedure_versions(tx: Tx, code: str) -> list[dict[str, Any]]:
    rows = await tx.fetch(select(procedures).where(procedures.c.code == code)
                          .order_by(procedures.c.effective_from))
    return [dict(r) for r in rows]


async def override_exists(tx: Tx, day: date, agency_code: str | None) -> bool:
    same_scope = (calendar_overrides.c.agency_code.is_(None) if agency_code is None
                  else calendar_overrides.c.agency_code == agency_code)
    return await tx.fetchval(select(calendar_overrides.c.id).where(
        calendar_overrides.c.day == day, same_scope)) is not None


async def insert_override(tx: Tx, values: dict[str, Any]) -> int:
    new_id: int = await tx.fetchval(insert(calendar_overrides).values(**values).returning(calendar_overrides.c.id))
    return new_id


async def list_overrides(tx: Tx, year: int | None) -> list[dict[str, Any]]:
    query = select(calendar_overrides).order_by(calendar_overrides.c.day)
    if year:
        query = query.where(calendar_overrides.c.day.between(date(year, 1, 1), date(year, 12, 31)))
    return [dict(r) for r in await tx.fetch(query)]


async def delete_override(tx: Tx, override_id: int) -> bool:
    """True when the override existed."""
    return await tx.execute(delete(calendar_overrides).where(calendar_overrides.c.id == override_id)) > 0


async def add_agency_if_missing(tx: Tx, values: dict[str, Any]) -> None:
    await tx.execute(upsert(agencies).values(**values).on_conflict_do_nothing())


async def add_field_if_missing(tx: Tx, code: str, name: str) -> None:
    await tx.execute(upsert(fields).values(code=code, name=name).on_conflict_do_nothing())


async def add_procedure_version_if_missing(tx: Tx, values: dict[str, Any]) -> None:
    await tx.execute(upsert(procedures).values(**values).on_conflict_do_nothing(constraint="uq_procedure_version"))


async def centralised_service(tx: Tx, procedure_code: str) -> dict[str, Any] | None:
    """The procedure's row in `centralised_services` (owner_digits, since), None if not centralised."""
    row = await read_alone(tx, "SELECT owner_digits, since FROM intake.centralised_services WHERE procedure_code = $1",
                           procedure_code)
    return dict(row) if row else None
