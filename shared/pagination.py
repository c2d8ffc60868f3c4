"""Keyset pagination: an opaque cursor holding the last row's sort values."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from shared.problems import ProblemError

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps(list(values), default=str, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, size: int) -> list[Any] | None:
    """Returns the sort values, or raises a 400 problem the caller can act on."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError) as exc:
        raise ProblemError(400, "bad_request", "cursor không hợp lệ / Invalid cursor") from exc
    if not isinstance(values, list) or len(values) != size:
        raise ProblemError(400, "bad_request", "cursor không hợp lệ / Invalid cursor")
    return values
