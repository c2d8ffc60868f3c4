"""Intake rules: catalog look-ups, due-date answers and who may read a dossier (never commits)."""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any

from services.intake import catalog_repository as repository
from services.intake import dossier_repository
from services.intake.bodies import body_name, handling_agency
from services.intake.receipt import render_receipt
from shared.admin_units import place_name, province_name, province_of
from shared.auth import Principal
from shared.calendar import RANGE_TEXT, VN_TZ, DueResult, TimeLimit, in_supported_range
from shared.calendars import calendar_for_agency
from shared.db import Tx
from shared.problems import ProblemError, error_item
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


async def search_procedures(tx: Tx, q: str | None, field: str | None,
                            agency_code: str | None, limit: int, level: str | None = None) -> list[dict[str, Any]]:
    if agency_code and await repository.get_agency(tx, agency_code) is None:
        raise ProblemError(404, "not_found", f"Không có cơ quan {agency_code} / Unknown agency {agency_code}")
    key = search_key(q) if q else None
    cache_key = ("search", key or "", field or "", today_vn().isoformat(), str(limit), level or "")
    found: list[dict[str, Any]] | None = _cached(cache_key)
    if found is None:
        found = _remember(cache_key, await repository.search_procedures(tx, key or None, field, today_vn(), limit,
                                                                        level))
    return found


async def procedure(tx: Tx, code: str, as_of: date | None = None) -> dict[str, Any]:
    day = as_of or today_vn()
    found: dict[str, Any] | None = _cached(("procedure", code, day.isoformat()))
    if found is None:
        found = await repository.get_procedure(tx, code, day)
        if found is not None:
            _remember(("procedure", code, day.isoformat()), found)
    if found is None:
        raise ProblemError(404, "not_found", f"Không có thủ tục {code} / Unknown procedure {code}",
                           errors=[error_item("procedure_code", "unknown procedure", "unknown")])
    return found


async def list_agencies(tx: Tx, key: str | None, level: str | None,
                        body_type: str | None = None) -> list[dict[str, Any]]:
    return await repository.list_agencies(tx, key, level, body_type)


async def agency(tx: Tx, code: str) -> dict[str, Any]:
    found: dict[str, Any] | None = _cached(("agency", code))
    if found is None:
        found = await repository.get_agency(tx, code)
        if found is not None:
            _remember(("agency", code), found)
    if found is None:
        raise ProblemError(404, "not_found", f"Không có cơ quan {code} / Unknown agency {code}",
                           errors=[error_item("agency_code", "unknown agency", "unknown")])
    return found


async def centralised_service(tx: Tx, procedure_code: str) -> dict[str, Any] | None:
    """The procedure's `centralised_services` row (owner digits, since), None if not centralised; kept 30 s."""
    key = ("centralised", procedure_code)
    hit = _cached(key)
    if hit is None:
        hit = _remember(key, (await repository.centralised_service(tx, procedure_code),))
    found: dict[str, Any] | None = hit[0]
    return found


def outside_province(ward_code: str, receiving: dict[str, Any]) -> str | None:
    """Decree 118/2025 Art. 14: an office receives regardless of the boundary within its province only. The
    reason (Vietnamese / English, with where to file) when the applicant's ward is in another province."""
    theirs, ours = province_of(ward_code), province_of(receiving["admin_unit_code"])
    if theirs is None or theirs == ours:
        return None
    home = province_name(theirs) or theirs
    here = province_name(ours) or "không xác định"
    return (f"người nộp cư trú tại {home}, {receiving['name']} thuộc {here}: tiếp nhận không phụ thuộc địa giới "
            f"hành chính chỉ trong phạm vi một tỉnh (Nghị định 118/2025/NĐ-CP, Điều 14); xin nộp trực tuyến tại "
            f"Cổng Dịch vụ công quốc gia (dichvucong.gov.vn) hoặc tại Bộ phận Một cửa của {home} / the applicant "
            f"lives in {home} and the receiving office is in {here}: boundary-free reception covers one province "
            f"only (Decree 118/2025 Art. 14); file online at the National Public Service Portal "
            f"(dichvucong.gov.vn) or at a one-stop office of {home}")


