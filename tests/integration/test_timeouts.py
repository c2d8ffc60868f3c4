"""Time-bounded database work on a real PostgreSQL: held locks, slow statements, a request's deadline,
readiness when nothing can commit, and a database that goes away and comes back.

Every wait here is bounded by the settings under test; none of these tests hangs when a bound is missing:
they fail on their own timing assertion instead."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import StreamingResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from scripts import devdb
from scripts.stack import free_port
from shared.app import create_service_app
from shared.db import Database, TxDep
from shared.health import check_database
from shared.middleware import DEADLINE_HEADER
from shared.migrations import migration_timeouts, with_command_timeout
from shared.settings import Settings
from tests.conftest import assert_problem

router = APIRouter(prefix="/v1")


@router.post("/rows/{k}")
async def bump(k: str, tx: TxDep) -> dict[str, int]:
    """A write on a row another session may hold."""
    n = await tx.fetchval("UPDATE timeoutkit.rows SET n = n + 1 WHERE k = $1 RETURNING n", k)
    return {"n": int(n or 0)}


@router.post("/slow/{k}")
async def slow(k: str, tx: TxDep, seconds: float = 30.0) -> dict[str, str]:
    """Writes, then runs a statement that takes `seconds`: its write must not survive when it is cut short."""
    await tx.execute("INSERT INTO timeoutkit.rows (k, n) VALUES ($1, 0)", k)
    await tx.fetchval("SELECT pg_sleep($1)", seconds)
    return {"status": "slept"}


@router.get("/stream")
async def stream() -> StreamingResponse:
    """An answer that goes on for longer than the deadline, once it has begun (like the board's events)."""
    async def events() -> AsyncIterator[bytes]:
        for i in range(5):
            yield b"data: %d\n\n" % i
            await asyncio.sleep(0.15)

    return StreamingResponse(events(), media_type="text/event-stream")


@router.get("/touch")
async def touch(tx: TxDep) -> dict[str, int]:
    return {"one": int(await tx.fetchval("SELECT 1"))}


def build(settings: Settings) -> tuple[FastAPI, str]:
    """An app with its own application_name, to find its sessions in pg_stat_activity."""
    service = f"tk{uuid.uuid4().hex[:10]}"
    app = create_service_app(service=service, title="timeoutkit", description="", routers=[router],
                             histories=["core", "jobs"], settings=settings)
    return app, f"motcua-{service}"


@asynccontextmanager
async def client_for(app: FastAPI, verifier: Any) -> AsyncIterator[httpx.AsyncClient]:
    app.state.verifier = verifier
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                     base_url="http://t", timeout=60) as c:
            yield c
    finally:
        await app.state.close(app)


@pytest.fixture(scope="module")
async def kit(database_url: str) -> None:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await conn.execute("CREATE SCHEMA IF NOT EXISTS timeoutkit; "
                           "CREATE TABLE IF NOT EXISTS timeoutkit.rows (k text PRIMARY KEY, n int NOT NULL); "
                           "INSERT INTO timeoutkit.rows VALUES ('held', 0) ON CONFLICT DO NOTHING")
    finally:
        await conn.close()


