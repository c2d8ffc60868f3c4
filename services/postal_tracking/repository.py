"""All SQL of the postal-tracking service.

The webhook path (deliveries, locks, events, state updates) is plain SQL on the request's asyncpg
connection: it is the hot path. Everything else goes through SQLAlchemy Core.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.postal_tracking.models import (
    FINAL_STATUSES,
    fees,
    handover_items,
    handovers,
    partner_secrets,
    partners,
    shipment_events,
    shipments,
)
from shared.core_models import agencies
from shared.db import raw_connection

# ---------------------------------------------------------------- partners and reference data


async def get_partner(session: AsyncSession, code: str) -> dict[str, Any] | None:
    row = (await session.execute(select(partners).where(partners.c.code == code))).first()
    return dict(row._mapping) if row else None


async def default_partner(session: AsyncSession) -> dict[str, Any] | None:
    row = (await session.execute(select(partners).where(partners.c.is_default, partners.c.active)
                                 .order_by(partners.c.code).limit(1))).first()
    return dict(row._mapping) if row else None


async def valid_secrets(session: AsyncSession, partner_code: str) -> list[str] | None:
    """The partner's valid webhook secrets; None when there is no such active partner."""
    conn = await raw_connection(session)
    rows = await conn.fetch(
        "SELECT p.code, s.secret FROM postal.partners p LEFT JOIN postal.partner_secrets s "
        "ON s.partner_code = p.code AND s.revoked_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > now()) "
        "WHERE p.code = $1 AND p.active ORDER BY s.id DESC", partner_code)
    if not rows:
        return None
    return [r["secret"] for r in rows if r["secret"]]


async def add_secret(session: AsyncSession, partner_code: str, secret: str,
                     expires_at: datetime | None = None) -> None:
    await session.execute(insert(partner_secrets).values(partner_code=partner_code, secret=secret,
                                                         expires_at=expires_at))


async def postage_for(session: AsyncSession, partner_code: str, service_code: str, weight: int) -> int | None:
    row = (await session.execute(
        select(fees.c.postage).where(fees.c.partner_code == partner_code, fees.c.service_code == service_code,
                                     fees.c.max_weight_grams >= weight)
        .order_by(fees.c.max_weight_grams).limit(1))).first()
    return int(row[0]) if row else None


async def service_exists(session: AsyncSession, partner_code: str, service_code: str) -> bool:
    return bool((await session.execute(text(
        "SELECT 1 FROM postal.partner_services WHERE partner_code = :p AND code = :c"),
        {"p": partner_code, "c": service_code})).first())


async def get_agency(session: AsyncSession, code: str) -> dict[str, Any] | None:
    row = (await session.execute(select(agencies.c.code, agencies.c.name, agencies.c.admin_unit_code)
                                 .where(agencies.c.code == code))).first()
    return dict(row._mapping) if row else None


async def next_tracking_serial(session: AsyncSession) -> int:
    return int((await session.execute(text("SELECT nextval('postal.tracking_seq')"))).scalar_one())


# ---------------------------------------------------------------- shipments


