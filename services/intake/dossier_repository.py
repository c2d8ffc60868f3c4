"""SQL for dossiers and their daily code counters (SQLAlchemy Core: this is the hot path)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import repository
from services.intake.models import daily_counters, dossiers
from shared.core_models import agencies


async def procedure_in_force(session: AsyncSession, code: str, day: date) -> dict[str, Any] | None:
    return await repository.get_procedure(session, code, day)


async def agency(session: AsyncSession, code: str) -> dict[str, Any] | None:
    return await repository.get_agency(session, code)


async def competent_agency(session: AsyncSession, level: str, ward_code: str,
                           receiving: dict[str, Any]) -> str | None:
    """Phi địa giới: the agency of the applicant's ward at the procedure's level, else the receiver."""
    if receiving["level"] == level and receiving["admin_unit_code"] == ward_code:
        return str(receiving["code"])
    found = await session.scalar(select(agencies.c.code).where(
        agencies.c.level == level, agencies.c.admin_unit_code == ward_code, agencies.c.active))
    if found is not None:
        return str(found)
    return str(receiving["code"]) if receiving["level"] == level else None


async def next_number(session: AsyncSession, agency_code: str, day: date) -> int:
    """The row lock of the upsert serialises one agency's day: no gaps, no duplicates."""
    upsert = pg_insert(daily_counters).values(agency_code=agency_code, day=day, last_number=1)
    stmt = upsert.on_conflict_do_update(
        index_elements=[daily_counters.c.agency_code, daily_counters.c.day],
        set_={"last_number": daily_counters.c.last_number + 1},
    ).returning(daily_counters.c.last_number)
    return int((await session.execute(stmt)).scalar_one())


async def insert_dossier(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(insert(dossiers).values(**row))


async def get_dossier(session: AsyncSession, code: str) -> dict[str, Any] | None:
    row = (await session.execute(select(dossiers).where(dossiers.c.code == code))).first()
    return dict(row._mapping) if row else None