@pytest.fixture
async def other(settings: Settings, kit: None) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A second session: it holds locks, and looks at pg_stat_activity."""
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def active_queries(conn: asyncpg.Connection[Any], application_name: str) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'",
        application_name))


async def all_idle(db: Database) -> bool:
    pool = await db.pool()
    return bool(pool.get_idle_size() == pool.get_size())


async def timed(c: httpx.AsyncClient, method: str, path: str, **kw: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    r = await asyncio.wait_for(c.request(method, path, **kw), 20)  # a missing bound fails, never hangs
    return r, time.monotonic() - started


@pytest.mark.parametrize("lock", ["FOR UPDATE", "ACCESS EXCLUSIVE"])
async def test_a_held_lock_is_a_503_after_the_lock_timeout_not_a_hang(
        settings: Settings, verifier: Any, other: asyncpg.Connection[Any], lock: str) -> None:
    app, name = build(settings.model_copy(update={"db_request_lock_timeout": 1.0}))
    async with client_for(app, verifier) as c:
        assert (await c.post("/v1/rows/held")).status_code == 200
        async with other.transaction():
            if lock == "FOR UPDATE":
                await other.execute("SELECT * FROM timeoutkit.rows WHERE k = 'held' FOR UPDATE")
            else:
                await other.execute("LOCK TABLE timeoutkit.rows IN ACCESS EXCLUSIVE MODE")
            r, took = await timed(c, "POST", "/v1/rows/held")
            assert_problem(r, 503, "busy")
            assert r.headers["retry-after"] == "1"
            assert 0.9 <= took < 4.0, took  # the lock_timeout (1 s), not the time the lock is held
            assert await all_idle(app.state.db) and await active_queries(other, name) == 0
        assert (await c.post("/v1/rows/held")).status_code == 200  # the lock gone, the same pool serves


async def test_a_statement_past_its_timeout_is_a_503(settings: Settings, verifier: Any,
                                                     other: asyncpg.Connection[Any]) -> None:
    app, name = build(settings.model_copy(update={"db_request_statement_timeout": 1.0}))
    async with client_for(app, verifier) as c:
        k = uuid.uuid4().hex
        r, took = await timed(c, "POST", f"/v1/slow/{k}?seconds=20")
        assert_problem(r, 503, "busy")
        assert r.headers["retry-after"] == "1"
        assert 0.9 <= took < 4.0, took
        assert await other.fetchval("SELECT count(*) FROM timeoutkit.rows WHERE k = $1", k) == 0
        assert await all_idle(app.state.db) and await active_queries(other, name) == 0
        assert (await c.get("/v1/touch")).status_code == 200


async def test_connections_carry_the_bounds_of_their_role(settings: Settings) -> None:
    for role, expected in (("request", ("5s", "2s", "10s")), ("job", ("1min", "10s", "2min"))):
        db = Database(settings, role=role)  # type: ignore[arg-type]
        try:
            async with db.transaction() as tx:
                got = await tx.fetchrow("SELECT current_setting('statement_timeout') s, "
                                        "current_setting('lock_timeout') l, "
                                        "current_setting('idle_in_transaction_session_timeout') i")
                assert got is not None and tuple(got) == expected
                assert tx.conn._config.command_timeout == settings.db_timeouts(role).command_timeout  # type: ignore[arg-type]
        finally:
            await db.dispose()


async def test_the_callers_deadline_cancels_the_query_and_frees_the_connection(
        settings: Settings, verifier: Any, other: asyncpg.Connection[Any]) -> None:
    """No statement timeout would stop this one for a minute: the caller's deadline (800 ms) does."""
    app, name = build(settings.model_copy(update={"db_request_statement_timeout": 60.0}))
    async with client_for(app, verifier) as c:
        k = uuid.uuid4().hex
        r, took = await timed(c, "POST", f"/v1/slow/{k}?seconds=30", headers={DEADLINE_HEADER: "800"})
        body = assert_problem(r, 504, "request_timeout")
        assert body["title"] == "Hết thời gian xử lý"
        assert 0.7 <= took < 3.0, took
        # the query was cancelled in PostgreSQL, the write rolled back, the connection is back in the pool
        assert await active_queries(other, name) == 0
        assert await all_idle(app.state.db)
        assert await other.fetchval("SELECT count(*) FROM timeoutkit.rows WHERE k = $1", k) == 0
        assert (await c.get("/v1/touch")).status_code == 200
        # a malformed or absent budget leaves the service's own cap (REQUEST_TIMEOUT_SECONDS)
        for value in ("-1", "soon", "9" * 40):
            assert (await c.get("/v1/touch", headers={DEADLINE_HEADER: value})).status_code == 200


async def test_an_answer_that_has_begun_is_not_cut_by_the_deadline(settings: Settings, verifier: Any) -> None:
    app, _ = build(settings)
    async with client_for(app, verifier) as c:
        r, took = await timed(c, "GET", "/v1/stream", headers={DEADLINE_HEADER: "300"})
        assert r.status_code == 200 and r.text.count("data:") == 5 and took >= 0.6


