"""SQL of dossiers: process definitions, the dossier row, its history (transitions, timeline), transfers, apologies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import asyncpg
from sqlalchemy import DateTime, Table
from sqlalchemy.dialects import postgresql

from services.dossier_workflow.models import apologies, dossiers, history, transfers
from shared.db import Tx

PG_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
HISTORY_FIELDS = ("dossier_code", "at", "actor", "actor_role", "actor_agency", "action", "from_status", "to_status",
                  "step", "step_due_at", "note", "data", "counted_agency", "procedure_code", "field_code", "channel",
                  "actor_name", "actor_title")
TIMELINE_COLUMNS = ("at", "actor", "actor_role", "actor_agency", "action", "from_status", "to_status", "step",
                    "step_due_at", "note", "actor_name", "actor_title")
DATETIME_KEYS = frozenset(c.name for c in history.columns if isinstance(c.type, DateTime))
DOSSIER_COLUMNS = frozenset(c.name for c in dossiers.columns)


def typed_params(table: Table, keys: Sequence[str], start: int) -> str:
    """`$n::type` for each column: parameters of INSERT ... SELECT get no type from their target."""
    return ", ".join(f"${i}::{table.c[k].type.compile(dialect=PG_DIALECT)}" for i, k in enumerate(keys, start))


def _insert_sql(table: Table, keys: Sequence[str], returning: str = "") -> str:
    return (f"INSERT INTO {table.schema}.{table.name} ({', '.join(keys)}) VALUES ({typed_params(table, keys, 1)})"
            + (f" RETURNING {returning}" if returning else ""))


def timeline_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A timeline that travelled as JSON, with its times as datetimes again."""
    for item in items:
        for key, value in item.items():
            if key in DATETIME_KEYS and value is not None:
                item[key] = datetime.fromisoformat(value)
    return items


DEFINITION_IN_FORCE = """
SELECT * FROM workflow.process_definitions WHERE procedure_code IN ($1, '*') AND effective_from <= $2
ORDER BY procedure_code = '*', effective_from DESC LIMIT 1
"""


async def definition_for(tx: Tx, procedure_code: str, as_of: date) -> dict[str, Any]:
    """The procedure's own definition in force on `as_of`, else the default ('*').

    Definitions are versioned, never edited: read as one statement, so a cache miss opens no transaction."""
    rows = await tx.statement(DEFINITION_IN_FORCE, procedure_code, as_of)
    if not rows:
        raise LookupError("no process definition: run the migrations")
    return dict(rows[0])


async def definition_by_id(tx: Tx, definition_id: int) -> dict[str, Any]:
    """As `definition_for`: one statement, no transaction opened for it."""
    rows = await tx.statement("SELECT * FROM workflow.process_definitions WHERE id = $1", definition_id)
    if not rows:
        raise LookupError(f"no process definition {definition_id}")
    return dict(rows[0])


async def get_dossier(tx: Tx, code: str, *, lock: bool = False) -> dict[str, Any] | None:
    record = await tx.fetchrow("SELECT * FROM workflow.dossiers WHERE code = $1" + (" FOR UPDATE" if lock else ""),
                               code)
    return dict(record) if record is not None else None


READ_WITH_TIMELINE = """
SELECT d.*,
       (SELECT coalesce(jsonb_agg(to_jsonb(h) - 'data' - 'counted_agency' - 'procedure_code' - 'field_code'
                                  - 'channel' - 'dossier_code' - 'id' ORDER BY h.id), '[]'::jsonb)
        FROM workflow.history h WHERE h.dossier_code = d.code) AS timeline
FROM workflow.dossiers d WHERE d.code = $1
"""


