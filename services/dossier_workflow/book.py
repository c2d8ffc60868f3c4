"""Form 07 (Sổ theo dõi hồ sơ, Circular 03/2025) as a PDF: the tracking book of an agency for a period, with its
legal columns, on landscape A4; and the same book as JSON pages and CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from typing import Any

from services.dossier_workflow import slips, worklist
from services.dossier_workflow import worklist_repository as lists
from services.dossier_workflow.deadlines import localize
from shared.auth import Principal
from shared.calendar import VN_TZ
from shared.db import Tx
from shared.pagination import encode_cursor
from shared.pdf import ONE_STOP_UNIT, SlipDocument, date_line
from shared.problems import ProblemError

DELIVERY_VI = {"counter": "Trực tiếp", "postal": "Qua dịch vụ bưu chính công ích",
               "electronic": "Trực tuyến"}
HEADINGS = [[("STT", 1, 2), ("Mã hồ sơ", 1, 2), ("Tên TTHC", 1, 2), ("Tên tổ chức, cá nhân", 1, 2),
             ("Địa chỉ, số điện thoại", 1, 2), ("Cơ quan chủ trì giải quyết", 1, 2), ("Số bộ hồ sơ", 1, 2),
             ("Nhận và trả kết quả", 5, 1)],
            [("Nhận hồ sơ", 1, 1), ("Hẹn trả kết quả", 1, 1), ("Trả kết quả", 1, 1),
             ("Phương thức nhận kết quả", 1, 1), ("Ký nhận", 1, 1)]]
WIDTHS = (8, 32, 34, 26, 32, 28, 11, 19, 19, 19, 20, 0)  # "Ký nhận" takes the rest (19 mm)


def _at(t: datetime | None) -> str:
    """A date and time in a narrow cell of the PDF book: the date above the time."""
    return _vn(t).replace(" ", "\n")


def keyset(cursor: str | None) -> tuple[datetime, str] | None:
    """The book's cursor (JSON, CSV and PDF pages alike): the last entry's received_at and code."""
    after = worklist.keyset(cursor)
    if after is None:
        return None
    at, code = after
    if at is None:  # every entry has a receipt time
        raise ProblemError(400, "bad_request", "cursor không hợp lệ / Invalid cursor")
    return at, code


def _local_range(start: date, end: date) -> tuple[datetime, datetime]:
    return datetime.combine(start, time(0), VN_TZ), datetime.combine(end + timedelta(days=1), time(0), VN_TZ)


async def tracking_book(tx: Tx, who: Principal, start: date, end: date, cursor: str | None,
                        limit: int) -> dict[str, Any]:
    """One JSON page of the book (dossiers received from `start` to `end`, Việt Nam days)."""
    lo, hi = _local_range(start, end)
    rows = await lists.tracking_book(tx, _scope(who), lo, hi, keyset(cursor), limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [{k: r[k] for k in ("code", "applicant_name", "procedure_name", "channel", "received_at", "due_at",
                                "original_due_at", "resolved_at", "returned_at", "status", "outcome",
                                "outcome_reason", "current_agency")} for r in rows]
    return {"items": localize(items),
            "next_cursor": encode_cursor([rows[-1]["received_at"].isoformat(), rows[-1]["code"]]) if more else None}


def _vn(t: datetime | None) -> str:
    return t.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M") if t else ""


def tracking_book_csv(items: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Mã hồ sơ", "Người nộp", "Thủ tục", "Kênh", "Ngày nhận", "Hẹn trả", "Hạn ban đầu",
                     "Ngày có kết quả", "Ngày trả", "Trạng thái", "Kết quả", "Ghi chú"])
    for r in items:
        writer.writerow([r["code"], r["applicant_name"], r["procedure_name"], r["channel"], _vn(r["received_at"]),
                         _vn(r["due_at"]), _vn(r["original_due_at"]), _vn(r["resolved_at"]), _vn(r["returned_at"]),
                         r["status"], r["outcome"] or "", r["outcome_reason"] or ""])
    return "\ufeff" + out.getvalue()  # BOM: spreadsheet programs then read Vietnamese correctly


def _scope(who: Principal) -> str | None:
    return None if who.role == "admin" else who.agency_code


async def tracking_book_pdf(tx: Tx, who: Principal, start: date, end: date, cursor: str | None, limit: int,
                            now: datetime) -> tuple[bytes, str | None]:
    """One page of the book (up to `limit` entries from the cursor; dossiers received from `start` to `end`,
    Việt Nam days), numbered on from the period's start; returns the PDF and the next page's cursor, if any."""
    agency, after = _scope(who), keyset(cursor)
    lo, hi = _local_range(start, end)
    rows = await lists.tracking_book(tx, agency, lo, hi, after, limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    first = (await lists.book_rows_before(tx, agency, lo, after) if after else 0) + 1
    codes = {r["current_agency"] for r in rows}
    names = {code: (await slips.agency_data(tx, code))["name"] for code in codes}
    own = await slips.agency_data(tx, agency) if agency else {"name": "", "place_name": None}
    doc = SlipDocument("Sổ theo dõi hồ sơ", landscape=True)
    doc.national_header(str(own["name"]) or ONE_STOP_UNIT, date_line(own.get("place_name"), now),
                        unit=ONE_STOP_UNIT if own["name"] else None)
    doc.title("Sổ theo dõi hồ sơ", f"Từ ngày {start:%d/%m/%Y} đến ngày {end:%d/%m/%Y}")
    table = [[str(n), r["code"], r["procedure_name"], r["applicant_name"],
              "\n".join(x for x in (r.get("applicant_address"), r.get("applicant_phone")) if x),
              str(names.get(r["current_agency"], r["current_agency"])),
              str(r["number_of_sets"]) if r.get("number_of_sets") else "",
              _at(r["received_at"]), _at(r["original_due_at"]), _at(r["returned_at"]),
              DELIVERY_VI.get(r["result_delivery"], r["result_delivery"]), ""]
             for n, r in enumerate(rows, first)]
    widths = (*WIDTHS[:-1], doc.width - sum(WIDTHS[:-1]))
    doc.grid(HEADINGS, table or [["", "", "Không có hồ sơ trong kỳ", "", "", "", "", "", "", "", "", ""]],
             widths=widths, font_size=7)
    following = encode_cursor([rows[-1]["received_at"].isoformat(), rows[-1]["code"]]) if more else None
    return doc.output(), following
