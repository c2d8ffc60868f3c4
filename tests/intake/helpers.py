"""Builders shared by the intake tests."""

from __future__ import annotations

import uuid
from typing import Any

from shared.db import Tx
from tests.conftest import auth

WARD = "000.00.21.H29"


def body(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "channel": "counter", "procedure_code": "1.001193", "receiving_agency_code": WARD,
        "applicant": {"full_name": "Nguyễn Văn An", "id_number": "001090012345", "date_of_birth": "1990-05-12",
                      "phone": "0912345678", "address": {"line": "12 phố Kim Mã", "ward_code": "00004"}},
        "documents": [{"name": "Tờ khai đăng ký khai sinh"}, {"name": "Giấy chứng sinh"}],
    }
    b.update(over)
    return b


def officer(make_token: Any, agency: str = WARD) -> dict[str, str]:
    return auth(make_token("officer", subject="canbo.phuong", agency_code=agency),
                **{"Idempotency-Key": uuid.uuid4().hex})


async def counts(tx: Tx) -> tuple[int, int]:
    """Dossiers written and dossier numbers used, over every agency and day."""
    dossiers = await tx.fetchval("SELECT count(*) FROM intake.dossiers")
    numbers = await tx.fetchval("SELECT coalesce(sum(last_number), 0) FROM intake.daily_counters")
    return int(dossiers), int(numbers)


