"""All SQL of the queue service (plain SQL on the request's asyncpg connection: hot paths)."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from typing import Any, TypeAlias

import asyncpg
import structlog
from sqlalchemy import event

from services.queue_ticket.models import BOARD_CHANNEL
from shared.db import Lean, Tx, autocommit_connection, fetchrow_atomic, raw_connection
from shared.idempotency import KeyUsed

Conn: TypeAlias = Any  # asyncpg.Connection (untyped library)
Row: TypeAlias = Any  # asyncpg.Record
log = structlog.get_logger("queue.repository")
DEADLOCK_RETRIES = 5


async def conn_of(session: Tx) -> Conn:
    return await raw_connection(session)


async def autocommit_conn_of(session: Tx) -> Conn:
    """For a request whose only write is one statement: no BEGIN/COMMIT round trips around it."""
    return await autocommit_connection(session)


# --- configuration --------------------------------------------------------------------------

async def office(conn: Conn, code: str) -> Row | None:
    return await conn.fetchrow("SELECT * FROM queue.offices WHERE code = $1", code)


async def office_and_category(conn: Conn, office_code: str, category_code: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT o.code AS office_code, o.name AS office_name, o.agency_code, o.occupancy_cap, o.always_open, "
        "o.hold_seconds, o.checkin_early_minutes, o.active, c.code AS category_code, c.prefix, "
        "c.name AS category_name, c.slot_minutes, c.slot_capacity, c.default_service_seconds "
        "FROM queue.offices o JOIN queue.categories c ON c.office_code = o.code "
        "WHERE o.code = $1 AND c.code = $2", office_code, category_code)


async def categories(conn: Conn, office_code: str) -> list[Row]:
    return list(await conn.fetch(
        "SELECT * FROM queue.categories WHERE office_code = $1 ORDER BY position, prefix", office_code))


async def counters(conn: Conn, office_code: str) -> list[Row]:
    return list(await conn.fetch(
        "SELECT * FROM queue.counters WHERE office_code = $1 ORDER BY number", office_code))


async def counter(conn: Conn, counter_id: int) -> Row | None:
    return await conn.fetchrow("SELECT * FROM queue.counters WHERE id = $1", counter_id)


async def upsert_office(conn: Conn, code: str, v: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO queue.offices (code, name, agency_code, occupancy_cap, always_open, hold_seconds, "
        "checkin_early_minutes) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO UPDATE SET "
        "name = EXCLUDED.name, agency_code = EXCLUDED.agency_code, occupancy_cap = EXCLUDED.occupancy_cap, "
        "always_open = EXCLUDED.always_open, hold_seconds = EXCLUDED.hold_seconds, "
        "checkin_early_minutes = EXCLUDED.checkin_early_minutes",
        code, v["name"], v["agency_code"], v["occupancy_cap"], v["always_open"], v["hold_seconds"],
        v["checkin_early_minutes"])


async def upsert_category(conn: Conn, office_code: str, code: str, v: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO queue.categories (office_code, code, prefix, name, procedure_codes, slot_minutes, "
        "slot_capacity, default_service_seconds, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (office_code, code) DO UPDATE SET prefix = EXCLUDED.prefix, name = EXCLUDED.name, "
        "procedure_codes = EXCLUDED.procedure_codes, slot_minutes = EXCLUDED.slot_minutes, "
        "slot_capacity = EXCLUDED.slot_capacity, default_service_seconds = EXCLUDED.default_service_seconds, "
        "position = EXCLUDED.position",
        office_code, code, v["prefix"], v["name"], v["procedure_codes"], v["slot_minutes"], v["slot_capacity"],
        v["default_service_seconds"], v["position"])


async def prefix_owner(conn: Conn, office_code: str, prefix: str) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT code FROM queue.categories WHERE office_code = $1 AND prefix = $2", office_code, prefix)
    return value


async def upsert_counter(conn: Conn, office_code: str, number: int, v: dict[str, Any]) -> Row:
    row: Row = await conn.fetchrow(
        "INSERT INTO queue.counters (office_code, number, name, category_codes, active) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (office_code, number) DO UPDATE SET name = EXCLUDED.name, "
        "category_codes = EXCLUDED.category_codes, active = EXCLUDED.active RETURNING *",
        office_code, number, v["name"], v["category_codes"], v["active"])
    return row


async def sign_in(conn: Conn, counter_id: int, subject: str | None, name: str | None, at: datetime | None) -> None:
    await conn.execute(
        "UPDATE queue.counters SET officer_subject = $2, officer_name = $3, signed_in_at = $4 WHERE id = $1",
        counter_id, subject, name, at)


# --- tickets ----------------------------------------------------------------------------------

TICKET_COLUMNS = ("id, office_code, category_code, day, display, status, priority_group, booking_code, counter_id, "
                  "issued_at, called_at, serving_at, finished_at, skipped_at, dossier_codes, queued_at, priority, "
                  "returned_at")

ALLOCATE_SQL = """
INSERT INTO queue.ticket_numbers AS t (office_code, category_code, day, last_number) VALUES ($1, $2, $3, 1)
ON CONFLICT (office_code, category_code, day) DO UPDATE SET last_number = t.last_number + 1
RETURNING last_number
"""


async def keep_session(_conn: Any) -> None:
    """Pools whose connections only run single statements (no locks, cursors or settings left behind)
    skip asyncpg's reset on release: one round trip less per use."""


