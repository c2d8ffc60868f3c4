"""SQL of tickets: numbers, the one-statement issue, wait estimates, reads, updates and the day report.

The issue path reads with `Tx.statement` (each read on its own, no BEGIN) so that its one INSERT commits alone.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import asyncpg

from shared.db import Database, Tx
from shared.idempotency import Idempotency, KeyUsed
from shared.settings import Settings

Row = Any  # asyncpg.Record

TICKET_COLUMNS = ("id, office_code, category_code, day, display, status, priority_group, booking_code, counter_id, "
                  "issued_at, called_at, serving_at, finished_at, skipped_at, dossier_codes, queued_at, priority, "
                  "returned_at")

ALLOCATE_SQL = """
INSERT INTO queue.ticket_numbers AS t (office_code, category_code, day, last_number) VALUES ($1, $2, $3, 1)
ON CONFLICT (office_code, category_code, day) DO UPDATE SET last_number = t.last_number + 1
RETURNING last_number
"""


NO_FSYNC_WAIT = {"synchronous_commit": "off"}


class NumberAllocator:
    """Draws the next number of (office, category, local day) in a short transaction of its own.

    The counter row is then locked for that one statement, not until the ticket commits (kiosks of one category
    would otherwise wait for each other's fsync). It commits with synchronous_commit off and is still durable
    before any ticket using it is acknowledged: that ticket's own commit flushes the WAL before it. A number is
    never handed out twice; a ticket that fails after drawing leaves a gap.
    """

    def __init__(self, settings: Settings) -> None:
        self.db = Database(settings, "motcua-queue-numbers", pool_size=4, server_settings=NO_FSYNC_WAIT)

    async def next(self, office_code: str, category_code: str, day: date) -> int:
        async with self.db.transaction() as tx:
            rows = await tx.statement(ALLOCATE_SQL, office_code, category_code, day)
        return int(rows[0]["last_number"])

    async def close(self) -> None:
        await self.db.dispose()


ISSUE_VALUES = """
INSERT INTO queue.tickets (office_code, category_code, number_category, day, number, display, priority,
  priority_group, status, booking_code, slot_start, queued_at, issued_at, issued_by, issued_role)
VALUES ($1, $2, $2, $3, $4, $5, $6, $7, 'waiting', $8, $9, $10, $10, $11, $12)
"""
ISSUE_SQL = f"{ISSUE_VALUES} RETURNING {TICKET_COLUMNS}"

# The ticket and the answer a retry gets back, in one statement: the answer is known before the insert but for
# the ticket's id, set into it here. Parameters from $13: scope, key, method, path, fingerprint, answer.
ISSUE_KEEPING_SQL = f"""
WITH t AS ({ISSUE_VALUES} RETURNING id)
INSERT INTO queue.idempotency_keys (scope, key, method, path, fingerprint, status, body, content_type)
SELECT $13, $14, $15, $16, $17, 201, convert_to(jsonb_set($18::jsonb, '{{id}}', to_jsonb(t.id))::text, 'UTF8'),
       'application/json'
FROM t
RETURNING body
"""


def display(prefix: str, number: int) -> str:
    return f"{prefix}{number:03d}"


def _ticket_values(number: int, *, office_code: str, category_code: str, day: date, prefix: str,
                   priority_group: str | None, booking_code: str | None, slot_start: datetime | None,
                   now: datetime, issued_by: str, issued_role: str) -> tuple[Any, ...]:
    return (office_code, category_code, day, number, display(prefix, number), 1 if priority_group else 0,
            priority_group, booking_code, slot_start, now, issued_by, issued_role)


async def insert_ticket(
    tx: Tx, numbers: NumberAllocator, *, office_code: str, category_code: str, day: date, prefix: str,
    priority_group: str | None, booking_code: str | None, slot_start: datetime | None, now: datetime,
    issued_by: str, issued_role: str,
) -> Row:
    """One INSERT (committed alone unless the request's transaction is already open)."""
    number = await numbers.next(office_code, category_code, day)
    rows = await tx.statement(ISSUE_SQL, *_ticket_values(
        number, office_code=office_code, category_code=category_code, day=day, prefix=prefix,
        priority_group=priority_group, booking_code=booking_code, slot_start=slot_start, now=now,
        issued_by=issued_by, issued_role=issued_role))
    return rows[0]


async def insert_ticket_keeping_answer(
    tx: Tx, numbers: NumberAllocator, idem: Idempotency, answer: dict[str, Any], *, office_code: str,
    category_code: str, day: date, prefix: str, priority_group: str | None, now: datetime, issued_by: str,
    issued_role: str,
) -> bytes:
    """A walk-in ticket and its Idempotency-Key kept with `answer` (its id and number set here), in one
    statement; the answer's JSON. KeyUsed when a request with the same key committed first."""
    number = await numbers.next(office_code, category_code, day)
    values = _ticket_values(number, office_code=office_code, category_code=category_code, day=day, prefix=prefix,
                            priority_group=priority_group, booking_code=None, slot_start=None, now=now,
                            issued_by=issued_by, issued_role=issued_role)
    body = json.dumps({**answer, "number": display(prefix, number)}, default=str)
    try:
        rows = await tx.statement(ISSUE_KEEPING_SQL, *values, *idem.params, body)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "idempotency_keys_pkey":
            raise KeyUsed from exc
        raise
    return bytes(rows[0]["body"])


async def answer_kept(tx: Tx, idem: Idempotency) -> bool:
    """Whether this request's key already has an answer (read on its own, before a number is drawn)."""
    rows = await tx.statement("SELECT 1 FROM queue.idempotency_keys WHERE scope = $1 AND key = $2",
                              idem.scope, idem.key)
    return bool(rows)


async def open_ticket_of(tx: Tx, office_code: str, issued_by: str) -> Row | None:
    """A citizen's ticket still open in the office (read on its own: issue path)."""
    rows = await tx.statement(
        "SELECT id, display FROM queue.tickets WHERE office_code = $1 AND issued_by = $2 "
        "AND status IN ('waiting', 'called', 'serving') LIMIT 1", office_code, issued_by)
    return rows[0] if rows else None


async def close_days_before(tx: Tx, day: date, now: datetime) -> int:
    """Tickets of past days still waiting or called: the citizen has gone home (no-show)."""
    rows = await tx.fetch(
        "WITH closed AS (UPDATE queue.tickets SET status = 'skipped', skipped_at = $2 "
        "WHERE status IN ('waiting', 'called') AND day < $1 RETURNING id, counter_id), "
        "left_counter AS (UPDATE queue.counters k SET current_ticket_id = NULL FROM closed "
        "WHERE k.id = closed.counter_id AND k.current_ticket_id = closed.id) "
        "SELECT count(*) AS n FROM closed", day, now)
    return int(rows[0]["n"])


ESTIMATE_SQL = """
SELECT
  (SELECT count(*) FROM (SELECT 1 FROM queue.tickets WHERE office_code = $1 AND status = 'waiting' LIMIT $6) w)
    AS office_waiting,
  (SELECT count(*) FROM (SELECT 1 FROM queue.tickets WHERE office_code = $1 AND category_code = $2
     AND status = 'waiting' AND (priority > $3 OR (priority = $3 AND (queued_at, id) < ($4, $5))) LIMIT $6) a)
    AS ahead,
  (SELECT count(*) FROM queue.counters WHERE office_code = $1 AND active AND $2 = ANY(category_codes)
     AND officer_subject IS NOT NULL) AS staffed,
  (SELECT count(*) FROM queue.counters WHERE office_code = $1 AND active AND $2 = ANY(category_codes)) AS counters,
  s.samples, s.avg_seconds
FROM (
  SELECT count(*) AS samples, avg(secs) AS avg_seconds FROM (
    SELECT extract(epoch FROM finished_at - coalesce(serving_at, called_at)) AS secs
    FROM queue.tickets WHERE office_code = $1 AND category_code = $2 AND finished_at IS NOT NULL
      AND finished_at > $4::timestamptz - interval '7 days' AND status = 'finished'
    ORDER BY finished_at DESC LIMIT 50
  ) recent WHERE secs BETWEEN 5 AND 7200
) s
"""


async def estimate_inputs(
    tx: Tx, office_code: str, category_code: str, priority: int, queued_at: datetime,
    ticket_id: int = 2**63 - 1, limit: int | None = None,
) -> Row:
    """People ahead of a ticket (queued_at, id) — a new one when no id — with service history and counters;
    with `limit` the two counts stop there. Read on its own when no transaction is open (issue path)."""
    rows = await tx.statement(ESTIMATE_SQL, office_code, category_code, priority, queued_at, ticket_id, limit)
    return rows[0]


async def ticket(tx: Tx, ticket_id: int, *, lock: bool = False) -> Row | None:
    return await tx.fetchrow(
        "SELECT t.*, c.number AS counter_number FROM queue.tickets t "
        f"LEFT JOIN queue.counters c ON c.id = t.counter_id WHERE t.id = $1{' FOR UPDATE OF t' if lock else ''}",
        ticket_id)


UPDATABLE = frozenset({"status", "recalls", "serving_at", "skipped_at", "returned_at", "counter_id", "finished_at",
                       "dossier_codes", "category_code", "target_counter_id", "transferred_at"})


async def update_ticket(tx: Tx, ticket_id: int, **values: Any) -> Row:
    names = list(values)
    assert UPDATABLE.issuperset(names), names
    sets = ", ".join(f"{n} = ${i + 2}" for i, n in enumerate(names))
    row: Row = await tx.fetchrow(
        f"UPDATE queue.tickets SET {sets} WHERE id = $1 RETURNING {TICKET_COLUMNS}", ticket_id,
        *[values[n] for n in names])
    return row


REPORT_STATS = """count(*) AS issued,
  count(*) FILTER (WHERE status = 'finished') AS finished,
  count(*) FILTER (WHERE status = 'skipped') AS skipped,
  count(*) FILTER (WHERE status = 'waiting') AS waiting,
  round(avg(extract(epoch FROM called_at - issued_at)))::int AS avg_wait_seconds,
  round(max(extract(epoch FROM called_at - issued_at)))::int AS max_wait_seconds,
  round(avg(extract(epoch FROM finished_at - coalesce(serving_at, called_at)))
        FILTER (WHERE status = 'finished'))::int AS avg_service_seconds"""


async def report(tx: Tx, office_code: str, day: date) -> dict[str, list[Row]]:
    by_category = await tx.fetch(
        f"SELECT category_code, {REPORT_STATS} FROM queue.tickets WHERE office_code = $1 AND day = $2 "
        "GROUP BY category_code ORDER BY category_code", office_code, day)
    by_counter = await tx.fetch(
        f"SELECT t.counter_id, c.number AS counter_number, {REPORT_STATS} FROM queue.tickets t "
        "JOIN queue.counters c ON c.id = t.counter_id WHERE t.office_code = $1 AND t.day = $2 "
        "GROUP BY t.counter_id, c.number ORDER BY c.number", office_code, day)
    by_hour = await tx.fetch(
        f"SELECT extract(hour FROM issued_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::int AS hour, {REPORT_STATS} "
        "FROM queue.tickets WHERE office_code = $1 AND day = $2 GROUP BY 1 ORDER BY 1", office_code, day)
    return {"by_category": by_category, "by_counter": by_counter, "by_hour": by_hour}
