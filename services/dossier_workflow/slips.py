"""Form 06 (Phiếu kiểm soát quá trình giải quyết hồ sơ) and form 04 (apology, new appointment)."""

from __future__ import annotations

from typing import Any

from services.dossier_workflow import dossiers_repository as repo
from services.dossier_workflow import service
from services.dossier_workflow.deadlines import localize, step_name
from shared.calendar import VN_TZ
from shared.db import Tx
from shared.pdf import SlipDocument, format_vn_date, format_vn_datetime
from shared.problems import ProblemError

TIMING_VI = {"early": "Sớm hạn", "on_time": "Đúng hạn", "late": "Quá hạn", None: ""}


def hand_off_timing(at: Any, deadline: Any) -> str | None:
    """Was the step handed on before its own deadline day, by the deadline, or after it?"""
    if deadline is None:
        return None
    if at > deadline:
        return "late"
    return "early" if at.astimezone(VN_TZ).date() < deadline.astimezone(VN_TZ).date() else "on_time"


async def control_slip(tx: Tx, d: dict[str, Any]) -> dict[str, Any]:
    """Each hand-off: who gave it to whom, when, and whether the step it closed was on time."""
    definition = await service.definition(tx, d["definition_id"])
    rows = await repo.timeline(tx, d["code"])
    entries = []
    for previous, row in zip([None, *rows[:-1]], rows, strict=True):
        deadline = previous["step_due_at"] if previous else None
        entries.append({
            "at": row["at"], "action": row["action"], "from_status": row["from_status"], "to_status": row["to_status"],
            "handed_over_by": previous["actor"] if previous else None, "received_by": row["actor"],
            "actor_role": row["actor_role"], "actor_agency": row["actor_agency"], "step": row["step"],
            "step_name": step_name(definition, row["step"]), "step_due_at": row["step_due_at"],
            "closed_step_due_at": deadline, "timing": hand_off_timing(row["at"], deadline), "note": row["note"],
        })
    return localize({"code": d["code"], "procedure_name": d["procedure_name"],
                     "applicant_name": d["applicant_name"], "received_at": d["received_at"], "due_at": d["due_at"],
                     "original_due_at": d["original_due_at"], "status": d["status"], "entries": entries})


def control_slip_pdf(slip: dict[str, Any]) -> bytes:
    doc = SlipDocument(f"Phiếu kiểm soát {slip['code']}")
    doc.national_header("Bộ phận Một cửa", "Ngày in: " + format_vn_date(slip["received_at"]))
    doc.title("Phiếu kiểm soát quá trình giải quyết hồ sơ", f"Mã hồ sơ: {slip['code']}")
    doc.field("Người nộp", slip["applicant_name"])
    doc.field("Thủ tục", slip["procedure_name"])
    doc.field("Ngày nhận", format_vn_datetime(slip["received_at"]))
    doc.field("Hẹn trả (ban đầu)", format_vn_datetime(slip["original_due_at"]))
    rows = [[format_vn_datetime(e["at"]), e["handed_over_by"] or "", f"{e['received_by']} ({e['actor_role']})",
             e["step_name"], TIMING_VI[e["timing"]], e["note"] or ""] for e in slip["entries"]]
    doc.table(["Thời gian", "Bên giao", "Bên nhận", "Bước", "Kết quả bàn giao", "Ghi chú"], rows,
              widths=(30, 26, 36, 34, 24, 30))
    return doc.output()


async def apology_pdf(tx: Tx, d: dict[str, Any]) -> bytes:
    apology = await repo.latest_apology(tx, d["code"])
    if apology is None:
        raise ProblemError(404, "not_found", f"Hồ sơ {d['code']} chưa có văn bản xin lỗi / no apology was issued")
    agency = await repo.agency_name(tx, d["current_agency"])
    doc = SlipDocument(f"Văn bản xin lỗi {d['code']}")
    doc.national_header(agency, "Ngày " + format_vn_date(apology["issued_at"]))
    doc.title("Văn bản xin lỗi và hẹn lại ngày trả kết quả", f"Mã hồ sơ: {d['code']}")
    doc.paragraph(f"{agency} xin lỗi Ông/Bà {d['applicant_name']} vì hồ sơ {d['procedure_name']} chưa được giải "
                  f"quyết đúng hạn trả kết quả {format_vn_datetime(apology['previous_due_at'])}.")
    doc.field("Lý do", apology["reason"])
    doc.field("Thời gian hẹn trả kết quả mới", format_vn_datetime(apology["new_due_at"]))
    doc.paragraph("Mong Ông/Bà thông cảm.", italic=True)
    doc.signature_blocks(None, ("THỦ TRƯỞNG CƠ QUAN", apology["issued_by"]))
    return doc.output()


async def withdrawal_pdf(tx: Tx, d: dict[str, Any]) -> bytes:
    """Form 05 (Thông báo dừng giải quyết hồ sơ): the citizen asked to stop; the agency confirms."""
    if d["status"] != "withdrawn":
        raise ProblemError(409, "conflict", f"Hồ sơ {d['code']} chưa dừng giải quyết / the dossier was not withdrawn",
                           extra={"state": d["status"]})
    entry = next(h for h in reversed(await repo.timeline(tx, d["code"])) if h["action"] == "withdraw")
    agency = await repo.agency_name(tx, d["current_agency"])
    doc = SlipDocument(f"Thông báo dừng giải quyết {d['code']}")
    doc.national_header(agency, "Ngày " + format_vn_date(entry["at"]))
    doc.title("Thông báo dừng giải quyết hồ sơ", f"Mã hồ sơ: {d['code']}")
    doc.field("Kính gửi Ông/Bà", d["applicant_name"])
    doc.field("Thủ tục", d["procedure_name"])
    doc.field("Ngày nhận hồ sơ", format_vn_datetime(d["received_at"]))
    doc.paragraph(f"Theo đề nghị ngày {format_vn_datetime(entry['at'])}, {agency} dừng giải quyết hồ sơ nêu trên.")
    if entry["note"]:
        doc.field("Lý do", entry["note"])
    doc.signature_blocks(None, ("NGƯỜI TIẾP NHẬN", entry["actor"]))
    return doc.output()
