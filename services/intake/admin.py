"""Admin changes to reference data: a procedure change is a new version from a date; calendar overrides;
an agency's head."""

from __future__ import annotations

from datetime import date
from datetime import time as clock
from typing import Any

from services.intake import catalog_repository as repo
from services.intake import service
from services.intake.schemas import AgencyHeadIn, CalendarOverrideIn, ProcedureVersionIn
from shared.calendar import WorkingCalendar, WorkSession
from shared.calendars import forget_calendars
from shared.db import Tx
from shared.problems import ProblemError, error_item
from shared.text import search_key


def _invalid(field: str, message: str) -> ProblemError:
    return ProblemError(422, "validation_error", message, errors=[error_item(field, message, "invalid")])


async def add_procedure_version(tx: Tx, body: ProcedureVersionIn, today: date) -> dict[str, Any]:
    """Dossiers keep the version they were received under: versions start today or later, never before."""
    if body.effective_from < today:
        raise _invalid("effective_from", "Phiên bản mới chỉ có hiệu lực từ hôm nay trở đi / a new version takes "
                       "effect today or later (old dossiers keep theirs)")
    if not await repo.field_exists(tx, body.field_code):
        raise _invalid("field_code", f"Không có lĩnh vực {body.field_code} / unknown field {body.field_code}")
    if await repo.procedure_version_exists(tx, body.code, body.effective_from):
        raise ProblemError(409, "conflict", f"Thủ tục {body.code} đã có phiên bản từ {body.effective_from} / a "
                           f"version of {body.code} from {body.effective_from} exists already")
    values = body.model_dump(mode="json")
    values["effective_from"] = body.effective_from
    new_id = await repo.insert_procedure_version(tx, {**values, "search_text": search_key(body.name)})
    tx.after_commit(service.forget_reference_data)  # this process sees the change once it is committed
    return {"id": new_id, **values}


async def versions(tx: Tx, code: str) -> list[dict[str, Any]]:
    found = await repo.procedure_versions(tx, code)
    if not found:
        raise ProblemError(404, "not_found", f"Không có thủ tục {code} / Unknown procedure {code}")
    return found


async def add_override(tx: Tx, body: CalendarOverrideIn) -> dict[str, Any]:
    if body.agency_code is not None and await repo.get_agency(tx, body.agency_code) is None:
        raise _invalid("agency_code", f"Không có cơ quan {body.agency_code} / unknown agency")
    if await repo.override_exists(tx, body.day, body.agency_code):
        raise ProblemError(409, "conflict", f"Ngày {body.day} đã có điều chỉnh / {body.day} already has an override")
    if body.sessions:
        try:  # overlapping sessions would make every due date of that agency fail
            WorkingCalendar(sessions=tuple(WorkSession(clock.fromisoformat(x.start), clock.fromisoformat(x.end))
                                           for x in body.sessions))
        except ValueError as exc:
            raise _invalid("sessions", f"Các buổi làm việc không hợp lệ: {exc} / invalid sessions: {exc}") from exc
    values = body.model_dump(mode="json")
    values["day"] = body.day
    new_id = await repo.insert_override(tx, values)
    tx.after_commit(forget_calendars)
    return {"id": new_id, **values}


async def list_overrides(tx: Tx, year: int | None) -> list[dict[str, Any]]:
    return await repo.list_overrides(tx, year)


async def remove_override(tx: Tx, override_id: int) -> None:
    if not await repo.delete_override(tx, override_id):
        raise ProblemError(404, "not_found", f"Không có điều chỉnh {override_id} / Unknown override {override_id}")
    tx.after_commit(forget_calendars)


async def set_agency_head(tx: Tx, code: str, body: AgencyHeadIn) -> dict[str, Any]:
    """Forms 04 and 05 issued from now on are signed by this head (those issued before keep theirs)."""
    found = await repo.set_agency_head(tx, code, body.head_name.strip(), body.head_title.strip())
    if found is None:
        raise ProblemError(404, "not_found", f"Không có cơ quan {code} / Unknown agency {code}")
    service.forget_reference_data()
    return found
