"""The window every date a client sends to the workflow must fall in (a 422 that says so, never a 500).

Dossiers of this system are received from 2000 on, and no deadline, report or appointment reaches past
2099; a date outside is a mistake (or an attack), and out at the calendar's edges (0001, 9999) the date
arithmetic itself overflows.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from shared.problems import ProblemError, error_item

EARLIEST = date(2000, 1, 1)
LATEST = date(2099, 12, 31)
APOLOGY_AT_MOST = timedelta(days=366)  # a new appointment (form 04) at most a year after the current due date


def within(field: str, value: date | datetime | None) -> None:
    """422 unless `value` (its own calendar day, no arithmetic) is between EARLIEST and LATEST."""
    if value is None:
        return
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST <= day <= LATEST:
        raise out_of_window(field)


def out_of_window(field: str) -> ProblemError:
    why = f"ngày phải từ {EARLIEST} đến {LATEST} / must be a date from {EARLIEST} to {LATEST}"
    return ProblemError(422, "validation_error", f"'{field}': {why}", errors=[error_item(field, why, "date_range")])


def date_range(start: date, end: date) -> None:
    """A report's period: both ends in the window, the start not after the end."""
    within("from", start)
    within("to", end)
    if start > end:
        raise ProblemError(422, "validation_error", "'from' phải trước 'to' / 'from' must not be after 'to'",
                           errors=[error_item("from", "after 'to'", "range")])
