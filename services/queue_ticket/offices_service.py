"""Configuration: offices, their categories and counters (admin, supervisor of the office)."""

from __future__ import annotations

from typing import Any

from services.queue_ticket import offices_repository as repo
from services.queue_ticket.common import field_error, forget_config, office_or_404, staff_of
from services.queue_ticket.schemas import CategoryIn, CounterIn, OfficeIn
from shared.auth import Principal
from shared.db import Tx


async def put_office(tx: Tx, code: str, body: OfficeIn) -> dict[str, Any]:
    if not await repo.agency_exists(tx, body.agency_code):
        raise field_error("agency_code", "unknown_agency", f"Không có cơ quan {body.agency_code} / "
                                                           f"unknown agency {body.agency_code}")
    await repo.upsert_office(tx, code, body.model_dump())
    forget_config()
    return dict(await office_or_404(tx, code))


async def put_category(tx: Tx, office_code: str, code: str, body: CategoryIn, principal: Principal) -> dict[str, Any]:
    await office_or_404(tx, office_code)
    staff_of(principal, office_code, ("supervisor",))
    owner = await repo.prefix_owner(tx, office_code, body.prefix)
    if owner is not None and owner != code:
        raise field_error("prefix", "prefix_taken", f"Chữ {body.prefix} đã dùng cho lĩnh vực {owner} / "
                                                    f"prefix {body.prefix} is used by category {owner}", 409)
    await repo.upsert_category(tx, office_code, code, body.model_dump())
    forget_config()
    return {"office_code": office_code, "code": code, **body.model_dump()}


async def put_counter(tx: Tx, office_code: str, number: int, body: CounterIn, principal: Principal) -> dict[str, Any]:
    await office_or_404(tx, office_code)
    staff_of(principal, office_code, ("supervisor",))
    known = {r["code"] for r in await repo.categories(tx, office_code)}
    missing = sorted(set(body.category_codes) - known)
    if missing:
        raise field_error("category_codes", "unknown_category", f"Không có lĩnh vực {', '.join(missing)} / "
                                                                f"unknown categories {', '.join(missing)}")
    return dict(await repo.upsert_counter(tx, office_code, number, body.model_dump()))


async def office_categories(tx: Tx, office_code: str) -> dict[str, Any]:
    office = await office_or_404(tx, office_code)
    cats = await repo.categories(tx, office_code)
    return {"office": {"code": office["code"], "name": office["name"], "agency_code": office["agency_code"],
                       "always_open": office["always_open"]},
            "categories": [{"code": c["code"], "prefix": c["prefix"], "name": c["name"],
                            "procedure_codes": list(c["procedure_codes"]), "slot_minutes": c["slot_minutes"],
                            "slot_capacity": c["slot_capacity"]} for c in cats]}


async def office_counters(tx: Tx, office_code: str, principal: Principal) -> list[dict[str, Any]]:
    await office_or_404(tx, office_code)
    staff_of(principal, office_code)
    return [dict(r) for r in await repo.counters(tx, office_code)]
