"""Live board: one LISTEN connection per process fans PostgreSQL NOTIFY events out to SSE subscribers.

Every call is written to `queue.board_events` and announced with NOTIFY in the same transaction, so
each replica of the service hears every call (whichever replica made it), and only once it committed.
A board that reconnects with `Last-Event-ID` gets the events it missed from the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import asyncpg
import structlog

from services.queue_ticket.models import BOARD_CHANNEL

log = structlog.get_logger("queue.board")
KEEPALIVE_SECONDS = 15.0
QUEUE_SIZE = 1000


def json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def sse(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, default=json_default, ensure_ascii=False))
    return "\n".join(lines) + "\n\n"


class BoardHub:
    """The process's LISTEN connection and its subscribers, by office."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn: asyncpg.Connection[Any] | None = None
        self.subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._lock = asyncio.Lock()

    @property
    def alive(self) -> bool:
        return self.conn is not None and not self.conn.is_closed()

    async def ensure(self) -> None:
        if self.alive:
            return
        async with self._lock:
            if self.alive:
                return
            conn: asyncpg.Connection[Any] = await asyncpg.connect(
                self.dsn, server_settings={"application_name": "motcua-queue-board"})
            await conn.add_listener(BOARD_CHANNEL, self._on_notify)
            self.conn = conn

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            data = json.loads(payload)
        except ValueError:
            return
        office = data.pop("office_code", None)
        for queue in list(self.subscribers.get(office, ())):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(data)

    def subscribe(self, office_code: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.subscribers.setdefault(office_code, set()).add(queue)
        return queue

    def unsubscribe(self, office_code: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        subs = self.subscribers.get(office_code)
        if subs is not None:
            subs.discard(queue)
            if not subs:
                self.subscribers.pop(office_code, None)

    async def close(self) -> None:
        if self.conn is not None and not self.conn.is_closed():
            with contextlib.suppress(Exception):
                await self.conn.close(timeout=2)
        self.conn = None


async def stream(
    hub: BoardHub, office_code: str, queue: asyncio.Queue[dict[str, Any]],
    snapshot: dict[str, Any] | None, replay: list[dict[str, Any]] | None,
) -> AsyncIterator[str]:
    """`snapshot` first (or the missed events on a resume), then each call as it commits."""
    sent: set[int] = set()
    try:
        yield "retry: 3000\n\n"
        if snapshot is not None:
            sent.update(e["id"] for e in snapshot["latest_calls"])
            yield sse("snapshot", snapshot, snapshot["last_event_id"])
        for event in replay or ():
            sent.add(event["id"])
            yield sse(event["kind"], event, event["id"])
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                if not hub.alive:
                    with contextlib.suppress(OSError, asyncpg.PostgresError):
                        await hub.ensure()
                yield ": keep-alive\n\n"
                continue
            if event.get("id") in sent:
                continue
            sent.add(event["id"])
            if len(sent) > 10_000:
                sent = set(sorted(sent)[-1000:])
            yield sse(str(event.get("kind", "call")), event, event["id"])
    finally:
        hub.unsubscribe(office_code, queue)
