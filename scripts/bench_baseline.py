"""The bench's yardstick: the thinnest possible asyncpg endpoints, same server and loop settings."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

DSN = os.environ.get("DATABASE_URL", "").replace("postgresql+asyncpg://", "postgresql://", 1)


def create_app() -> Starlette:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(DSN, min_size=5, max_size=20)
        await pool.execute("CREATE TABLE IF NOT EXISTS public.bench_raw "
                           "(id uuid PRIMARY KEY, body jsonb NOT NULL, created_at timestamptz DEFAULT now())")
        state["pool"] = pool
        yield
        await pool.close()

    async def insert(request: Request) -> Response:
        body = await request.body()
        new_id = uuid.uuid4()
        await state["pool"].execute("INSERT INTO public.bench_raw (id, body) VALUES ($1, $2::jsonb)",
                                    new_id, body.decode() or "{}")
        return Response(json.dumps({"id": str(new_id)}), status_code=201, media_type="application/json")

    async def read(request: Request) -> Response:
        row = await state["pool"].fetchrow("SELECT id, body FROM public.bench_raw LIMIT 1")
        return Response(json.dumps({"id": str(row["id"]) if row else None}), media_type="application/json")

    async def noop(_request: Request) -> Response:
        return Response('{"status":"ok"}', media_type="application/json")

    # /v1/... aliases let a gateway forward to this app (the bench measures the proxy on writes).
    return Starlette(routes=[Route("/insert", insert, methods=["POST"]), Route("/read", read),
                             Route("/noop", noop), Route("/v1/insert", insert, methods=["POST"])],
                     lifespan=lifespan)
