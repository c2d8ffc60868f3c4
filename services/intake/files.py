"""Uploaded files (tệp đính kèm): type sniffed from the content, SHA-256, one storage interface."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import puremagic
from fastapi import Request
from sqlalchemy import Table

from services.intake import file_repository as repo
from shared.auth import Principal
from shared.db import Tx
from shared.idempotency import Idempotency, parse_key, scope_of
from shared.problems import ProblemError, error_item

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


def upload_idempotency(request: Request, tx: Tx, table: Table, who: Principal, name: str,
                       content: bytes) -> Idempotency:
    """The upload's optional Idempotency-Key, fingerprinted over the file's name and bytes (a multipart body's
    boundary changes on every retry, so the raw body cannot be the fingerprint)."""
    fingerprint = hashlib.sha256(name.encode("utf-8", "replace") + b"\0" + content).hexdigest()
    key = parse_key(request.headers.get("idempotency-key"))
    return Idempotency(tx, table, scope_of(who), key, fingerprint, request.method, request.url.path)


async def store(tx: Tx, storage: FileStorage, who: Principal, name: str, content: bytes,
                max_bytes: int, now: datetime) -> dict[str, Any]:
    """The row and the bytes (written before the commit: a rolled-back upload leaves bytes no row names)."""
    if len(content) > max_bytes:
        raise ProblemError(413, "payload_too_large", f"Tệp quá lớn (tối đa {max_bytes // 1048576} MB) / file too "
                           f"large (at most {max_bytes} bytes)")
    if not content:
        raise ProblemError(422, "validation_error", "Tệp rỗng / the file is empty",
                           errors=[error_item("file", "empty", "empty")])
    file_id = str(uuid.uuid4())
    row: dict[str, Any] = {"id": file_id, "owner": who.subject, "owner_role": who.role, "name": name[:255] or "tep",
           "content_type": sniff(content), "size": len(content), "sha256": hashlib.sha256(content).hexdigest(),
           "created_at": now}
    await repo.insert_file(tx, row)
    storage.put(file_id, content)
    return row


UPLOADER_ROLES = ("citizen", "officer", "supervisor")  # and admin; not kiosk, postal_partner, gov_system


async def readable(tx: Tx, file_id: str, who: Principal) -> dict[str, Any]:
    """A file for its uploader, the staff of the agencies handling a dossier it is attached to, and admins.
    Anyone else gets the same 404 as for a file that does not exist."""
    found = await repo.get_file(tx, file_id) if len(file_id) <= 36 else None
    allowed = found is not None and (
        who.role == "admin" or (found["owner"] == who.subject and found["owner_role"] == who.role)
        or (who.is_staff() and who.agency_code is not None
            and await repo.attached_to_agency(tx, file_id, who.agency_code)))
    if found is None or not allowed:
        raise ProblemError(404, "not_found", f"Không có tệp {file_id} / No file {file_id} for you")
    return found


async def unknown_file_errors(tx: Tx, documents: Sequence[Any], who: Principal) -> list[dict[str, str]]:
    """One error item per file id the documents name that `unknown_ids` refuses (in id order)."""
    missing = await unknown_ids(tx, [f for d in documents for f in d.file_ids], who)
    return [error_item("documents.file_ids", f"không có tệp {m} / unknown file {m}", "unknown_file")
            for m in sorted(missing)]


async def unknown_ids(tx: Tx, ids: list[str], who: Principal) -> set[str]:
    """File ids a dossier or supplement refers to that do not exist or are not the caller's own upload
    (an admin may attach any): nobody attaches someone else's file to read it through the dossier."""
    if not ids:
        return set()
    owner = None if who.role == "admin" else (who.subject, who.role)
    return set(ids) - await repo.found_ids(tx, ids, owner)
