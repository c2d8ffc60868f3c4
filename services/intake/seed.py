"""Demo reference data (agencies, fields, procedures): idempotent, run by `make run` and tests."""

from __future__ import annotations

from datetime import date

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.catalog_data import AGENCIES, FIELDS, PROCEDURES
from shared.core_models import agencies, fields, procedures
from shared.text import search_key

CATALOG_EFFECTIVE_FROM = date(2025, 7, 1)  # Decree 118/2025 in force


async def seed(session: AsyncSession) -> None:
    for a in AGENCIES:
        await session.execute(insert(agencies).values(**a, search_text=search_key(a["name"]))
                              .on_conflict_do_nothing())
    for code, name in FIELDS.items():
        await session.execute(insert(fields).values(code=code, name=name).on_conflict_do_nothing())
    for p in PROCEDURES:
        await session.execute(insert(procedures).values(
            **p, effective_from=CATALOG_EFFECTIVE_FROM, search_text=search_key(p["name"]),
        ).on_conflict_do_nothing(constraint="uq_procedure_version"))
