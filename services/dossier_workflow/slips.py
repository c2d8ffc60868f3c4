"""Form 06 (Phiếu kiểm soát quá trình giải quyết hồ sơ) and form 04 (apology, new appointment)."""

from __future__ import annotations

from typing import Any

from services.dossier_workflow import dossiers_repository as repo
from services.dossier_workflow import service
from services.dossier_workflow.deadlines import localize, step_name
from shared.admin_units import place_name
from shared.calendar import VN_TZ
from shared.db import Tx
from shared.pdf import SlipDocument, date_line, format_vn_date, format_vn_datetime
from shared.problems import ProblemError

TIMING_VI = {"early": "Trước hạn", "on_time": "Đúng hạn", "late": "Quá hạn", None: ""}


FORM_04_TITLE = "Văn bản xin lỗi và đề nghị gia hạn thời gian giải quyết"  # Circular 03/2025, Phụ lục I
HEAD_SIGNS = "THỦ TRƯỞNG CƠ QUAN, ĐƠN VỊ"
SIGN_HINT = "(Ký, ghi rõ họ tên, đóng dấu)"


async def agency_and_place(tx: Tx, code: str) -> tuple[str, str | None]:
    """The agency's official name and the place its documents are dated at (from core.agencies)."""
    row = await repo.agency_place(tx, code)
    if row is None:
        return code, None
    return str(row["name"]), place_name(row["admin_unit_code"])


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
    agency, place = await agency_and_place(tx, d["current_agency"])
    doc = SlipDocument(f"Văn bản xin lỗi {d['code']}")
    doc.national_header(agency, date_line(place, apology["issued_at"]))
    doc.title(FORM_04_TITLE, f"Mã số hồ sơ: {d['code']}")
    doc.field("Kính gửi Ông/Bà", d["applicant_name"])
    doc.paragraph(f"Ngày {format_vn_datetime(d['received_at'])}, {agency} tiếp nhận hồ sơ đề nghị giải quyết thủ "
                  f"tục {d['procedure_name']} của Ông/Bà {d['applicant_name']}, số định danh "
                  f"{d['applicant_id_number']}, mã số hồ sơ {d['code']}.")
    # The date on the receipt (moved only by supplement pauses), never an earlier apology's date.
    doc.field("Thời gian hẹn trả kết quả", format_vn_datetime(d["original_due_at"]))
    doc.paragraph("Đến nay, hồ sơ chưa được giải quyết đúng thời hạn hẹn trả kết quả ghi trên Giấy tiếp nhận hồ sơ "
                  "và hẹn trả kết quả.")
    doc.field("Lý do", apology["reason"])
    new_due = apology["new_due_at"]
    doc.paragraph(f"{agency} xin lỗi Ông/Bà vì sự chậm trễ này và sẽ trả kết quả giải quyết hồ sơ cho Ông/Bà vào "
                  f"{format_vn_datetime(new_due)} ({format_vn_date(new_due)}).")
    doc.paragraph("Mong nhận được sự thông cảm của Ông/Bà.", italic=True)
    doc.signature_blocks(None, (HEAD_SIGNS + "\n" + agency.upper(), SIGN_HINT))
    return doc.output()


async def withdrawal_pdf(tx: Tx, d: dict[str, Any]) -> bytes:
    """Form 05 (Thông báo dừng giải quyết hồ sơ): the citizen asked to stop; the agency confirms."""
    if d["status"] != "withdrawn":
        raise ProblemError(409, "conflict", f"Hồ sơ {d['code']} chưa dừng giải quyết / the dossier was not withdrawn",
                           extra={"state": d["status"]})
    entry = next(h for h in reversed(await repo.timeline(tx, d["code"])) if h["action"] == "withdraw")
    agency, place = await agency_and_place(tx, d["current_agency"])
    doc = SlipDocument(f"Thông báo dừng giải quyết {d['code']}")
    doc.national_header(agency, date_line(place, entry["at"]))
    doc.title("Thông báo dừng giải quyết hồ sơ", f"Mã hồ sơ: {d['code']}")
    doc.field("Kính gửi Ông/Bà", d["applicant_name"])
    doc.field("Thủ tục", d["procedure_name"])
    doc.field("Ngày nhận hồ sơ", format_vn_datetime(d["received_at"]))
    # The request is the applicant's (Decree 118 Art. 21) even when an officer records it; the notice is the agency's.
    doc.paragraph(f"Theo đề nghị của Ông/Bà {d['applicant_name']} ngày {format_vn_datetime(entry['at'])}, "
                  f"{agency} dừng giải quyết hồ sơ nêu trên.")
    if entry["note"]:
        doc.field("Lý do", entry["note"])
    doc.signature_blocks(None, (HEAD_SIGNS + "\n" + agency.upper(), SIGN_HINT))
    return doc.output()
