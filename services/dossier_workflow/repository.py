"""All SQL of the workflow service."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import DateTime, and_, delete, func, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from services.dossier_workflow.models import (
    ACTIVE_STATUSES,
    apologies,
    dossiers,
    history,
    notification_outbox,
    notifications,
    stats_daily,
    transfers,
)
from shared.db import Tx, autocommit_connection, fetchrow_atomic, raw_connection
from shared.jobs import coalesced_job_sql, enqueue, mark_enqueued

PG_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
PORTAL_SYNC = "portal.sync"
PORTAL_BATCH = 1000
NOTIFICATION_FLUSH = "notification.flush"


async def definition_for(session: Tx, procedure_code: str, as_of: date) -> dict[str, Any]:
    """The procedure's own definition in force on `as_of`, else the default ('*')."""
    conn = await raw_connection(session)
    row = await conn.fetchrow(
        "SELECT * FROM workflow.process_definitions WHERE procedure_code IN ($1, '*') AND effective_from <= $2 "
        "ORDER BY procedure_code = '*', effective_from DESC LIMIT 1", procedure_code, as_of)
    if row is None:
        raise LookupError("no process definition: run the migrations")
    return dict(row)


async def definition_by_id(session: Tx, definition_id: int) -> dict[str, Any]:
    conn = await raw_connection(session)
    row = await conn.fetchrow("SELECT * FROM workflow.process_definitions WHERE id = $1", definition_id)
    if row is None:
        raise LookupError(f"no process definition {definition_id}")
    return dict(row)


def _typed(table: Any, keys: Sequence[str], start: int) -> str:
    """`$n::type` for each column: parameters of INSERT ... SELECT get no type from their target."""
    return ", ".join(f"${i}::{table.c[k].type.compile(dialect=PG_DIALECT)}" for i, k in enumerate(keys, start))


@lru_cache(maxsize=8)
def _jsonb_columns(table: Any) -> frozenset[str]:
    return frozenset(c.name for c in table.columns if isinstance(c.type, JSONB))


def _param(table: Any, key: str, value: Any) -> Any:
    return json.dumps(value) if value is not None and key in _jsonb_columns(table) else value


OUTBOX_FIELDS = ("dedupe_key", "dossier_code", "channel", "recipient", "template", "params")


def _outbox_insert_sql(source: str, values: str) -> str:
    """CTEs putting one message (`values`: its OUTBOX_FIELDS) in the notification outbox for each row of
    `source`, and the coalesced job that sends it (a message already there is not queued twice)."""
    return f"""n AS (
    INSERT INTO workflow.notification_outbox ({", ".join(OUTBOX_FIELDS)})
    SELECT {values} FROM {source}
    ON CONFLICT (dedupe_key) DO NOTHING RETURNING id
), {coalesced_job_sql("flush", NOTIFICATION_FLUSH, "n")}"""


def _rows(table: str, param: int) -> str:
    """Rows given as one JSON array parameter, typed as the table's columns (one statement for a batch)."""
    return f"jsonb_populate_recordset(NULL::workflow.{table}, ${param}::jsonb)"


@lru_cache(maxsize=4)
def _receive_sql(keys: tuple[str, ...]) -> str:
    columns, history_columns = ", ".join(keys), ", ".join(HISTORY_FIELDS)
    return f"""WITH d AS (
    INSERT INTO workflow.dossiers ({columns}) SELECT {columns} FROM {_rows("dossiers", 1)}
    ON CONFLICT (code) DO NOTHING RETURNING code
), h AS (
    INSERT INTO workflow.history ({history_columns})
    SELECT {history_columns} FROM {_rows("history", 2)} WHERE dossier_code IN (SELECT code FROM d)
), o AS (INSERT INTO workflow.portal_outbox (code) SELECT code FROM d RETURNING code),
{coalesced_job_sql("sync", PORTAL_SYNC, "o")},
m AS (SELECT * FROM {_rows("notification_outbox", 3)} WHERE dossier_code IN (SELECT code FROM d)),
{_outbox_insert_sql("m", ", ".join(OUTBOX_FIELDS))}
SELECT count(*) FROM d"""


def _outbox_params(message: dict[str, Any]) -> list[Any]:
    row = {"dedupe_key": message["key"], "recipient": message["to"], **message}
    return [_param(notification_outbox, k, row.get(k)) for k in OUTBOX_FIELDS]


