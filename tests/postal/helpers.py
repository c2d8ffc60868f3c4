"""Builders shared by the postal tests: signed deliveries, shipments, counts."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.postal_tracking import jobs
from services.postal_tracking.seed import DEMO_WEBHOOK_SECRET
from services.postal_tracking.webhook import sign
from shared.db import Database, Tx
from tests.conftest import auth

WARD = "000.00.21.H29"
PARTNER = "VNPOST"
EVENTS_URL = f"/v1/partners/{PARTNER}/events"


def signed(events: list[dict[str, Any]], *, secret: str = DEMO_WEBHOOK_SECRET, msg_id: str | None = None,
           at: datetime | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"events": events}, ensure_ascii=False).encode()
    return body, sign(secret, msg_id or f"msg_{uuid.uuid4().hex}", body, at)


def ev(tracking: str, status: str, minutes_ago: float, **kw: Any) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return {"tracking_number": tracking, "status": status, "occurred_at": at.isoformat(), **kw}


def officer(make_token: Any, agency: str = WARD) -> dict[str, str]:
    return auth(make_token("officer", subject="canbo.phuong", agency_code=agency),
                **{"Idempotency-Key": uuid.uuid4().hex})


def partner(make_token: Any, code: str = PARTNER) -> dict[str, str]:
    return auth(make_token("postal_partner", subject="vnpost", partner_code=code),
                **{"Idempotency-Key": uuid.uuid4().hex})


def new_code() -> str:
    return f"{WARD}-251124-{uuid.uuid4().hex[:8]}"


async def know_dossier(db: Tx | Database, code: str | None = None, *, agency: str = WARD,
                       competent: str | None = None, partner_code: str | None = None,
                       channel: str = "counter", delivery: str = "postal") -> str:
    """Postal learns of a dossier as in production: its `postal.dossier_received` job handler runs."""
    code = code or new_code()
    fact = {"code": code, "receiving_agency": agency, "competent_agency": competent or agency,
            "channel": channel, "result_delivery": delivery, "partner_code": partner_code,
            "received_at": datetime.now(UTC).isoformat()}
    if isinstance(db, Database):
        async with db.transaction() as tx:
            await jobs.on_dossier_received(tx, [fact])
    else:
        await jobs.on_dossier_received(db, [fact])
    return code


def shipment_body(direction: str = "outbound", **over: Any) -> dict[str, Any]:
    citizen = {"name": "Nguyễn Văn An", "phone": "0912345678", "address_line": "12 phố Kim Mã",
               "ward_code": "00004"}
    b: dict[str, Any] = {"direction": direction, "dossier_code": new_code(),
                         "agency_code": WARD, "weight_grams": 300, "cod_amount": 0,
                         ("recipient" if direction == "outbound" else "sender"): citizen}
    b.update(over)
    return b


async def new_shipment(client: httpx.AsyncClient, db: Tx | Database, make_token: Any, direction: str = "outbound",
                       **over: Any) -> dict[str, Any]:
    """An officer's shipment for a dossier of their agency that postal knows of."""
    body = shipment_body(direction, **over)
    await know_dossier(db, body["dossier_code"])
    r = await client.post("/v1/shipments", json=body, headers=officer(make_token))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def post_events(client: httpx.AsyncClient, events: list[dict[str, Any]], **kw: Any) -> httpx.Response:
    body, headers = signed(events, **kw)
    return await client.post(EVENTS_URL, content=body, headers=headers)


async def scalar(tx: Tx, sql: str, *args: Any) -> Any:
    return await tx.fetchval(sql, *args)


async def jobs_for(tx: Tx, entrypoint: str, needle: str) -> list[dict[str, Any]]:
    rows = await tx.fetch(
        "SELECT convert_from(payload, 'UTF8')::jsonb->'data' AS data FROM jobs.pgqueuer "
        "WHERE entrypoint = $1 AND convert_from(payload, 'UTF8') LIKE $2 ORDER BY id", entrypoint, f"%{needle}%")
    return [r["data"] for r in rows]


