"""Small rules every postal domain uses: who is staff, field errors, 404s, ids, the clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared.problems import ProblemError

STAFF = ("officer", "supervisor")



def not_found(what_vi: str, what_en: str, ident: str) -> ProblemError:
    return ProblemError(404, "not_found", f"Không tìm thấy {what_vi} {ident} / No {what_en} {ident} for you")


def valid_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def now_utc() -> datetime:
    return datetime.now(UTC)
