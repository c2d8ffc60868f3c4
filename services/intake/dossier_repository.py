"""SQL for dossiers and their daily code counters (SQLAlchemy Core: this is the hot path)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import repository
from services.intake.models import dossiers
from shared.db import raw_connection


async def procedure_in_force(session: AsyncSession, code: str, day: date) -> dict[str, Any] | None:
    return await repository.get_procedure(session, code, day)


async def agency(session: AsyncSession, code: str) -> dict[str, Any] | None:
    return await repository.get_agency(session, code)


async def competent_agency(session: AsyncSession, level: str, ward_code: str,
                           receiving: dict[str, Any]) -> str | None:
    """Phi địa giới: the agency of the applicant's ward at the procedure's level, else the receiver."""
    if receiving["level"] == level and receiving["admin_unit_code"] == ward_code:
        return str(receiving["code"])
    conn = await raw_connection(session)
    found = await conn.fetchval(
        "SELECT code FROM core.agencies WHERE level = $1 AND admin_unit_code = $2 AND active LIMIT 1",
        level, ward_code)
    if found is not None:
        return str(found)
    return str(receiving["code"]) if receiving["level"] == level else None


DEFAULT_PATTERN = "{agency}-{yymmdd}-{seq}"  # Circular 01/2018 Art. 19
INSERT_WITH_CODE = """
WITH n AS (
    INSERT INTO intake.daily_counters AS c (agency_code, day, last_number) VALUES ($1, $2, 1)
    ON CONFLICT (agency_code, day) DO UPDATE SET last_number = c.last_number + 1
    RETURNING last_number
)
INSERT INTO intake.dossiers (code, procedure_code, procedure_version_id, receiving_agency,
    competent_agency, channel, status, applicant, applicant_id_number, submitted_by, submitted_role,
    documents, number_of_sets, result_delivery, delivery_address, fee, received_at, due_at,
    clock_started, queue_ticket_id, notes)
SELECT $3 || lpad(n.last_number::text, 4, '0') || $23, $4, $5, $1, $6, $7, $8,
    $9::jsonb, $10, $11, $12, $13::jsonb, $14, $15, $16::jsonb, $17, $18, $19, $20, $21, $22
FROM n
RETURNING code, (SELECT last_number FROM n) AS number
"""


def code_parts(pattern: str, agency_code: str, day: date) -> tuple[str, str]:
    """The text before and after the 4-digit daily number, e.g. ('000.00.21.H29-261124-', '')."""
    before, found, after = pattern.partition("{seq}")
    if not found:
        raise ValueError("DOSSIER_CODE_PATTERN must contain {seq}")
    fields = {"agency": agency_code, "yymmdd": f"{day:%y%m%d}", "yyyymmdd": f"{day:%Y%m%d}"}
    return before.format(**fields), after.format(**fields)


async def insert_with_next_code(session: AsyncSession, agency_code: str, day: date,
                                row: dict[str, Any], pattern: str = DEFAULT_PATTERN) -> tuple[str, int]:
    """One round trip: take the agency's next number of the day and insert the dossier with it.

    The counter row stays locked until commit, so codes have no gaps and no duplicates.
    """
    prefix, suffix = code_parts(pattern, agency_code, day)
    conn = await raw_connection(session)
    rec = await conn.fetchrow(
        INSERT_WITH_CODE, agency_code, day, prefix, row["procedure_code"],
        row["procedure_version_id"], row["competent_agency"], row["channel"], row["status"],
        json.dumps(row["applicant"]), row["applicant_id_number"], row["submitted_by"], row["submitted_role"],
        json.dumps(row["documents"]), row["number_of_sets"], row["result_delivery"],
        json.dumps(row["delivery_address"]) if row["delivery_address"] is not None else None,
        row["fee"], row["received_at"], row["due_at"], row["clock_started"], row["queue_ticket_id"], row["notes"],
        suffix,
    )
    return str(rec["code"]), int(rec["number"])


async def get_dossier(session: AsyncSession, code: str, *, lock: bool = False) -> dict[str, Any] | None:
    query = select(dossiers).where(dossiers.c.code == code)
    row = (await session.execute(query.with_for_update() if lock else query)).first()
    return dict(row._mapping) if row else None


async def start_clock(session: AsyncSession, code: str, due_at: datetime) -> None:
    await session.execute(update(dossiers).where(dossiers.c.code == code).values(clock_started=True, due_at=due_at))