def _outbox_row(message: dict[str, Any]) -> dict[str, Any]:
    row = {"dedupe_key": message["key"], "recipient": message["to"], **message}
    return {k: row.get(k) for k in OUTBOX_FIELDS}


async def receive_dossiers(session: Tx, entries: Sequence[tuple[dict[str, Any], dict[str, Any],
                                                               dict[str, Any] | None]]) -> int:
    """Dossiers (each with its first history row and its message to the citizen, or None) with their places
    in the portal and notification outboxes, in ONE statement; how many were new (the others were there).

    No BEGIN/COMMIT around it: the statement is its own transaction, so the locks it takes (the day's
    statistics rows above all, which every dossier of an agency and procedure updates) are held for its
    execution only. Rows go in code order, so two batches that share a dossier lock in the same order.
    """
    ordered = sorted({row["code"]: (row, first, message) for row, first, message in entries}.values(),
                     key=lambda entry: entry[0]["code"])
    if not ordered:
        return 0
    keys = tuple(sorted(ordered[0][0]))
    params = [orjson.dumps([row for row, _, _ in ordered]).decode(),
              orjson.dumps([first for _, first, _ in ordered]).decode(),
              orjson.dumps([_outbox_row(m) for _, _, m in ordered if m is not None]).decode()]
    conn = await autocommit_connection(session)
    mark_enqueued(session)
    found = await fetchrow_atomic(conn, _receive_sql(keys), *params)
    return int(found[0]) if found else 0


async def queue_notification(session: Tx, message: dict[str, Any]) -> None:
    """A message for the outbox (sent by the coalesced `notification.flush` job), once per key."""
    conn = await raw_connection(session)
    mark_enqueued(session)
    values = _typed(notification_outbox, OUTBOX_FIELDS, 1)
    sql = f"WITH one AS (SELECT 1), {_outbox_insert_sql('one', values)} SELECT 1"
    await conn.execute(sql, *_outbox_params(message))


TAKE_NOTIFICATIONS = f"""
WITH taken AS (
    DELETE FROM workflow.notification_outbox WHERE id IN (
        SELECT id FROM workflow.notification_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING {", ".join(OUTBOX_FIELDS)}
), kept AS (
    INSERT INTO workflow.notifications ({", ".join(OUTBOX_FIELDS)}, sent_at)
    SELECT {", ".join(OUTBOX_FIELDS)}, $2 FROM taken
    ON CONFLICT (dedupe_key) DO NOTHING RETURNING {", ".join(OUTBOX_FIELDS)}
)
SELECT *, (SELECT count(*) FROM taken) = $1 AS full_batch FROM kept
"""


async def take_notifications(session: Tx, limit: int, at: datetime) -> tuple[list[dict[str, Any]], bool]:
    """Up to `limit` messages out of the outbox and recorded as sent, in one statement: the ones not sent
    before (a record per key), and whether the batch was full. SKIP LOCKED: two flushes take different ones."""
    conn = await raw_connection(session)
    rows = await conn.fetch(TAKE_NOTIFICATIONS, limit, at)
    messages = [{**dict(r), "params": json.loads(r["params"]) if isinstance(r["params"], str) else r["params"]}
                for r in rows]
    return messages, bool(rows and rows[0]["full_batch"])


async def queue_flush(session: Tx, after: str | None) -> None:
    """The next `notification.flush`, due at once, after a full batch: the messages are waiting already
    (a one-second coalescing wait here held a burst's messages to 200 a second).

    Follow-ups alternate between two dedupe keys: a chain never meets its own running job, and a chain
    that finds the other key queued merges into it, so at most two chains run at once."""
    chain = "b" if after == "a" else "a"
    await enqueue(session, NOTIFICATION_FLUSH, {"chain": chain}, dedupe_key=f"{NOTIFICATION_FLUSH}:more:{chain}")


async def unrecord_notification(session: Tx, dedupe_key: str) -> None:
    """A message the provider refused goes to its own retried job: its record must not say it was sent."""
    conn = await raw_connection(session)
    await conn.execute("DELETE FROM workflow.notifications WHERE dedupe_key = $1", dedupe_key)


JSONB_COLUMNS = {c.name for c in dossiers.columns if isinstance(c.type, JSONB)}
DOSSIER_COLUMNS = {c.name for c in dossiers.columns}


