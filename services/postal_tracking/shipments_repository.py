"""SQL of shipments: creation, reads, listing, and the stale ones the polling fallback asks about."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from services.postal_tracking.models import FINAL_STATUSES, partners, shipment_events, shipments
from shared.db import Tx


async def insert_shipment(tx: Tx, values: dict[str, Any]) -> dict[str, Any] | None:
    """None when the dossier already has a shipment in that direction (or the number is taken)."""
    row = await tx.fetchrow(insert(shipments).values(**values).on_conflict_do_nothing().returning(shipments))
    return dict(row) if row else None


async def find_by_dossier(tx: Tx, dossier_code: str, direction: str) -> dict[str, Any] | None:
    row = await tx.fetchrow(select(shipments).where(shipments.c.dossier_code == dossier_code,
                                                    shipments.c.direction == direction))
    return dict(row) if row else None


async def get_shipment(tx: Tx, shipment_id: str) -> dict[str, Any] | None:
    row = await tx.fetchrow(select(shipments).where(shipments.c.id == shipment_id))
    return dict(row) if row else None


async def list_shipments(
    tx: Tx, *, agency_code: str | None, partner_code: str | None, dossier_code: str | None,
    statuses: Sequence[str], direction: str | None, after: tuple[datetime, str] | None, limit: int,
) -> list[dict[str, Any]]:
    q = select(shipments)
    if agency_code is not None:
        q = q.where(shipments.c.agency_code == agency_code)
    if partner_code is not None:
        q = q.where(shipments.c.partner_code == partner_code)
    if dossier_code is not None:
        q = q.where(shipments.c.dossier_code == dossier_code)
    if statuses:
        q = q.where(shipments.c.status.in_(list(statuses)))
    if direction is not None:
        q = q.where(shipments.c.direction == direction)
    if after is not None:
        q = q.where(or_(shipments.c.created_at > after[0],
                        and_(shipments.c.created_at == after[0], shipments.c.id > after[1])))
    rows = await tx.fetch(q.order_by(shipments.c.created_at, shipments.c.id).limit(limit))
    return [dict(r) for r in rows]


async def timeline(tx: Tx, shipment_id: str) -> list[dict[str, Any]]:
    rows = await tx.fetch(select(shipment_events).where(shipment_events.c.shipment_id == shipment_id)
                          .order_by(shipment_events.c.occurred_at, shipment_events.c.id))
    return [dict(r) for r in rows]


async def stale_shipments(tx: Tx, older_than: datetime, limit: int) -> list[dict[str, Any]]:
    """Open shipments the partner has told nothing about since `older_than` (polling fallback)."""
    rows = await tx.fetch(
        select(shipments.c.id, shipments.c.partner_code, shipments.c.tracking_number, shipments.c.direction,
               shipments.c.created_at, partners.c.tracking_api, partners.c.tracking_api_url)
        .join(partners, partners.c.code == shipments.c.partner_code)
        .where(shipments.c.status.not_in(FINAL_STATUSES), shipments.c.last_heard_at < older_than,
               partners.c.tracking_api != "none", partners.c.active)
        .order_by(shipments.c.last_heard_at).limit(limit))
    return [dict(r) for r in rows]


async def mark_heard(tx: Tx, ids: Sequence[str], at: datetime) -> None:
    if ids:
        await tx.execute(update(shipments).where(shipments.c.id.in_(list(ids))).values(last_heard_at=at))


LOCKED_COLUMNS = (
    "id::text AS id, direction, dossier_code, agency_code, partner_code, tracking_number, status, created_at, "
    "effects, sender->>'phone' AS sender_phone, recipient->>'phone' AS recipient_phone, "
    "sender->>'name' AS sender_name, recipient->>'name' AS recipient_name, version"
)
LOCK_BY_TRACKING_SQL = (
    f"SELECT {LOCKED_COLUMNS} FROM postal.shipments WHERE partner_code = $1 AND tracking_number = ANY($2::text[]) "
    "ORDER BY id FOR UPDATE"
)
LOCK_BY_IDS_SQL = f"SELECT {LOCKED_COLUMNS} FROM postal.shipments WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"


async def lock_by_tracking(tx: Tx, partner_code: str, numbers: Sequence[str]) -> list[dict[str, Any]]:
    """Locks the partner's shipments with these numbers, in a stable order (no deadlocks)."""
    return [dict(r) for r in await tx.fetch(LOCK_BY_TRACKING_SQL, partner_code, list(numbers))]


async def lock_by_ids(tx: Tx, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Locks these shipments in a stable order (no deadlocks); ids as text."""
    return [dict(r) for r in await tx.fetch(LOCK_BY_IDS_SQL, list(ids))]
