"""Working-time calendar (lịch làm việc): due dates in working time, Asia/Ho_Chi_Minh.

One module for every service. A working day is its sessions (default 07:30–11:30 and
13:30–17:00); weekends, the standing public holidays (the `holidays` library: the Labour Code's
holidays, lunar Tết, Hùng Kings' day, the day off in lieu of a holiday on a weekend …) and overrides
decide which days work. Overrides are data (table `core.calendar_overrides`, admin API): every
year-specific decision (a Tết bridge, a make-up working Saturday and the weekday it frees, a new
holiday, an agency's closure) is a row there, never a date in code. Overrides win over weekends and
holidays.

Time limits in working days are converted to working time: N × the standard day length (the
sum of the configured sessions, 7.5 h by default), counted from the next working moment after
receipt. So a dossier received after the last session starts its clock the next working morning,
and a limit never ends on a day off.

Half days (unit `working_half_days`, value N = N half days, so 0.5 working day is `{"value": 1, "unit":
"working_half_days"}`): a half day is HALF THE STANDARD DAY'S WORKING TIME (3 h 45 min with the default
sessions), counted like working days, not "until the end of the session": the morning (4 h) and the
afternoon (3 h 30) sessions differ in length, and a half day received mid-morning must not end at
11:30 with less than half a day of work in it. Integer values keep every limit exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

import holidays

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_DAYS = 3660  # a limit that runs past ten years of calendar is a data error
FIRST_DAY = date(2000, 1, 1)  # the calendar answers for moments in these years only: a date outside them is
LAST_DAY = date(2100, 12, 31)  # a client's error (refused 422 at the routes), never an overflow deep inside
RANGE_TEXT = "2000-01-01…2100-12-31"


class CalendarRangeError(ValueError):
    """A moment outside FIRST_DAY…LAST_DAY (or naive): the calendar does not compute with it."""


def in_supported_range(value: date | datetime) -> bool:
    """Whether `value` (an aware datetime, or a date) falls within FIRST_DAY…LAST_DAY, never overflowing."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return False
        if not FIRST_DAY.year - 1 < value.year < LAST_DAY.year + 1:  # before any arithmetic that may overflow
            return False
        day = value.astimezone(VN_TZ).date()
    else:
        day = value
    return FIRST_DAY <= day <= LAST_DAY


def supported(value: datetime) -> datetime:
    """`value` itself, or CalendarRangeError when it lies outside the years the calendar answers for."""
    if not in_supported_range(value):
        raise CalendarRangeError(f"{value.isoformat()} is outside {RANGE_TEXT} (or has no UTC offset)")
    return value


def bounded_date(value: date) -> date:
    """A pydantic after-validator for dates of every route (a clean 422 instead of an overflow later)."""
    if not in_supported_range(value):
        raise ValueError(f"ngày phải trong khoảng {RANGE_TEXT} / the date must be within {RANGE_TEXT}")
    return value


def bounded_moment(value: datetime) -> datetime:
    """A pydantic after-validator for aware datetimes of every route."""
    if not in_supported_range(value):
        raise ValueError(f"thời điểm phải trong khoảng {RANGE_TEXT} / the time must be within {RANGE_TEXT}")
    return value


@dataclass(frozen=True, slots=True)
class WorkSession:
    start: time
    end: time


DEFAULT_SESSIONS: tuple[WorkSession, ...] = (
    WorkSession(time(7, 30), time(11, 30)),
    WorkSession(time(13, 30), time(17, 0)),
)


@dataclass(frozen=True, slots=True)
class CalendarOverride:
    """An admin decision for one day: off (extra holiday) or working (make-up day)."""

    day: date
    kind: Literal["day_off", "working_day"]
    sessions: tuple[WorkSession, ...] | None = None
    note: str = ""


Unit = Literal["same_day", "working_days", "working_half_days", "calendar_days", "hours"]