def _decoded(record: Any) -> dict[str, Any]:
    row = dict(record)
    for key in JSONB_COLUMNS:
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


async def get_dossier(session: Tx, code: str, *, lock: bool = False) -> dict[str, Any] | None:
    """Plain SQL on the session's connection: the actions' hot path."""
    conn = await raw_connection(session)
    record = await conn.fetchrow("SELECT * FROM workflow.dossiers WHERE code = $1"
                                 + (" FOR UPDATE" if lock else ""), code)
    return _decoded(record) if record is not None else None


DATETIME_KEYS = {c.name for c in history.columns if isinstance(c.type, DateTime)}
READ_WITH_TIMELINE = """
SELECT d.*,
       (SELECT coalesce(jsonb_agg(to_jsonb(h) - 'data' - 'counted_agency' - 'procedure_code' - 'field_code'
                                  - 'channel' - 'dossier_code' - 'id' ORDER BY h.id), '[]'::jsonb)
        FROM workflow.history h WHERE h.dossier_code = d.code) AS timeline
FROM workflow.dossiers d WHERE d.code = $1
"""


async def dossier_with_timeline(session: Tx, code: str) -> tuple[dict[str, Any], list[Any]] | None:
    """The read hot path: one statement, no BEGIN/COMMIT around it (one round trip, one snapshot).
    The dossier's columns come as typed values; only the timeline travels as JSON."""
    conn = await autocommit_connection(session)
    row = await conn.fetchrow(READ_WITH_TIMELINE, code)
    if row is None:
        return None
    dossier = _decoded(row)
    return dossier, _timeline_items(dossier.pop("timeline"))


HISTORY_FIELDS = ("dossier_code", "at", "actor", "actor_role", "actor_agency", "action", "from_status", "to_status",
                  "step", "step_due_at", "note", "data", "counted_agency", "procedure_code", "field_code", "channel")
