"""Form 06 (Phiếu kiểm soát quá trình giải quyết hồ sơ), form 04 (apology, new appointment) and form 05
(notice of stopping), as Circular 03/2025 gives them: agencies by official name and place, people by full
name and title from the identity records (the role in words where no name is known), Vietnamese only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.dossier_workflow import dossiers_repository as repo
from services.dossier_workflow import service
from services.dossier_workflow.deadlines import localize, step_name
from shared.admin_units import place_name
from shared.calendar import VN_TZ
from shared.db import Tx
from shared.pdf import (
    ONE_STOP_UNIT,
    ROLE_WORDS,
    SlipDocument,
    date_line,
    format_vn_date,
    format_vn_datetime,
    person,
    signature,
)
from shared.problems import ProblemError

TIMING_VI = {"early": "Trước hạn", "on_time": "Đúng hạn", "late": "Quá hạn", None: ""}
FORM_04_TITLE = "Văn bản xin lỗi và đề nghị gia hạn thời gian giải quyết"  # Circular 03/2025, Phụ lục I
COLLECTIVE_BODIES = ("commune_people_committee", "province_people_committee")
HEAD_SIGNS = "THỦ TRƯỞNG CƠ QUAN, ĐƠN VỊ"
SIGN_HINT = "(Ký, ghi rõ họ tên, đóng dấu)"
APPLICANT = "Tổ chức, cá nhân"
EXTERNAL_SYSTEMS = {  # outside systems a dossier is transferred to (liên thông), by the code the action names
    "BHXH": "Cơ quan Bảo hiểm xã hội", "CA": "Cơ quan Công an", "THUE": "Cơ quan Thuế",
}
# Hand-offs (giao, nhận) among the history rows; the others (portal sync, clock start, rating, apology, assignment,
# extension…) are not hand-offs and never show on form 06. "taker": the actor receives the dossier; "giver": the
# actor hands it on.
TAKERS = {"start": "start", "receive_supplement": "supplement_in"}
GIVERS = {"forward": "forward", "approve": "decide", "reject": "decide", "transfer": "transfer",
          "request_supplement": "supplement_out", "return_result": "return"}
NOTES = {"request_supplement": "Yêu cầu bổ sung hồ sơ", "receive_supplement": "Nhận hồ sơ bổ sung",
         "approve": "Đã phê duyệt", "reject": "Từ chối giải quyết", "return_result": "Trả kết quả",
         "transfer": "Chuyển liên thông"}


async def agency_data(tx: Tx, code: str) -> dict[str, Any]:
    """The agency's row with `place_name` (its own `place` if its data gives one, else its administrative unit)."""
    row = await repo.agency_place(tx, code)
    if row is None:
        return {"code": code, "name": code, "place_name": None}
    data = dict(row)
    given = data.get("place")
    data["place_name"] = given.strip() if isinstance(given, str) and given.strip() else place_name(
        data.get("admin_unit_code") or "")
    return data


def hand_off_timing(at: Any, deadline: Any) -> str | None:
    """Was the step handed on before its own deadline day, by the deadline, or after it?"""
    if deadline is None:
        return None
    if at > deadline:
        return "late"
    return "early" if at.astimezone(VN_TZ).date() < deadline.astimezone(VN_TZ).date() else "on_time"


def _who(row: dict[str, Any] | None, applicant: str) -> str:
    if row is None:
        return ""
    if row["actor_role"] == "citizen" and not row.get("actor_name"):
        return applicant
    return person(row.get("actor_name"), row.get("actor_title"), row["actor_role"])


