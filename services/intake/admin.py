"""Admin changes to reference data: a procedure change is a new version from a date; calendar overrides."""

from __future__ import annotations

from datetime import date
from datetime import time as clock
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import service
from services.intake.schemas import CalendarOverrideIn, ProcedureVersionIn
from shared.calendar import WorkingCalendar, WorkSession
from shared.calendars import forget_calendars
from shared.core_models import agencies, calendar_overrides, fields, procedures
from shared.problems import ProblemError
from shared.text import search_key


def _invalid(field: str, message: str) -> ProblemError:
    return ProblemError(422, "validation_error", message, errors=[{"field": field, "message": message,
                                                                   "type": "invalid"}])


async def add_procedure_version(session: AsyncSession, body: ProcedureVersionIn, today: date) -> dict[str, Any]:
    """Dossiers keep the version they were received under: versions start today or later, never before."""
    if body.effective_from < today:
        raise _invalid("effective_from", "Phiên bản mới chỉ có hiệu lực từ hôm nay trở đi / a new version takes "
                       "effect today or later (old dossiers keep theirs)")
    if (await session.execute(select(fields.c.code).where(fields.c.code == body.field_code))).first() is None:
        raise _invalid("field_code", f"Không có lĩnh vực {body.field_code} / unknown field {body.field_code}")
    exists = await session.execute(select(procedures.c.id).where(
        procedures.c.code == body.code, procedures.c.effective_from == body.effective_from))
    if exists.first() is not None:
        raise ProblemError(409, "conflict", f"Thủ tục {body.code} đã có phiên bản từ {body.effective_from} / a "
                           f"version of {body.code} from {body.effective_from} exists already")
    values = body.model_dump(mode="json")
    values["effective_from"] = body.effective_from
    new_id = (await session.execute(insert(procedures).values(**values, search_text=search_key(body.name))
                                    .returning(procedures.c.id))).scalar_one()
    service.forget_reference_data()
    return {"id": new_id, **values}


async def versions(session: AsyncSession, code: str) -> list[dict[str, Any]]:
    rows = await session.execute(select(procedures).where(procedures.c.code == code)
                                 .order_by(procedures.c.effective_from))
    found = [dict(r._mapping) for r in rows]
    if not found:
        raise ProblemError(404, "not_found", f"Không có thủ tục {code} / Unknown procedure {code}")
    return found


async def add_override(session: AsyncSession, body: CalendarOverrideIn) -> dict[str, Any]:
    if body.agency_code is not None and (await session.execute(
            select(agencies.c.code).where(agencies.c.code == body.agency_code))).first() is None:
        raise _invalid("agency_code", f"Không có cơ quan {body.agency_code} / unknown agency")
    duplicate = await session.execute(select(calendar_overrides.c.id).where(
        calendar_overrides.c.day == body.day,
        calendar_overrides.c.agency_code.is_(None) if body.agency_code is None
        else calendar_overrides.c.agency_code == body.agency_code))
    if duplicate.first() is not None:
        raise ProblemError(409, "conflict", f"Ngày {body.day} đã có điều chỉnh / {body.day} already has an override")
    if body.sessions:
        try:  # overlapping sessions would make every due date of that agency fail
            WorkingCalendar(sessions=tuple(WorkSession(clock.fromisoformat(x.start), clock.fromisoformat(x.end))
                                           for x in body.sessions))
        except ValueError as exc:
            raise _invalid("sessions", f"Các buổi làm việc không hợp lệ: {exc} / invalid sessions: {exc}") from exc
    values = body.model_dump(mode="json")
    values["day"] = body.day
    new_id = (await session.execute(insert(calendar_overrides).values(**values)
                                    .returning(calendar_overrides.c.id))).scalar_one()
    forget_calendars()
    return {"id": new_id, **values}


async def list_overrides(session: AsyncSession, year: int | None) -> list[dict[str, Any]]:
    query = select(calendar_overrides).order_by(calendar_overrides.c.day)
    if year:
        query = query.where(calendar_overrides.c.day.between(date(year, 1, 1), date(year, 12, 31)))
    return [dict(r._mapping) for r in await session.execute(query)]


async def remove_override(session: AsyncSession, override_id: int) -> None:
    result = await session.execute(delete(calendar_overrides).where(calendar_overrides.c.id == override_id)
                                   .returning(calendar_overrides.c.id))
    if result.first() is None:
        raise ProblemError(404, "not_found", f"Không có điều chỉnh {override_id} / Unknown override {override_id}")
    forget_calendars()
