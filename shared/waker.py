"""Wakes the job workers after a commit, instead of a NOTIFY inside the request's transaction."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger("jobs")
WAKE_SETTING = "motcua.wake_after_commit"  # on a connection: its job inserts do not NOTIFY (jobs_0002)
COALESCE_SECONDS = 0.05  # at most 20 wake-ups a second per process
WAKE_SQL = """SELECT pg_notify('ch_pgqueuer', json_build_object('channel', 'ch_pgqueuer', 'operation', 'insert',
    'sent_at', now(), 'table', 'pgqueuer', 'type', 'table_changed_event')::text)"""


class JobWaker:
    """Wakes the workers once a request that enqueued jobs has committed, from a connection of its own.

    A NOTIFY inside the request's transaction takes PostgreSQL's database-wide notify lock from commit
    until the commit is on disk, so every submitting counter would wait for the others' fsync. Service
    connections carry WAKE_SETTING (the jobs trigger then stays silent) and this sends the same
    `table_changed_event` pgqueuer listens for after the commit, with synchronous_commit off, and
    coalesces a burst of commits into one wake-up. A lost wake-up only delays a job until the
    workers' next poll.
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: asyncpg.Connection[Any] | None = None
        self._pending = False
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        self._pending = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._pending:
            self._pending = False
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self.dsn, timeout=5, server_settings={
                        "synchronous_commit": "off", "application_name": "motcua-job-waker"})
                await self._conn.execute(WAKE_SQL)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("job_wake_failed", error=str(exc))
                if self._conn is not None:
                    self._conn.terminate()
                self._conn = None
                return
            # Commits landing meanwhile share the next wake-up: each wake-up costs every worker a
            # dequeue query, and a busy worker needs none (it keeps taking jobs while there are some).
            await asyncio.sleep(COALESCE_SECONDS)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()  # shutting down: the workers' own poll picks up anything left
            await asyncio.gather(self._task, return_exceptions=True)
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
