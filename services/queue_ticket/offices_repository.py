"""SQL of the configuration: offices, their categories and counters."""

from __future__ import annotations

from typing import Any

from shared.db import Tx

Row = Any  # asyncpg.Record

OFFICE_AND_CATEGORY_SQL = (
    "SELECT o.code AS office_code, o.name AS office_name, o.agency_code, o.occupancy_cap, o.always_open, "
    "o.hold_seconds, o.checkin_early_minutes, o.active, c.code AS category_code, c.prefix, "
    "c.name AS category_name, c.slot_minutes, c.slot_capacity, c.default_service_seconds "
    "FROM queue.offices o JOIN queue.categories c ON c.office_code = o.code "
    "WHERE o.code = $1 AND c.code = $2")


async def office(tx: Tx, code: str) -> Row | None:
    return await tx.fetchrow("SELECT * FROM queue.offices WHERE code = $1", code)


async def office_and_category(tx: Tx, office_code: str, category_code: str) -> Row | None:
    return await tx.fetchrow(OFFICE_AND_CATEGORY_SQL, office_code, category_code)


async def office_and_category_alone(tx: Tx, office_code: str, category_code: str) -> Row | None:
    """The same read as one statement of its own (no BEGIN): for the ticket path, whose write is one INSERT."""
    rows = await tx.statement(OFFICE_AND_CATEGORY_SQL, office_code, category_code)
    return rows[0] if rows else None


async def agency_exists(tx: Tx, agency_code: str) -> bool:
    return bool(await tx.fetchval("SELECT 1 FROM core.agencies WHERE code = $1", agency_code))


async def categories(tx: Tx, office_code: str) -> list[Row]:
    return await tx.fetch("SELECT * FROM queue.categories WHERE office_code = $1 ORDER BY position, prefix",
                          office_code)


async def counters(tx: Tx, office_code: str) -> list[Row]:
    return await tx.fetch("SELECT * FROM queue.counters WHERE office_code = $1 ORDER BY number", office_code)


async def counter(tx: Tx, counter_id: int, *, lock: bool = False) -> Row | None:
    return await tx.fetchrow(f"SELECT * FROM queue.counters WHERE id = $1{' FOR UPDATE' if lock else ''}", counter_id)


async def upsert_office(tx: Tx, code: str, v: dict[str, Any]) -> None:
    await tx.execute(
        "INSERT INTO queue.offices (code, name, agency_code, occupancy_cap, always_open, hold_seconds, "
        "checkin_early_minutes) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO UPDATE SET "
        "name = EXCLUDED.name, agency_code = EXCLUDED.agency_code, occupancy_cap = EXCLUDED.occupancy_cap, "
        "always_open = EXCLUDED.always_open, hold_seconds = EXCLUDED.hold_seconds, "
        "checkin_early_minutes = EXCLUDED.checkin_early_minutes",
        code, v["name"], v["agency_code"], v["occupancy_cap"], v["always_open"], v["hold_seconds"],
        v["checkin_early_minutes"])


async def upsert_category(tx: Tx, office_code: str, code: str, v: dict[str, Any]) -> None:
    await tx.execute(
        "INSERT INTO queue.categories (office_code, code, prefix, name, procedure_codes, slot_minutes, "
        "slot_capacity, default_service_seconds, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (office_code, code) DO UPDATE SET prefix = EXCLUDED.prefix, name = EXCLUDED.name, "
        "procedure_codes = EXCLUDED.procedure_codes, slot_minutes = EXCLUDED.slot_minutes, "
        "slot_capacity = EXCLUDED.slot_capacity, default_service_seconds = EXCLUDED.default_service_seconds, "
        "position = EXCLUDED.position",
        office_code, code, v["prefix"], v["name"], v["procedure_codes"], v["slot_minutes"], v["slot_capacity"],
        v["default_service_seconds"], v["position"])


async def prefix_owner(tx: Tx, office_code: str, prefix: str) -> str | None:
    value: str | None = await tx.fetchval(
        "SELECT code FROM queue.categories WHERE office_code = $1 AND prefix = $2", office_code, prefix)
    return value


async def upsert_counter(tx: Tx, office_code: str, number: int, v: dict[str, Any]) -> Row:
    row: Row = await tx.fetchrow(
        "INSERT INTO queue.counters (office_code, number, name, category_codes, active) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (office_code, number) DO UPDATE SET name = EXCLUDED.name, "
        "category_codes = EXCLUDED.category_codes, active = EXCLUDED.active RETURNING *",
        office_code, number, v["name"], v["category_codes"], v["active"])
    return row
