"""At the counter instead of receiving (forms 02 and 03), and supplements handed in later. Never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.intake import dossier_repository as repo
from services.intake import files, service
from services.intake.forms import render_counter_record
from services.intake.schemas import CounterRecordIn, SupplementIn
from shared.auth import Principal
from shared.db import Tx
from shared.jobs import enqueue
from shared.problems import ProblemError, error_item


async def create_record(tx: Tx, body: CounterRecordIn, who: Principal, now: datetime) -> dict[str, Any]:
    """A refusal or a request to complete is a record with its slip: nothing is received, no code used."""
    await service.procedure(tx, body.procedure_code)
    await service.agency(tx, body.receiving_agency_code)
    if not who.can_act_for_agency(body.receiving_agency_code):
        raise ProblemError(403, "forbidden", "Cán bộ chỉ lập phiếu cho cơ quan của mình / an officer writes slips "
                           "only for their own agency")
    if body.kind == "completion_request" and not body.documents:
        raise ProblemError(422, "validation_error", "Phiếu yêu cầu bổ sung cần liệt kê giấy tờ / list the documents "
                           "to add or complete", errors=[error_item("documents", "required", "required")])
    row = {"kind": body.kind, "agency_code": body.receiving_agency_code, "procedure_code": body.procedure_code,
           "applicant": body.applicant.model_dump(mode="json"), "reason": body.reason, "documents": body.documents,
           "officer": who.subject, "officer_name": who.name, "officer_title": who.title, "created_at": now}
    record_id = await repo.insert_counter_record(tx, row)
    return {"id": record_id, **row, "slip_url": f"/api/intake/v1/counter-records/{record_id}"}


async def get_record(tx: Tx, record_id: int, who: Principal) -> dict[str, Any]:
    found = await repo.get_counter_record(tx, record_id)
    if found is None or not who.can_act_for_agency(found["agency_code"]):
        raise ProblemError(404, "not_found", f"Không có phiếu {record_id} / No slip {record_id} for you")
    return found


async def record_pdf(tx: Tx, record: dict[str, Any]) -> bytes:
    """The slip (form 02 or 03) of a record the caller may read."""
    proc = await service.procedure(tx, record["procedure_code"])
    agency = await service.agency(tx, record["agency_code"])
    return render_counter_record(record, proc, agency)


async def supplement_requested(tx: Tx, code: str, due_at: datetime, documents: list[str]) -> None:
    """From workflow: the dossier now waits for these documents until `due_at`."""
    await repo.await_supplement(tx, code, due_at, documents)


async def hand_in_supplement(tx: Tx, code: str, body: SupplementIn, who: Principal,
                             now: datetime) -> dict[str, Any]:
    found = await service.dossier_for(tx, code, who, lock=True)
    due = found["supplement_due_at"]
    if due is None:
        raise ProblemError(409, "no_supplement_requested", "Hồ sơ không được yêu cầu bổ sung / no supplement was "
                           "asked for this dossier")
    if now > due:
        raise ProblemError(409, "supplement_deadline_passed", f"Đã quá hạn bổ sung ({due.isoformat()}) / the "
                           "supplement deadline has passed", extra={"supplement_due_at": due.isoformat()})
    if unknown := await files.unknown_file_errors(tx, body.documents, who):
        raise ProblemError(422, "validation_error", "Tệp không tồn tại / unknown files: " + "; ".join(
            e["message"] for e in unknown), errors=unknown)
    documents = [d.model_dump(mode="json", by_alias=True) for d in body.documents]
    await repo.add_supplement(tx, code, now, who.subject, documents, body.note)
    await enqueue(tx, "dossier.supplemented", {"code": code, "supplemented_at": now.isoformat(),
                                               "note": body.note, "documents": documents})
    return {"code": code, "supplemented_at": now.isoformat(), "documents": documents}
