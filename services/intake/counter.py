"""At the counter instead of receiving (forms 02 and 03), and supplements handed in later. Never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import dossier_repository, service
from services.intake.models import counter_records, dossiers, supplements
from services.intake.schemas import CounterRecordIn, SupplementIn
from shared.auth import Principal
from shared.jobs import enqueue
from shared.problems import ProblemError


async def create_record(session: AsyncSession, body: CounterRecordIn, who: Principal,
                        now: datetime) -> dict[str, Any]:
    """A refusal or a request to complete is a record with its slip: nothing is received, no code used."""
    await service.procedure(session, body.procedure_code)
    await service.agency(session, body.receiving_agency_code)
    if not who.can_act_for_agency(body.receiving_agency_code):
        raise ProblemError(403, "forbidden", "Cán bộ chỉ lập phiếu cho cơ quan của mình / an officer writes slips "
                           "only for their own agency")
    if body.kind == "completion_request" and not body.documents:
        raise ProblemError(422, "validation_error", "Phiếu yêu cầu bổ sung cần liệt kê giấy tờ / list the documents "
                           "to add or complete", errors=[{"field": "documents", "message": "required",
                                                          "type": "required"}])
    row = {"kind": body.kind, "agency_code": body.receiving_agency_code, "procedure_code": body.procedure_code,
           "applicant": body.applicant.model_dump(mode="json"), "reason": body.reason, "documents": body.documents,
           "officer": who.subject, "created_at": now}
    record_id = (await session.execute(insert(counter_records).values(**row).returning(counter_records.c.id))
                 ).scalar_one()
    return {"id": record_id, **row, "slip_url": f"/api/intake/v1/counter-records/{record_id}"}


async def get_record(session: AsyncSession, record_id: int, who: Principal) -> dict[str, Any]:
    row = (await session.execute(select(counter_records).where(counter_records.c.id == record_id))).first()
    found = dict(row._mapping) if row else None
    if found is None or not who.can_act_for_agency(found["agency_code"]):
        raise ProblemError(404, "not_found", f"Không có phiếu {record_id} / No slip {record_id} for you")
    return found


async def supplement_requested(session: AsyncSession, code: str, due_at: datetime, documents: list[str]) -> None:
    """From workflow: the dossier now waits for these documents until `due_at`."""
    await session.execute(update(dossiers).where(dossiers.c.code == code).values(
        supplement_due_at=due_at, supplement_documents=documents))


async def hand_in_supplement(session: AsyncSession, code: str, body: SupplementIn, who: Principal,
                             now: datetime) -> dict[str, Any]:
    found = await dossier_repository.get_dossier(session, code, lock=True)
    allowed = found is not None and (
        (who.role == "citizen" and who.subject in (found["applicant_id_number"], found["submitted_by"]))
        or who.can_act_for_agency(found["receiving_agency"]) or who.can_act_for_agency(found["competent_agency"]))
    if found is None or not allowed:
        raise ProblemError(404, "not_found", f"Không có hồ sơ {code} / No dossier {code} for you")
    due = found["supplement_due_at"]
    if due is None:
        raise ProblemError(409, "no_supplement_requested", "Hồ sơ không được yêu cầu bổ sung / no supplement was "
                           "asked for this dossier")
    if now > due:
        raise ProblemError(409, "supplement_deadline_passed", f"Đã quá hạn bổ sung ({due.isoformat()}) / the "
                           "supplement deadline has passed", extra={"supplement_due_at": due.isoformat()})
    documents = [d.model_dump(mode="json", by_alias=True) for d in body.documents]
    await session.execute(insert(supplements).values(dossier_code=code, received_at=now, received_by=who.subject,
                                                     documents=documents, note=body.note))
    await session.execute(update(dossiers).where(dossiers.c.code == code).values(supplement_due_at=None))
    await enqueue(session, "dossier.supplemented", {"code": code, "supplemented_at": now.isoformat(),
                                                    "note": body.note, "documents": documents})
    return {"code": code, "supplemented_at": now.isoformat(), "documents": documents}
