"""SQL of the officers' lists: the worklist, the tracking book (form 07) and the deadline watch's picks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_, update

from services.dossier_workflow.models import dossiers
from shared.db import Tx

RUNNING = ("received", "in_progress")


async def worklist(
    tx: Tx, agency: str | None, *, status: str | None, overdue: bool | None,
    due_before: datetime | None, procedure_code: str | None, name_key: str | None,
    after: tuple[datetime | None, str] | None, limit: int, now: datetime,
) -> list[dict[str, Any]]:
    """Ordered by due date, NULLS LAST (no due date yet: never overdue), then code; `after` the last row's pair."""
    query = select(dossiers)
    if agency is not None:
        query = query.where(dossiers.c.current_agency == agency)
    if status:
        query = query.where(dossiers.c.status == status)
    if overdue is not None:
        late = and_(dossiers.c.status.in_(RUNNING), dossiers.c.due_at.is_not(None), dossiers.c.due_at < now)
        query = query.where(late if overdue else ~late)
    if due_before is not None:
        query = query.where(dossiers.c.due_at < due_before)
    if procedure_code:
        query = query.where(dossiers.c.procedure_code == procedure_code)
    if name_key:
        query = query.where(dossiers.c.applicant_name_key.contains(name_key, autoescape=True))
    if after is not None and after[0] is None:
        query = query.where(dossiers.c.due_at.is_(None), dossiers.c.code > after[1])
    elif after is not None:
        query = query.where(or_(tuple_(dossiers.c.due_at, dossiers.c.code) > tuple_(*after),
                                dossiers.c.due_at.is_(None)))
    rows = await tx.fetch(query.order_by(dossiers.c.due_at.asc().nulls_last(), dossiers.c.code).limit(limit))
    return [dict(r) for r in rows]


def _book_rows(agency: str | None, start: datetime) -> list[Any]:
    """The tracking book's rows from `start` on: dossiers received by, or now held by, the agency (all: None)."""
    where = [dossiers.c.received_at >= start]
    if agency is not None:
        where.append(or_(dossiers.c.receiving_agency == agency, dossiers.c.current_agency == agency))
    return where


async def tracking_book(
    tx: Tx, agency: str | None, start: datetime, end: datetime, after: tuple[datetime, str] | None, limit: int,
) -> list[dict[str, Any]]:
    query = select(dossiers).where(*_book_rows(agency, start), dossiers.c.received_at < end)
    if after is not None:
        query = query.where(tuple_(dossiers.c.received_at, dossiers.c.code) > tuple_(*after))
    rows = await tx.fetch(query.order_by(dossiers.c.received_at, dossiers.c.code).limit(limit))
    return [dict(r) for r in rows]


async def book_rows_before(tx: Tx, agency: str | None, start: datetime, after: tuple[datetime, str]) -> int:
    """How many entries of the book come before the cursor in its period (form 07's STT goes on from there)."""
    count = await tx.fetchval(select(func.count()).select_from(dossiers).where(
        *_book_rows(agency, start), tuple_(dossiers.c.received_at, dossiers.c.code) <= tuple_(*after)))
    return int(count or 0)


async def active_past(tx: Tx, moment: datetime, column: str, limit: int) -> list[dict[str, Any]]:
    """Active dossiers due before `moment` not yet flagged in `column` (overdue / due-soon runs)."""
    flag_column = dossiers.c[column]
    rows = await tx.fetch(
        select(dossiers).where(dossiers.c.status.in_(RUNNING), dossiers.c.due_at < moment, flag_column.is_(None))
        .order_by(dossiers.c.due_at).limit(limit).with_for_update(skip_locked=True))
    return [dict(r) for r in rows]


async def flag(tx: Tx, codes: list[str], column: str, when: datetime) -> None:
    """Flags set by periodic jobs are bookkeeping, not transitions: the version does not move."""
    await tx.execute(update(dossiers).where(dossiers.c.code.in_(codes)).values({column: when}))


async def acceptance_alerts(tx: Tx, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Online dossiers still waiting for acceptance past their alert time, not yet alerted."""
    rows = await tx.fetch(
        select(dossiers.c.code, dossiers.c.current_agency, dossiers.c.acceptance_due_at)
        .where(dossiers.c.channel == "online", dossiers.c.status == "received", dossiers.c.clock_started.is_(False),
               dossiers.c.acceptance_alert_at <= now, dossiers.c.acceptance_alerted_at.is_(None))
        .order_by(dossiers.c.acceptance_alert_at).limit(limit).with_for_update(skip_locked=True))
    return [dict(r) for r in rows]


async def supplements_expired(tx: Tx, now: datetime, limit: int) -> list[str]:
    rows = await tx.fetch(
        select(dossiers.c.code).where(dossiers.c.status == "supplement_requested", dossiers.c.supplement_due_at < now)
        .order_by(dossiers.c.supplement_due_at).limit(limit).with_for_update(skip_locked=True))
    return [r["code"] for r in rows]
