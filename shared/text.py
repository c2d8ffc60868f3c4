"""Accent-insensitive search keys: 'Đăng ký khai sinh' -> 'dang ky khai sinh'."""

from __future__ import annotations

import re

from unidecode import unidecode


def search_key(text: str) -> str:
    return re.sub(r"\s+", " ", unidecode(text.replace("đ", "d").replace("Đ", "D")).lower()).strip()
