"""Async engine and the per-request session: one transaction, committed before the response."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
import orjson
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.problems import ProblemError
from shared.settings import Settings
from shared.waker import WAKE_SETTING, JobWaker


class Database:
    """Holds the engine and session factory of one process."""

    def __init__(self, settings: Settings, application_name: str = "motcua",
                 server_settings: dict[str, str] | None = None, waker: JobWaker | None = None) -> None:
        self.waker = waker
        if waker is not None:
            server_settings = {**(server_settings or {}), WAKE_SETTING: "on"}
        self.engine: AsyncEngine = create_async_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_recycle=1800,
            connect_args={"server_settings": {"application_name": application_name,
                                              "timezone": "UTC", **(server_settings or {})}},
        )
        self.sessionmaker: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )
        self._lean_args = {"dsn": settings.asyncpg_dsn, "min_size": min(2, settings.db_lean_pool_size),
                           "max_size": settings.db_lean_pool_size,
                           "server_settings": {"application_name": application_name, "timezone": "UTC",
                                               **(server_settings or {})}}
        self._lean_timeout = settings.db_pool_timeout
        self._lean_pool: asyncpg.Pool[Any] | None = None
        self._lean_lock = asyncio.Lock()
        self._bound: AsyncConnection | None = None

    def bind_to(self, connection: AsyncConnection) -> None:
        """Tests: run every session inside an outer transaction that is rolled back later."""
        self._bound = connection
        self.sessionmaker = async_sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )

    async def dispose(self) -> None:
        if self.waker is not None:
            await self.waker.close()
        if self._lean_pool is not None:
            await self._lean_pool.close()
        await self.engine.dispose()

    @asynccontextmanager
    async def lean(self) -> AsyncIterator[Lean]:
        """A request's transaction on plain asyncpg, without the SQLAlchemy session (hot routes).

        Measured per request: FastAPI's session dependency and SQLAlchemy's session and pool cost
        about 0.6 ms of CPU, more than the SQL of a read or a one-statement write. The work is
        committed when the block ends, before the response is built; an error rolls it back.
        """
        pool: asyncpg.Pool[Any] | None = None
        savepoint: Any = None
        if self._bound is not None:  # tests: a savepoint inside the test's outer transaction
            raw: Any = (await self._bound.get_raw_connection()).dbapi_connection
            conn = raw.driver_connection
            savepoint = conn.transaction()
            await savepoint.start()
        else:
            pool = self._lean_pool or await self._open_lean_pool()
            try:  # the timeout's machinery only when no connection is free (measured: 3% of a read)
                conn = await (pool.acquire() if pool.get_idle_size() else pool.acquire(timeout=self._lean_timeout))
            except TimeoutError as exc:
                raise ProblemError(503, "busy", "Hệ thống đang bận, vui lòng thử lại sau giây lát / The service "
                                   "is busy; retry in a moment.", headers={"Retry-After": "1"}) from exc
        tx = Lean(conn)
        try:
            try:
                yield tx
            except BaseException:
                await tx.rollback()
                if savepoint is not None:
                    await savepoint.rollback()
                raise
            await tx.commit()
            if savepoint is not None:
                await savepoint.commit()
            if self.waker is not None and tx.info.pop("wake_jobs", False):
                self.waker.poke()
            tx.committed()
        finally:
            if pool is not None:
                await pool.release(conn)

    async def _open_lean_pool(self) -> asyncpg.Pool[Any]:
        async with self._lean_lock:
            if self._lean_pool is None:
                self._lean_pool = await asyncpg.create_pool(**self._lean_args, reset=rollback_if_open,
                                                            init=json_codecs)
        return self._lean_pool


class Lean:
    """What hot routes hand to repositories instead of a session: one asyncpg connection whose
    transaction starts with the first `raw_connection` (as SQLAlchemy's does), else statements autocommit."""

    __slots__ = ("_after_commit", "_tx", "conn", "info")

    def __init__(self, conn: asyncpg.Connection[Any]) -> None:
        self.conn = conn
        self.info: dict[str, Any] = {}
        self._tx: Any = None
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the work is committed (never after a rollback)."""
        self._after_commit.append(callback)

    def committed(self) -> None:
        for callback in self._after_commit:
            callback()

    async def begin(self) -> asyncpg.Connection[Any]:
        if self._tx is None:
            self._tx = self.conn.transaction()
            await self._tx.start()
        return self.conn

    async def commit(self) -> None:
        if self._tx is not None:
            tx, self._tx = self._tx, None
            await tx.commit()

    async def rollback(self) -> None:
        if self._tx is not None:
            tx, self._tx = self._tx, None
            await tx.rollback()


async def rollback_if_open(conn: asyncpg.Connection[Any]) -> None:
    """Lean connections hold no session state (no LISTEN, SET or session locks): asyncpg's reset
    round trip on release is skipped, but an open transaction is never handed on."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def json_codecs(conn: asyncpg.Connection[Any]) -> None:
    """json/jsonb as Python values, as SQLAlchemy's asyncpg dialect sets them: repositories see the same."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, schema="pg_catalog", encoder=_as_json_text, decoder=orjson.loads)


def _as_json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request; commit runs before the response is sent (scope=function)."""
    db: Database = request.app.state.db
    async with db.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
            if db.waker is not None and session.info.pop("wake_jobs", False):
                db.waker.poke()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
Tx = AsyncSession | Lean  # what repositories on hot paths accept: a session, or a lean route's connection


async def raw_connection(session: AsyncSession | Lean) -> asyncpg.Connection[Any]:
    """The asyncpg connection under the session's transaction (for pgqueuer and hot paths)."""
    if isinstance(session, Lean):
        return await session.begin()
    conn = await session.connection()
    raw: Any = (await conn.get_raw_connection()).dbapi_connection
    # SQLAlchemy's asyncpg adapter sends BEGIN lazily, on its first statement. Statements sent
    # straight to asyncpg before that would autocommit, so open the transaction now.
    if getattr(raw, "_transaction", None) is None and hasattr(raw, "_start_transaction"):
        await raw._start_transaction()
    driver: asyncpg.Connection[Any] = raw.driver_connection
    return driver


async def autocommit_connection(session: AsyncSession | Lean) -> asyncpg.Connection[Any]:
    """The session's asyncpg connection with no BEGIN sent: each statement is its own transaction.

    For hot paths that write everything in ONE statement (one round trip instead of
    BEGIN, n statements and COMMIT). The session's own commit is then a no-op. Under
    tests the connection sits inside the test's outer transaction; `fetchrow_atomic`
    keeps a failing statement from breaking it.
    """
    if isinstance(session, Lean):
        return session.conn
    conn = await session.connection()
    raw: Any = (await conn.get_raw_connection()).dbapi_connection
    driver: asyncpg.Connection[Any] = raw.driver_connection
    return driver


async def fetchrow_atomic(conn: asyncpg.Connection[Any], sql: str, *args: Any) -> asyncpg.Record | None:
    """One statement, all or nothing; inside an open transaction (tests) it gets a savepoint."""
    if conn.is_in_transaction():
        async with conn.transaction():
            return await conn.fetchrow(sql, *args)
    return await conn.fetchrow(sql, *args)
