"""SQL of handover records (biên bản bàn giao) and the shipments they list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update

from services.postal_tracking.models import handover_items, handovers, shipments
from shared.db import Tx

# The partial unique index (one open handover per shipment) skips a shipment a racing handover took.
INSERT_ITEMS_SQL = (
    "INSERT INTO postal.handover_items (handover_id, shipment_id, position, is_open) "
    "SELECT $1::uuid, shipment_id, position, true FROM unnest($2::uuid[]) WITH ORDINALITY AS i(shipment_id, position) "
    "ON CONFLICT (shipment_id) WHERE is_open DO NOTHING"
)


async def open_handovers_of(tx: Tx, shipment_ids: Sequence[str]) -> list[dict[str, Any]]:
    rows = await tx.fetch(select(handover_items.c.shipment_id, handover_items.c.handover_id)
                          .where(handover_items.c.shipment_id.in_(list(shipment_ids)), handover_items.c.is_open))
    return [dict(r) for r in rows]


async def insert_handover(tx: Tx, values: dict[str, Any], shipment_ids: Sequence[str]) -> dict[str, Any] | None:
    """The new handover, or None when a racing open handover already holds one of the shipments
    (the caller refuses the request, so its transaction rolls back)."""
    row = await tx.fetchrow(insert(handovers).values(**values).returning(handovers))
    assert row is not None
    placed = await tx.execute(INSERT_ITEMS_SQL, row["id"], list(shipment_ids))
    return dict(row) if placed == len(shipment_ids) else None


async def get_handover(tx: Tx, handover_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    q = select(handovers).where(handovers.c.id == handover_id)
    if lock:
        q = q.with_for_update()
    row = await tx.fetchrow(q)
    return dict(row) if row else None


async def handover_shipments(tx: Tx, handover_id: str) -> list[dict[str, Any]]:
    rows = await tx.fetch(
        select(shipments).join(handover_items, handover_items.c.shipment_id == shipments.c.id)
        .where(handover_items.c.handover_id == handover_id).order_by(handover_items.c.position))
    return [dict(r) for r in rows]


async def close_handover(tx: Tx, handover_id: str, values: dict[str, Any]) -> None:
    await tx.execute(update(handovers).where(handovers.c.id == handover_id).values(**values))
    await tx.execute(update(handover_items).where(handover_items.c.handover_id == handover_id)
                     .values(is_open=False))
