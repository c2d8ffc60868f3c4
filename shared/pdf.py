"""Printable slips (phiếu) as PDF: Vietnamese text in a shipped DejaVu font, tables, a QR code.

The forms of Circular 03/2025 (01 receipt and appointment, 02 request to supplement, 03 refusal,
04 apology, 06 control slip, handover records) are composed from these pieces by each service.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import qrcode
from fpdf import FPDF, FontFace

from shared.calendar import VN_TZ

FONT_DIR = Path(__file__).resolve().parent / "assets" / "fonts"
FAMILY = "DejaVu"


def format_vn_date(d: date | datetime) -> str:
    if isinstance(d, datetime):
        d = d.astimezone(VN_TZ).date() if d.tzinfo else d.date()
    return f"ngày {d.day:02d} tháng {d.month:02d} năm {d.year}"


def date_line(place: str | None, at: date | datetime) -> str:
    """The date line of a form: "Ba Đình, ngày 07 tháng 12 năm 2026" (without a known place, the date alone)."""
    return f"{place}, {format_vn_date(at)}" if place else format_vn_date(at).capitalize()


def format_vn_datetime(dt: datetime) -> str:
    local = dt.astimezone(VN_TZ)
    return f"{local:%H} giờ {local:%M} phút, ngày {local:%d/%m/%Y}"


def format_vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".") + " đồng"


SIGN_HINT = "(Ký và ghi rõ họ tên)"
ONE_STOP_UNIT = "Bộ phận Tiếp nhận và Trả kết quả"  # the one-stop unit, as forms 01–07 name it
ROLE_WORDS = {
    "system": "Hệ thống thông tin giải quyết TTHC", "gov_system": "Hệ thống thông tin liên thông",
    "postal_partner": "Nhân viên bưu chính", "kiosk": "Ki-ốt tự phục vụ", "citizen": "Người nộp hồ sơ",
    "officer": "Công chức", "supervisor": "Lãnh đạo", "admin": "Quản trị hệ thống",
}
"""Where a form names someone whose full name is not known (a system, a partner, a row written before names
were kept): the role in words, never an account, a client id or an id number."""


def person(name: object, title: object = None, role: str | None = None) -> str:
    """A person on a form: "Lê Thị Hoa (Công chức Tư pháp - Hộ tịch)", else the role in words, else ""."""
    if isinstance(name, str) and name.strip():
        return f"{name.strip()} ({title.strip()})" if isinstance(title, str) and title.strip() else name.strip()
    return ROLE_WORDS.get(role or "", "")


@dataclass(frozen=True)
class Signature:
    """A signature block: the heading (NGƯỜI TIẾP NHẬN HỒ SƠ, CHỦ TỊCH…), the title when known, the hint,
    room to sign, then the full name; without a name the line is left to be written by hand."""

    heading: str
    name: str | None = None
    title: str | None = None
    hint: str = SIGN_HINT


def signature(heading: str, name: object = None, title: object = None, hint: str = SIGN_HINT) -> Signature:
    clean = name.strip() if isinstance(name, str) and name.strip() else None
    clean_title = title.strip() if isinstance(title, str) and title.strip() and clean else None
    return Signature(heading, clean, clean_title, hint)


class SlipDocument:
    """An A4 slip built top to bottom; `output()` gives the PDF bytes."""

    def __init__(self, title: str = "Một Cửa", landscape: bool = False) -> None:
        pdf = FPDF(orientation="L" if landscape else "P", unit="mm", format="A4")
        pdf.set_margins(15, 15, 15)
        pdf.set_auto_page_break(True, margin=15)
        pdf.add_font(FAMILY, "", str(FONT_DIR / "DejaVuSans.ttf"))
        pdf.add_font(FAMILY, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        pdf.add_font(FAMILY, "I", str(FONT_DIR / "DejaVuSans-Oblique.ttf"))
        pdf.set_title(title)
        pdf.set_creator("Một Cửa")
        pdf.add_page()
        pdf.set_font(FAMILY, size=10)
        self.pdf = pdf

    @property
    def width(self) -> float:
        return float(self.pdf.epw)

    def national_header(self, agency_name: str, place_and_date: str, unit: str | None = None,
                        number: str | None = None) -> SlipDocument:
        """Left: the agency (and its unit, e.g. the one-stop unit) and the form's number; right: the national
        motto; below, right: the place and date line."""
        pdf, half = self.pdf, self.width / 2
        top = pdf.get_y()
        if unit:
            pdf.set_font(FAMILY, "", 10)
            pdf.multi_cell(half - 4, 5, agency_name.upper(), align="C", new_x="LMARGIN", new_y="NEXT")
            pdf.set_font(FAMILY, "B", 10)
            pdf.multi_cell(half - 4, 5, unit.upper(), align="C", new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.set_font(FAMILY, "B", 10)
            pdf.multi_cell(half - 4, 5, agency_name.upper(), align="C", new_x="LMARGIN", new_y="NEXT")
        if number:
            pdf.set_font(FAMILY, "", 10)
            pdf.multi_cell(half - 4, 6, f"Số: {number}", align="C", new_x="LMARGIN", new_y="NEXT")
        left_bottom = pdf.get_y()
        pdf.set_xy(pdf.l_margin + half, top)
        pdf.set_font(FAMILY, "B", 10)
        pdf.multi_cell(half, 5, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nĐộc lập - Tự do - Hạnh phúc", align="C")
        pdf.set_y(max(pdf.get_y(), left_bottom))
        pdf.ln(3)
        pdf.set_font(FAMILY, "I", 10)
        pdf.cell(0, 6, place_and_date, align="R", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        return self

    def title(self, text: str, subtitle: str | None = None) -> SlipDocument:
        self.pdf.set_font(FAMILY, "B", 13)
        self.pdf.multi_cell(0, 7, text.upper(), align="C", new_x="LMARGIN", new_y="NEXT")
        if subtitle:
            self.pdf.set_font(FAMILY, "I", 10)
            self.pdf.multi_cell(0, 6, subtitle, align="C", new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(3)
        self.pdf.set_font(FAMILY, "", 10)
        return self

    def field(self, label: str, value: str) -> SlipDocument:
        self.pdf.set_font(FAMILY, "", 10)
        self.pdf.multi_cell(0, 6, f"{label}: {value}", new_x="LMARGIN", new_y="NEXT")
        return self

    def paragraph(self, text: str, italic: bool = False) -> SlipDocument:
        self.pdf.set_font(FAMILY, "I" if italic else "", 10)
        self.pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font(FAMILY, "", 10)
        return self

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]],
              widths: Sequence[float] | None = None) -> SlipDocument:
        self.pdf.set_font(FAMILY, "", 9)
        col_widths = tuple(widths) if widths else None
        with self.pdf.table(col_widths=col_widths, repeat_headings=1, line_height=5) as table:
            head = table.row()
            for h in headers:
                head.cell(h)
            for row in rows:
                r = table.row()
                for value in row:
                    r.cell(value)
        self.pdf.ln(2)
        self.pdf.set_font(FAMILY, "", 10)
        return self

    def grid(self, header_rows: Sequence[Sequence[tuple[str, int, int]]], rows: Sequence[Sequence[str]],
             widths: Sequence[float], font_size: float = 8) -> SlipDocument:
        """A ruled table whose heading spans cells: each heading cell is (text, colspan, rowspan); the
        heading is repeated on every page."""
        pdf = self.pdf
        pdf.set_font(FAMILY, "", font_size)
        with pdf.table(col_widths=tuple(widths), num_heading_rows=len(header_rows), repeat_headings=1,
                       line_height=font_size * 0.5, text_align="LEFT",
                       headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235))) as table:
            for heading in header_rows:
                r = table.row()
                for text, colspan, rowspan in heading:
                    r.cell(text, colspan=colspan, rowspan=rowspan, align="CENTER")
            for row in rows:
                r = table.row()
                for value in row:
                    r.cell(value)
        pdf.ln(2)
        pdf.set_font(FAMILY, "", 10)
        return self

    def qr(self, url: str, caption: str | None = None, size_mm: float = 28) -> SlipDocument:
        image = qrcode.make(url, box_size=8, border=1)
        buf = io.BytesIO()
        image.save(buf)
        buf.seek(0)
        x = self.pdf.l_margin + self.width - size_mm
        y = self.pdf.get_y()
        self.pdf.image(buf, x=x, y=y, w=size_mm, h=size_mm)
        if caption:
            self.pdf.set_font(FAMILY, "I", 8)
            self.pdf.set_xy(x - 20, y + size_mm)
            self.pdf.multi_cell(size_mm + 20, 4, caption, align="C")
        self.pdf.set_y(y + size_mm + (10 if caption else 2))
        self.pdf.set_font(FAMILY, "", 10)
        return self

    def signature_blocks(self, left: Signature | tuple[str, str] | None,
                         right: Signature | tuple[str, str] | None) -> SlipDocument:
        """Two signature blocks side by side (either may be None): heading, title, hint, room to sign, name.
        A (heading, text) pair prints its text under the heading, then the room to sign."""
        left, right = (Signature(b[0], hint=b[1]) if isinstance(b, tuple) else b for b in (left, right))
        pdf, half = self.pdf, self.width / 2
        pdf.ln(4)
        if pdf.get_y() + 45 > pdf.h - pdf.b_margin:
            pdf.add_page()
        top = hints_end = pdf.get_y()
        blocks = [(pdf.l_margin + i * half, block) for i, block in enumerate((left, right)) if block is not None]
        for x, block in blocks:
            pdf.set_xy(x, top)
            pdf.set_font(FAMILY, "B", 10)
            pdf.multi_cell(half, 5, block.heading, align="C", new_x="LEFT", new_y="NEXT")
            if block.title:
                pdf.set_font(FAMILY, "", 10)
                pdf.multi_cell(half, 5, block.title, align="C", new_x="LEFT", new_y="NEXT")
            pdf.set_font(FAMILY, "I", 9)
            pdf.multi_cell(half, 5, block.hint, align="C", new_x="LEFT", new_y="NEXT")
            hints_end = max(hints_end, pdf.get_y())
        names_at = bottom = hints_end + 20  # room to sign; the names of both blocks on one line
        for x, block in blocks:
            if block.name:
                pdf.set_xy(x, names_at)
                pdf.set_font(FAMILY, "B", 10)
                pdf.multi_cell(half, 5, block.name, align="C", new_x="LEFT", new_y="NEXT")
                bottom = max(bottom, pdf.get_y())
        pdf.set_y(bottom + 4)
        pdf.set_font(FAMILY, "", 10)
        return self

    def output(self) -> bytes:
        return bytes(self.pdf.output())
