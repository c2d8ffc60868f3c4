"""A valid counter submission for the bench (the demo ward, a same-day procedure)."""

from __future__ import annotations

from typing import Any


def dossier_body() -> dict[str, Any]:
    return {
        "channel": "counter",
        "procedure_code": "1.001193",
        "receiving_agency_code": "000.00.21.H29",
        "applicant": {"full_name": "Nguyễn Văn An", "id_number": "001090012345",
                      "date_of_birth": "1990-05-12", "phone": "0912345678",
                      "address": {"line": "12 Phố Kim Mã", "ward_code": "00004"}},
        "documents": [{"name": "Tờ khai đăng ký khai sinh"}, {"name": "Giấy chứng sinh"}],
        "number_of_sets": 1,
        "result_delivery": "counter",
    }