TIMELINE_COLUMNS = ("at", "actor", "actor_role", "actor_agency", "action", "from_status", "to_status", "step",
                    "step_due_at", "note")


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
    SELECT {_typed(history, HISTORY_FIELDS, history_from)} FROM u RETURNING id, {columns}
)
SELECT (SELECT version FROM u) AS version{timeline}"""


async def transition(session: Tx, code: str, values: dict[str, Any], row: dict[str, Any], *,
                     with_timeline: bool = False) -> tuple[int, list[dict[str, Any]] | None]:
    """The dossier's changes (version bumped) and its history row in one statement; with the timeline
    the reader sees afterwards when asked (the history before it, as one snapshot, and the new row)."""
    unknown = set(values) - DOSSIER_COLUMNS
    if unknown:
        raise KeyError(f"not dossier columns: {unknown}")
    keys = tuple(sorted(values))
    params = [_param(dossiers, k, values[k]) for k in keys]
    params += [_param(history, k, row.get(k) or {} if k == "data" else row.get(k)) for k in HISTORY_FIELDS]
    conn = await raw_connection(session)
    found = await conn.fetchrow(_transition_sql(keys, with_timeline), code, *params)
    if found is None or found["version"] is None:
        raise LookupError(f"no dossier {code}")
    return int(found["version"]), _timeline_items(found["timeline"]) if with_timeline else None


def _timeline_items(raw: Any) -> list[dict[str, Any]]:
    """A timeline that travelled as JSON, with its times as datetimes again."""
    items: list[dict[str, Any]] = json.loads(raw) if isinstance(raw, str) else raw
    for item in items:
        for key, value in item.items():
            if key in DATETIME_KEYS and value is not None:
                item[key] = datetime.fromisoformat(value)
    return items


async def timeline(session: Tx, code: str) -> list[dict[str, Any]]:
    """What a reader sees of the history (the statistics dimensions stay inside)."""
    conn = await raw_connection(session)
    rows = await conn.fetch(f"SELECT {', '.join(TIMELINE_COLUMNS)} FROM workflow.history WHERE dossier_code = $1 "
                            "ORDER BY id", code)
    return [dict(r) for r in rows]


async def agency_exists(session: Tx, code: str) -> bool:
    conn = await raw_connection(session)
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM core.agencies WHERE code = $1)", code))


async def agency_name(session: Tx, code: str) -> str:
    conn = await raw_connection(session)
    name = await conn.fetchval("SELECT name FROM core.agencies WHERE code = $1", code)
    return str(name or code)


async def next_transfer_number(session: Tx, origin: str) -> int:
    conn = await raw_connection(session)
    return int(await conn.fetchval("SELECT count(*) FROM workflow.transfers WHERE origin_code = $1", origin)) + 1


def _insert_sql(table: Any, keys: Sequence[str], returning: str = "") -> str:
    return (f"INSERT INTO {table.schema}.{table.name} ({', '.join(keys)}) VALUES ({_typed(table, keys, 1)})"
            + (f" RETURNING {returning}" if returning else ""))


async def insert_transfer(session: Tx, row: dict[str, Any]) -> int:
    keys = sorted(row)
    conn = await raw_connection(session)
    return int(await conn.fetchval(_insert_sql(transfers, keys, "id"), *(_param(transfers, k, row[k]) for k in keys)))


async def get_transfer(session: Tx, transfer_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    conn = await raw_connection(session)
    row = await conn.fetchrow("SELECT * FROM workflow.transfers WHERE id = $1" + (" FOR UPDATE" if lock else ""),
                              transfer_id)
    return dict(row) if row else None


async def answer_transfer(session: Tx, transfer_id: int, values: dict[str, Any]) -> None:
    keys = sorted(values)
    sets = ", ".join(f"{k} = ${i}::{transfers.c[k].type.compile(dialect=PG_DIALECT)}" for i, k in enumerate(keys, 2))
    conn = await raw_connection(session)
    await conn.execute(f"UPDATE workflow.transfers SET {sets} WHERE id = $1", transfer_id,
                       *(_param(transfers, k, values[k]) for k in keys))


async def transfers_of(session: Tx, code: str) -> list[dict[str, Any]]:
    conn = await raw_connection(session)
    rows = await conn.fetch("SELECT * FROM workflow.transfers WHERE origin_code = $1 ORDER BY id", code)
    return [dict(r) for r in rows]


async def insert_apology(session: Tx, row: dict[str, Any]) -> None:
    keys = sorted(row)
    conn = await raw_connection(session)
    await conn.execute(_insert_sql(apologies, keys), *(_param(apologies, k, row[k]) for k in keys))


async def latest_apology(session: Tx, code: str) -> dict[str, Any] | None:
    conn = await raw_connection(session)
    row = await conn.fetchrow("SELECT * FROM workflow.apologies WHERE dossier_code = $1 ORDER BY id DESC LIMIT 1",
                              code)
    return dict(row) if row else None


async def worklist(
    session: AsyncSession, agency: str | None, *, status: str | None, overdue: bool | None,
    due_before: datetime | None, procedure_code: str | None, name_key: str | None,
    after: tuple[datetime, str] | None, limit: int, now: datetime,
) -> list[dict[str, Any]]:
    query = select(dossiers)
    if agency is not None:
        query = query.where(dossiers.c.current_agency == agency)
    if status:
        query = query.where(dossiers.c.status == status)
    if overdue is not None:
        late = and_(dossiers.c.status.in_(("received", "in_progress")), dossiers.c.due_at < now)
        query = query.where(late if overdue else ~late)
    if due_before is not None:
        query = query.where(dossiers.c.due_at < due_before)
    if procedure_code:
        query = query.where(dossiers.c.procedure_code == procedure_code)
    if name_key:
        query = query.where(dossiers.c.applicant_name_key.contains(name_key, autoescape=True))
    if after is not None:
        query = query.where(tuple_(dossiers.c.due_at, dossiers.c.code) > tuple_(*after))
    rows = await session.execute(query.order_by(dossiers.c.due_at, dossiers.c.code).limit(limit))
    return [dict(r._mapping) for r in rows]


async def tracking_book(
    session: AsyncSession, agency: str | None, start: datetime, end: datetime,
    after: tuple[datetime, str] | None, limit: int,
) -> list[dict[str, Any]]:
    query = select(dossiers).where(dossiers.c.received_at >= start, dossiers.c.received_at < end)
    if agency is not None:
        query = query.where(or_(dossiers.c.receiving_agency == agency, dossiers.c.current_agency == agency))
    if after is not None:
        query = query.where(tuple_(dossiers.c.received_at, dossiers.c.code) > tuple_(*after))
    rows = await session.execute(query.order_by(dossiers.c.received_at, dossiers.c.code).limit(limit))
    return [dict(r._mapping) for r in rows]


async def active_past(session: AsyncSession, moment: datetime, column: str, limit: int) -> list[dict[str, Any]]:
    """Active dossiers due before `moment` not yet flagged in `column` (overdue / due-soon runs)."""
    flag = dossiers.c[column]
    rows = await session.execute(
        select(dossiers).where(dossiers.c.status.in_(("received", "in_progress")), dossiers.c.due_at < moment,
                               flag.is_(None))
        .order_by(dossiers.c.due_at).limit(limit).with_for_update(skip_locked=True))
    return [dict(r._mapping) for r in rows]


async def flag(session: AsyncSession, codes: list[str], column: str, when: datetime) -> None:
    """Flags set by periodic jobs are bookkeeping, not transitions: the version does not move."""
    await session.execute(update(dossiers).where(dossiers.c.code.in_(codes)).values({column: when}))


async def supplements_expired(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    rows = await session.execute(
        select(dossiers.c.code).where(dossiers.c.status == "supplement_requested",
                                      dossiers.c.supplement_due_at < now)
        .order_by(dossiers.c.supplement_due_at).limit(limit).with_for_update(skip_locked=True))
    return [r.code for r in rows]


NOTIFICATION_FIELDS = ("dedupe_key", "dossier_code", "channel", "recipient", "template", "params", "sent_at")
RECORD_NOTIFICATION = f"""
INSERT INTO workflow.notifications ({", ".join(NOTIFICATION_FIELDS)}) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
ON CONFLICT (dedupe_key) DO NOTHING RETURNING id
"""


async def record_notification(session: Tx, row: dict[str, Any]) -> bool:
    """False when this notification was recorded before (the job runs at least once)."""
    conn = await raw_connection(session)
    return await conn.fetchval(RECORD_NOTIFICATION, *(_param(notifications, k, row.get(k))
                                                      for k in NOTIFICATION_FIELDS)) is not None


MARK_SYNCED = f"""
WITH d AS (
    UPDATE workflow.dossiers SET synced_at = $2 WHERE code = $1 AND synced_at IS NULL
    RETURNING code, status, step, receiving_agency, procedure_code, field_code, channel
)
INSERT INTO workflow.history ({", ".join(HISTORY_FIELDS)})
SELECT code, $2, 'system', 'system', NULL, 'portal_synced', status, status, step, NULL, NULL, $3::jsonb,
       receiving_agency, procedure_code, field_code, channel FROM d
