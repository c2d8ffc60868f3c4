"""SQL for dossiers and their daily code counters (SQLAlchemy Core: this is the hot path)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import repository
from services.intake.models import dossiers
from shared.db import Tx, autocommit_connection, fetchrow_atomic
from shared.jobs import job_insert_sql, mark_enqueued


async def procedure_in_force(session: Tx, code: str, day: date) -> dict[str, Any] | None:
    return await repository.get_procedure(session, code, day)


async def agency(session: Tx, code: str) -> dict[str, Any] | None:
    return await repository.get_agency(session, code)


async def competent_agency(session: Tx, level: str, ward_code: str,
                           receiving: dict[str, Any]) -> str | None:
    """Phi địa giới: the agency of the applicant's ward at the procedure's level, else the receiver."""
    if receiving["level"] == level and receiving["admin_unit_code"] == ward_code:
        return str(receiving["code"])
    conn = await autocommit_connection(session)  # a read of reference data: no transaction needed
    found = await conn.fetchval(
        "SELECT code FROM core.agencies WHERE level = $1 AND admin_unit_code = $2 AND active LIMIT 1",
        level, ward_code)
    if found is not None:
        return str(found)
    return str(receiving["code"]) if receiving["level"] == level else None


DEFAULT_PATTERN = "{agency}-{yymmdd}-{seq}"  # Circular 01/2018 Art. 19
_EVENT_PAYLOAD = """convert_to(jsonb_build_object(
        'data', $25::jsonb || jsonb_build_object('code', d.code), 'request_id', $26::text)::text, 'UTF8')"""
RECEIVE = f"""
WITH n AS (
    INSERT INTO intake.daily_counters AS c (agency_code, day, last_number) VALUES ($1, $2, 1)
    ON CONFLICT (agency_code, day) DO UPDATE SET last_number = c.last_number + 1
    RETURNING last_number
), d AS (
    INSERT INTO intake.dossiers (code, procedure_code, procedure_version_id, receiving_agency,
        competent_agency, channel, status, applicant, applicant_id_number, submitted_by, submitted_role,
        documents, number_of_sets, result_delivery, delivery_address, fee, received_at, due_at,
        clock_started, queue_ticket_id, notes)
    SELECT $3 || lpad(n.last_number::text, 4, '0') || $23, $4, $5, $1, $6, $7, $8,
        $9::jsonb, $10, $11, $12, $13::jsonb, $14, $15, $16::jsonb, $17, $18, $19, $20, $21, $22
    FROM n
    RETURNING code
), answer AS (
    SELECT d.code, ($24::jsonb || jsonb_build_object(
        'code', d.code, 'receipt_url', '/api/intake/v1/dossiers/' || d.code || '/receipt'))::text AS body
    FROM d
), {job_insert_sql("job", "d", "'dossier.received'", _EVENT_PAYLOAD)},
kept AS (
    INSERT INTO intake.idempotency_keys (scope, key, method, path, fingerprint, status, body, content_type)
    SELECT $27, $28, 'POST', $29, $30, 201, convert_to(answer.body, 'UTF8'), 'application/json' FROM answer
)
SELECT answer.code, answer.body FROM answer
"""


def code_parts(pattern: str, agency_code: str, day: date) -> tuple[str, str]:
    """The text before and after the 4-digit daily number, e.g. ('000.00.21.H29-261124-', '')."""
    before, found, after = pattern.partition("{seq}")
    if not found:
        raise ValueError("DOSSIER_CODE_PATTERN must contain {seq}")
    fields = {"agency": agency_code, "yymmdd": f"{day:%y%m%d}", "yyyymmdd": f"{day:%Y%m%d}"}
    return before.format(**fields), after.format(**fields)


async def receive(session: Tx, agency_code: str, day: date, row: dict[str, Any], pattern: str, *,
                  answer: dict[str, Any], event: dict[str, Any], request_id: str | None,
                  idempotency: tuple[str, str, str, str]) -> tuple[str, str]:
    """ONE statement, one round trip: the agency's next number of the day, the dossier, its
    `dossier.received` job and the kept answer for the Idempotency-Key all commit together.

    The counter row stays locked until that commit, so codes have no gaps and no duplicates.
    The daily limit is a CHECK on the counter and a used key is the key table's primary key:
    either one fails the whole statement (asyncpg raises), leaving nothing written.
    Returns the code and the answer's JSON text (what the caller sends and a retry replays).
    """
    prefix, suffix = code_parts(pattern, agency_code, day)
    scope, key, path, fingerprint = idempotency
    conn = await autocommit_connection(session)
    rec = await fetchrow_atomic(
        conn, RECEIVE, agency_code, day, prefix, row["procedure_code"],
        row["procedure_version_id"], row["competent_agency"], row["channel"], row["status"],
        json.dumps(row["applicant"]), row["applicant_id_number"], row["submitted_by"], row["submitted_role"],
        json.dumps(row["documents"]), row["number_of_sets"], row["result_delivery"],
        json.dumps(row["delivery_address"]) if row["delivery_address"] is not None else None,
        row["fee"], row["received_at"], row["due_at"], row["clock_started"], row["queue_ticket_id"], row["notes"],
        suffix, json.dumps(answer, ensure_ascii=False), json.dumps(event, default=str, ensure_ascii=False),
        request_id, scope, key, path, fingerprint,
    )
    assert rec is not None
    mark_enqueued(session)
    return str(rec["code"]), str(rec["body"])


async def get_dossier(session: AsyncSession, code: str, *, lock: bool = False) -> dict[str, Any] | None:
    query = select(dossiers).where(dossiers.c.code == code)
    row = (await session.execute(query.with_for_update() if lock else query)).first()
    return dict(row._mapping) if row else None


async def start_clock(session: AsyncSession, code: str, due_at: datetime) -> None:
    await session.execute(update(dossiers).where(dossiers.c.code == code).values(clock_started=True, due_at=due_at))
