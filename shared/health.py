"""/healthz, /readyz (database reachable, migrations at head) and /metrics for every process."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.auth import CurrentPrincipal
from shared.db import Database
from shared.migrations import HISTORIES, head_revisions
from shared.problems import problem_response


async def check_database(db: Database, histories: list[str]) -> dict[str, str]:
    """Returns problems by name; empty when ready."""
    problems: dict[str, str] = {}
    try:
        async with db.transaction() as tx:
            for history in histories:
                schema = HISTORIES[history][0]
                exists = await tx.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{schema}".alembic_version')
                rows = await tx.fetch(f'SELECT version_num FROM "{schema}".alembic_version') if exists else []
                current = {r[0] for r in rows}
                if current != head_revisions(history):
                    problems[history] = f"migrations not at head (at {sorted(current)})"
    except OSError as exc:
        problems["database"] = f"unreachable: {exc.__class__.__name__}"
    except Exception as exc:
        problems["database"] = f"error: {exc.__class__.__name__}"
    return problems


def health_router(histories: list[str]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: database reachable and migrations at head")
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
