"""Polling fallback: asks each partner's tracking API about open shipments we heard nothing of."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.postal_tracking import shipments_repository as shipments_repo
from services.postal_tracking.events_service import ingest_events
from services.postal_tracking.tracking import PartnerTrackingClient, TrackedShipment, client_for
from shared.db import Tx


async def poll_stale(tx: Tx, now: datetime, stale_after: timedelta, limit: int = 500,
                     clients: dict[str, PartnerTrackingClient] | None = None) -> dict[str, int]:
    """`clients` (tests) maps a partner code to its tracking client; otherwise from the partner's row."""
    stale = await shipments_repo.stale_shipments(tx, now - stale_after, limit)
    by_partner: dict[str, list[dict[str, Any]]] = {}
    for s in stale:
        by_partner.setdefault(s["partner_code"], []).append(s)
    accepted = 0
    for partner_code, rows in by_partner.items():
        client = (clients or {}).get(partner_code) or client_for(rows[0])
        if client is None:
            continue
        events = await client.track([TrackedShipment(r["tracking_number"], r["direction"], r["created_at"])
                                     for r in rows], now)
        await shipments_repo.mark_heard(tx, [str(r["id"]) for r in rows], now)
        if events:
            result = await ingest_events(tx, partner_code, events, source="poll", strict=False)
            accepted += result["accepted"]
    return {"polled": len(stale), "accepted": accepted}