class NumberAllocator:
    """Draws the next number of (office, category, local day) from its counter row, in a transaction of its own.

    The counter row is locked only for that one statement, not until the ticket's transaction commits: many
    kiosks of one category would otherwise queue behind each other's commit (fsync). The allocation commits
    with synchronous_commit off; it is still durable before any ticket that uses it is acknowledged, because
    that ticket's own (synchronous) commit flushes the WAL written before it. A number is never handed out
    twice; a ticket whose transaction fails after drawing leaves a gap in the day's numbers.
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.pool: Any = None
        self._lock = asyncio.Lock()

    async def next(self, office_code: str, category_code: str, day: date) -> int:
        if self.pool is None:
            async with self._lock:
                if self.pool is None:
                    self.pool = await asyncpg.create_pool(
                        self.dsn, min_size=1, max_size=4, reset=keep_session, server_settings={
                            "synchronous_commit": "off", "application_name": "motcua-queue-numbers"})
        number: int = await self.pool.fetchval(ALLOCATE_SQL, office_code, category_code, day)
        return number

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None


ISSUE_SQL = f"""
INSERT INTO queue.tickets (office_code, category_code, number_category, day, number, display, priority,
  priority_group, status, booking_code, slot_start, queued_at, issued_at, issued_by, issued_role)
