"""Demo waiting rooms (idempotent; run by `make run` and the test session).

- PBD: the ward's one-stop office (agency 000.00.21.H29), three categories, three counters.
- STP: the department of justice (agency 000.00.07.H29), two categories, two counters.
Opening hours follow each agency's working calendar.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert

from services.queue_ticket.models import categories, counters, offices
from shared.db import Tx

OFFICES: list[dict[str, Any]] = [
    {"code": "PBD", "name": "Bộ phận Một cửa phường Ba Đình", "agency_code": "000.00.21.H29", "occupancy_cap": 80},
    {"code": "STP", "name": "Bộ phận Một cửa Sở Tư pháp Hà Nội", "agency_code": "000.00.07.H29",
     "occupancy_cap": 60},
]

CATEGORIES: list[dict[str, Any]] = [
    {"office_code": "PBD", "code": "HT", "prefix": "A", "name": "Hộ tịch", "position": 1,
     "procedure_codes": ["1.001193", "1.003583", "1.000894", "1.000656", "1.004873", "1.001022", "1.004837",
                         "1.004884"], "slot_minutes": 30, "slot_capacity": 3, "default_service_seconds": 420},
    {"office_code": "PBD", "code": "CT", "prefix": "B", "name": "Chứng thực", "position": 2,
     "procedure_codes": ["2.000815", "2.000884", "2.000908"], "slot_minutes": 15, "slot_capacity": 2,
     "default_service_seconds": 180},
    {"office_code": "PBD", "code": "KHAC", "prefix": "C", "name": "Cư trú, hộ kinh doanh, bảo trợ xã hội",
     "position": 3, "procedure_codes": ["1.004222", "1.004194", "1.001612", "1.001699"], "slot_minutes": 30,
     "slot_capacity": 2, "default_service_seconds": 600},
    {"office_code": "STP", "code": "HT", "prefix": "A", "name": "Hộ tịch có yếu tố nước ngoài", "position": 1,
     "procedure_codes": [], "slot_minutes": 30, "slot_capacity": 2, "default_service_seconds": 900},
    {"office_code": "STP", "code": "LLTP", "prefix": "B", "name": "Lý lịch tư pháp", "position": 2,
     "procedure_codes": [], "slot_minutes": 20, "slot_capacity": 3, "default_service_seconds": 300},
]

COUNTERS: list[dict[str, Any]] = [
    {"office_code": "PBD", "number": 1, "name": "Quầy 1 — Hộ tịch", "category_codes": ["HT"]},
    {"office_code": "PBD", "number": 2, "name": "Quầy 2 — Hộ tịch, chứng thực", "category_codes": ["HT", "CT"]},
    {"office_code": "PBD", "number": 3, "name": "Quầy 3 — Chứng thực, lĩnh vực khác", "category_codes": ["CT", "KHAC"]},
    {"office_code": "STP", "number": 1, "name": "Quầy 1 — Hộ tịch", "category_codes": ["HT"]},
    {"office_code": "STP", "number": 2, "name": "Quầy 2 — Lý lịch tư pháp", "category_codes": ["LLTP", "HT"]},
]


async def seed(tx: Tx) -> None:
    for o in OFFICES:
        await tx.execute(insert(offices).values(**o).on_conflict_do_nothing())
    for c in CATEGORIES:
        await tx.execute(insert(categories).values(**c).on_conflict_do_nothing())
    for k in COUNTERS:
        await tx.execute(insert(counters).values(**k).on_conflict_do_nothing())
