"""The live board: latest calls, counters and people waiting; the events a reconnecting board missed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.queue_ticket import board_repository as repo
from services.queue_ticket import clock
from services.queue_ticket.common import office_or_404
from shared.db import Tx

REPLAY_LIMIT = 500


def event_out(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "kind": row["kind"], **row["payload"]}


async def board(tx: Tx, office_code: str) -> dict[str, Any]:
    office = await office_or_404(tx, office_code)
    latest = await repo.latest_events(tx, office_code, 10)
    waiting = await repo.waiting_by_category(tx, office_code)
    counters = await repo.counters_with_current(tx, office_code)
    return {
        "office_code": office_code, "office_name": office["name"], "generated_at": clock.now(),
        "last_event_id": latest[0]["id"] if latest else await repo.last_event_id(tx, office_code),
        "latest_calls": [event_out(r) for r in latest],
        "counters": [{"id": r["id"], "number": r["number"], "name": r["name"], "active": r["active"],
                      "officer_name": r["officer_name"], "ticket_id": r["ticket_id"],
                      "ticket_number": r["ticket_number"], "ticket_status": r["ticket_status"],
                      "called_at": r["called_at"]} for r in counters],
        "waiting": [{"category_code": r["code"], "prefix": r["prefix"], "name": r["name"],
                     "waiting": r["waiting"]} for r in waiting],
        "waiting_total": sum(int(r["waiting"]) for r in waiting),
    }


async def board_replay(tx: Tx, office_code: str, after_id: int) -> list[dict[str, Any]] | None:
    """Events after `after_id` for a reconnecting board; None when too many were missed (send a snapshot)."""
    await office_or_404(tx, office_code)
    rows = await repo.events_after(tx, office_code, after_id, REPLAY_LIMIT + 1)
    if len(rows) > REPLAY_LIMIT:
        return None
    return [event_out(r) for r in rows]


async def purge_events(tx: Tx, older_than_days: int = 2) -> int:
    return await repo.purge_board_events(tx, clock.now() - timedelta(days=older_than_days))
