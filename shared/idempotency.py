"""Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) stored with the domain rows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    func,
)
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import CurrentPrincipal, Principal
from shared.db import SessionDep, Tx, raw_connection
from shared.lean import json_bytes
from shared.problems import ProblemError

REPLAY_HEADER = "idempotent-replayed"


def idempotency_table(metadata: MetaData) -> Table:
    """Each service keeps its keys in its own schema, so they commit with its rows."""
    return Table(
        "idempotency_keys", metadata,
        Column("scope", String(200), primary_key=True),
        Column("key", String(255), primary_key=True),
        Column("method", String(10), nullable=False),
        Column("path", String(500), nullable=False),
        Column("fingerprint", String(64), nullable=False),
        Column("status", Integer, nullable=False),
        Column("body", LargeBinary, nullable=False),
        Column("content_type", String(100), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def parse_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > 255 or not key.isprintable():
        raise ProblemError(
            400, "bad_request",
            "Idempotency-Key phải là chuỗi 1–255 ký tự / Idempotency-Key must be 1–255 printable characters",
        )
    return key


class Idempotency:
    """Guards one creating request; `replay` is set when a stored response must be returned."""

    def __init__(
        self, session: Tx, table: Table, scope: str, key: str | None,
        fingerprint: str, method: str, path: str,
    ) -> None:
        self.session = session
        self.table = table
        self.scope = scope
        self.key = key
        self.fingerprint = fingerprint
        self.method = method
        self.path = path
        self.replay: Response | None = None

    async def begin(self) -> None:
        if self.key is None:
            return
        lock_name = f"{self.table.schema}:{self.scope}:{self.key}"
        conn = await raw_connection(self.session)  # hot path: plain SQL, no statement building
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", lock_name):
            raise ProblemError(
                409, "idempotency_key_in_use",
                "Yêu cầu với cùng Idempotency-Key đang được xử lý, thử lại sau / "
                "A request with this Idempotency-Key is still being processed; retry later",
                headers={"Retry-After": "1"},
            )
        row = await conn.fetchrow(
            f'SELECT fingerprint, status, body, content_type, path FROM "{self.table.schema}".idempotency_keys '
            "WHERE scope = $1 AND key = $2", self.scope, self.key)
        if row is None:
            return
        if row["fingerprint"] != self.fingerprint or row["path"] != self.path:
            raise ProblemError(
                422, "idempotency_key_mismatch",
                "Idempotency-Key này đã dùng cho một yêu cầu khác; hãy dùng khóa mới / "
                "This Idempotency-Key was used for a different request; use a new key",
            )
        self.replay = Response(
            content=row["body"], status_code=row["status"], media_type=row["content_type"],
            headers={REPLAY_HEADER: "true"},
        )

    async def remember(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        """Store the response with the domain rows (same transaction) and return it (bytes: JSON already)."""
        raw = body if isinstance(body, bytes) else json_bytes(body)
        response = Response(raw, status_code=status, headers=headers, media_type="application/json")
        if self.key is not None:
            conn = await raw_connection(self.session)
            await conn.execute(
                f'INSERT INTO "{self.table.schema}".idempotency_keys (scope, key, method, path, fingerprint, status, '
                "body, content_type) VALUES ($1, $2, $3, $4, $5, $6, $7, 'application/json')",
                self.scope, self.key, self.method, self.path, self.fingerprint, status, bytes(response.body))
        return response


def idempotency_guard(
    table: Table, *, required: bool = True,
) -> Callable[..., Coroutine[Any, Any, Idempotency]]:
    """FastAPI dependency: checks the key before the handler runs."""

    async def dependency(
        request: Request, session: SessionDep, principal: CurrentPrincipal,
    ) -> Idempotency:
        key = required_key(request) if required else parse_key(request.headers.get("idempotency-key"))
        fingerprint = fingerprint_of(await request.body())
        idem = Idempotency(
            session, table, scope_of(principal), key, fingerprint, request.method, request.url.path,
        )
        await idem.begin()
        return idem

    return dependency


def fingerprint_of(body: bytes) -> str:
    """The same JSON sent again (whatever its spacing or key order) has the same fingerprint."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True).encode() if body else b""
    except ValueError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def scope_of(principal: Principal) -> str:
    return f"{principal.role}:{principal.subject}"


def required_key(request: Request) -> str:
    key = parse_key(request.headers.get("idempotency-key"))
    if key is None:
        raise ProblemError(
            400, "idempotency_key_missing",
            "Thiếu header Idempotency-Key (ví dụ một UUID) / "
            "Send an Idempotency-Key header (e.g. a UUID) with this request",
        )
    return key


class KeyUsed(Exception):
    """A one-statement write found its Idempotency-Key taken: the request that took it committed first."""


async def find_stored(conn: asyncpg.Connection[Any], table: Table, scope: str, key: str,
                      path: str, fingerprint: str) -> Response | None:
    """The answer kept for this key (replayed), 422 when the key came with another request, else None."""
    row = await conn.fetchrow(
        f'SELECT fingerprint, status, body, content_type, path FROM "{table.schema}".idempotency_keys '
        "WHERE scope = $1 AND key = $2", scope, key)
    if row is None:
        return None
    if row["fingerprint"] != fingerprint or row["path"] != path:
        raise ProblemError(
            422, "idempotency_key_mismatch",
            "Idempotency-Key này đã dùng cho một yêu cầu khác; hãy dùng khóa mới / "
            "This Idempotency-Key was used for a different request; use a new key",
        )
    return Response(content=row["body"], status_code=row["status"], media_type=row["content_type"],
                    headers={REPLAY_HEADER: "true"})


async def stored_response(conn: asyncpg.Connection[Any], table: Table, scope: str, key: str,
                          path: str, fingerprint: str) -> Response:
    """The answer kept for a key that a one-statement write found already used (its insert lost the race)."""
    found = await find_stored(conn, table, scope, key, path, fingerprint)
    if found is None:
        raise ProblemError(409, "idempotency_key_in_use",
                           "Yêu cầu với cùng Idempotency-Key đang được xử lý, thử lại sau / "
                           "A request with this Idempotency-Key is still being processed; retry later",
                           headers={"Retry-After": "1"})
    return found


async def purge_idempotency_keys(session: AsyncSession, table: Table, older_than: timedelta) -> int:
    cutoff = datetime.now().astimezone() - older_than
    result = await session.execute(delete(table).where(table.c.created_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