async def dossier_with_timeline(tx: Tx, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The read hot path: one statement with no BEGIN (one round trip, one snapshot).
    The dossier's columns come as typed values; only the timeline travels as JSON."""
    rows = await tx.statement(READ_WITH_TIMELINE, code)
    if not rows:
        return None
    dossier = dict(rows[0])
    return dossier, timeline_items(dossier.pop("timeline"))


@lru_cache(maxsize=64)
def _transition_sql(keys: tuple[str, ...], with_timeline: bool) -> str:
    sets = "".join(f"{k} = ${i}::{dossiers.c[k].type.compile(dialect=PG_DIALECT)}, "
                   for i, k in enumerate(keys, 2))
    history_from = len(keys) + 2
    columns = ", ".join(TIMELINE_COLUMNS)
    timeline = f""",
       (SELECT coalesce(jsonb_agg(to_jsonb(t) - 'id' ORDER BY t.id), '[]'::jsonb) FROM (
            SELECT id, {columns} FROM workflow.history WHERE dossier_code = $1
            UNION ALL SELECT id, {columns} FROM h) t) AS timeline""" if with_timeline else ""
    return f"""WITH u AS (
    UPDATE workflow.dossiers SET {sets}version = version + 1, updated_at = now() WHERE code = $1 RETURNING version
), h AS (
    INSERT INTO workflow.history ({", ".join(HISTORY_FIELDS)})
    SELECT {typed_params(history, HISTORY_FIELDS, history_from)} FROM u RETURNING id, {columns}
)
SELECT (SELECT version FROM u) AS version{timeline}"""


async def transition(tx: Tx, code: str, values: dict[str, Any], row: dict[str, Any], *,
                     with_timeline: bool = False) -> tuple[int, list[dict[str, Any]] | None]:
    """The dossier's changes (version bumped) and its history row in one statement; with the timeline
    the reader sees afterwards when asked (the history before it, as one snapshot, and the new row)."""
    unknown = set(values) - DOSSIER_COLUMNS
    if unknown:
        raise KeyError(f"not dossier columns: {unknown}")
    keys = tuple(sorted(values))
    params = [values[k] for k in keys]
    params += [row.get(k) or {} if k == "data" else row.get(k) for k in HISTORY_FIELDS]
    found = await tx.fetchrow(_transition_sql(keys, with_timeline), code, *params)
    if found is None or found["version"] is None:
        raise LookupError(f"no dossier {code}")
    return int(found["version"]), timeline_items(found["timeline"]) if with_timeline else None


async def timeline(tx: Tx, code: str, *, with_data: bool = False) -> list[dict[str, Any]]:
    """What a reader sees of the history (the statistics dimensions stay inside); `with_data`: each row's data
    too (a transfer's target, a stop's signing head), what forms 05 and 06 are built from."""
    columns = ", ".join((*TIMELINE_COLUMNS, "data") if with_data else TIMELINE_COLUMNS)
    rows = await tx.fetch(f"SELECT {columns} FROM workflow.history WHERE dossier_code = $1 ORDER BY id", code)
    return [dict(r) for r in rows]


async def agency_exists(tx: Tx, code: str) -> bool:
    return bool(await tx.fetchval("SELECT EXISTS (SELECT 1 FROM core.agencies WHERE code = $1)", code))


async def agency_place(tx: Tx, code: str) -> asyncpg.Record | None:
    """The agency's row: its official name, its administrative unit (where its documents are dated) and,
    when its data gives them, its place and its head (`head_name`, `head_title`)."""
    return await tx.fetchrow("SELECT * FROM core.agencies WHERE code = $1", code)


async def transfers_of(tx: Tx, code: str) -> list[dict[str, Any]]:
    """The dossier's transfers (liên thông) in order: the coordinating bodies of form 06."""
    rows = await tx.fetch("SELECT * FROM workflow.transfers WHERE origin_code = $1 ORDER BY id", code)
    return [dict(r) for r in rows]



async def next_transfer_number(tx: Tx, origin: str) -> int:
    return int(await tx.fetchval("SELECT count(*) FROM workflow.transfers WHERE origin_code = $1", origin)) + 1


async def insert_transfer(tx: Tx, row: dict[str, Any]) -> int:
    keys = sorted(row)
    return int(await tx.fetchval(_insert_sql(transfers, keys, "id"), *(row[k] for k in keys)))


async def get_transfer(tx: Tx, transfer_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    row = await tx.fetchrow("SELECT * FROM workflow.transfers WHERE id = $1" + (" FOR UPDATE" if lock else ""),
                            transfer_id)
    return dict(row) if row else None


async def answer_transfer(tx: Tx, transfer_id: int, values: dict[str, Any]) -> None:
    keys = sorted(values)
    sets = ", ".join(f"{k} = ${i}::{transfers.c[k].type.compile(dialect=PG_DIALECT)}" for i, k in enumerate(keys, 2))
    await tx.execute(f"UPDATE workflow.transfers SET {sets} WHERE id = $1", transfer_id, *(values[k] for k in keys))


async def insert_apology(tx: Tx, row: dict[str, Any]) -> None:
    keys = sorted(row)
    await tx.execute(_insert_sql(apologies, keys), *(row[k] for k in keys))


async def latest_apology(tx: Tx, code: str) -> dict[str, Any] | None:
    row = await tx.fetchrow("SELECT * FROM workflow.apologies WHERE dossier_code = $1 ORDER BY id DESC LIMIT 1", code)
    return dict(row) if row else None