def hand_offs(rows: list[dict[str, Any]], names: dict[str, str], d: dict[str, Any]) -> list[dict[str, Any]]:
    """The history as hand-offs: from which unit to which, who gave and who received, when, and whether the
    step it closed was early, on time or late."""
    applicant = d["applicant_name"]
    agency = d["competent_agency"]
    holder = _who(rows[0], applicant) if rows else ""  # who received the dossier at the one-stop unit
    entries: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        action = row["action"]
        if action == "accept":  # an online dossier accepted by the one-stop unit: it holds it from then
            holder = _who(row, applicant)
        kind = TAKERS.get(action) or GIVERS.get(action)
        if kind is None:
            continue
        deadline = rows[i - 1]["step_due_at"] if i else None
        agency_name = names.get(agency, agency)
        actor = _who(row, applicant)
        following = next((r for r in rows[i + 1:] if r["action"] in TAKERS or r["action"] in GIVERS), None)
        data = row.get("data") or {}
        if kind == "start":
            giver, taker, units = holder, actor, (ONE_STOP_UNIT, agency_name)
        elif kind == "supplement_in":
            giver, taker, units = applicant, actor, (APPLICANT, agency_name)
        elif kind == "forward":
            giver, taker, units = actor, _who(following, applicant), (agency_name, f"Lãnh đạo {agency_name}")
        elif kind == "decide":
            returned = following if following and following["action"] == "return_result" else None
            giver, taker, units = actor, _who(returned, applicant), (f"Lãnh đạo {agency_name}", ONE_STOP_UNIT)
        elif kind == "supplement_out":
            giver, taker, units = actor, applicant, (agency_name, APPLICANT)
        elif kind == "return":
            giver, taker, units = actor, applicant, (ONE_STOP_UNIT, APPLICANT)
        else:  # transfer: to another agency of the system (it holds the dossier from now) or an outside system
            target = str(data.get("target") or row.get("note") or "")
            if data.get("external"):
                target_name = EXTERNAL_SYSTEMS.get(target, f"Hệ thống liên thông {target}")
                giver, taker = actor, ROLE_WORDS["gov_system"]
            else:
                target_name = names.get(target, target)
                at_target = following if following and following["actor_agency"] == target else None
                giver, taker = actor, _who(at_target, applicant)
                agency = target
            units = (agency_name, target_name)
        if kind in ("start", "supplement_in"):
            holder = taker
        entries.append({
            "at": row["at"], "action": action, "from_unit": units[0], "to_unit": units[1],
            "handed_over_by": giver, "received_by": taker, "step": row["step"],
            "closed_step_due_at": deadline, "timing": hand_off_timing(row["at"], deadline),
            "note": ": ".join(x for x in (NOTES.get(action), row.get("note")) if x) or None,  # "label: detail"
        })
    return entries


async def control_slip(tx: Tx, d: dict[str, Any]) -> dict[str, Any]:
    """Form 06 as data (the PDF prints exactly this): the agencies, then each hand-off."""
    definition = await service.definition(tx, d["definition_id"])
    rows = await repo.timeline(tx, d["code"], with_data=True)
    transfers = await repo.transfers_of(tx, d["code"])
    codes = {d["competent_agency"], d["receiving_agency"], *(t["target"] for t in transfers if not t["external"])}
    agencies = {code: await agency_data(tx, code) for code in codes}
    names = {code: str(a["name"]) for code, a in agencies.items()}
    coordinating = [EXTERNAL_SYSTEMS.get(t["target"], f"Hệ thống liên thông {t['target']}") if t["external"]
                    else names.get(t["target"], t["target"]) for t in transfers]
    entries = hand_offs(rows, names, d)
    for e in entries:
        e["timing_text"] = TIMING_VI[e["timing"]]
        e["step_name"] = step_name(definition, e["step"])
    receiving = agencies[d["receiving_agency"]]
    extensions = [{"at": r["at"], "days": r["data"].get("days"), "reason": r["data"].get("reason"),
                   "new_due_at": r["data"].get("new_due_at"), "by": _who(r, d["applicant_name"])}
                  for r in rows if r["action"] == "extend_for_verification"]
    return localize({
        "code": d["code"], "procedure_name": d["procedure_name"], "applicant_name": d["applicant_name"],
        "receiving_agency": d["receiving_agency"], "receiving_agency_name": receiving["name"],
        "place": receiving.get("place_name"), "competent_agency": d["competent_agency"],
        "competent_agency_name": names[d["competent_agency"]],
        "coordinating_agencies": list(dict.fromkeys(coordinating)), "received_at": d["received_at"],
        "due_at": d["due_at"], "original_due_at": d["original_due_at"], "status": d["status"],
        "verification_extensions": extensions, "entries": entries})