async def test_the_services_own_cap_bounds_a_request_without_a_deadline(
        settings: Settings, verifier: Any, other: asyncpg.Connection[Any]) -> None:
    app, name = build(settings.model_copy(update={"db_request_statement_timeout": 60.0,
                                                  "request_timeout_seconds": 1.0}))
    async with client_for(app, verifier) as c:
        r, took = await timed(c, "POST", f"/v1/slow/{uuid.uuid4().hex}?seconds=30")
        assert_problem(r, 504, "request_timeout")
        assert 0.9 <= took < 3.5, took
        assert await active_queries(other, name) == 0 and await all_idle(app.state.db)


async def test_readiness_fails_while_a_lock_keeps_it_from_reading_and_when_writes_are_refused(
        settings: Settings, verifier: Any, other: asyncpg.Connection[Any]) -> None:
    app, _ = build(settings.model_copy(update={"readiness_timeout_seconds": 1.0}))
    async with client_for(app, verifier) as c:
        assert (await c.get("/readyz")).status_code == 200
        async with other.transaction():
            await other.execute("LOCK TABLE core.alembic_version IN ACCESS EXCLUSIVE MODE")
            r, took = await timed(c, "GET", "/readyz")
            body = assert_problem(r, 503, "upstream_unavailable")
            assert "database" in body["checks"] and took < 3.0, (body, took)
        assert (await c.get("/readyz")).status_code == 200
    # a database that takes no writes (default_transaction_read_only, a standby promoted back...) is not ready
    app, _ = build(settings)
    app.state.db = Database(settings, server_settings={"default_transaction_read_only": "on"})
    async with client_for(app, verifier) as c:
        body = assert_problem(await c.get("/readyz"), 503, "upstream_unavailable")
        assert body["checks"]["database"].startswith("read-only")


async def test_a_session_killed_mid_query_is_a_503_and_the_pool_recovers(
        settings: Settings, verifier: Any, other: asyncpg.Connection[Any]) -> None:
    app, name = build(settings)
    async with client_for(app, verifier) as c:
        request = asyncio.create_task(c.post(f"/v1/slow/{uuid.uuid4().hex}?seconds=3"))
        for _ in range(200):
            if await active_queries(other, name):
                break
            await asyncio.sleep(0.02)
        # its session ends (as in a restart, or an operator's pg_terminate_backend); the idle one stays
        await other.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 "
                            "AND state = 'active'", name)
        r = await request
        assert_problem(r, 503, "database_unavailable")
        assert r.headers["retry-after"] == "1"
        assert (await c.get("/v1/touch")).status_code == 200


