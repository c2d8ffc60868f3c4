"""Demo reference data (agencies, fields, procedures): idempotent, run by `make run` and tests."""

from __future__ import annotations

from datetime import date

from services.intake import catalog_repository as repo
from services.intake.catalog_data import AGENCIES, FIELDS, PROCEDURES
from shared.db import Tx
from shared.text import search_key

CATALOG_EFFECTIVE_FROM = date(2025, 7, 1)  # Decree 118/2025 in force


async def seed(tx: Tx) -> None:
    for a in AGENCIES:
        await repo.add_agency_if_missing(tx, {**a, "search_text": search_key(a["name"])})
    for code, name in FIELDS.items():
        await repo.add_field_if_missing(tx, code, name)
    for p in PROCEDURES:
        await repo.add_procedure_version_if_missing(
            tx, {**p, "effective_from": CATALOG_EFFECTIVE_FROM, "search_text": search_key(p["name"])})
