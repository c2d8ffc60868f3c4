"""The one way to PostgreSQL: one asyncpg pool per process and one transaction type, `Tx`.

A request (FastAPI dependency `TxDep`) or a job gets a `Tx`. Its first statement sends BEGIN; the
work commits when the request's or job's block ends (before the response is sent) and rolls back on
any error. A write that is ONE statement says so with `Tx.statement`: no BEGIN/COMMIT round trips.
Statements are SQL text with `$n` parameters or SQLAlchemy Core statements (compiled here for
asyncpg); rows come back as asyncpg `Record`s (`row["column"]`).

Every connection is time-bounded by its role (`Settings.db_timeouts`: requests, jobs): PostgreSQL's
statement, lock and idle-in-transaction timeouts, and asyncpg's command timeout as the client's
backstop. A database that cannot be reached, shuts down or drops the connection, and a statement that
ran out of time or waited too long for a lock, are 503 problems with `Retry-After`, never 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
import asyncpg.exceptions as pg
import orjson
import structlog
from fastapi import Depends, Request
from sqlalchemy.dialects.postgresql.asyncpg import dialect as AsyncpgDialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from shared.problems import ProblemError
from shared.settings import DbRole, Settings
from shared.waker import WAKE_SETTING, JobWaker

Query = str | ClauseElement
DIALECT = AsyncpgDialect()  # type: ignore[no-untyped-call]
BUSY = ("Hệ thống đang bận, vui lòng thử lại sau giây lát / The service is busy; retry in a moment.")
UNAVAILABLE = ("Cơ sở dữ liệu tạm thời không truy cập được, vui lòng thử lại sau giây lát / "
               "The database is unavailable for a moment; retry shortly.")
UNAVAILABLE_TITLE = ("Cơ sở dữ liệu tạm thời không sẵn sàng", "Database unavailable")
RETRY_AFTER = {"Retry-After": "1"}
# The database went away: unreachable, shutting down or starting (57P0x), full (53300), or the connection
# was lost (class 08, or the session ended by idle_in_transaction_session_timeout).
OUTAGE: tuple[type[BaseException], ...] = (
    pg.PostgresConnectionError, pg.AdminShutdownError, pg.CrashShutdownError, pg.CannotConnectNowError,
    pg.DatabaseDroppedError, pg.IdleSessionTimeoutError, pg.TooManyConnectionsError,
    pg.IdleInTransactionSessionTimeoutError,
)
# Out of time: statement_timeout or a cancel (57014), lock_timeout (55P03), asyncpg's command_timeout.
OUT_OF_TIME: tuple[type[BaseException], ...] = (pg.QueryCanceledError, pg.LockNotAvailableError, TimeoutError)
log = structlog.get_logger("db")


def unavailable() -> ProblemError:
    return ProblemError(503, "database_unavailable", UNAVAILABLE, title=UNAVAILABLE_TITLE, headers=RETRY_AFTER)


def busy() -> ProblemError:
    return ProblemError(503, "busy", BUSY, headers=RETRY_AFTER)


def as_problem(exc: BaseException, conn: asyncpg.Connection[Any] | None) -> ProblemError | None:
    """The 503 a database failure is to the caller, or None when it is not one. An OSError or an asyncpg
    interface error counts only when the connection is gone (a full disk under file storage is no outage)."""
    if isinstance(exc, OUTAGE):
        return unavailable()
    if isinstance(exc, OUT_OF_TIME):
        return busy()
    if isinstance(exc, (OSError, pg.InterfaceError)) and (conn is None or is_gone(conn)):
        return unavailable()
    if isinstance(exc, pg.InternalClientError):  # the protocol state broke with the server's going (never reused)
        return unavailable()
    return None


def is_gone(conn: asyncpg.Connection[Any]) -> bool:
    """The connection is closed (a pooled one that was lost is handed back to its pool at once)."""
    try:
        closed: bool = conn.is_closed()
    except pg.InterfaceError:  # "connection has been released back to the pool"
        return True
    return closed


def compile_query(query: Query, args: Sequence[Any]) -> tuple[str, Sequence[Any]]:
    """SQL text passes as is; a Core statement becomes `$n` SQL and its bound values, in order."""
    if isinstance(query, str):
        return query, args
    if args:
        raise TypeError("a Core statement carries its own values; pass no positional arguments")
    compiled = query.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    assert isinstance(compiled, SQLCompiler)
    params = compiled.construct_params() or {}
    order = compiled.positiontup or []
    return str(compiled), [params[name] for name in order]


def rows_affected(status: str) -> int:
    """asyncpg's command status ('UPDATE 3', 'INSERT 0 1') as the number of rows it touched."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class Tx:
    """One unit of work on one connection: statements share one transaction, begun by the first."""

    __slots__ = ("_after_commit", "_nested", "_tx", "conn", "info")

    def __init__(self, conn: asyncpg.Connection[Any], *, nested: bool = False) -> None:
        self.conn = conn
        self.info: dict[str, Any] = {}
        self._tx: asyncpg.transaction.Transaction | None = None
        self._nested = nested  # the connection is already inside a transaction owned by someone else
        self._after_commit: list[Callable[[], None]] = []

    async def connection(self) -> asyncpg.Connection[Any]:
        """The connection with this unit's transaction open (for libraries that take one: pgqueuer)."""
        if self._tx is None and not self._nested:
            self._tx = self.conn.transaction()
            await self._tx.start()
        return self.conn

    async def fetch(self, query: Query, *args: Any) -> list[asyncpg.Record]:
        sql, values = compile_query(query, args)
        rows: list[asyncpg.Record] = await (await self.connection()).fetch(sql, *values)
        return rows

    async def fetchrow(self, query: Query, *args: Any) -> asyncpg.Record | None:
        sql, values = compile_query(query, args)
        return await (await self.connection()).fetchrow(sql, *values)

    async def fetchval(self, query: Query, *args: Any) -> Any:
        sql, values = compile_query(query, args)
        return await (await self.connection()).fetchval(sql, *values)

    async def execute(self, query: Query, *args: Any) -> int:
        """Runs a statement; returns the number of rows it inserted, updated or deleted."""
        sql, values = compile_query(query, args)
        return rows_affected(await (await self.connection()).execute(sql, *values))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await (await self.connection()).executemany(sql, rows)

    async def statement(self, query: Query, *args: Any) -> list[asyncpg.Record]:
        """A statement that stands alone (a write done in ONE statement, or a read of reference data):
        committed on its own, with no BEGIN, when no transaction is open yet. Inside an open one (this
        unit's, or a test's outer transaction) it runs in a savepoint, so when it fails the transaction
        stays usable (e.g. to read the answer kept for an Idempotency-Key that turned out taken)."""
        sql, values = compile_query(query, args)
        rows: list[asyncpg.Record]
        if self.conn.is_in_transaction():
            async with self.conn.transaction():
                rows = await self.conn.fetch(sql, *values)
        else:
            rows = await self.conn.fetch(sql, *values)
        return rows

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the work is committed (never after a rollback)."""
        self._after_commit.append(callback)

    async def _commit(self) -> None:
        if self._tx is not None:
            tx, self._tx = self._tx, None
            await tx.commit()

    async def _rollback(self) -> None:
        if self._tx is not None:
            tx, self._tx = self._tx, None
            await tx.rollback()

    def _committed(self) -> None:
        for callback in self._after_commit:
            callback()


class Database:
    """The pool of one process (opened on first use) and the units of work taken from it."""

    def __init__(self, settings: Settings, application_name: str = "motcua", *, pool_size: int | None = None,
                 server_settings: dict[str, str] | None = None, waker: JobWaker | None = None,
                 role: DbRole = "request") -> None:
        """`role` picks the connections' time bounds: "request" (services, gateway) or "job" (workers)."""
        self.settings = settings
        self.role = role
        self.waker = waker
        timeouts = settings.db_timeouts(role)
        extra = {**(server_settings or {}), **({WAKE_SETTING: "on"} if waker is not None else {})}
        size = pool_size or settings.db_pool_size
        self._pool_args: dict[str, Any] = {
            "dsn": settings.asyncpg_dsn, "min_size": min(2, size), "max_size": size,
            "server_settings": {"application_name": application_name, "timezone": "UTC",
                                **timeouts.server_settings, **extra},
            "command_timeout": timeouts.command_timeout, "timeout": settings.db_connect_timeout,
            "reset": rollback_if_open, "init": json_codecs,
        }
        self._acquire_timeout = settings.db_pool_timeout
        self._pool: asyncpg.Pool[Any] | None = None
        self._lock = asyncio.Lock()
        self._bound: asyncpg.Connection[Any] | None = None

    def bind_to(self, conn: asyncpg.Connection[Any]) -> None:
        """Tests: every unit of work runs in a savepoint of `conn`'s open transaction (rolled back later)."""
        self._bound = conn

    async def pool(self) -> asyncpg.Pool[Any]:
        """The pool, opened on first use; while the database cannot be reached, each use tries again."""
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    pool = asyncpg.create_pool(**self._pool_args)
                    try:
                        await pool
                    except BaseException:
                        pool.terminate()  # the connections it did open
                        raise
                    self._pool = pool
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """One unit of work: committed when the block ends, rolled back if it raises. A database outage or
        a statement out of time leaves as a 503 `ProblemError` (with `Retry-After`)."""
        if self._bound is not None:
            async with self._unit(Tx(self._bound)) as tx:
                yield tx
            return
        try:
            pool = await self.pool()
        except (OSError, TimeoutError, pg.PostgresError, pg.InterfaceError) as exc:
            self._raise_problem("connect", exc, None)
            raise
        try:  # the timeout's machinery only when no connection is idle
            conn = await (pool.acquire() if pool.get_idle_size() else pool.acquire(timeout=self._acquire_timeout))
        except TimeoutError as exc:
            raise busy() from exc
        except (OSError, pg.PostgresError, pg.InterfaceError) as exc:  # a new connection could not be opened
            self._raise_problem("acquire", exc, None)
            raise
        try:
            async with self._unit(Tx(conn)) as tx:
                yield tx
        finally:
            try:
                await pool.release(conn)
            except Exception as exc:  # asyncpg has closed it: the pool opens another in its place
                log.warning("db_release_failed", error=repr(exc))

    def _raise_problem(self, stage: str, exc: BaseException, conn: asyncpg.Connection[Any] | None) -> None:
        """Raises the 503 a database failure is (logged); returns when `exc` is no such failure."""
        problem = as_problem(exc, conn)
        if problem is None:
            return
        log.warning("db_unavailable" if problem.code == "database_unavailable" else "db_out_of_time",
                    stage=stage, role=self.role, error=f"{exc.__class__.__name__}: {exc}")
        raise problem from exc

    @asynccontextmanager
    async def _unit(self, tx: Tx) -> AsyncIterator[Tx]:
        try:
            yield tx
        except Exception as exc:
            if isinstance(exc, pg.InternalClientError) and tx.conn is not self._bound:
                _terminate(tx.conn)  # its protocol state is broken: never handed on
            await self._rollback(tx)
            self._raise_problem("statement", exc, tx.conn)
            raise
        except BaseException:  # cancelled (the request's deadline, a shutdown): rolled back all the same
            await self._rollback(tx)
            raise
        try:
            await tx._commit()
        except Exception as exc:
            await self._rollback(tx)
            self._raise_problem("commit", exc, tx.conn)
            raise
        if self.waker is not None and tx.info.pop("wake_jobs", False):
            self.waker.poke()
        tx._committed()

    async def _rollback(self, tx: Tx) -> None:
        """Rolls back; a pooled connection that cannot (lost, stuck) is closed, never handed on."""
        if tx.conn is not self._bound and is_gone(tx.conn):
            tx._tx = None  # lost with its connection (which asyncpg has handed back to the pool)
            return
        try:
            await tx._rollback()
        except asyncio.CancelledError:
            _terminate(tx.conn)
            raise
        except Exception as exc:
            if tx.conn is self._bound:
                raise
            log.warning("db_rollback_failed", error=repr(exc))
            _terminate(tx.conn)

    async def dispose(self) -> None:
        if self.waker is not None:
            await self.waker.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


def _terminate(conn: asyncpg.Connection[Any]) -> None:
    """Closes a pooled connection that cannot be handed on (the pool opens a new one in its place)."""
    with contextlib.suppress(pg.InterfaceError):  # already closed, and so already back in the pool
        conn.terminate()


async def rollback_if_open(conn: asyncpg.Connection[Any]) -> None:
    """Connections hold no session state (no LISTEN, SET or session locks): asyncpg's reset round trip
    on release is skipped, but an open transaction is never handed on."""
    if conn.is_in_transaction() and not conn.is_closed():
        await conn.execute("ROLLBACK")


async def json_codecs(conn: asyncpg.Connection[Any]) -> None:
    """json/jsonb as Python values both ways (a str is taken as JSON text already)."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, schema="pg_catalog", encoder=_as_json_text, decoder=orjson.loads)


def _as_json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


async def get_tx(request: Request) -> AsyncIterator[Tx]:
    """One transaction per request; it commits before the response is sent (scope="function")."""
    async with request.app.state.db.transaction() as tx:
        yield tx


TxDep = Annotated[Tx, Depends(get_tx, scope="function")]