def control_slip_pdf(slip: dict[str, Any]) -> bytes:
    doc = SlipDocument(f"Phiếu kiểm soát {slip['code']}")
    doc.national_header(slip["receiving_agency_name"], date_line(slip.get("place"), slip["received_at"]),
                        unit=ONE_STOP_UNIT, number="…/PKS")
    doc.title("Phiếu kiểm soát quá trình giải quyết hồ sơ")
    doc.field("Mã số hồ sơ", slip["code"])
    doc.field("Tên thủ tục hành chính", slip["procedure_name"])
    doc.field("Tổ chức, cá nhân", slip["applicant_name"])
    doc.field("Nơi tiếp nhận hồ sơ", slip["receiving_agency_name"])  # the route (Decree 118/2025 Art. 14)
    doc.field("Cơ quan (bộ phận) giải quyết hồ sơ", slip["competent_agency_name"])
    doc.field("Cơ quan phối hợp giải quyết hồ sơ", "; ".join(slip["coordinating_agencies"]) or "Không")
    doc.field("Ngày nhận", format_vn_datetime(slip["received_at"]))
    doc.field("Hẹn trả kết quả vào", format_vn_datetime(slip["original_due_at"]) if slip["original_due_at"] else
              "Chưa bắt đầu tính thời hạn (chờ tiếp nhận hồ sơ trực tuyến hoặc hồ sơ giấy gửi qua bưu chính)")
    for ext in slip["verification_extensions"]:  # not late: the legal due date moves with it
        doc.field("Gia hạn để xác minh", f"{ext['days']} ngày làm việc, từ {format_vn_datetime(ext['at'])} "
                  f"({ext['by']}); lý do: {ext['reason'] or ''}")
    if slip["due_at"] != slip["original_due_at"]:
        doc.field("Hẹn lại ngày trả kết quả", format_vn_datetime(slip["due_at"]))
    rows = [[f"1. Giao: {e['from_unit']}\n2. Nhận: {e['to_unit']}", format_vn_datetime(e["at"]),
             e["handed_over_by"], e["received_by"], e["timing_text"], e["note"] or ""] for e in slip["entries"]]
    doc.grid([[("TÊN ĐƠN VỊ", 1, 2), ("THỜI GIAN GIAO, NHẬN HỒ SƠ", 3, 1),
               ("KẾT QUẢ GIẢI QUYẾT HỒ SƠ (Trước hạn/ Đúng hạn/ Quá hạn)", 1, 2), ("GHI CHÚ", 1, 2)],
              [("Thời gian", 1, 1), ("Người giao", 1, 1), ("Người nhận", 1, 1)]],
             rows or [[f"1. Giao: {ONE_STOP_UNIT}\n2. Nhận: {slip['competent_agency_name']}", "", "", "", "", ""]],
             widths=(44, 28, 31, 31, 24, 22))
    doc.paragraph("Ghi chú: Kết quả giải quyết hồ sơ do bên nhận nhập thông tin khi nhận bàn giao hồ sơ. Việc lưu "
                  "vết được thực hiện tự động trên Hệ thống thông tin giải quyết thủ tục hành chính.", italic=True)
    return doc.output()


def _head(agency: dict[str, Any], signed: Mapping[str, Any] | None = None) -> Any:
    """Forms 04 and 05 are the agency's: signed by its head (name and title when its data gives them, else the
    line is left to sign), never by the officer who recorded the action. `signed`: the head kept with the form
    when it was issued (`signed_by_name`, `signed_by_title`); without one (issued before it was kept, or when no
    head was on record) today's head, if any."""
    if signed is not None and (signed.get("signed_by_name") or signed.get("signed_by_title")):
        agency = {**agency, "head_name": signed["signed_by_name"], "head_title": signed["signed_by_title"]}
    title = agency.get("head_title")
    heading = (f"{title}".upper() if isinstance(title, str) and title.strip() else HEAD_SIGNS)
    if heading != HEAD_SIGNS and agency.get("body_type") in COLLECTIVE_BODIES:
        heading = "TM. ỦY BAN NHÂN DÂN\n" + heading  # the chair signs on behalf of the committee
    return signature(heading, agency.get("head_name"), None, SIGN_HINT)