VALUES ($1, $2, $2, $3, $4, $5, $6, $7, 'waiting', $8, $9, $10, $10, $11, $12)
RETURNING {TICKET_COLUMNS}
"""


# The ticket and the answer a retry gets back, in one statement (no BEGIN/COMMIT): the answer is known
# before the insert but for the ticket's id, which is set into it here.
ISSUE_KEEPING_SQL = f"""
WITH t AS ({ISSUE_SQL.split("RETURNING")[0]} RETURNING id),
k AS (
  INSERT INTO queue.idempotency_keys (scope, key, method, path, fingerprint, status, body, content_type)
  SELECT $13, $14, 'POST', $15, $16, 201,
         convert_to(jsonb_set($17::jsonb, '{{id}}', to_jsonb(t.id))::text, 'UTF8'), 'application/json' FROM t
  RETURNING body
)
SELECT body FROM k
"""


def display(prefix: str, number: int) -> str:
    return f"{prefix}{number:03d}"


async def insert_ticket(
    conn: Conn, numbers: NumberAllocator, *, office_code: str, category_code: str, day: date, prefix: str,
    priority_group: str | None, booking_code: str | None, slot_start: datetime | None, now: datetime,
    issued_by: str, issued_role: str,
) -> Row:
    number = await numbers.next(office_code, category_code, day)
    row: Row = await conn.fetchrow(
        ISSUE_SQL, office_code, category_code, day, number, display(prefix, number), 1 if priority_group else 0,
        priority_group, booking_code, slot_start, now, issued_by, issued_role)
    return row


async def insert_ticket_keeping_answer(
    conn: Conn, numbers: NumberAllocator, answer: dict[str, Any], keep: tuple[str, str, str, str], *,
    office_code: str, category_code: str, day: date, prefix: str, priority_group: str | None, now: datetime,
    issued_by: str, issued_role: str,
) -> tuple[int, bytes]:
    """A walk-in ticket and its Idempotency-Key (scope, key, path, fingerprint) kept with `answer` (its id set
    here): the number and the JSON answer. Raises KeyUsed when a request with the same key committed first."""
    number = await numbers.next(office_code, category_code, day)
    scope, key, path, fingerprint = keep
    try:
        row = await fetchrow_atomic(
            conn, ISSUE_KEEPING_SQL, office_code, category_code, day, number, display(prefix, number),
            1 if priority_group else 0, priority_group, None, None, now, issued_by, issued_role,
            scope, key, path, fingerprint,
            json.dumps({**answer, "number": display(prefix, number)}, default=str))
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "idempotency_keys_pkey":
            raise KeyUsed from exc
        raise
    assert row is not None
    return number, bytes(row["body"])


async def close_days_before(conn: Conn, day: date, now: datetime) -> int:
    """Tickets of past days still waiting or called: the citizen has gone home (no-show)."""
    result: str = await conn.execute(
        "UPDATE queue.tickets SET status = 'skipped', skipped_at = $2 "
        "WHERE status IN ('waiting', 'called') AND day < $1", day, now)
    return int(result.split()[-1])


async def open_ticket_of(conn: Conn, office_code: str, issued_by: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT id, display FROM queue.tickets WHERE office_code = $1 AND issued_by = $2 "
        "AND status IN ('waiting', 'called', 'serving') LIMIT 1", office_code, issued_by)


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
    conn: Conn, office_code: str, category_code: str, priority: int, queued_at: datetime,
    ticket_id: int = 2**63 - 1, limit: int | None = None,
) -> Row:
    """People ahead of a ticket (queued_at, id) — a new one when no id — with service history and counters.

    With `limit`, the two counts stop there (cheap answers for short queues)."""
    row: Row = await conn.fetchrow(ESTIMATE_SQL, office_code, category_code, priority, queued_at, ticket_id, limit)
    return row


async def ticket(conn: Conn, ticket_id: int, *, lock: bool = False) -> Row | None:
    return await conn.fetchrow(
        f"SELECT t.*, c.number AS counter_number FROM queue.tickets t "
        f"LEFT JOIN queue.counters c ON c.id = t.counter_id WHERE t.id = $1{' FOR UPDATE OF t' if lock else ''}",
        ticket_id)


CALL_NEXT_SQL = f"""
WITH c AS (
  SELECT id, office_code, category_codes::text[] AS categories, number, name FROM queue.counters
  WHERE id = $1 AND active
    AND ($2::text IS NULL OR office_code = $2)
    AND ($3::text IS NULL OR officer_subject IS NULL OR officer_subject = $3)
    AND ($4::text IS NULL OR $4 = ANY(category_codes))
), cats AS (
  SELECT CASE WHEN $4::text IS NULL THEN c.categories ELSE ARRAY[$4::text] END AS list FROM c
), claim AS (
  UPDATE queue.counters k SET officer_subject = $3, officer_name = $5, signed_in_at = $6
  FROM c WHERE k.id = c.id AND $3::text IS NOT NULL AND k.officer_subject IS NULL
  RETURNING k.id
), done AS (
  UPDATE queue.tickets SET status = 'finished', finished_at = $6, serving_at = coalesce(serving_at, called_at)
  WHERE counter_id = $1 AND status IN ('called', 'serving') AND EXISTS (SELECT 1 FROM c)
  RETURNING id
), b AS (
  SELECT id FROM queue.tickets
  WHERE office_code = (SELECT office_code FROM c) AND status = 'waiting' AND slot_start IS NOT NULL
    AND slot_start <= $6
    AND ((target_counter_id IS NULL AND category_code = ANY((SELECT list FROM cats)::text[])) OR target_counter_id = $1)
  ORDER BY slot_start, queued_at, id
  LIMIT 1 FOR UPDATE SKIP LOCKED
), g AS (
  SELECT id FROM queue.tickets
  WHERE office_code = (SELECT office_code FROM c) AND status = 'waiting' AND NOT EXISTS (SELECT 1 FROM b)
    AND ((target_counter_id IS NULL AND category_code = ANY((SELECT list FROM cats)::text[])) OR target_counter_id = $1)
  ORDER BY priority DESC, queued_at, id
  LIMIT 1 FOR UPDATE SKIP LOCKED
), pick AS (
  SELECT id FROM b UNION ALL SELECT id FROM g
), called AS (
  UPDATE queue.tickets t SET status = 'called', called_at = $6, counter_id = $1, target_counter_id = NULL,
    served_by = $7, serving_at = NULL
  FROM pick WHERE t.id = pick.id
  RETURNING {", ".join("t." + c.strip() for c in TICKET_COLUMNS.split(","))}
), ev AS (
  INSERT INTO queue.board_events (office_code, kind, payload, created_at)
  SELECT c.office_code, 'call', jsonb_build_object('ticket_id', called.id, 'number', called.display,
    'category_code', called.category_code, 'counter_id', c.id, 'counter_number', c.number,
    'counter_name', c.name, 'at', $6::timestamptz), $6
  FROM called, c
  RETURNING id, office_code, payload
)
SELECT called.*, ev.id AS event_id, (SELECT number FROM c) AS counter_number,
  (jsonb_build_object('office_code', ev.office_code, 'id', ev.id, 'kind', 'call') || ev.payload)::text AS notice
