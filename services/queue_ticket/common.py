"""What the queue's domains share: problems, local time, the office's calendar, staff checks, the ticket's JSON."""

from __future__ import annotations

import time as monotonic_time
from datetime import date, datetime, time
from typing import Any

from services.queue_ticket import offices_repository as offices_repo
from shared.auth import Principal
from shared.calendar import VN_TZ, WorkingCalendar, WorkSession
from shared.calendars import calendar_for_agency
from shared.db import Tx
from shared.problems import ProblemError, error_item

ALWAYS_OPEN = WorkingCalendar(sessions=[WorkSession(time(0), time(23, 59, 59))], overrides=(),
                              weekend_days=frozenset(), country_holidays=False)

TITLES: dict[str, tuple[str, str]] = {
    "office_closed": ("Ngoài giờ làm việc", "Office closed"),
    "office_full": ("Phòng chờ đã đủ người", "Waiting room full"),
    "ticket_closed": ("Số thứ tự đã kết thúc", "Ticket already closed"),
    "invalid_state": ("Trạng thái không cho phép", "Not allowed in this state"),
    "category_not_served": ("Quầy không phục vụ lĩnh vực này", "Counter does not serve this category"),
    "counter_taken": ("Quầy đang có cán bộ khác", "Counter taken by another officer"),
    "slot_full": ("Khung giờ đã hết chỗ", "Slot full"),
    "slot_past": ("Khung giờ đã qua", "Slot in the past"),
    "hold_expired": ("Giữ chỗ đã hết hạn", "Hold expired"),
    "booking_limit": ("Vượt giới hạn đặt lịch", "Booking limit reached"),
    "booking_closed": ("Lịch hẹn không còn hiệu lực", "Booking no longer open"),
    "too_early": ("Chưa đến giờ xác nhận", "Too early to check in"),
    "too_late": ("Đã quá giờ hẹn", "Too late to check in"),
    "ticket_limit": ("Đã có số thứ tự đang chờ", "A ticket is already waiting"),
    "precondition_failed": ("Quầy đang phục vụ số khác", "The counter serves another ticket"),
}


def problem(status: int, code: str, detail: str, **kw: Any) -> ProblemError:
    return ProblemError(status, code, detail, title=TITLES.get(code), **kw)


def field_error(field: str, kind: str, detail: str, status: int = 422) -> ProblemError:
    return ProblemError(status, "validation_error", detail,
                        errors=[error_item(field, detail, kind)])


EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2100, 12, 31)  # report dates: the service's lifetime, widely


def within(field: str, value: date, earliest: date, latest: date) -> None:
    """422 `out_of_range` for a date outside [earliest, latest] (checked before anything is computed from it:
    a year 9999 or 0001 overflowed the slot arithmetic)."""
    if not earliest <= value <= latest:
        raise out_of_range(field, earliest, latest)


def out_of_range(field: str, earliest: date, latest: date) -> ProblemError:
    span = f"{earliest.isoformat()} – {latest.isoformat()}"
    detail = f"{field} phải trong khoảng {span} / {field} must be within {span}"
    return ProblemError(422, "validation_error", detail, errors=[error_item(field, detail, "out_of_range")])


def local_fmt(t: datetime) -> str:
    return t.astimezone(VN_TZ).strftime("%H:%M %d/%m/%Y")


def local_day(t: datetime) -> date:
    return t.astimezone(VN_TZ).date()


async def office_calendar(tx: Tx, office: Any) -> WorkingCalendar:
    if office["always_open"]:
        return ALWAYS_OPEN
    return await calendar_for_agency(tx, office["agency_code"])


async def unknown(tx: Tx, office_code: str, category_code: str | None) -> ProblemError:
    """The 422 for an office/category pair that does not exist, naming which part is unknown."""
    if await offices_repo.office(tx, office_code) is None:
        return field_error("office_code", "unknown_office",
                           f"Không có nơi tiếp dân mã {office_code} / Unknown office {office_code}")
    return field_error("category_code", "unknown_category",
                       f"Nơi {office_code} không có lĩnh vực {category_code} / "
                       f"Office {office_code} has no category {category_code}")


async def office_or_404(tx: Tx, office_code: str) -> Any:
    office = await offices_repo.office(tx, office_code)
    if office is None:
        raise ProblemError(404, "not_found", f"Không có nơi tiếp dân mã {office_code} / Unknown office {office_code}")
    return office


def staff_of(principal: Principal, office_code: str, roles: tuple[str, ...] = ("officer", "supervisor")) -> None:
    if principal.role == "admin":
        return
    if principal.role not in roles or principal.office_code != office_code:
        raise ProblemError(403, "forbidden",
                           f"Tài khoản không thuộc nơi tiếp dân {office_code} / "
                           f"your account does not belong to office {office_code}")


async def counter_for(tx: Tx, counter_id: int, principal: Principal, *, lock: bool = False) -> Any:
    c = await offices_repo.counter(tx, counter_id, lock=lock)
    if c is None:
        raise ProblemError(404, "not_found", f"Không có quầy {counter_id} / No counter {counter_id}")
    staff_of(principal, c["office_code"])
    return c


CONFIG_TTL_SECONDS = 5.0  # another replica's configuration change shows within this time
_config: dict[tuple[str, str], tuple[float, Any]] = {}
_forget_hooks: list[dict[Any, Any]] = []


async def cached_office_and_category(tx: Tx, office_code: str, category_code: str) -> Any:
    """Office and category of the ticket path, kept a few seconds per process (cleared by local changes)."""
    key = (office_code, category_code)
    hit = _config.get(key)
    if hit is not None and hit[0] > monotonic_time.monotonic():
        return hit[1]
    row = await offices_repo.office_and_category_alone(tx, office_code, category_code)
    if row is not None:
        if len(_config) > 10_000:
            _config.clear()
        _config[key] = (monotonic_time.monotonic() + CONFIG_TTL_SECONDS, row)
    return row


def forget_on_change(cache: dict[Any, Any]) -> None:
    """`cache` is cleared with the configuration cache (after a local configuration change)."""
    _forget_hooks.append(cache)


def forget_config() -> None:
    _config.clear()
    for cache in _forget_hooks:
        cache.clear()


def ticket_out(t: Any, **extra: Any) -> dict[str, Any]:
    out = {
        "id": t["id"], "number": t["display"], "office_code": t["office_code"], "category_code": t["category_code"],
        "day": t["day"], "status": t["status"], "priority_group": t["priority_group"],
        "booking_code": t["booking_code"], "counter_id": t["counter_id"], "issued_at": t["issued_at"],
        "called_at": t["called_at"], "serving_at": t["serving_at"], "finished_at": t["finished_at"],
        "skipped_at": t["skipped_at"], "dossier_codes": list(t["dossier_codes"] or []),
    }
    out.update(extra)
    return out