async def apology_pdf(tx: Tx, d: dict[str, Any]) -> bytes:
    apology = await repo.latest_apology(tx, d["code"])
    if apology is None:
        raise ProblemError(404, "not_found", f"Hồ sơ {d['code']} chưa có văn bản xin lỗi / no apology was issued")
    data = await agency_data(tx, d["current_agency"])
    agency = str(data["name"])
    doc = SlipDocument(f"Văn bản xin lỗi {d['code']}")
    doc.national_header(agency, date_line(data.get("place_name"), apology["issued_at"]), number="…/PXL")
    doc.title(FORM_04_TITLE)
    doc.field("Kính gửi", f"Ông/Bà {d['applicant_name']}")
    doc.paragraph(f"Ngày {format_vn_datetime(d['received_at'])}, {agency} tiếp nhận hồ sơ đề nghị giải quyết thủ "
                  f"tục {d['procedure_name']} của Ông/Bà {d['applicant_name']}, số định danh "
                  f"{d['applicant_id_number']}, mã số hồ sơ {d['code']}.")
    # The date on the receipt (moved only by supplement pauses), never an earlier apology's date.
    doc.field("Thời gian hẹn trả kết quả", format_vn_datetime(d["original_due_at"]))
    doc.paragraph("Tuy nhiên, đến nay, hồ sơ chưa được giải quyết đúng thời hạn hẹn trả kết quả ghi trên Giấy tiếp "
                  "nhận hồ sơ và hẹn trả kết quả.")
    doc.field("Lý do", apology["reason"])
    new_due = apology["new_due_at"]
    doc.paragraph(f"{agency} xin lỗi Ông/Bà vì sự chậm trễ này và sẽ trả kết quả giải quyết hồ sơ cho Ông/Bà vào "
                  f"{format_vn_datetime(new_due)} ({format_vn_date(new_due)}).")
    doc.paragraph("Mong nhận được sự thông cảm của Ông/Bà.", italic=True)
    doc.signature_blocks(None, _head(data, apology))
    return doc.output()


async def withdrawal_pdf(tx: Tx, d: dict[str, Any]) -> bytes:
    """Form 05 (Thông báo dừng giải quyết hồ sơ): the citizen asked to stop; the agency confirms."""
    if d["status"] != "withdrawn":
        raise ProblemError(409, "conflict", f"Hồ sơ {d['code']} chưa dừng giải quyết / the dossier was not withdrawn",
                           extra={"state": d["status"]})
    entry = next(h for h in reversed(await repo.timeline(tx, d["code"], with_data=True)) if h["action"] == "withdraw")
    data = await agency_data(tx, d["current_agency"])
    agency = str(data["name"])
    doc = SlipDocument(f"Thông báo dừng giải quyết {d['code']}")
    doc.national_header(agency, date_line(data.get("place_name"), entry["at"]))
    doc.title("Thông báo dừng giải quyết hồ sơ")
    doc.field("Kính gửi", f"Ông/Bà {d['applicant_name']}")
    doc.field("Mã hồ sơ", d["code"])
    doc.field("Thủ tục", d["procedure_name"])
    doc.field("Ngày nhận hồ sơ", format_vn_datetime(d["received_at"]))
    # The request is the applicant's (Decree 118 Art. 21) even when an officer records it; the notice is the agency's.
    doc.paragraph(f"Theo đề nghị của Ông/Bà {d['applicant_name']} ngày {format_vn_datetime(entry['at'])}, "
                  f"{agency} dừng giải quyết hồ sơ nêu trên.")
    if entry["note"]:
        doc.field("Lý do", entry["note"])
    doc.signature_blocks(None, _head(data, entry.get("data")))
    return doc.output()