FROM called, ev
"""


async def call_next(
    conn: Conn, *, counter_id: int, office_code: str | None, officer: str | None, officer_name: str | None,
    category_code: str | None, now: datetime, served_by: str,
) -> Row | None:
    """One statement: check the counter (office, officer, category), sign the officer in if the counter is free,
    finish its current ticket, lock the next waiting ticket with SKIP LOCKED, call it and record the board event
    (`notice`: what to NOTIFY once the transaction has committed).

    No row back: either nobody waits or the counter check failed (nothing then changed).

    SKIP LOCKED does not cover one case: a row seen waiting whose update committed just after the statement's
    snapshot is followed to its newest version, and PostgreSQL waits there even under SKIP LOCKED; two counters
    can so wait for each other (a deadlock, about once in 10,000 calls under 32 busy counters). The statement
    is all or nothing, so it is simply run again when PostgreSQL breaks such a deadlock.

    It runs on its own (`autocommit_conn_of`): one round trip, committed when it returns."""
    for attempt in range(DEADLOCK_RETRIES):
        try:
            return await fetchrow_atomic(conn, CALL_NEXT_SQL, counter_id, office_code, officer, category_code,
                                         officer_name, now, served_by)
        except asyncpg.DeadlockDetectedError:
            log.info("call_next_deadlock_retried", counter_id=counter_id, attempt=attempt + 1)
            if attempt + 1 == DEADLOCK_RETRIES:
                raise
    return None


async def finish_current(conn: Conn, counter_id: int, now: datetime) -> None:
    await conn.execute(
        "UPDATE queue.tickets SET status = 'finished', finished_at = $2, serving_at = coalesce(serving_at, called_at) "
        "WHERE counter_id = $1 AND status IN ('called', 'serving')", counter_id, now)


async def update_ticket(conn: Conn, ticket_id: int, **values: Any) -> Row:
    names = list(values)
    sets = ", ".join(f"{n} = ${i + 2}" for i, n in enumerate(names))
    row: Row = await conn.fetchrow(
        f"UPDATE queue.tickets SET {sets} WHERE id = $1 RETURNING {TICKET_COLUMNS}", ticket_id,
        *[values[n] for n in names])
    return row


async def add_board_event(conn: Conn, office_code: str, kind: str, payload: dict[str, Any],
                          now: datetime) -> tuple[int, str]:
    """The event row; answers its id and the notice to send after commit."""
    row: Row = await conn.fetchrow(
        """INSERT INTO queue.board_events (office_code, kind, payload, created_at) VALUES ($1, $2, $3::jsonb, $4)
           RETURNING id, (jsonb_build_object('office_code', office_code, 'id', id, 'kind', kind) || payload)::text
             AS notice""",
        office_code, kind, _json(payload), now)
    return int(row["id"]), str(row["notice"])


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


class BoardNotifier:
    """Sends board notices (NOTIFY) after the transaction that wrote the events has committed.

    A transaction that NOTIFYs takes PostgreSQL's cluster-wide notify lock until its commit is on disk, so
    NOTIFY inside call-next would line every counter up behind each other's fsync. Here the notice leaves on
    a connection of its own with synchronous_commit off (the event itself is already committed in
    `board_events`, where a reconnecting board finds it with Last-Event-ID)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.pool: Any = None
        self._lock = asyncio.Lock()
        self._waiting: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def _send(self) -> None:
        if self.pool is None:
            async with self._lock:
                if self.pool is None:
                    self.pool = await asyncpg.create_pool(
                        self.dsn, min_size=1, max_size=2, reset=keep_session, server_settings={
                            "synchronous_commit": "off", "application_name": "motcua-queue-notify"})
        # Notices committed while one statement is in flight leave together in the next (in order).
        while self._waiting:
            notices, self._waiting = self._waiting, []
            await self.pool.execute(f"SELECT pg_notify('{BOARD_CHANNEL}', n) FROM unnest($1::text[]) n", notices)

    def send_soon(self, notices: list[str]) -> None:
        self._waiting.extend(notices)
        if self._tasks:
            return  # the sender in flight takes them
        task = asyncio.get_running_loop().create_task(self._send())
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("board_notify_failed", error=str(task.exception()))
            self._waiting.clear()  # the events are in board_events; a board resumes from there
        elif self._waiting:
            self.send_soon([])

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.pool is not None:
            await self.pool.close()
            self.pool = None