@dataclass(frozen=True, slots=True)
class TimeLimit:
    """A procedure's time limit (thời hạn giải quyết) as data."""

    value: int
    unit: Unit
    cutoff: time = time(15, 0)

    @classmethod
    def of(cls, data: dict[str, Any], channel: str | None = None) -> TimeLimit:
        """The limit a catalog row's `time_limit` gives a dossier filed on `channel`: its `by_channel` entry
        for that channel when there is one (e.g. a liên thông bundle: fewer days online than on paper), else
        the row's own value and unit."""
        chosen = (data.get("by_channel") or {}).get(channel or "") or data
        return cls(int(chosen["value"]), chosen["unit"])


def limit_for(data: dict[str, Any], channel: str | None) -> dict[str, Any]:
    """The catalog's `time_limit` resolved for a channel, as data ({value, unit, verification_extension})."""
    chosen = TimeLimit.of(data, channel)
    return {"value": chosen.value, "unit": chosen.unit,
            "verification_extension": int(data.get("verification_extension") or 0)}


@dataclass(frozen=True, slots=True)
class DueResult:
    due_at: datetime
    working_time_limit: timedelta
    explanation: str


def _local(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("timezone-aware datetime required")
    return supported(t).astimezone(VN_TZ)


def _fmt(t: datetime) -> str:
    return t.strftime("%H:%M %d/%m/%Y")


class WorkingCalendar:
    def __init__(
        self,
        sessions: Iterable[WorkSession] = DEFAULT_SESSIONS,
        overrides: Iterable[CalendarOverride] = (),
        weekend_days: frozenset[int] = frozenset({5, 6}),
        country_holidays: bool = True,
    ) -> None:
        self.sessions = tuple(sorted(sessions, key=lambda s: s.start))
        if not self.sessions or any(s.start >= s.end for s in self.sessions):
            raise ValueError("sessions must be non-empty and each must end after it starts")
        if any(a.end > b.start for a, b in zip(self.sessions, self.sessions[1:], strict=False)):
            raise ValueError("sessions must not overlap")
        self.overrides = {o.day: o for o in overrides}
        self.weekend_days = weekend_days
        self.country_holidays = country_holidays
        self.standard_day = self._length(self.sessions)

    @staticmethod
    def _length(sessions: tuple[WorkSession, ...]) -> timedelta:
        return sum((datetime.combine(date.min, s.end) - datetime.combine(date.min, s.start)
                    for s in sessions), timedelta())

    def _is_holiday(self, d: date) -> bool:
        return self.country_holidays and d in _vn_holidays(d.year)

    def is_working_day(self, d: date) -> bool:
        override = self.overrides.get(d)
        if override is not None:
            return override.kind == "working_day"
        return d.weekday() not in self.weekend_days and not self._is_holiday(d)

    def _day_sessions(self, d: date) -> tuple[WorkSession, ...]:
        if not self.is_working_day(d):
            return ()
        override = self.overrides.get(d)
        return override.sessions if override and override.sessions else self.sessions

    def sessions_on(self, d: date) -> list[tuple[datetime, datetime]]:
        return [(datetime.combine(d, s.start, VN_TZ), datetime.combine(d, s.end, VN_TZ))
                for s in self._day_sessions(d)]

    def working_day_length(self, d: date) -> timedelta:
        return self._length(self._day_sessions(d))

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after d."""
        if not in_supported_range(d):
            raise CalendarRangeError(f"{d.isoformat()} is outside {RANGE_TEXT}")
        for i in range(1, MAX_DAYS):
            candidate = d + timedelta(days=i)
            if self.is_working_day(candidate):
                return candidate
        raise ValueError("no working day within ten years")

    def end_of_working_day(self, d: date) -> datetime:
        sessions = self.sessions_on(d)
        if not sessions:
            raise ValueError(f"{d} is not a working day")
        return sessions[-1][1]

    def next_working_moment(self, t: datetime) -> datetime:
        """t itself when inside a session, else the start of the next session."""
        t = _local(t)
        d = t.date()
        for _ in range(MAX_DAYS):
            for start, end in self.sessions_on(d):
                if t < end:
                    return max(t, start)
            d += timedelta(days=1)
        raise ValueError("no working time within ten years")

    def add_working_time(self, start: datetime, delta: timedelta) -> datetime:
        """The moment when `delta` of working time has passed after `start`."""
        if delta < timedelta(0):
            raise ValueError("delta must not be negative")
        t = _local(start)
        remaining = delta
        d = t.date()
        for _ in range(MAX_DAYS):
            for s_start, s_end in self.sessions_on(d):
                if t >= s_end:
                    continue
                begin = max(t, s_start)
                available = s_end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            d += timedelta(days=1)
            t = datetime.combine(d, time(0), VN_TZ)
        raise ValueError("limit runs past ten years")

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        a, b = _local(a), _local(b)
        if a > b:
            raise ValueError("a must not be after b")
        total = timedelta(0)
        d = a.date()
        while d <= b.date():
            for s_start, s_end in self.sessions_on(d):
                lo, hi = max(a, s_start), min(b, s_end)
                if hi > lo:
                    total += hi - lo
            d += timedelta(days=1)
        return total

    def due_at(self, received_at: datetime, limit: TimeLimit) -> DueResult:
        received = _local(received_at)
        if limit.value < 0:
            raise ValueError("a time limit cannot be negative")
        if limit.unit == "same_day" or (limit.unit == "working_days" and limit.value == 0):
            due = self._same_day(received, limit.cutoff)
            span = self.working_time_between(received, due) if received < due else timedelta(0)
            why = (f"Trong ngày (hạn nhận {limit.cutoff:%H:%M}) / same day, cut-off "
                   f"{limit.cutoff:%H:%M}")
        elif limit.unit == "working_days":
            span = limit.value * self.standard_day
            due = self.add_working_time(self.next_working_moment(received), span)
            why = f"{limit.value} ngày làm việc / {limit.value} working days"
        elif limit.unit == "working_half_days":
            span = limit.value * self.standard_day / 2
            due = self.add_working_time(self.next_working_moment(received), span)
            why = (f"{limit.value} buổi làm việc ({limit.value / 2:g} ngày) / {limit.value} working half-days "
                   f"({limit.value / 2:g} days)")
        elif limit.unit == "hours":
            span = timedelta(hours=limit.value)
            due = self.add_working_time(self.next_working_moment(received), span)
            why = f"{limit.value} giờ làm việc / {limit.value} working hours"
        else:
            end_day = received.date() + timedelta(days=limit.value)
            if not self.is_working_day(end_day):
                end_day = self.next_working_day(end_day)
            due = self.end_of_working_day(end_day)
            if due < received:  # a 0-day limit received after that day's last session
                due = self.end_of_working_day(self.next_working_day(end_day))
            span = self.working_time_between(received, due)
            why = f"{limit.value} ngày / {limit.value} calendar days"
        explanation = (f"Nhận lúc {_fmt(received)}; {why}; hẹn trả {_fmt(due)} / "
                       f"received {_fmt(received)}; due {_fmt(due)}")
        return DueResult(due_at=due, working_time_limit=span, explanation=explanation)

    def _same_day(self, received: datetime, cutoff: time) -> datetime:
        d = received.date()
        if self.is_working_day(d) and received.timetz().replace(tzinfo=None) < cutoff \
                and received < self.end_of_working_day(d):
            return self.end_of_working_day(d)
        return self.end_of_working_day(self.next_working_day(d))

    def pause_resume(self, due_at: datetime, paused_at: datetime, resumed_at: datetime) -> datetime:
        """A supplement pause moves the due date by exactly the working time that passed."""
        paused = self.working_time_between(paused_at, resumed_at)
        return self.add_working_time(due_at, paused) if paused else _local(due_at)


@lru_cache(maxsize=64)
def _vn_holidays(year: int) -> frozenset[date]:
    """The standing holidays of `year` from the library, without the library's own table of
    year-specific swaps ("special holidays": a weekday off in place of a worked Saturday): a swap is
    the Prime Minister's decision of that year, so it is an override row (both its days), and deleting
    the row really undoes it."""
    standing = holidays.country_holidays("VN")  # no years yet: a year is populated on its first lookup
    standing.has_special_holidays = False
    _ = date(year, 1, 1) in standing  # populates `year` (expand=True) without the special holidays
    return frozenset(d for d in standing if d.year == year)
