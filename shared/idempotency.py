"""Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): the one module every retried write uses.

The answer to a request with a key is kept in the owning service's `idempotency_keys` table, in the
same transaction as the domain rows, and sent back (with `Idempotent-Replayed: true`) to a retry.

Two ways to use it, both through `IdempotencyDep`-style dependencies from `idempotency_guard`:
- a write of several statements: `replay = await idem.begin()` (takes the key's lock for the
  transaction, returns the kept answer if any), then `return await idem.remember(status, body)`;
- a write that is ONE statement and inserts the key itself (`KEEP_ANSWER_SQL`): when that insert
  finds the key taken it raises `KeyUsed`, and `await idem.stored()` answers with what was kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, String, Table, delete, func

from shared.auth import CurrentPrincipal, Principal
from shared.db import Tx, TxDep
from shared.encoding import json_bytes
from shared.problems import ProblemError

REPLAY_HEADER = "idempotent-replayed"
IN_USE = ("Yêu cầu với cùng Idempotency-Key đang được xử lý, thử lại sau / "
          "A request with this Idempotency-Key is still being processed; retry later")
MISMATCH = ("Idempotency-Key này đã dùng cho một yêu cầu khác; hãy dùng khóa mới / "
            "This Idempotency-Key was used for a different request; use a new key")
KEPT_FOR = timedelta(hours=24)


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


def keep_answer_sql(schema: str, first_param: int) -> str:
    """An INSERT of a kept answer for one-statement writes: parameters scope, key, method, path,
    fingerprint, status, body (bytea) from `$first_param` on. A used key violates the primary key."""
    p = [f"${first_param + i}" for i in range(7)]
    return (f'INSERT INTO "{schema}".idempotency_keys (scope, key, method, path, fingerprint, status, body, '
            f"content_type) VALUES ({', '.join(p)}, 'application/json')")


class KeyUsed(Exception):
    """A one-statement write found its Idempotency-Key taken: the request that took it committed first."""


class Idempotency:
    """The key of one request (or none) and the table its answer is kept in."""

    __slots__ = ("fingerprint", "key", "method", "path", "scope", "table", "tx")

    def __init__(self, tx: Tx, table: Table, scope: str, key: str | None,
                 fingerprint: str, method: str, path: str) -> None:
        self.tx = tx
        self.table = table
        self.scope = scope
        self.key = key
        self.fingerprint = fingerprint
        self.method = method
        self.path = path

    @classmethod
    def of_request(cls, request: Request, tx: Tx, table: Table, principal: Principal, body: bytes, *,
                   required: bool) -> Idempotency:
        """The key a request carries (400 when `required` and missing), for `principal` and this body."""
        raw = request.headers.get("idempotency-key")
        key = required_key(raw) if required else parse_key(raw)
        fingerprint = fingerprint_of(body) if key is not None else ""
        return cls(tx, table, scope_of(principal), key, fingerprint, request.method, request.url.path)

    @property
    def params(self) -> tuple[str, str, str, str, str]:
        """scope, key, method, path, fingerprint: the first five values of `keep_answer_sql`."""
        assert self.key is not None
        return self.scope, self.key, self.method, self.path, self.fingerprint

    async def begin(self) -> Response | None:
        """Locks the key for this transaction; the kept answer when the request was already served."""
        if self.key is None:
            return None
        lock_name = f"{self.table.schema}:{self.scope}:{self.key}"
        if not await self.tx.fetchval("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", lock_name):
            raise ProblemError(409, "idempotency_key_in_use", IN_USE, headers={"Retry-After": "1"})
        return await self._find()

    async def remember(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        """Keeps the answer with the domain rows (same transaction) and returns it (bytes: JSON already)."""
        raw = body if isinstance(body, bytes) else json_bytes(body)
        if self.key is not None:
            await self.tx.execute(keep_answer_sql(str(self.table.schema), 1), *self.params, status, raw)
        return Response(raw, status_code=status, headers=headers, media_type="application/json")

    async def stored(self) -> Response:
        """The answer kept for a key a one-statement write found used (its insert lost the race)."""
        found = await self._find()
        if found is None:
            raise ProblemError(409, "idempotency_key_in_use", IN_USE, headers={"Retry-After": "1"})
        return found

    async def _find(self) -> Response | None:
        row = await self.tx.fetchrow(
            f'SELECT fingerprint, status, body, content_type, path FROM "{self.table.schema}".idempotency_keys '
            "WHERE scope = $1 AND key = $2", self.scope, self.key)
        if row is None:
            return None
        if row["fingerprint"] != self.fingerprint or row["path"] != self.path:
            raise ProblemError(422, "idempotency_key_mismatch", MISMATCH)
        return Response(content=row["body"], status_code=row["status"], media_type=row["content_type"],
                        headers={REPLAY_HEADER: "true"})


def idempotency_guard(table: Table, *, required: bool = True) -> Callable[..., Coroutine[Any, Any, Idempotency]]:
    """FastAPI dependency: the request's key (400 when `required` and missing) bound to its transaction."""

    async def dependency(request: Request, tx: TxDep, principal: CurrentPrincipal) -> Idempotency:
        return Idempotency.of_request(request, tx, table, principal, await request.body(), required=required)

    return dependency


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


def required_key(raw: str | None) -> str:
    key = parse_key(raw)
    if key is None:
        raise ProblemError(
            400, "idempotency_key_missing",
            "Thiếu header Idempotency-Key (ví dụ một UUID) / "
            "Send an Idempotency-Key header (e.g. a UUID) with this request",
        )
    return key


def fingerprint_of(body: bytes) -> str:
    """The same JSON sent again (whatever its spacing or key order) has the same fingerprint."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True).encode() if body else b""
    except ValueError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def scope_of(principal: Principal) -> str:
    return f"{principal.role}:{principal.subject}"


async def purge_idempotency_keys(tx: Tx, table: Table, older_than: timedelta = KEPT_FOR) -> int:
    cutoff = datetime.now().astimezone() - older_than
    return await tx.execute(delete(table).where(table.c.created_at < cutoff))


def idempotency_key_header(*, required: bool) -> dict[str, Any]:
    """`openapi_extra=` documenting the Idempotency-Key header (read by `idempotency_guard`, not by FastAPI,
    so that a missing key answers our 400 `idempotency_key_missing`)."""
    return {"parameters": [{
        "name": "Idempotency-Key", "in": "header", "required": required,
        "description": "Khóa duy nhất của yêu cầu (ví dụ một UUID); gửi lại cùng khóa nhận lại đúng câu trả lời "
                       "đầu tiên / a unique key per request (e.g. a UUID): a retry with it gets the first answer",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        "example": "3f2b8c1e-6a4d-4e0b-9d51-2c7f0e9a1b64"}]}