def notify_after_commit(session: Tx, notifier: BoardNotifier, notice: str) -> None:
    """Queue a board notice; it is sent once the request's transaction has committed (never on rollback)."""
    if isinstance(session, Lean):
        session.after_commit(lambda: notifier.send_soon([notice]))
        return
    pending: list[str] | None = session.info.get("board_notices")
    if pending is None:
        pending = session.info["board_notices"] = []

        def fire(_session: Any) -> None:
            notices = session.info.pop("board_notices", [])
            if notices:
                notifier.send_soon(notices)

        def drop(_session: Any) -> None:
            session.info.pop("board_notices", None)

        event.listen(session.sync_session, "after_commit", fire, once=True)
        event.listen(session.sync_session, "after_rollback", drop, once=True)
    pending.append(notice)


# --- board ------------------------------------------------------------------------------------

async def latest_events(conn: Conn, office_code: str, limit: int = 10) -> list[Row]:
    return list(await conn.fetch(
        "SELECT id, kind, payload, created_at FROM queue.board_events WHERE office_code = $1 "
        "ORDER BY id DESC LIMIT $2", office_code, limit))


async def events_after(conn: Conn, office_code: str, after_id: int, limit: int) -> list[Row]:
    return list(await conn.fetch(
        "SELECT id, kind, payload, created_at FROM queue.board_events WHERE office_code = $1 AND id > $2 "
        "ORDER BY id LIMIT $3", office_code, after_id, limit))