async def insert_shipment(session: AsyncSession, values: dict[str, Any]) -> dict[str, Any] | None:
    """None when the dossier already has a shipment in that direction (or the number is taken)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    row = (await session.execute(pg_insert(shipments).values(**values).on_conflict_do_nothing()
                                 .returning(shipments))).first()
    return dict(row._mapping) if row else None


async def find_shipment(session: AsyncSession, *, dossier_code: str | None = None, direction: str | None = None,
                        partner_code: str | None = None, tracking_number: str | None = None) -> dict[str, Any] | None:
    q = select(shipments)
    if dossier_code is not None:
        q = q.where(shipments.c.dossier_code == dossier_code, shipments.c.direction == direction)
    else:
        q = q.where(shipments.c.partner_code == partner_code, shipments.c.tracking_number == tracking_number)
    row = (await session.execute(q)).first()
    return dict(row._mapping) if row else None


async def get_shipment(session: AsyncSession, shipment_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(shipments).where(shipments.c.id == shipment_id))).first()
    return dict(row._mapping) if row else None


async def list_shipments(
    session: AsyncSession, *, agency_code: str | None, partner_code: str | None, dossier_code: str | None,
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
    rows = await session.execute(q.order_by(shipments.c.created_at, shipments.c.id).limit(limit))
    return [dict(r._mapping) for r in rows]


async def timeline(session: AsyncSession, shipment_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(select(shipment_events).where(shipment_events.c.shipment_id == shipment_id)
                                 .order_by(shipment_events.c.occurred_at, shipment_events.c.id))
    return [dict(r._mapping) for r in rows]


async def stale_shipments(session: AsyncSession, older_than: datetime, limit: int) -> list[dict[str, Any]]:
    """Open shipments the partner has told nothing about since `older_than` (polling fallback)."""
    q = (select(shipments.c.id, shipments.c.partner_code, shipments.c.tracking_number, shipments.c.direction,
                shipments.c.created_at, partners.c.tracking_api, partners.c.tracking_api_url)
         .join(partners, partners.c.code == shipments.c.partner_code)
         .where(shipments.c.status.not_in(FINAL_STATUSES), shipments.c.last_heard_at < older_than,
                partners.c.tracking_api != "none", partners.c.active)
         .order_by(shipments.c.last_heard_at).limit(limit))
    return [dict(r._mapping) for r in await session.execute(q)]


async def mark_heard(session: AsyncSession, ids: Sequence[str], at: datetime) -> None:
    if ids:
        await session.execute(update(shipments).where(shipments.c.id.in_(list(ids))).values(last_heard_at=at))


# ---------------------------------------------------------------- the webhook hot path (asyncpg)


async def insert_delivery(session: AsyncSession, partner_code: str, webhook_id: str, events: int,
                          sha256: str) -> bool:
    """False when this webhook-id was already received from this partner (a retry or a replay)."""
    conn = await raw_connection(session)
    row = await conn.fetchval(
        "INSERT INTO postal.deliveries (partner_code, webhook_id, events, body_sha256) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING RETURNING 1", partner_code, webhook_id, events, sha256)
    return row is not None


_SHIPMENT_COLS = ("id::text AS id, direction, dossier_code, agency_code, partner_code, tracking_number, status, "
                  "created_at, effects::text AS effects, sender->>'phone' AS sender_phone, "
                  "recipient->>'phone' AS recipient_phone, sender->>'name' AS sender_name, "
                  "recipient->>'name' AS recipient_name, version")


async def lock_by_tracking(session: AsyncSession, partner_code: str, numbers: Sequence[str]) -> list[dict[str, Any]]:
    """Locks the partner's shipments with these numbers, in a stable order (no deadlocks)."""
    conn = await raw_connection(session)
    rows = await conn.fetch(
        f"SELECT {_SHIPMENT_COLS} FROM postal.shipments WHERE partner_code = $1 AND tracking_number = ANY($2::text[]) "
        "ORDER BY id FOR UPDATE", partner_code, list(numbers))
    return [_shipment_record(r) for r in rows]


async def lock_by_ids(session: AsyncSession, ids: Sequence[str]) -> list[dict[str, Any]]:
    conn = await raw_connection(session)
    rows = await conn.fetch(
        f"SELECT {_SHIPMENT_COLS} FROM postal.shipments WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
        list(ids))
    return [_shipment_record(r) for r in rows]


def _shipment_record(r: Any) -> dict[str, Any]:
    d = dict(r)
    d["effects"] = json.loads(d["effects"]) if d["effects"] else {}
    return d


