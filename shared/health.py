"""/healthz, /readyz (the database commits, migrations at head) and /metrics for every process."""

from __future__ import annotations

import asyncio

import asyncpg.exceptions as pg
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.auth import CurrentPrincipal
from shared.db import Database, Tx
from shared.migrations import HISTORIES, head_revisions
from shared.problems import ProblemError, problem_response


def readiness_sql(histories: list[str]) -> str:
    """One statement, committed on its own. It writes to the WAL (a transactional logical message: no table,
    no privilege needed, ignored by logical decoders), so its commit waits for the WAL flush and any
    synchronous standby like a request's write: when commits stall, it does not answer (a `txid_current()`
    alone would not wait: a transaction that wrote nothing commits asynchronously). It also says whether
    writes are refused (read-only) and reads each history's applied revisions (a lock held on one of those
    tables stops it too)."""
    versions = "".join(f', ARRAY(SELECT version_num FROM "{HISTORIES[h][0]}".alembic_version)' for h in histories)
    return (f"SELECT pg_logical_emit_message(true, 'motcua.readiness', ''), "
            f"current_setting('transaction_read_only') = 'off'{versions}")


async def check_database(db: Database, histories: list[str], within: float | None = None) -> dict[str, str]:
    """Returns problems by name; empty when ready: the database commits a write within `within` seconds
    (`READINESS_TIMEOUT_SECONDS`) and every history is at head. One round trip when all is well."""
    problems: dict[str, str] = {}
    seconds = within if within is not None else db.settings.readiness_timeout_seconds
    try:
        async with asyncio.timeout(seconds), db.transaction() as tx:
            try:
                row = (await tx.statement(readiness_sql(histories)))[0]
            except pg.UndefinedTableError:  # a history never migrated: which one
                row = [None, True, *[await applied(tx, h) for h in histories]]
        if not row[1]:
            problems["database"] = "read-only: writes are refused"
        for history, current in zip(histories, row[2:], strict=True):
            if set(current) != head_revisions(history):
                problems[history] = f"migrations not at head (at {sorted(current)})"
    except TimeoutError:
        problems["database"] = f"no commit within {seconds:g} s"
    except ProblemError as exc:  # unreachable, shutting down, out of time (shared/db.py)
        problems["database"] = exc.code
    except Exception as exc:
        problems["database"] = f"error: {exc.__class__.__name__}"
    return problems


async def applied(tx: Tx, history: str) -> list[str]:
    schema = HISTORIES[history][0]
    if not await tx.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{schema}".alembic_version'):
        return []
    return [r[0] for r in await tx.fetch(f'SELECT version_num FROM "{schema}".alembic_version')]


def health_router(histories: list[str]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: the database commits and migrations are at head")
    async def readyz(request: Request) -> Response:
        problems = await check_database(request.app.state.db, histories)
        if problems:
            return problem_response(request, 503, "upstream_unavailable",
                                    "Chưa sẵn sàng / Not ready", extra={"checks": problems})
        return JSONResponse({"status": "ready", "checks": {h: "ok" for h in histories}})

    @router.get("/v1/ping", summary="Authenticated round trip without the database")
    async def ping(principal: CurrentPrincipal) -> dict[str, str]:
        return {"status": "ok", "subject": principal.subject, "role": principal.role}

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
