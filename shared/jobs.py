"""Jobs in PostgreSQL (pgqueuer, schema `jobs`), enqueued on the request's own connection."""

from __future__ import annotations

import os

os.environ.setdefault("PGQUEUER_SCHEMA", "jobs")

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from pgqueuer.queries import Queries

from shared.db import Tx

JobHandler = Callable[[Tx, list[dict[str, Any]]], Awaitable[None]]
"""Every job handler: the unit of work and the payloads it is handed (one, or up to the entrypoint's batch)."""
PeriodicHandler = Callable[[Tx], Awaitable[None]]


def encode_payload(data: dict[str, Any]) -> bytes:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return json.dumps({"data": data, "request_id": request_id}, default=str).encode()


async def enqueue(
    tx: Tx,
    entrypoint: str,
    data: dict[str, Any],
    *,
    execute_after: timedelta | None = None,
    dedupe_key: str | None = None,
    priority: int = 0,
) -> None:
    """Enqueue in the unit's transaction: it commits or rolls back with the domain rows."""
    conn = await tx.connection()
    mark_enqueued(tx)
    queries = Queries.from_asyncpg_connection(conn)
    await queries.enqueue(
        entrypoint, encode_payload(data), priority, execute_after, dedupe_key,
        on_conflict="skip" if dedupe_key else "raise",
    )


def mark_enqueued(tx: Tx) -> None:
    """The transaction holds new jobs: the workers are woken once it commits (shared.waker)."""
    tx.info["wake_jobs"] = True


def job_insert_sql(name: str, source: str, entrypoint_param: str, payload_sql: str) -> str:
    """CTEs that enqueue one job per row of `source` inside a bigger statement (pgqueuer's tables).

    For hot paths whose domain write is one statement: the job commits with it. Call
    `mark_enqueued` so the workers are woken. `payload_sql` is a bytea expression over `source`.
    """
    return f"""{name} AS (
    INSERT INTO jobs.pgqueuer AS job (priority, entrypoint, payload, execute_after, status)
    SELECT 0, {entrypoint_param}, {payload_sql}, now(), 'queued' FROM {source}
    RETURNING id, entrypoint, priority
), {name}_log AS (
    INSERT INTO jobs.pgqueuer_log (job_id, status, entrypoint, priority)
    SELECT id, 'queued', entrypoint, priority FROM {name}
)"""


COALESCE_SECONDS = 1


def coalesced_job_sql(name: str, entrypoint: str, source: str) -> str:
    """A CTE that enqueues at most one `entrypoint` job per second, whatever number of rows `source` has
    and however many transactions ask: for handlers that drain an outbox table in batches.

    The job waits COALESCE_SECONDS so the rows committed in its second are there when it runs. A row
    committed while that job is already running waits for the next second's job, or for the periodic
    sweep that every such handler also has. Call `mark_enqueued` so the workers are woken.
    """
    key = f"'{entrypoint}:' || floor(extract(epoch FROM clock_timestamp()))::bigint"
    return f"""{name} AS (
    INSERT INTO jobs.pgqueuer AS job (priority, entrypoint, payload, execute_after, status, dedupe_key)
    SELECT 0, '{entrypoint}', convert_to('{{"data": {{}}}}', 'UTF8'),
           now() + interval '{COALESCE_SECONDS} second', 'queued', {key}
    WHERE EXISTS (SELECT 1 FROM {source})
    ON CONFLICT (dedupe_key) WHERE status IN ('queued', 'picked') AND dedupe_key IS NOT NULL DO NOTHING
    RETURNING id, entrypoint, priority
), {name}_log AS (
    INSERT INTO jobs.pgqueuer_log (job_id, status, entrypoint, priority)
    SELECT id, 'queued', entrypoint, priority FROM {name}
)"""


def request_id() -> str | None:
    """The current request's id, carried in job payloads."""
    found: str | None = structlog.contextvars.get_contextvars().get("request_id")
    return found


@dataclass(frozen=True)
class Entrypoint:
    handler: JobHandler
    max_batch: int


@dataclass
class JobRegistry:
    """A service's job handlers and periodic jobs, collected by its `jobs` module."""

    service: str
    entrypoints: dict[str, Entrypoint] = field(default_factory=dict)
    periodic: dict[str, tuple[str, PeriodicHandler]] = field(default_factory=dict)
    shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def handler(self, entrypoint: str, *, max_batch: int = 1) -> Callable[[JobHandler], JobHandler]:
        """Registers `async def handle(tx, payloads)`. With `max_batch` > 1 the worker hands over the jobs
        of this entrypoint it holds at once (up to `max_batch`) in one call, in one transaction; a failed
        batch runs again one job at a time, so one bad payload fails (and is held for retry) alone."""

        def register(fn: JobHandler) -> JobHandler:
            self.entrypoints[entrypoint] = Entrypoint(fn, max_batch)
            return fn

        return register

    def every(self, name: str, cron: str) -> Callable[[PeriodicHandler], PeriodicHandler]:
        """Periodic job (cron syntax, UTC) run by exactly one worker per tick, in one transaction."""

        def register(fn: PeriodicHandler) -> PeriodicHandler:
            self.periodic[name] = (cron, fn)
            return fn

        return register

    def on_shutdown(self, fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """Registers `async def close()` for what the handlers hold (an HTTP client), run as the worker stops."""
        self.shutdown.append(fn)
        return fn