async def test_the_migrations_bounds_refuse_to_queue_behind_a_held_lock(
        settings: Settings, other: asyncpg.Connection[Any]) -> None:
    bounds = settings.model_copy(update={"db_migration_lock_timeout": 0.5})
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        async with other.transaction():
            await other.execute("SELECT * FROM timeoutkit.rows LIMIT 1")  # a request reading: ACCESS SHARE
            started = time.monotonic()
            with pytest.raises(asyncpg.LockNotAvailableError):
                async with conn.transaction():
                    for statement in migration_timeouts(bounds):
                        await conn.execute(statement)
                    await conn.execute("ALTER TABLE timeoutkit.rows ADD COLUMN never int")
            assert time.monotonic() - started < 3.0
    finally:
        await conn.close()
    # the client's backstop reaches asyncpg through alembic's URL
    engine = create_async_engine(with_command_timeout(settings.database_url, bounds))
    try:
        async with engine.connect() as sa:
            raw = await sa.get_raw_connection()
            assert raw.driver_connection._config.command_timeout == 601.0  # type: ignore[union-attr]
            assert (await sa.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_a_database_on_a_closed_port_is_a_503_not_a_500(settings: Settings, verifier: Any) -> None:
    url = f"postgresql+asyncpg://motcua@127.0.0.1:{free_port()}/motcua"
    app, _ = build(settings.model_copy(update={"database_url": url}))
    app.state.db = Database(settings.model_copy(update={"database_url": url}))
    async with client_for(app, verifier) as c:
        r = await c.get("/v1/touch")
        body = assert_problem(r, 503, "database_unavailable")
        assert r.headers["retry-after"] == "1" and body["title"] == "Cơ sở dữ liệu tạm thời không sẵn sàng"
        body = assert_problem(await c.get("/readyz"), 503, "upstream_unavailable")
        assert body["checks"] == {"database": "database_unavailable"}


@pytest.fixture(scope="module")
def own_server() -> Any:
    """A PostgreSQL of this module's own, to stop, restart and stall (devdb, on a free port)."""
    name = f"pg-h2-timeouts-{uuid.uuid4().hex[:6]}"
    url = devdb.start(name, free_port(), fast=False)  # commits wait for the WAL flush, as in production
    try:
        yield name, url
    finally:
        devdb.stop(name)
        link = devdb.ROOT / ".data" / name
        shutil.rmtree(link.resolve(), ignore_errors=True)
        if link.is_symlink():
            link.unlink()


def start_again(name: str, url: str) -> None:
    """pg_ctl start on the same port (devdb.start would move to another while the old one lingers)."""
    port = url.rsplit(":", 1)[1].split("/")[0]
    pgdata = (devdb.ROOT / ".data" / name).resolve()
    devdb._run([str(devdb.find_bindir() / "pg_ctl"), "-D", str(pgdata), "-l", str(pgdata / "server.log"),
                "-o", f"-p {port}", "-w", "-t", "60", "start"], devdb.run_as_user(), capture_output=True, check=True)


async def test_a_database_that_stops_is_a_503_and_serves_again_when_it_is_back(
        settings: Settings, verifier: Any, own_server: tuple[str, str]) -> None:
    name, url = own_server
    down = settings.model_copy(update={"database_url": url})
    app, _ = build(down)
    async with client_for(app, verifier) as c:
        assert (await c.get("/v1/touch")).status_code == 200
        await asyncio.to_thread(devdb.stop, name)  # pg_ctl stop -m fast: every session ends with 57P01
        statuses = set()
        for _ in range(3):
            r = await c.get("/v1/touch")
            assert_problem(r, 503, "database_unavailable")
            assert r.headers["retry-after"] == "1"
            statuses.add(r.status_code)
        assert statuses == {503}
        await asyncio.to_thread(start_again, name, url)
        started = time.monotonic()
        while (await c.get("/v1/touch")).status_code != 200:
            assert time.monotonic() - started < 10, "no recovery within 10 s"
            await asyncio.sleep(0.1)


async def test_readiness_fails_while_commits_stall(settings: Settings, own_server: tuple[str, str]) -> None:
    """Commits that wait for a synchronous standby that never answers: reads still work, nothing commits."""
    _, url = own_server
    admin = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    db = Database(settings.model_copy(update={"database_url": url}))
    try:
        assert await check_database(db, [], within=1.0) == {}
        await admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'h2_nobody'")
        await admin.execute("SELECT pg_reload_conf()")
        await asyncio.sleep(0.3)
        started = time.monotonic()
        assert await check_database(db, [], within=1.0) == {"database": "no commit within 1 s"}
        assert time.monotonic() - started < 3.0
        async with db.transaction() as tx:  # the connection came back to the pool usable
            assert await tx.fetchval("SELECT 1") == 1
    finally:
        await admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
        await admin.execute("SELECT pg_reload_conf()")
        await admin.close()
    await asyncio.sleep(0.3)
    try:
        assert await check_database(db, [], within=2.0) == {}
    finally:
        await db.dispose()


async def test_a_connection_whose_protocol_state_broke_is_a_503_and_never_handed_on(settings: Settings) -> None:
    """After a fast shutdown asyncpg may report "cannot switch to state …; another operation is in progress"
    (InternalClientError) on a pooled connection: the caller gets 503, and that connection is closed."""
    from shared.problems import ProblemError

    db = Database(settings, application_name="motcua-broken-protocol", pool_size=1)
    try:
        with pytest.raises(ProblemError) as caught:
            async with db.transaction() as tx:
                await tx.fetchval("SELECT 1")
                broken = tx.conn
                raise asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress")
        assert caught.value.status == 503 and caught.value.code == "database_unavailable"
        assert caught.value.headers is not None and caught.value.headers["Retry-After"] == "1"
        async with db.transaction() as tx:  # the pool's one slot: a new connection, not the broken one
            assert await tx.fetchval("SELECT 1") == 1
            assert tx.conn._con is not broken._con  # type: ignore[attr-defined]
    finally:
        await db.dispose()
