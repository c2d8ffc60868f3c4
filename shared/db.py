"""Async engine and the per-request session: one transaction, committed before the response."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

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

    def bind_to(self, connection: AsyncConnection) -> None:
        """Tests: run every session inside an outer transaction that is rolled back later."""
        self.sessionmaker = async_sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )

    async def dispose(self) -> None:
        if self.waker is not None:
            await self.waker.close()
        await self.engine.dispose()


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


async def raw_connection(session: AsyncSession) -> asyncpg.Connection[Any]:
    """The asyncpg connection under the session's transaction (for pgqueuer and hot paths)."""
    conn = await session.connection()
    raw: Any = (await conn.get_raw_connection()).dbapi_connection
    # SQLAlchemy's asyncpg adapter sends BEGIN lazily, on its first statement. Statements sent
    # straight to asyncpg before that would autocommit, so open the transaction now.
    if getattr(raw, "_transaction", None) is None and hasattr(raw, "_start_transaction"):
        await raw._start_transaction()
    driver: asyncpg.Connection[Any] = raw.driver_connection
    return driver


async def autocommit_connection(session: AsyncSession) -> asyncpg.Connection[Any]:
    """The session's asyncpg connection with no BEGIN sent: each statement is its own transaction.

    For hot paths that write everything in ONE statement (one round trip instead of
    BEGIN, n statements and COMMIT). The session's own commit is then a no-op. Under
    tests the connection sits inside the test's outer transaction; `fetchrow_atomic`
    keeps a failing statement from breaking it.
    """
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
