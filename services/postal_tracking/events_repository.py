"""SQL of the webhook path: deliveries received, events placed on timelines, shipments' folded states.

Plain SQL text on purpose: this is the hot path, one round trip per step whatever the batch size.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from shared.db import Tx

INSERT_DELIVERY_SQL = (
    "INSERT INTO postal.deliveries (partner_code, webhook_id, events, body_sha256) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT DO NOTHING RETURNING 1"
)
EVENT_COLUMNS = ("shipment_id", "dedupe_key", "status", "occurred_at", "source", "webhook_id", "event_index",
                 "correction", "failure_reason", "raw_code", "location", "note")
EVENT_TYPES = ("uuid", "text", "text", "timestamptz", "text", "text", "int", "bool", "text", "text", "text", "text")
# The SELECT does not see the CTE's rows, so the new ones are added apart (flagged `new`).
INSERT_EVENTS_SQL = (
    f"WITH ins AS (INSERT INTO postal.shipment_events ({', '.join(EVENT_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'${i + 1}::{t}[]' for i, t in enumerate(EVENT_TYPES))}) "
    "ON CONFLICT (shipment_id, dedupe_key) DO NOTHING "
    "RETURNING shipment_id, dedupe_key, status, occurred_at, correction, failure_reason, raw_code) "
    "SELECT true AS new, shipment_id::text AS shipment_id, dedupe_key, status, occurred_at, correction, "
    "failure_reason, raw_code FROM ins UNION ALL "
    "SELECT false, shipment_id::text, dedupe_key, status, occurred_at, correction, failure_reason, raw_code "
    f"FROM postal.shipment_events WHERE shipment_id = ANY(${len(EVENT_COLUMNS) + 1}::uuid[])"
)
UPDATE_STATES_SQL = (
    "UPDATE postal.shipments s SET status = u.status, status_at = u.status_at, failure_reason = u.reason, "
    "failure_raw_code = u.raw, failed_attempts = u.attempts, last_event_at = u.last_event_at, "
    "effects = u.effects::jsonb, last_heard_at = now(), updated_at = now(), "
    "version = s.version + CASE WHEN s.status IS DISTINCT FROM u.status "
    "OR s.failed_attempts IS DISTINCT FROM u.attempts THEN 1 ELSE 0 END "
    "FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::int[], "
    "$7::timestamptz[], $8::text[]) AS u(id, status, status_at, reason, raw, attempts, last_event_at, effects) "
    "WHERE s.id = u.id"
)
TOUCH_HEARD_SQL = "UPDATE postal.shipments SET last_heard_at = now() WHERE id = ANY($1::uuid[])"


async def insert_delivery(tx: Tx, partner_code: str, webhook_id: str, events: int, sha256: str) -> bool:
    """False when this webhook-id was already received from this partner (a retry or a replay)."""
    return await tx.fetchval(INSERT_DELIVERY_SQL, partner_code, webhook_id, events, sha256) is not None


async def insert_events(tx: Tx, rows: Sequence[dict[str, Any]], shipment_ids: Sequence[str],
                        ) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Adds the events not already on their timeline; returns those new ones and the shipments' whole
    timelines, in one round trip."""
    arrays = [[r.get(c) for r in rows] for c in EVENT_COLUMNS]
    found = await tx.fetch(INSERT_EVENTS_SQL, *arrays, list(shipment_ids))
    new: list[dict[str, Any]] = []
    timelines: dict[str, list[dict[str, Any]]] = {i: [] for i in shipment_ids}
    for r in found:
        d = dict(r)
        if d.pop("new"):
            new.append(d)
        timelines[d["shipment_id"]].append(d)
    return new, timelines


async def update_states(tx: Tx, rows: Sequence[dict[str, Any]]) -> None:
    """rows: id, status, status_at, failure_reason, failure_raw_code, failed_attempts, last_event_at, effects."""
    if rows:
        await tx.execute(
            UPDATE_STATES_SQL, [r["id"] for r in rows], [r["status"] for r in rows], [r["status_at"] for r in rows],
            [r["failure_reason"] for r in rows], [r["failure_raw_code"] for r in rows],
            [r["failed_attempts"] for r in rows], [r["last_event_at"] for r in rows],
            [json.dumps(r["effects"]) for r in rows])


async def touch_heard(tx: Tx, ids: Sequence[str]) -> None:
    if ids:
        await tx.execute(TOUCH_HEARD_SQL, list(ids))
