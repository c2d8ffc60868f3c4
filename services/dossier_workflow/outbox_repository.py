"""SQL of the outboxes: dossiers entering the workflow, messages to citizens, the national portal sync.

A row in `notification_outbox` or `portal_outbox` is picked up by one coalesced job a second (and by a
periodic sweep for what committed while that job ran), so a burst costs a few jobs, not one per dossier.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from services.dossier_workflow.dossiers_repository import HISTORY_FIELDS, typed_params
from services.dossier_workflow.models import notification_outbox
from shared.db import Tx
from shared.jobs import coalesced_job_sql, enqueue, mark_enqueued

PORTAL_SYNC = "portal.sync"
PORTAL_BATCH = 1000
NOTIFICATION_FLUSH = "notification.flush"
OUTBOX_FIELDS = ("dedupe_key", "dossier_code", "channel", "recipient", "template", "params")
Entry = tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]
"""A dossier row entering the workflow, its first history row, and its message to the citizen (or None)."""


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


def _outbox_row(message: dict[str, Any]) -> dict[str, Any]:
    row = {"dedupe_key": message["key"], "recipient": message["to"], **message}
    return {k: row.get(k) for k in OUTBOX_FIELDS}


async def receive_dossiers(tx: Tx, entries: Sequence[Entry]) -> int:
    """Dossiers with their first history rows and their places in the portal and notification outboxes,
    in ONE statement (`tx.statement`); how many were new (the others were there already).

    It commits on its own (the reads before it, cached or not, open no transaction), so the locks it
    takes (the day's statistics rows above all, which every dossier of an agency and procedure updates)
    last for its execution only. Rows go in code order: two batches that share a dossier lock in one order.
    """
    ordered = sorted({row["code"]: (row, first, message) for row, first, message in entries}.values(),
                     key=lambda entry: entry[0]["code"])
    if not ordered:
        return 0
    keys = tuple(sorted(ordered[0][0]))
    params = [orjson.dumps([row for row, _, _ in ordered]).decode(),
              orjson.dumps([first for _, first, _ in ordered]).decode(),
              orjson.dumps([_outbox_row(m) for _, _, m in ordered if m is not None]).decode()]
    mark_enqueued(tx)
    found = await tx.statement(_receive_sql(keys), *params)
    return int(found[0][0]) if found else 0


QUEUE_NOTIFICATION = (f"WITH one AS (SELECT 1), "
                      f"{_outbox_insert_sql('one', typed_params(notification_outbox, OUTBOX_FIELDS, 1))} SELECT 1")


async def queue_notification(tx: Tx, message: dict[str, Any]) -> None:
    """A message for the outbox (sent by the coalesced `notification.flush` job), once per key."""
    mark_enqueued(tx)
    row = _outbox_row(message)
    await tx.execute(QUEUE_NOTIFICATION, *(row[k] for k in OUTBOX_FIELDS))


TAKE_NOTIFICATIONS = f"""
WITH picked AS MATERIALIZED (  -- taken once: `IN (… LIMIT … SKIP LOCKED)` may be re-scanned and take more
    SELECT id FROM workflow.notification_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
), taken AS (
    DELETE FROM workflow.notification_outbox o USING picked WHERE o.id = picked.id
    RETURNING {", ".join("o." + f for f in OUTBOX_FIELDS)}
), kept AS (
    INSERT INTO workflow.notifications ({", ".join(OUTBOX_FIELDS)}, sent_at)
    SELECT {", ".join(OUTBOX_FIELDS)}, $2 FROM taken
    ON CONFLICT (dedupe_key) DO NOTHING RETURNING {", ".join(OUTBOX_FIELDS)}
)
SELECT *, (SELECT count(*) FROM taken) = $1 AS full_batch FROM kept
"""


async def take_notifications(tx: Tx, limit: int, at: datetime) -> tuple[list[dict[str, Any]], bool]:
    """Up to `limit` messages out of the outbox and recorded as sent, and whether the batch was full.
    In the job's transaction (not on its own): if the sends never finish, the messages stay in the outbox.
    SKIP LOCKED: two flushes take different ones."""
    rows = await tx.fetch(TAKE_NOTIFICATIONS, limit, at)
    return [{k: r[k] for k in OUTBOX_FIELDS} for r in rows], bool(rows and rows[0]["full_batch"])


async def queue_flush(tx: Tx, after: str | None) -> None:
    """The next `notification.flush`, due at once, after a full batch: its messages are waiting already.

    Follow-ups alternate between two dedupe keys: a chain never meets its own running job, and a chain
    that finds the other key queued merges into it, so at most two chains run at once."""
    chain = "b" if after == "a" else "a"
    await enqueue(tx, NOTIFICATION_FLUSH, {"chain": chain}, dedupe_key=f"{NOTIFICATION_FLUSH}:more:{chain}")


async def unrecord_notification(tx: Tx, dedupe_key: str) -> None:
    """A message the provider refused goes to its own retried job: its record must not say it was sent."""
    await tx.execute("DELETE FROM workflow.notifications WHERE dedupe_key = $1", dedupe_key)


NOTIFICATION_FIELDS = (*OUTBOX_FIELDS, "sent_at")
RECORD_NOTIFICATION = f"""
INSERT INTO workflow.notifications ({", ".join(NOTIFICATION_FIELDS)}) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
ON CONFLICT (dedupe_key) DO NOTHING RETURNING id
"""


async def record_notification(tx: Tx, row: dict[str, Any]) -> bool:
    """False when this notification was recorded before (the job runs at least once)."""
    return await tx.fetchval(RECORD_NOTIFICATION, *(row.get(k) for k in NOTIFICATION_FIELDS)) is not None


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
WITH picked AS MATERIALIZED (  -- taken once, as in TAKE_NOTIFICATIONS
    SELECT code FROM workflow.portal_outbox ORDER BY queued_at LIMIT $1 FOR UPDATE SKIP LOCKED
), o AS (
    DELETE FROM workflow.portal_outbox p USING picked WHERE p.code = picked.code
    RETURNING p.code
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


async def sync_outbox(tx: Tx, at: datetime, data: dict[str, Any]) -> tuple[int, int]:
    """Up to PORTAL_BATCH dossiers of the outbox marked synced, with their history rows, in ONE statement
    (another run is enqueued when a full batch leaves more behind). Returns (taken, newly synced).
    SKIP LOCKED: two workers flushing at once take different dossiers."""
    rows = await tx.statement(SYNC_OUTBOX, PORTAL_BATCH, at, data)
    taken, synced = int(rows[0]["taken"]), int(rows[0]["synced"])
    if taken == PORTAL_BATCH:
        mark_enqueued(tx)
    return taken, synced


async def mark_synced(tx: Tx, code: str, at: datetime, data: dict[str, Any]) -> None:
    """Synced once: the flag and its history row, in ONE statement; a second run changes nothing."""
    await tx.statement(MARK_SYNCED, code, at, data)
