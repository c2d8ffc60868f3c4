"""Citizen id number (số định danh cá nhân, 12 digits) checks against the date of birth."""

from __future__ import annotations

from datetime import date

# Province codes used in id numbers (birth-registration province, the 63 pre-2025 provinces).
PROVINCE_CODES = frozenset({
    "001", "002", "004", "006", "008", "010", "011", "012", "014", "015", "017", "019", "020", "022", "024", "025",
    "026", "027", "030", "031", "033", "034", "035", "036", "037", "038", "040", "042", "044", "045", "046", "048",
    "049", "051", "052", "054", "056", "058", "060", "062", "064", "066", "067", "068", "070", "072", "074", "075",
    "077", "079", "080", "082", "083", "084", "086", "087", "089", "091", "092", "093", "094", "095", "096",
})
# The 4th digit: century of birth and sex (0/1: 1900s male/female, 2/3: 2000s, ... 8/9: 1800s).
CENTURY_BY_DIGIT = {0: 1900, 1: 1900, 2: 2000, 3: 2000, 4: 2100, 5: 2100, 6: 2200, 7: 2200, 8: 1800, 9: 1800}


def id_number_problems(number: str, date_of_birth: date | None) -> list[str]:
    """Empty when the number is well formed and consistent with the date of birth."""
    if len(number) != 12 or not number.isdigit():
        return ["phải gồm đúng 12 chữ số / must be exactly 12 digits"]
    problems = []
    if number[:3] not in PROVINCE_CODES:
        problems.append(f"mã tỉnh {number[:3]} không tồn tại / unknown province code {number[:3]}")
    if date_of_birth is not None:
        year = CENTURY_BY_DIGIT[int(number[3])] + int(number[4:6])
        if year != date_of_birth.year:
            problems.append(f"mã thế kỷ và năm sinh ({year}) không khớp ngày sinh / century and birth-year "
                            f"digits give {year}, not {date_of_birth.year}")
    return problems
