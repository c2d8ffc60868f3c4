"""Uploaded files (tệp đính kèm): type sniffed from the content, SHA-256, one storage interface."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import puremagic
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.models import files
from shared.auth import Principal
from shared.db import Tx, autocommit_connection
from shared.problems import ProblemError

ALLOWED_TYPES = {"application/pdf", "image/jpeg", "image/png"}


class FileStorage(Protocol):
    def put(self, file_id: str, content: bytes) -> None: ...
    def get(self, file_id: str) -> bytes: ...
    def delete(self, file_id: str) -> None: ...


class LocalStorage:
    """A directory on disk (default); an object-store adapter implements the same three methods."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def _path(self, file_id: str) -> Path:
        return self.root / file_id[:2] / file_id

    def put(self, file_id: str, content: bytes) -> None:
        path = self._path(file_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(content)
        tmp.replace(path)

    def get(self, file_id: str) -> bytes:
        return self._path(file_id).read_bytes()

    def delete(self, file_id: str) -> None:
        self._path(file_id).unlink(missing_ok=True)


def sniff(content: bytes) -> str:
    try:
        kind = str(puremagic.from_string(content, mime=True))
    except puremagic.PureError:
        kind = "application/octet-stream"
    if kind not in ALLOWED_TYPES:
        raise ProblemError(415, "unsupported_media_type", f"Chỉ nhận PDF, JPEG, PNG (nội dung là {kind}) / only "
                           f"PDF, JPEG or PNG files are accepted (the content is {kind})")
    return kind


async def store(session: AsyncSession, storage: FileStorage, who: Principal, name: str, content: bytes,
                max_bytes: int, now: datetime) -> dict[str, Any]:
    """The row and the bytes: if the transaction fails the caller removes the bytes (no file kept)."""
    if len(content) > max_bytes:
        raise ProblemError(413, "payload_too_large", f"Tệp quá lớn (tối đa {max_bytes // 1048576} MB) / file too "
                           f"large (at most {max_bytes} bytes)")
    if not content:
        raise ProblemError(422, "validation_error", "Tệp rỗng / the file is empty",
                           errors=[{"field": "file", "message": "empty", "type": "empty"}])
    file_id = str(uuid.uuid4())
    row: dict[str, Any] = {"id": file_id, "owner": who.subject, "owner_role": who.role, "name": name[:255] or "tep",
           "content_type": sniff(content), "size": len(content), "sha256": hashlib.sha256(content).hexdigest(),
           "created_at": now}
    await session.execute(insert(files).values(**row))
    storage.put(file_id, content)
    return row


async def readable(session: AsyncSession, file_id: str, who: Principal) -> dict[str, Any]:
    row = (await session.execute(select(files).where(files.c.id == file_id))).first()
    found = dict(row._mapping) if row else None
    if found is None or not (who.is_staff() or who.role == "admin" or found["owner"] == who.subject):
        raise ProblemError(404, "not_found", f"Không có tệp {file_id} / No file {file_id} for you")
    return found


async def unknown_ids(session: Tx, ids: list[str], who: Principal) -> set[str]:
    """File ids a dossier refers to that do not exist or (for a citizen) are not theirs."""
    if not ids:
        return set()
    conn = await autocommit_connection(session)  # files are never changed once stored: no transaction needed
    rows = await conn.fetch("SELECT id FROM intake.files WHERE id = ANY($1::text[]) "
                            "AND ($2::text IS NULL OR owner = $2)", ids, who.subject if who.role == "citizen" else None)
    found = {r["id"] for r in rows}
    return set(ids) - found
