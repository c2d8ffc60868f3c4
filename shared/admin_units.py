"""Administrative units (đơn vị hành chính) from the `vietnam-provinces` package: one check for every service."""

from __future__ import annotations

from functools import lru_cache

from vietnam_provinces import Ward, WardCode


@lru_cache(maxsize=8192)
def ward_exists(code: str) -> bool:
    """A ward/commune code (mã phường/xã) of the current two-level administrative map."""
    try:
        Ward.from_code(WardCode(int(code)))
    except (ValueError, KeyError):
        return False
    return True
