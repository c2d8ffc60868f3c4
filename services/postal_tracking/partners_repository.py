"""SQL of the reference data: partners, their webhook secrets and fee tables, agencies, tracking serials."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.postal_tracking.models import fees, partner_services, partners
from shared.core_models import agencies
from shared.db import Tx

VALID_SECRETS_SQL = (
    "SELECT p.code, s.secret FROM postal.partners p LEFT JOIN postal.partner_secrets s "
    "ON s.partner_code = p.code AND s.revoked_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > now()) "
    "WHERE p.code = $1 AND p.active ORDER BY s.id DESC"
)


async def get_partner(tx: Tx, code: str) -> dict[str, Any] | None:
    row = await tx.fetchrow(select(partners).where(partners.c.code == code))
    return dict(row) if row else None


async def default_partner(tx: Tx) -> dict[str, Any] | None:
    row = await tx.fetchrow(select(partners).where(partners.c.is_default, partners.c.active)
                            .order_by(partners.c.code).limit(1))
    return dict(row) if row else None


async def valid_secrets(tx: Tx, partner_code: str) -> list[str] | None:
    """The partner's valid webhook secrets, newest first; None when there is no such active partner."""
    rows = await tx.fetch(VALID_SECRETS_SQL, partner_code)
    if not rows:
        return None
    return [r["secret"] for r in rows if r["secret"]]


async def postage_for(tx: Tx, partner_code: str, service_code: str, weight: int) -> int | None:
    found = await tx.fetchval(
        select(fees.c.postage).where(fees.c.partner_code == partner_code, fees.c.service_code == service_code,
                                     fees.c.max_weight_grams >= weight)
        .order_by(fees.c.max_weight_grams).limit(1))
    return int(found) if found is not None else None


async def service_exists(tx: Tx, partner_code: str, service_code: str) -> bool:
    found = await tx.fetchval(select(partner_services.c.code).where(
        partner_services.c.partner_code == partner_code, partner_services.c.code == service_code))
    return found is not None


async def get_agency(tx: Tx, code: str) -> dict[str, Any] | None:
    row = await tx.fetchrow(select(agencies.c.code, agencies.c.name, agencies.c.admin_unit_code)
                            .where(agencies.c.code == code))
    return dict(row) if row else None


async def next_tracking_serial(tx: Tx) -> int:
    return int(await tx.fetchval("SELECT nextval('postal.tracking_seq')"))
