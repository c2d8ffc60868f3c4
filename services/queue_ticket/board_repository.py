"""SQL of the live board: events (written with each call), the board's reads, and NOTIFY after commit."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import structlog

from services.queue_ticket.models import BOARD_CHANNEL
from services.queue_ticket.tickets_repository import NO_FSYNC_WAIT
from shared.db import Database, Tx
from shared.settings import Settings

Row = Any  # asyncpg.Record
log = structlog.get_logger("queue.repository")


async def add_board_event(tx: Tx, office_code: str, kind: str, payload: dict[str, Any],
                          now: datetime) -> tuple[int, str]:
    """The event row; answers its id and the notice to send after commit."""
    row: Row = await tx.fetchrow(
        """INSERT INTO queue.board_events (office_code, kind, payload, created_at) VALUES ($1, $2, $3::jsonb, $4)
           RETURNING id, (jsonb_build_object('office_code', office_code, 'id', id, 'kind', kind) || payload)::text
             AS notice""",
        office_code, kind, json.dumps(payload, default=str, ensure_ascii=False), now)
    return int(row["id"]), str(row["notice"])


class BoardNotifier:
    """Sends board notices (NOTIFY) after the transaction that wrote the events has committed.

    A transaction that NOTIFYs holds PostgreSQL's cluster-wide notify lock until its commit is on disk, which
    would line every counter up behind each other's fsync; so notices leave on a connection of their own, with
    synchronous_commit off (the events are already committed in `board_events`, where a board resumes).
    """

    def __init__(self, settings: Settings) -> None:
        self.db = Database(settings, "motcua-queue-notify", pool_size=2, server_settings=NO_FSYNC_WAIT)
        self._waiting: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def _send(self) -> None:
        while self._waiting:  # notices committed meanwhile leave together in the next statement, in order
            notices, self._waiting = self._waiting, []
            async with self.db.transaction() as tx:
                await tx.statement(f"SELECT pg_notify('{BOARD_CHANNEL}', n) FROM unnest($1::text[]) n", notices)

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
        await self.db.dispose()


def notify_after_commit(tx: Tx, notifier: BoardNotifier, notice: str) -> None:
    """The notice is sent once the unit of work has committed (never after a rollback)."""
    tx.after_commit(lambda: notifier.send_soon([notice]))


async def latest_events(tx: Tx, office_code: str, limit: int = 10) -> list[Row]:
    return await tx.fetch(
        "SELECT id, kind, payload, created_at FROM queue.board_events WHERE office_code = $1 "
        "ORDER BY id DESC LIMIT $2", office_code, limit)


async def events_after(tx: Tx, office_code: str, after_id: int, limit: int) -> list[Row]:
    return await tx.fetch(
        "SELECT id, kind, payload, created_at FROM queue.board_events WHERE office_code = $1 AND id > $2 "
        "ORDER BY id LIMIT $3", office_code, after_id, limit)


async def last_event_id(tx: Tx, office_code: str) -> int:
    value: int | None = await tx.fetchval("SELECT max(id) FROM queue.board_events WHERE office_code = $1",
                                          office_code)
    return value or 0


async def counters_with_current(tx: Tx, office_code: str) -> list[Row]:
    return await tx.fetch(
        "SELECT c.id, c.number, c.name, c.category_codes, c.officer_name, c.active, t.id AS ticket_id, "
        "t.display AS ticket_number, t.status AS ticket_status, t.called_at "
        "FROM queue.counters c LEFT JOIN LATERAL (SELECT id, display, status, called_at FROM queue.tickets "
        "  WHERE counter_id = c.id AND status IN ('called', 'serving') ORDER BY called_at DESC LIMIT 1) t ON true "
        "WHERE c.office_code = $1 ORDER BY c.number", office_code)


async def waiting_by_category(tx: Tx, office_code: str) -> list[Row]:
    return await tx.fetch(
        "SELECT c.code, c.prefix, c.name, count(t.id) AS waiting FROM queue.categories c "
        "LEFT JOIN queue.tickets t ON t.office_code = c.office_code AND t.category_code = c.code "
        "AND t.status = 'waiting' WHERE c.office_code = $1 GROUP BY c.code, c.prefix, c.name, c.position "
        "ORDER BY c.position, c.prefix", office_code)


async def purge_board_events(tx: Tx, before: datetime) -> int:
    return await tx.execute("DELETE FROM queue.board_events WHERE created_at < $1", before)
