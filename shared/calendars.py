"""Each agency's working calendar (sessions + overrides from schema `core`), cached 30 s per process.

The overrides are the only source of year-specific calendar decisions (make-up Saturdays, Tết
bridges, new holidays): national rows (agency_code null, seeded by migration core_0003 and kept
by the admin API) and the agency's own rows, which win over national ones on the same day."""

from __future__ import annotations

import time
from datetime import date
from datetime import time as clock
from typing import Any

from shared.calendar import DEFAULT_SESSIONS, CalendarOverride, WorkingCalendar, WorkSession
from shared.db import Tx

TTL_SECONDS = 30.0
_cache: dict[str, tuple[float, WorkingCalendar]] = {}


def _sessions(raw: list[dict[str, str]] | None) -> tuple[WorkSession, ...] | None:
    if not raw:
        return None
    return tuple(WorkSession(clock.fromisoformat(s["start"]), clock.fromisoformat(s["end"])) for s in raw)


def forget_calendars() -> None:
    """After an admin change of overrides (tests, admin API)."""
    _cache.clear()


async def calendar_for_agency(tx: Tx, agency_code: str) -> WorkingCalendar:
    """The agency's sessions and overrides on top of the national calendar (unknown agency: national)."""
    hit = _cache.get(agency_code)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    found = await tx.statement("SELECT sessions FROM core.agencies WHERE code = $1", agency_code)  # no BEGIN
    sessions: Any = found[0]["sessions"] if found else None
    rows = await tx.statement(
        "SELECT day, kind, sessions, note FROM core.calendar_overrides WHERE agency_code = $1 OR agency_code IS NULL "
        "ORDER BY day, agency_code NULLS FIRST", agency_code)
    overrides: dict[date, CalendarOverride] = {}
    for r in rows:
        overrides[r["day"]] = CalendarOverride(r["day"], r["kind"], _sessions(r["sessions"]), r["note"])
    calendar = WorkingCalendar(sessions=_sessions(sessions) or DEFAULT_SESSIONS, overrides=overrides.values())
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[agency_code] = (time.monotonic() + TTL_SECONDS, calendar)
    return calendar