async def last_event_id(conn: Conn, office_code: str) -> int:
    value: int | None = await conn.fetchval(
        "SELECT max(id) FROM queue.board_events WHERE office_code = $1", office_code)
    return value or 0


async def counters_with_current(conn: Conn, office_code: str) -> list[Row]:
    return list(await conn.fetch(
        "SELECT c.id, c.number, c.name, c.category_codes, c.officer_name, c.active, t.id AS ticket_id, "
        "t.display AS ticket_number, t.status AS ticket_status, t.called_at "
        "FROM queue.counters c LEFT JOIN LATERAL (SELECT id, display, status, called_at FROM queue.tickets "
        "  WHERE counter_id = c.id AND status IN ('called', 'serving') ORDER BY called_at DESC LIMIT 1) t ON true "
        "WHERE c.office_code = $1 ORDER BY c.number", office_code))


async def waiting_by_category(conn: Conn, office_code: str) -> list[Row]:
    return list(await conn.fetch(
        "SELECT c.code, c.prefix, c.name, count(t.id) AS waiting FROM queue.categories c "
        "LEFT JOIN queue.tickets t ON t.office_code = c.office_code AND t.category_code = c.code "
        "AND t.status = 'waiting' WHERE c.office_code = $1 GROUP BY c.code, c.prefix, c.name, c.position "
        "ORDER BY c.position, c.prefix", office_code))


async def purge_board_events(conn: Conn, before: datetime) -> None:
    await conn.execute("DELETE FROM queue.board_events WHERE created_at < $1", before)


# --- report -----------------------------------------------------------------------------------

REPORT_STATS = """count(*) AS issued,
  count(*) FILTER (WHERE status = 'finished') AS finished,
  count(*) FILTER (WHERE status = 'skipped') AS skipped,
  count(*) FILTER (WHERE status = 'waiting') AS waiting,
  round(avg(extract(epoch FROM called_at - issued_at)))::int AS avg_wait_seconds,
  round(max(extract(epoch FROM called_at - issued_at)))::int AS max_wait_seconds,
  round(avg(extract(epoch FROM finished_at - coalesce(serving_at, called_at)))
        FILTER (WHERE status = 'finished'))::int AS avg_service_seconds"""


async def report(conn: Conn, office_code: str, day: date) -> dict[str, list[Row]]:
    by_category = await conn.fetch(
        f"SELECT category_code, {REPORT_STATS} FROM queue.tickets WHERE office_code = $1 AND day = $2 "
        "GROUP BY category_code ORDER BY category_code", office_code, day)
    by_counter = await conn.fetch(
        f"SELECT t.counter_id, c.number AS counter_number, {REPORT_STATS} FROM queue.tickets t "
        "JOIN queue.counters c ON c.id = t.counter_id WHERE t.office_code = $1 AND t.day = $2 "
        "GROUP BY t.counter_id, c.number ORDER BY c.number", office_code, day)
    by_hour = await conn.fetch(
        f"SELECT extract(hour FROM issued_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::int AS hour, {REPORT_STATS} "
        "FROM queue.tickets WHERE office_code = $1 AND day = $2 GROUP BY 1 ORDER BY 1", office_code, day)
    return {"by_category": list(by_category), "by_counter": list(by_counter), "by_hour": list(by_hour)}


# --- booking ----------------------------------------------------------------------------------

