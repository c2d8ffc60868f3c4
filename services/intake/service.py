"""Intake rules: catalog look-ups and due-date answers (never commits)."""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import dossier_repository, repository
from shared.calendar import VN_TZ, DueResult, TimeLimit, WorkingCalendar
from shared.calendars import calendar_for_agency
from shared.db import Tx
from shared.problems import ProblemError
from shared.text import search_key

REFERENCE_TTL_SECONDS = 30.0
_reference_cache: dict[tuple[str, ...], tuple[float, Any]] = {}


def _cached(key: tuple[str, ...]) -> Any:
    """Reference data (catalog, agencies, calendars) is read-mostly: each process keeps it 30 s."""
    hit = _reference_cache.get(key)
    return hit[1] if hit is not None and hit[0] > time.monotonic() else None


def _remember(key: tuple[str, ...], value: Any) -> Any:
    if len(_reference_cache) > 10_000:
        _reference_cache.clear()
    _reference_cache[key] = (time.monotonic() + REFERENCE_TTL_SECONDS, value)
    return value


def forget_reference_data() -> None:
    """After an admin change: this process sees it at once (others within the 30 s cache)."""
    _reference_cache.clear()


def today_vn() -> date:
    return datetime.now(VN_TZ).date()


async def search_procedures(session: AsyncSession, q: str | None, field: str | None,
                            agency_code: str | None, limit: int) -> list[dict[str, Any]]:
    if agency_code and await repository.get_agency(session, agency_code) is None:
        raise ProblemError(404, "not_found", f"Không có cơ quan {agency_code} / Unknown agency {agency_code}")
    key = search_key(q) if q else None
    cache_key = ("search", key or "", field or "", today_vn().isoformat(), str(limit))
    found: list[dict[str, Any]] | None = _cached(cache_key)
    if found is None:
        found = _remember(cache_key, await repository.search_procedures(session, key or None, field, today_vn(), limit))
    return found


async def procedure(session: Tx, code: str, as_of: date | None = None) -> dict[str, Any]:
    day = as_of or today_vn()
    found: dict[str, Any] | None = _cached(("procedure", code, day.isoformat()))
    if found is None:
        found = await repository.get_procedure(session, code, day)
        if found is not None:
            _remember(("procedure", code, day.isoformat()), found)
    if found is None:
        raise ProblemError(404, "not_found", f"Không có thủ tục {code} / Unknown procedure {code}",
                           errors=[{"field": "procedure_code", "message": "unknown procedure", "type": "unknown"}])
    return found


async def list_agencies(session: AsyncSession, key: str | None, level: str | None) -> list[dict[str, Any]]:
    return await repository.list_agencies(session, key, level)


async def agency(session: Tx, code: str) -> dict[str, Any]:
    found: dict[str, Any] | None = _cached(("agency", code))
    if found is None:
        found = await repository.get_agency(session, code)
        if found is not None:
            _remember(("agency", code), found)
    if found is None:
        raise ProblemError(404, "not_found", f"Không có cơ quan {code} / Unknown agency {code}",
                           errors=[{"field": "agency_code", "message": "unknown agency", "type": "unknown"}])
    return found


async def competent_agency(session: Tx, level: str, ward_code: str,
                           receiving: dict[str, Any]) -> str | None:
    """Phi địa giới: which agency decides, for the applicant's ward (kept 30 s like other reference data)."""
    key = ("competent", level, ward_code, str(receiving["code"]))
    hit = _cached(key)
    if hit is None:
        hit = _remember(key, (await dossier_repository.competent_agency(session, level, ward_code, receiving),))
    found: str | None = hit[0]
    return found


async def calendar_for(session: Tx, agency_row: dict[str, Any]) -> WorkingCalendar:
    """The agency's sessions and overrides on top of the national calendar."""
    return await calendar_for_agency(session, agency_row["code"])


async def due(session: AsyncSession, procedure_code: str, agency_code: str,
              received_at: datetime) -> tuple[DueResult, dict[str, Any]]:
    if received_at.tzinfo is None:
        raise ProblemError(422, "validation_error", "received_at cần múi giờ / received_at needs a UTC offset",
                           errors=[{"field": "received_at", "message": "timezone offset required",
                                    "type": "timezone_aware"}])
    proc = await procedure(session, procedure_code, received_at.astimezone(VN_TZ).date())
    agency_row = await agency(session, agency_code)
    cal = await calendar_for(session, agency_row)
    limit = proc["time_limit"]
    return cal.due_at(received_at, TimeLimit(int(limit["value"]), limit["unit"])), proc
