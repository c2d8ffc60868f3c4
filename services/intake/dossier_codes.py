"""Which code a dossier gets (mã số hồ sơ), decided in one place from the receipt day and the service type.

* `<receiving agency>-YYMMDD-XXXX` (Circular 01/2018 Art. 19; the pattern is the setting
  `DOSSIER_CODE_PATTERN`): every dossier received before 25 January 2026, and after it every dossier
  of a service that is not nationally centralised. 4 digits, at most 9,999 a day per agency.
* `<deciding body>-YYMMDD-AAXXXX` (Circular 03/2025 Art. 13 cl. 3, added by Circular 04/2025/TT-VPCP
  Art. 23.2, in force 25 January 2026): a dossier of a nationally centralised service received on or
  after that day (and on or after the day its catalog row says). The deciding body is the competent
  agency; AA is the digit pair of the central system's owner (catalog data, `centralised_services`);
  the day's number has at least 4 digits and no upper bound.

Each format numbers from its own daily counter, without gaps: (receiving agency, day) and
(deciding body, day, AA).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.intake import dossier_repository as repo
from services.intake import service
from shared.db import Tx

CENTRALISED_FROM = date(2026, 1, 25)  # Circular 04/2025/TT-VPCP in force
CENTRALISED_PATTERN = "{agency}-{yymmdd}-{owner}{seq}"  # MX1X2.Y1Y2Y3.Z1Z2-YYMMDD-AAXXXX


@dataclass(frozen=True)
class CodeFormat:
    """The counter a dossier's number comes from, and the text around the number."""
    counter_agency: str
    series: str  # '' for the receiving agency's 4-digit code, AA for the centralised code
    prefix: str
    suffix: str


def code_format(day: date, receiving: str, deciding: str, owner_digits: str | None, since: date | None,
                pattern: str) -> CodeFormat:
    """The format for a dossier received on `day` (Viet Nam date). `owner_digits` and `since`: the
    procedure's `centralised_services` row, None for a service that is not centralised."""
    if owner_digits is not None and day >= max(CENTRALISED_FROM, since or CENTRALISED_FROM):
        prefix, suffix = repo.code_parts(CENTRALISED_PATTERN, deciding, day, owner_digits)
        return CodeFormat(deciding, owner_digits, prefix, suffix)
    prefix, suffix = repo.code_parts(pattern, receiving, day)
    return CodeFormat(receiving, "", prefix, suffix)


async def choose(tx: Tx, procedure_code: str, day: date, receiving: str, deciding: str,
                 pattern: str) -> CodeFormat:
    """The format of the code of a dossier of `procedure_code` received on `day`."""
    central = await service.centralised_service(tx, procedure_code) if day >= CENTRALISED_FROM else None
    if central is None:
        return code_format(day, receiving, deciding, None, None, pattern)
    return code_format(day, receiving, deciding, str(central["owner_digits"]), central["since"], pattern)