RELEASE_EXPIRED_SQL = """
WITH gone AS (
  UPDATE queue.appointments SET status = 'expired', released_at = $1
  WHERE status = 'held' AND hold_expires_at <= $1 AND ($2::text IS NULL OR office_code = $2)
  RETURNING office_code, category_code, slot_start
), agg AS (
  SELECT office_code, category_code, slot_start, count(*) AS n FROM gone GROUP BY 1, 2, 3
)
UPDATE queue.slots s SET taken = s.taken - agg.n FROM agg
WHERE s.office_code = agg.office_code AND s.category_code = agg.category_code AND s.start_at = agg.slot_start
"""


async def release_expired_holds(conn: Conn, now: datetime, office_code: str | None = None) -> None:
    await conn.execute(RELEASE_EXPIRED_SQL, now, office_code)


async def release_no_shows(conn: Conn, now: datetime) -> int:
    result: str = await conn.execute(
        "UPDATE queue.appointments SET status = 'no_show', released_at = $1 "
        "WHERE status = 'confirmed' AND slot_end <= $1", now)
    return int(result.split()[-1])


async def slot_usage(conn: Conn, office_code: str, category_code: str, start: datetime, end: datetime) -> dict[
        datetime, int]:
    rows = await conn.fetch(
        "SELECT start_at, taken FROM queue.slots WHERE office_code = $1 AND category_code = $2 "
        "AND start_at >= $3 AND start_at < $4", office_code, category_code, start, end)
    return {r["start_at"]: r["taken"] for r in rows}


async def take_place(conn: Conn, office_code: str, category_code: str, start: datetime, capacity: int) -> bool:
    await conn.execute(
        "INSERT INTO queue.slots (office_code, category_code, start_at, capacity, taken) VALUES ($1, $2, $3, $4, 0) "
        "ON CONFLICT DO NOTHING", office_code, category_code, start, capacity)
    taken = await conn.fetchval(
        "UPDATE queue.slots SET taken = taken + 1 WHERE office_code = $1 AND category_code = $2 AND start_at = $3 "
        "AND taken < capacity RETURNING taken", office_code, category_code, start)
    return taken is not None


async def give_back_place(conn: Conn, office_code: str, category_code: str, start: datetime) -> None:
    await conn.execute(
        "UPDATE queue.slots SET taken = taken - 1 WHERE office_code = $1 AND category_code = $2 AND start_at = $3 "
        "AND taken > 0", office_code, category_code, start)


async def open_bookings(conn: Conn, citizen_id: str, now: datetime) -> list[Row]:
    return list(await conn.fetch(
        "SELECT booking_code, office_code, category_code FROM queue.appointments WHERE citizen_id = $1 "
        "AND (status = 'confirmed' OR (status = 'held' AND hold_expires_at > $2))", citizen_id, now))


async def insert_appointment(conn: Conn, v: dict[str, Any]) -> Row:
    row: Row = await conn.fetchrow(
        "INSERT INTO queue.appointments (booking_code, office_code, category_code, citizen_id, citizen_name, phone, "
        "slot_start, slot_end, status, hold_expires_at, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'held', $9, $10) RETURNING *",
        v["booking_code"], v["office_code"], v["category_code"], v["citizen_id"], v["citizen_name"], v["phone"],
        v["slot_start"], v["slot_end"], v["hold_expires_at"], v["created_at"])
    return row


async def appointment(conn: Conn, booking_code: str, *, lock: bool = False) -> Row | None:
    return await conn.fetchrow(
        "SELECT a.*, t.display AS ticket_number FROM queue.appointments a "
        "LEFT JOIN queue.tickets t ON t.id = a.ticket_id WHERE a.booking_code = $1"
        + (" FOR UPDATE OF a" if lock else ""), booking_code)


async def update_appointment(conn: Conn, booking_code: str, **values: Any) -> None:
    names = list(values)
    sets = ", ".join(f"{n} = ${i + 2}" for i, n in enumerate(names))
    await conn.execute(f"UPDATE queue.appointments SET {sets} WHERE booking_code = $1", booking_code,
                       *[values[n] for n in names])