"""


SYNC_OUTBOX = f"""
WITH o AS (
    DELETE FROM workflow.portal_outbox WHERE code IN (
        SELECT code FROM workflow.portal_outbox ORDER BY queued_at LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING code
), d AS (
    UPDATE workflow.dossiers SET synced_at = $2 FROM o WHERE dossiers.code = o.code AND synced_at IS NULL
    RETURNING dossiers.code, status, step, receiving_agency, procedure_code, field_code, channel
), h AS (
    INSERT INTO workflow.history ({", ".join(HISTORY_FIELDS)})
    SELECT code, $2, 'system', 'system', NULL, 'portal_synced', status, status, step, NULL, NULL, $3::jsonb,
           receiving_agency, procedure_code, field_code, channel FROM d
), more AS (
    SELECT 1 FROM workflow.portal_outbox WHERE (SELECT count(*) FROM o) = $1 LIMIT 1
), {coalesced_job_sql("again", PORTAL_SYNC, "more")}
SELECT (SELECT count(*) FROM o) AS taken, (SELECT count(*) FROM d) AS synced
"""


async def sync_outbox(session: Tx, at: datetime, data: dict[str, Any]) -> tuple[int, int]:
    """Up to PORTAL_BATCH dossiers of the outbox marked synced, with their history rows, in one statement
    (another run is enqueued when a full batch leaves more behind). Returns (taken, newly synced).
    SKIP LOCKED: two workers flushing at once take different dossiers."""
    conn = await raw_connection(session)
    row = await conn.fetchrow(SYNC_OUTBOX, PORTAL_BATCH, at, json.dumps(data))
    assert row is not None
    if row["taken"] == PORTAL_BATCH:
        mark_enqueued(session)
    return int(row["taken"]), int(row["synced"])


async def mark_synced(session: Tx, code: str, at: datetime, data: dict[str, Any]) -> None:
    """Synced once: the flag and its history row, in one statement; a second run changes nothing."""
    conn = await raw_connection(session)
    await conn.execute(MARK_SYNCED, code, at, json.dumps(data))


def _scope(table: Any, agency_code: str | None, province: str | None) -> list[Any]:
    where = []
    if agency_code:
        where.append(table.c.counted_agency == agency_code if table is stats_daily
                     else table.c.receiving_agency == agency_code)
    if province:
        where.append(table.c.province == province)
    return where


STAT_COLUMNS = ("received", "electronic_result", "resolved_early", "resolved_on_time", "resolved_late",
                "processing_minutes", "returned", "synced", "rating_count", "rating_sum")


async def stats_from_aggregate(
    session: AsyncSession, agency_code: str | None, province: str | None, start: date, end: date,
    group_by: str | None,
) -> list[dict[str, Any]]:
    key = {"field": stats_daily.c.field_code, "procedure": stats_daily.c.procedure_code,
           "channel": stats_daily.c.channel,
           "month": func.to_char(stats_daily.c.day, "YYYY-MM")}.get(group_by or "")
    sums = [func.coalesce(func.sum(stats_daily.c[c]), 0).label(c) for c in STAT_COLUMNS]
    by_channel = [func.coalesce(func.sum(stats_daily.c.received).filter(stats_daily.c.channel == ch), 0)
                  .label(f"received_{ch}") for ch in ("counter", "online", "postal")]
    query = select(*([key.label("group")] if key is not None else []), *sums, *by_channel).where(
        stats_daily.c.day >= start, stats_daily.c.day <= end, *_scope(stats_daily, agency_code, province))
    if key is not None:
        query = query.group_by(key).order_by(key)
    return [dict(r._mapping) for r in await session.execute(query)]


async def in_progress_counts(
    session: AsyncSession, agency_code: str | None, province: str | None, now: datetime,
) -> dict[str, int]:
    late = dossiers.c.status.in_(("received", "in_progress")) & (dossiers.c.due_at < now)
    row = (await session.execute(select(
        func.count().filter(~late).label("in_progress_on_time"), func.count().filter(late).label("in_progress_overdue"),
    ).where(dossiers.c.status.in_(ACTIVE_STATUSES), *_scope(dossiers, agency_code, province)))).one()
    return {"in_progress_on_time": int(row.in_progress_on_time), "in_progress_overdue": int(row.in_progress_overdue)}


# The whole aggregate recomputed from the history: the same meaning as the trigger, for operators
# (after a bulk load with triggers off) and for the test that proves both agree.
REBUILD_STATS = """
INSERT INTO workflow.stats_daily (counted_agency, day, procedure_code, field_code, channel, province, received,
    electronic_result, resolved_early, resolved_on_time, resolved_late, processing_minutes, returned, synced,
    rating_count, rating_sum)
SELECT counted_agency, (at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, procedure_code, field_code, channel,
       split_part(counted_agency, '.', 4),
       count(*) FILTER (WHERE action = 'receive'),
       count(*) FILTER (WHERE action = 'receive' AND data->>'result_delivery' = 'electronic'),
       count(*) FILTER (WHERE resolved AND data->>'timing' = 'early'),
       count(*) FILTER (WHERE resolved AND data->>'timing' = 'on_time'),
       count(*) FILTER (WHERE resolved AND data->>'timing' = 'late'),
       coalesce(sum((data->>'processing_minutes')::bigint) FILTER (WHERE resolved), 0),
       count(*) FILTER (WHERE action = 'return_result'),
       count(*) FILTER (WHERE action = 'portal_synced'),
       count(*) FILTER (WHERE action = 'rate'),
       coalesce(sum((data->>'rating')::int) FILTER (WHERE action = 'rate'), 0)
FROM (SELECT *, to_status = 'resolved' AND from_status IS DISTINCT FROM 'resolved' AS resolved
      FROM workflow.history) h
WHERE action IN ('receive', 'return_result', 'portal_synced', 'rate') OR resolved
GROUP BY 1, 2, 3, 4, 5
"""


async def rebuild_stats(session: AsyncSession) -> None:
    await session.execute(delete(stats_daily))
    await session.execute(text(REBUILD_STATS))