def no_competent_agency(proc: dict[str, Any], ward_code: str) -> str:
    """Why a dossier has nowhere to go: no agency of the body the procedure needs for that ward or province."""
    body = body_name(proc["deciding_body"], proc["department"])
    by_ward = handling_agency(proc["deciding_body"], proc["department"])[2]
    where = place_name(ward_code) if by_ward else province_name(province_of(ward_code))
    return (f"chưa có {body} của {where or ward_code} trong danh mục cơ quan / no competent agency "
            f"({proc['deciding_body']}{', ' + proc['department'] if proc['department'] else ''}) for {ward_code}")


async def competent_agency(tx: Tx, proc: dict[str, Any], ward_code: str) -> dict[str, Any] | None:
    """Phi địa giới: the agency that handles the dossier ({code, name}), for the applicant's ward: the commune
    body of that ward, or the provincial body of its province (kept 30 s like other reference data)."""
    body_type, department, by_ward = handling_agency(proc["deciding_body"], proc["department"])
    unit = ward_code if by_ward else province_of(ward_code)
    if unit is None:
        return None
    key = ("competent", body_type, department or "", unit)
    hit = _cached(key)
    if hit is None:
        hit = _remember(key, (await repository.agency_of_body(tx, body_type, department, unit),))
    found: dict[str, Any] | None = hit[0]
    return found


async def due(tx: Tx, procedure_code: str, agency_code: str,
              received_at: datetime, channel: str | None = None) -> tuple[DueResult, dict[str, Any]]:
    if received_at.tzinfo is None:
        raise ProblemError(422, "validation_error", "received_at cần múi giờ / received_at needs a UTC offset",
                           errors=[error_item("received_at", "timezone offset required", "timezone_aware")])
    if not in_supported_range(received_at):
        raise ProblemError(422, "validation_error", f"received_at phải trong khoảng {RANGE_TEXT} / received_at must "
                           f"be within {RANGE_TEXT}", errors=[error_item(
                               "received_at", f"outside {RANGE_TEXT}", "out_of_range")])
    proc = await procedure(tx, procedure_code, received_at.astimezone(VN_TZ).date())
    agency_row = await agency(tx, agency_code)
    cal = await calendar_for_agency(tx, agency_row["code"])
    return cal.due_at(received_at, TimeLimit.of(proc["time_limit"], channel)), proc


async def dossier_for(tx: Tx, code: str, who: Principal, *, lock: bool = False) -> dict[str, Any]:
    """The dossier, for its applicant, its submitter and the officers of its two agencies (else 404)."""
    found = await dossier_repository.get_dossier(tx, code, lock=lock)
    allowed = found is not None and (
        (who.role == "citizen" and who.subject in (found["applicant_id_number"], found["submitted_by"]))
        or who.can_act_for_agency(found["receiving_agency"]) or who.can_act_for_agency(found["competent_agency"]))
    if found is None or not allowed:
        raise ProblemError(404, "not_found", f"Không có hồ sơ {code} / No dossier {code} for you")
    return found


async def receipt_pdf(tx: Tx, code: str, who: Principal, public_base_url: str) -> bytes:
    """Form 01 of a dossier the caller may read, with the procedure version it was received under."""
    d = await dossier_for(tx, code, who)
    proc = await procedure(tx, d["procedure_code"], d["received_at"].astimezone(VN_TZ).date())
    receiving = await agency(tx, d["receiving_agency"])
    competent = receiving if d["competent_agency"] == receiving["code"] else await agency(tx, d["competent_agency"])
    return render_receipt(d, proc, receiving, public_base_url, competent=competent)
