"""SQL of the counters: call-next (one statement), sign-in and sign-out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import structlog

from services.queue_ticket.tickets_repository import TICKET_COLUMNS
from shared.db import Tx

Row = Any  # asyncpg.Record
log = structlog.get_logger("queue.repository")
DEADLOCK_RETRIES = 5

CALL_NEXT_SQL = f"""
WITH c AS (
  SELECT id, office_code, category_codes::text[] AS categories, number, name FROM queue.counters
  WHERE id = $1 AND active
    AND ($2::text IS NULL OR office_code = $2)
    AND ($3::text IS NULL OR officer_subject IS NULL OR officer_subject = $3)
    AND ($4::text IS NULL OR $4 = ANY(category_codes))
    AND (NOT $8::boolean OR current_ticket_id IS NOT DISTINCT FROM $9::bigint)
  FOR UPDATE
), cats AS (
  SELECT CASE WHEN $4::text IS NULL THEN c.categories ELSE ARRAY[$4::text] END AS list FROM c
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
), here AS (
  UPDATE queue.counters k SET current_ticket_id = (SELECT id FROM called),
    officer_subject = CASE WHEN k.officer_subject IS NULL THEN $3 ELSE k.officer_subject END,
    officer_name = CASE WHEN k.officer_subject IS NULL AND $3::text IS NOT NULL THEN $5 ELSE k.officer_name END,
    signed_in_at = CASE WHEN k.officer_subject IS NULL AND $3::text IS NOT NULL THEN $6 ELSE k.signed_in_at END
  FROM c WHERE k.id = c.id
  RETURNING k.id
), ev AS (
  INSERT INTO queue.board_events (office_code, kind, payload, created_at)
  SELECT c.office_code, 'call', jsonb_build_object('ticket_id', called.id, 'number', called.display,
    'category_code', called.category_code, 'counter_id', c.id, 'counter_number', c.number,
    'counter_name', c.name, 'at', $6::timestamptz), $6
  FROM called, c
  RETURNING id, office_code, payload
)
SELECT called.*, ev.id AS event_id, c.number AS counter_number,  -- `here` runs unreferenced (a data-modifying CTE)
  (jsonb_build_object('office_code', ev.office_code, 'id', ev.id, 'kind', 'call') || ev.payload)::text AS notice
FROM c LEFT JOIN called ON true LEFT JOIN ev ON true
"""


async def call_next(
    tx: Tx, *, counter_id: int, office_code: str | None, officer: str | None, officer_name: str | None,
    category_code: str | None, now: datetime, served_by: str, check_current: bool = False,
    current_ticket_id: int | None = None,
) -> Row | None:
    """One statement, committed alone: check the counter (office, officer, category and, with `check_current`,
    that its current ticket is `current_ticket_id`, None: no ticket), lock it, sign a free counter in, finish
    its current ticket, take the next waiting ticket (SKIP LOCKED), call it, make it the counter's current
    ticket and write the board event (`notice`: what to NOTIFY after commit). No row: a check failed and
    nothing changed; a row whose `id` is None: nobody waits (the current ticket was finished).

    The counter row is locked first, so calls at one counter run one after the other, and the check of its
    current ticket is made again on the row as the call before committed it (PostgreSQL re-reads a locked
    row that changed): of a request and its retry, the second finds the counter moved on.
    SKIP LOCKED still waits on a row whose update committed after the statement's snapshot, so two counters
    can deadlock; the statement is all or nothing and simply runs again.
    """
    for attempt in range(DEADLOCK_RETRIES):
        try:
            rows = await tx.statement(CALL_NEXT_SQL, counter_id, office_code, officer, category_code,
                                      officer_name, now, served_by, check_current, current_ticket_id)
        except asyncpg.DeadlockDetectedError:
            log.info("call_next_deadlock_retried", counter_id=counter_id, attempt=attempt + 1)
            if attempt + 1 == DEADLOCK_RETRIES:
                raise
            continue
        return rows[0] if rows else None
    return None


async def finish_current(tx: Tx, counter_id: int, now: datetime) -> None:
    await tx.execute(
        "UPDATE queue.tickets SET status = 'finished', finished_at = $2, serving_at = coalesce(serving_at, called_at) "
        "WHERE counter_id = $1 AND status IN ('called', 'serving')", counter_id, now)


async def sign_in(tx: Tx, counter_id: int, subject: str | None, name: str | None, at: datetime | None) -> Row:
    """The counter's officer (None: signed out, and no current ticket); the counter row after it."""
    return await tx.fetchrow(
        "UPDATE queue.counters SET officer_subject = $2, officer_name = $3, signed_in_at = $4, "
        "current_ticket_id = CASE WHEN $2::varchar IS NULL THEN NULL ELSE current_ticket_id END WHERE id = $1 "
        "RETURNING *", counter_id, subject, name, at)


async def lock_counter_of(tx: Tx, ticket_id: int) -> int | None:
    """Locks the counter a ticket is at (before the ticket: call-next locks in that order too)."""
    value: int | None = await tx.fetchval(
        "SELECT id FROM queue.counters WHERE id = (SELECT counter_id FROM queue.tickets WHERE id = $1) FOR UPDATE",
        ticket_id)
    return value


async def leave_counter(tx: Tx, counter_id: int, ticket_id: int) -> None:
    """The ticket is no longer served at the counter (finished, skipped, transferred)."""
    await tx.execute("UPDATE queue.counters SET current_ticket_id = NULL WHERE id = $1 AND current_ticket_id = $2",
                     counter_id, ticket_id)
