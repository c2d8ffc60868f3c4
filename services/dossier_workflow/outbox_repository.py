"""SQL of the outboxes: dossiers entering the workflow, messages to citizens, the national portal sync.

A row in `notification_outbox` or `portal_outbox` is picked up by one coalesced job a second (and by a
periodic sweep for what committed while that job ran), so a burst costs a few jobs, not one per dossier.

A message leaves `notification_outbox` in three committed steps, none holding a transaction open while the
provider is called: claimed (its `queued_at`, the moment it is next due, moved ahead by the claim's
length), sent, then moved to `notifications` (marked sent). A message whose claim runs out unconfirmed is
claimed and sent again, under the same message id (the provider's Idempotency-Key).
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


CLAIM_NOTIFICATIONS = f"""
WITH picked AS MATERIALIZED (  -- taken once: `IN (… LIMIT … SKIP LOCKED)` may be re-scanned and take more
    SELECT o.id, EXISTS (SELECT 1 FROM workflow.notifications n WHERE n.dedupe_key = o.dedupe_key) AS sent
    FROM workflow.notification_outbox o WHERE o.queued_at <= coalesce($2, clock_timestamp())
    ORDER BY o.id LIMIT $1 FOR UPDATE OF o SKIP LOCKED
), already AS (
    DELETE FROM workflow.notification_outbox o USING picked WHERE o.id = picked.id AND picked.sent
), claimed AS (
    UPDATE workflow.notification_outbox o SET queued_at = coalesce($2, clock_timestamp()) + make_interval(secs => $3)
    FROM picked WHERE o.id = picked.id AND NOT picked.sent
    RETURNING o.id, {", ".join("o." + f for f in OUTBOX_FIELDS)}
)
SELECT *, (SELECT count(*) FROM picked) = $1 AS full_batch FROM claimed ORDER BY id
"""


async def claim_notifications(tx: Tx, limit: int, seconds: float,
                              now: datetime | None = None) -> tuple[list[dict[str, Any]], bool]:
    """Up to `limit` due messages of the outbox claimed for `seconds`, and whether the batch was full.
    The clock is the database's (one clock for every process), or `now` (tests).

    ONE statement committed on its own (`tx.statement`): no transaction stays open while they are sent.
    A claim is the row's `queued_at` moved ahead: a message not confirmed sent by then (its sender
    crashed) is due again and sent again, under the same message id. A message whose key is recorded
    as sent already leaves the outbox unsent. SKIP LOCKED: two flushes claim different messages."""
    rows = await tx.statement(CLAIM_NOTIFICATIONS, limit, now, seconds)
    return [{k: r[k] for k in ("id", *OUTBOX_FIELDS)} for r in rows], bool(rows and rows[0]["full_batch"])


MARK_SENT = f"""
WITH sent AS (SELECT * FROM unnest($1::bigint[], $2::timestamptz[]) AS s(id, sent_at)),
gone AS (
    DELETE FROM workflow.notification_outbox o USING sent WHERE o.id = sent.id
    RETURNING {", ".join("o." + f for f in OUTBOX_FIELDS)}, sent.sent_at
)
INSERT INTO workflow.notifications ({", ".join(OUTBOX_FIELDS)}, sent_at)
SELECT {", ".join(OUTBOX_FIELDS)}, sent_at FROM gone ON CONFLICT (dedupe_key) DO NOTHING
"""


async def mark_sent(tx: Tx, sent: Sequence[tuple[int, datetime]]) -> None:
    """Messages the provider accepted (outbox id, when): out of the outbox and recorded as sent, in ONE
    statement committed on its own. A message a second flush took over after its claim ran out is
    marked once, by whichever finishes first."""
    await tx.statement(MARK_SENT, [i for i, _ in sent], [at for _, at in sent])


RELEASE = "UPDATE workflow.notification_outbox SET queued_at = clock_timestamp() WHERE id = ANY($1::bigint[])"


async def release_notifications(tx: Tx, ids: Sequence[int]) -> None:
    """Claimed messages this flush did not get to: due again at once (for the next flush)."""
    await tx.execute(RELEASE, list(ids))


async def hand_over_notifications(tx: Tx, messages: Sequence[dict[str, Any]]) -> None:
    """Messages the provider refused: out of the outbox, each into a `notification.send` job of its own
    (retried with backoff, held when it keeps failing), in the caller's transaction."""
    if not messages:
        return
    await tx.execute("DELETE FROM workflow.notification_outbox WHERE id = ANY($1::bigint[])",
                     [m["id"] for m in messages])
    for m in messages:
        await enqueue(tx, "notification.send", {
            "channel": m["channel"], "to": m["recipient"], "template": m["template"],
            "dossier_code": m["dossier_code"], "params": m["params"], "key": m["dedupe_key"]})


async def queue_flush(tx: Tx, after: str | None) -> None:
    """The next `notification.flush`, due at once, after a full batch: its messages are waiting already.

    Follow-ups alternate between two dedupe keys: a chain never meets its own running job, and a chain
    that finds the other key queued merges into it, so at most two chains run at once."""
    chain = "b" if after == "a" else "a"
    await enqueue(tx, NOTIFICATION_FLUSH, {"chain": chain}, dedupe_key=f"{NOTIFICATION_FLUSH}:more:{chain}")


NOTIFICATION_FIELDS = (*OUTBOX_FIELDS, "sent_at")
RECORD_NOTIFICATION = f"""
INSERT INTO workflow.notifications ({", ".join(NOTIFICATION_FIELDS)}) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
ON CONFLICT (dedupe_key) DO NOTHING
"""


async def was_sent(tx: Tx, dedupe_key: str) -> bool:
    """Whether a message under this key is recorded as sent (one read, no transaction left open)."""
    return bool(await tx.statement("SELECT 1 FROM workflow.notifications WHERE dedupe_key = $1", dedupe_key))


async def record_notification(tx: Tx, row: dict[str, Any]) -> None:
    """A message the provider accepted, recorded as sent in ONE statement committed on its own
    (a second record of the same key changes nothing)."""
    await tx.statement(RECORD_NOTIFICATION, *(row.get(k) for k in NOTIFICATION_FIELDS))


MARK_SYNCED = f"""
WITH d AS (
    UPDATE workflow.dossiers SET synced_at = $2 WHERE code = $1 AND synced_at IS NULL
    RETURNING code, status, step, receiving_agency, procedure_code, field_code, channel
)
INSERT INTO workflow.history ({", ".join(HISTORY_FIELDS)})
SELECT code, $2, 'system', 'system', NULL, 'portal_synced', status, status, step, NULL, NULL, $3::jsonb,
       receiving_agency, procedure_code, field_code, channel, NULL, NULL FROM d
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
           receiving_agency, procedure_code, field_code, channel, NULL, NULL FROM d
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
