"""Admin view of a service's failed jobs (held, never dropped) and a retry action."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from shared.auth import Principal, require_roles
from shared.db import TxDep
from shared.jobs import JobRegistry
from shared.problems import ProblemError


class FailedJob(BaseModel):
    id: int
    entrypoint: str
    attempts: int
    created: str
    updated: str
    payload: dict[str, Any] | None
    last_error: str | None


def jobs_admin_router(registry: JobRegistry) -> APIRouter:
    router = APIRouter(prefix="/v1/admin/jobs", tags=["admin"])
    admin = Depends(require_roles("admin"))

    @router.get("/failed", summary="Failed jobs of this service (held for inspection and retry)")
    async def failed(tx: TxDep, _p: Principal = admin) -> list[FailedJob]:
        rows = await tx.fetch(
            "SELECT q.id, q.entrypoint, q.attempts, q.created, q.updated, q.payload, "
            " (SELECT l.traceback::text FROM jobs.pgqueuer_log l WHERE l.job_id = q.id "
            "  AND l.traceback IS NOT NULL ORDER BY l.id DESC LIMIT 1) AS last_error "
            "FROM jobs.pgqueuer q WHERE q.status = 'failed' AND q.entrypoint = ANY($1) "
            "ORDER BY q.id DESC LIMIT 200", list(registry.entrypoints))
        return [FailedJob(
            id=r["id"], entrypoint=r["entrypoint"], attempts=r["attempts"], created=r["created"].isoformat(),
            updated=r["updated"].isoformat(),
            payload=json.loads(r["payload"]) if r["payload"] else None, last_error=r["last_error"],
        ) for r in rows]

    @router.post("/{job_id}/retry", summary="Put a failed job back in the queue")
    async def retry(job_id: int, tx: TxDep, _p: Principal = admin) -> dict[str, Any]:
        row = await tx.fetchrow(
            "UPDATE jobs.pgqueuer SET status = 'queued', attempts = 0, execute_after = NOW(), "
            "updated = NOW() WHERE id = $1 AND status = 'failed' AND entrypoint = ANY($2) "
            "RETURNING id, entrypoint", job_id, list(registry.entrypoints))
        if row is None:
            raise ProblemError(404, "not_found",
                               f"Không có job lỗi #{job_id} / No failed job #{job_id} in this service")
        return {"id": row["id"], "entrypoint": row["entrypoint"], "status": "queued"}

    return router
