"""SQL of the dossiers postal knows of (facts copied from intake's `postal.dossier_received` jobs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from services.postal_tracking.models import dossiers
from services.postal_tracking.schemas import DossierFact
from shared.db import Tx

REMEMBER_SQL = """
INSERT INTO postal.dossiers (code, receiving_agency, competent_agency, channel, result_delivery, partner_code,
    received_at)
SELECT code, receiving_agency, competent_agency, channel, result_delivery, partner_code, received_at
FROM jsonb_to_recordset($1::jsonb) AS x(code text, receiving_agency text, competent_agency text, channel text,
    result_delivery text, partner_code text, received_at timestamptz)
ON CONFLICT (code) DO NOTHING
"""


async def remember(tx: Tx, facts: Sequence[DossierFact]) -> int:
    """One statement for a batch; a fact already known is left as it is (the job runs at least once)."""
    if not facts:
        return 0
    payload = orjson.dumps([f.model_dump(mode="json") for f in facts]).decode()
    return await tx.execute(REMEMBER_SQL, payload)


async def get(tx: Tx, code: str) -> dict[str, Any] | None:
    row = await tx.fetchrow(dossiers.select().where(dossiers.c.code == code))
    return dict(row) if row else None
