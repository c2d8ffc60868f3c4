"""The officers' worklist (keyset pages on the due date, then the code), where a dossier may have no due
date yet (its clock has not started): those come last (NULLS LAST) and page on their code."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.dossier_workflow import bounds, deadlines, worklist_repository
from shared.auth import Principal
from shared.db import Tx
from shared.pagination import decode_cursor, encode_cursor
from shared.problems import ProblemError
from shared.text import search_key

NO_DUE = "-"  # the cursor's due date of a dossier whose clock has not started


def keyset(cursor: str | None) -> tuple[datetime | None, str] | None:
    values = decode_cursor(cursor, 2)
    if values is None:
        return None
    if values[0] == NO_DUE:
        return None, str(values[1])
    try:
        at = datetime.fromisoformat(str(values[0]))
        bounds.within("cursor", at)
    except (ValueError, ProblemError) as exc:
        raise ProblemError(400, "bad_request", "cursor không hợp lệ / Invalid cursor") from exc
    return at, str(values[1])


def summary(d: dict[str, Any], now: datetime) -> dict[str, Any]:
    keys = ("code", "procedure_code", "procedure_name", "status", "applicant_name", "received_at", "due_at", "step",
            "step_due_at", "assignee", "current_agency", "channel", "version", "acceptance_due_at")
    return deadlines.localize({**{k: d[k] for k in keys}, "overdue": deadlines.is_overdue(d, now),
                               "awaiting_acceptance": deadlines.awaiting_acceptance(d)})


async def worklist(tx: Tx, who: Principal, *, status: str | None, overdue: bool | None,
                   due_before: datetime | None, procedure_code: str | None, q: str | None, cursor: str | None,
                   limit: int, now: datetime) -> dict[str, Any]:
    rows = await worklist_repository.worklist(
        tx, None if who.role == "admin" else who.agency_code, status=status, overdue=overdue, due_before=due_before,
        procedure_code=procedure_code, name_key=search_key(q) if q else None,
        after=keyset(cursor), limit=limit + 1, now=now)
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    next_cursor = None
    if more and last is not None:
        next_cursor = encode_cursor([last["due_at"].isoformat() if last["due_at"] is not None else NO_DUE,
                                     last["code"]])
    return {"items": [summary(r, now) for r in rows], "next_cursor": next_cursor}
