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
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import raw_connection

JobHandler = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]
PeriodicHandler = Callable[[AsyncSession], Awaitable[None]]


def encode_payload(data: dict[str, Any]) -> bytes:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return json.dumps({"data": data, "request_id": request_id}, default=str).encode()


async def enqueue(
    session: AsyncSession,
    entrypoint: str,
    data: dict[str, Any],
    *,
    execute_after: timedelta | None = None,
    dedupe_key: str | None = None,
    priority: int = 0,
) -> None:
    """Enqueue in the session's transaction: it commits or rolls back with the domain rows."""
    conn = await raw_connection(session)
    queries = Queries.from_asyncpg_connection(conn)
    await queries.enqueue(
        entrypoint, encode_payload(data), priority, execute_after, dedupe_key,
        on_conflict="skip" if dedupe_key else "raise",
    )


@dataclass
class JobRegistry:
    """A service's job handlers and periodic jobs, collected by its `jobs` module."""

    service: str
    handlers: dict[str, JobHandler] = field(default_factory=dict)
    periodic: dict[str, tuple[str, PeriodicHandler]] = field(default_factory=dict)

    def handler(self, entrypoint: str) -> Callable[[JobHandler], JobHandler]:
        def register(fn: JobHandler) -> JobHandler:
            self.handlers[entrypoint] = fn
            return fn

        return register

    def every(self, name: str, cron: str) -> Callable[[PeriodicHandler], PeriodicHandler]:
        """Periodic job (cron syntax, UTC) run by exactly one worker per tick."""

        def register(fn: PeriodicHandler) -> PeriodicHandler:
            self.periodic[name] = (cron, fn)
            return fn

        return register