async def insert_events(session: AsyncSession, rows: Sequence[dict[str, Any]], shipment_ids: Sequence[str],
                        ) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Adds the events not already on their timeline; returns those new ones and the shipments' whole
    timelines (one round trip: the SELECT does not see the CTE's rows, so they are added apart)."""
    conn = await raw_connection(session)
    cols = ("shipment_id", "dedupe_key", "status", "occurred_at", "source", "webhook_id", "event_index",
            "correction", "failure_reason", "raw_code", "location", "note")
    types = ("uuid", "text", "text", "timestamptz", "text", "text", "int", "bool", "text", "text", "text", "text")
    arrays = [[r.get(c) for r in rows] for c in cols]
    unnest = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
    found = await conn.fetch(
        f"WITH ins AS (INSERT INTO postal.shipment_events ({', '.join(cols)}) SELECT * FROM unnest({unnest}) "
        "ON CONFLICT (shipment_id, dedupe_key) DO NOTHING "
        "RETURNING shipment_id, dedupe_key, status, occurred_at, correction, failure_reason, raw_code) "
        "SELECT true AS new, shipment_id::text AS shipment_id, dedupe_key, status, occurred_at, correction, "
        "failure_reason, raw_code FROM ins UNION ALL "
        "SELECT false, shipment_id::text, dedupe_key, status, occurred_at, correction, failure_reason, raw_code "
        f"FROM postal.shipment_events WHERE shipment_id = ANY(${len(cols) + 1}::uuid[])",
        *arrays, list(shipment_ids))
    new: list[dict[str, Any]] = []
    timelines: dict[str, list[dict[str, Any]]] = {i: [] for i in shipment_ids}
    for r in found:
        d = dict(r)
        if d.pop("new"):
            new.append(d)
        timelines[d["shipment_id"]].append(d)
    return new, timelines


async def update_states(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """rows: id, status, status_at, failure_reason, failure_raw_code, failed_attempts, last_event_at, effects."""
    if not rows:
        return
    conn = await raw_connection(session)
    await conn.execute(
        "UPDATE postal.shipments s SET status = u.status, status_at = u.status_at, failure_reason = u.reason, "
        "failure_raw_code = u.raw, failed_attempts = u.attempts, last_event_at = u.last_event_at, "
        "effects = u.effects::jsonb, last_heard_at = now(), updated_at = now(), "
        "version = s.version + CASE WHEN s.status IS DISTINCT FROM u.status "
        "OR s.failed_attempts IS DISTINCT FROM u.attempts THEN 1 ELSE 0 END "
        "FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::int[], "
        "$7::timestamptz[], $8::text[]) AS u(id, status, status_at, reason, raw, attempts, last_event_at, effects) "
        "WHERE s.id = u.id",
        [r["id"] for r in rows], [r["status"] for r in rows], [r["status_at"] for r in rows],
        [r["failure_reason"] for r in rows], [r["failure_raw_code"] for r in rows],
        [r["failed_attempts"] for r in rows], [r["last_event_at"] for r in rows],
        [json.dumps(r["effects"]) for r in rows])


async def touch_heard(session: AsyncSession, ids: Sequence[str]) -> None:
    if ids:
        conn = await raw_connection(session)
        await conn.execute("UPDATE postal.shipments SET last_heard_at = now() WHERE id = ANY($1::uuid[])", list(ids))


# ---------------------------------------------------------------- handovers


async def open_handovers_of(session: AsyncSession, shipment_ids: Sequence[str]) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(handover_items.c.shipment_id, handover_items.c.handover_id)
        .where(handover_items.c.shipment_id.in_(list(shipment_ids)), handover_items.c.is_open))
    return [dict(r._mapping) for r in rows]


async def get_shipments(session: AsyncSession, ids: Sequence[str]) -> list[dict[str, Any]]:
    rows = await session.execute(select(shipments).where(shipments.c.id.in_(list(ids))))
    return [dict(r._mapping) for r in rows]


async def insert_handover(session: AsyncSession, values: dict[str, Any], shipment_ids: Sequence[str]) -> dict[str, Any]:
    row = (await session.execute(insert(handovers).values(**values).returning(handovers))).one()
    handover = dict(row._mapping)
    await session.execute(insert(handover_items), [
        {"handover_id": handover["id"], "shipment_id": sid, "position": i, "is_open": True}
        for i, sid in enumerate(shipment_ids, 1)])
    return handover


async def get_handover(session: AsyncSession, handover_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    q = select(handovers).where(handovers.c.id == handover_id)
    if lock:
        q = q.with_for_update()
    row = (await session.execute(q)).first()
    return dict(row._mapping) if row else None


async def handover_shipments(session: AsyncSession, handover_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(shipments).join(handover_items, handover_items.c.shipment_id == shipments.c.id)
        .where(handover_items.c.handover_id == handover_id).order_by(handover_items.c.position))
    return [dict(r._mapping) for r in rows]


async def close_handover(session: AsyncSession, handover_id: str, values: dict[str, Any]) -> None:
    await session.execute(update(handovers).where(handovers.c.id == handover_id).values(**values))
    await session.execute(update(handover_items).where(handover_items.c.handover_id == handover_id)
                          .values(is_open=False))


async def count_events(session: AsyncSession, shipment_id: str) -> int:
    return int((await session.execute(select(func.count()).select_from(shipment_events)
                                      .where(shipment_events.c.shipment_id == shipment_id))).scalar_one())
