"""Administrative units (đơn vị hành chính) from the `vietnam-provinces` package: one check for every service."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BeforeValidator
from vietnam_provinces import Province, ProvinceCode, Ward, WardCode

from shared.text import search_key


@lru_cache(maxsize=8192)
def ward_exists(code: str) -> bool:
    """A ward/commune code (mã phường/xã) of the current two-level administrative map."""
    try:
        Ward.from_code(WardCode(int(code)))
    except (ValueError, KeyError):
        return False
    return True


# Levels of an agency or a procedure since the two-level local government took effect on 1 July 2025
# (Law on Organisation of Local Government 2025): the district level (huyện, quận, thị xã, thành phố
# thuộc tỉnh) no longer exists; its one-stop work passed to the communes and the province.
Level = Literal["commune", "province", "central"]
NO_DISTRICT = ("Không còn cấp huyện từ ngày 01/7/2025 (chính quyền địa phương hai cấp); cấp hợp lệ: "
               "commune (xã, phường, đặc khu), province (tỉnh, thành phố), central (trung ương) / there is no "
               "district level since 1 July 2025 (two-level local government); levels: commune, province, central")
_DISTRICT_WORDS = frozenset({"district", "huyen", "quan", "thi xa", "cap huyen"})


def refuse_district(value: object) -> object:
    """A pydantic before-validator: 'district' (or huyện/quận) is refused with the reason, not just 'invalid'."""
    if isinstance(value, str) and search_key(value).strip() in _DISTRICT_WORDS:
        raise ValueError(NO_DISTRICT)
    return value


AgencyLevel = Annotated[Level, BeforeValidator(refuse_district)]


# The unit-type word before a place name ("Phường Ba Đình" -> "Ba Đình"): the date line of an administrative
# document names the unit where the agency sits (Decree 30/2020, Phụ lục I: "Ba Đình, ngày …").
_UNIT_WORDS = ("thành phố", "đặc khu", "thị trấn", "phường", "tỉnh", "xã")


@lru_cache(maxsize=1024)
def place_name(admin_unit_code: str | None) -> str | None:
    """The place (địa danh) of a ward/commune code (5 digits) or a province code (2 digits); None if unknown."""
    if not admin_unit_code or not admin_unit_code.isdigit():
        return None
    try:
        number = int(admin_unit_code)
        name = str(Province.from_code(ProvinceCode(number)).name if len(admin_unit_code) <= 2
                   else Ward.from_code(WardCode(number)).name)
    except (ValueError, KeyError):
        return None
    for word in _UNIT_WORDS:
        rest = name[len(word):].strip()
        if name.lower().startswith(word + " ") and rest and not rest.isdigit():
            return rest
    return name


@lru_cache(maxsize=8192)
def province_of(admin_unit_code: str | None) -> str | None:
    """The 2-digit province code (mã tỉnh, e.g. '01' Hà Nội) of a ward code (5 digits) or a province code
    (2 digits); None if unknown."""
    if not admin_unit_code or not admin_unit_code.isdigit():
        return None
    try:
        number = int(admin_unit_code)
        province = (Province.from_code(ProvinceCode(number)).code if len(admin_unit_code) <= 2
                    else Ward.from_code(WardCode(number)).province_code)
    except (ValueError, KeyError):
        return None
    return f"{int(province):02d}"


@lru_cache(maxsize=128)
def province_name(province_code: str | None) -> str | None:
    """'Thành phố Hà Nội' for '01'; None if unknown."""
    if not province_code or not province_code.isdigit():
        return None
    try:
        return str(Province.from_code(ProvinceCode(int(province_code))).name)
    except (ValueError, KeyError):
        return None
