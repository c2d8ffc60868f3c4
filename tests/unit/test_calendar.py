"""The working-time calendar: hand-computed cases and Hypothesis properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.calendar import (
    VN_TZ,
    CalendarOverride,
    CalendarRangeError,
    TimeLimit,
    WorkingCalendar,
    WorkSession,
    in_supported_range,
)

# The year-specific decision a test below relies on, as the data it is (migration core_0003 seeds it as
# national override rows): National Day 2026, Monday 31 Aug off, Saturday 22 Aug worked in its place.
NATIONAL_DAY_2026_SWAP = (CalendarOverride(date(2026, 8, 22), "working_day"),
                          CalendarOverride(date(2026, 8, 31), "day_off"))
CAL = WorkingCalendar(overrides=NATIONAL_DAY_2026_SWAP)


def vn(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=VN_TZ)


def test_tet_2026_three_working_days_skip_the_holiday() -> None:
    # Fri 13 Feb 14:00: 3 h left that day; Tết (14-22 Feb) off; Mon 7.5 h, Tue 7.5 h, Wed 4 h + 0.5 h.
    due = CAL.due_at(vn(2026, 2, 13, 14), TimeLimit(3, "working_days")).due_at
    assert due == vn(2026, 2, 25, 14, 0)
    for day in range(14, 23):
        assert not CAL.is_working_day(date(2026, 2, day))


def test_same_day_cutoff_at_15() -> None:
    same_day = TimeLimit(0, "same_day")
    assert CAL.due_at(vn(2026, 3, 2, 14, 59), same_day).due_at == vn(2026, 3, 2, 17)
    assert CAL.due_at(vn(2026, 3, 2, 15, 0), same_day).due_at == vn(2026, 3, 3, 17)
    assert CAL.due_at(vn(2026, 3, 6, 16), same_day).due_at == vn(2026, 3, 9, 17)  # Friday -> Monday


def test_local_midnight_rollover_at_17_utc() -> None:
    one_day = TimeLimit(1, "calendar_days")
    before = CAL.due_at(datetime(2026, 3, 5, 16, 59, tzinfo=UTC), one_day)  # Thu 23:59 in Viet Nam
    after = CAL.due_at(datetime(2026, 3, 5, 17, 0, tzinfo=UTC), one_day)  # Fri 00:00 in Viet Nam
    assert before.due_at == vn(2026, 3, 6, 17)
    assert after.due_at == vn(2026, 3, 9, 17)  # Saturday is off: Monday


def test_received_after_hours_starts_next_morning() -> None:
    due = CAL.due_at(vn(2026, 3, 2, 18), TimeLimit(1, "working_days")).due_at
    assert due == vn(2026, 3, 3, 17)
    assert CAL.due_at(vn(2026, 3, 2, 16), TimeLimit(2, "hours")).due_at == vn(2026, 3, 3, 8, 30)


def test_make_up_saturday_counts_and_extra_day_off_does_not() -> None:
    cal = WorkingCalendar(overrides=[
        CalendarOverride(date(2026, 3, 7), "working_day", (WorkSession(time(7, 30), time(11, 30)),)),
        CalendarOverride(date(2026, 3, 9), "day_off", note="nghỉ bù"),
    ])
    assert cal.due_at(vn(2026, 3, 7, 9), TimeLimit(0, "same_day")).due_at == vn(2026, 3, 7, 11, 30)
    # Fri 16:00 + 2 h: 1 h Fri, 1 h Sat morning (make-up day), Monday off.
    assert cal.due_at(vn(2026, 3, 6, 16), TimeLimit(2, "hours")).due_at == vn(2026, 3, 7, 8, 30)
    assert cal.due_at(vn(2026, 3, 7, 11), TimeLimit(1, "hours")).due_at == vn(2026, 3, 10, 8)


def test_calendar_days_ending_on_sunday_and_public_holidays() -> None:
    assert CAL.due_at(vn(2026, 3, 4, 10), TimeLimit(4, "calendar_days")).due_at == vn(2026, 3, 9, 17)
    assert not CAL.is_working_day(date(2026, 9, 2)) and not CAL.is_working_day(date(2026, 9, 1))
    assert not CAL.is_working_day(date(2026, 11, 24))  # Ngày Văn hóa Việt Nam
    assert CAL.is_working_day(date(2026, 8, 22))  # make-up Saturday for 31 Aug
    assert not CAL.is_working_day(date(2026, 8, 31))


def test_a_years_swap_comes_from_data_not_from_code_or_the_library() -> None:
    """Without the override rows the library's standing rules alone decide: 22 Aug 2026 is a Saturday off and
    31 Aug a working Monday; the same holds for 2025's swap (26 Apr worked, 2 May off) and 2024's."""
    bare = WorkingCalendar()
    assert not bare.is_working_day(date(2026, 8, 22)) and bare.is_working_day(date(2026, 8, 31))
    assert not bare.is_working_day(date(2025, 4, 26)) and bare.is_working_day(date(2025, 5, 2))
    assert not bare.is_working_day(date(2024, 5, 4)) and bare.is_working_day(date(2024, 4, 29))
    # the standing rules stay the library's: Tết, Hùng Kings' day in lieu on Monday, the two-day National Day
    assert not bare.is_working_day(date(2026, 2, 16)) and not bare.is_working_day(date(2026, 4, 27))
    assert not bare.is_working_day(date(2026, 9, 1)) and not bare.is_working_day(date(2027, 2, 10))


def test_supplement_paused_twice_moves_due_by_paused_working_time() -> None:
    due = CAL.due_at(vn(2026, 2, 13, 14), TimeLimit(3, "working_days")).due_at  # Wed 25 Feb 14:00
    due = CAL.pause_resume(due, vn(2026, 2, 23, 10), vn(2026, 2, 23, 15))  # 1.5 h + 1.5 h paused
    assert due == vn(2026, 2, 25, 17, 0)
    due = CAL.pause_resume(due, vn(2026, 2, 24, 16), vn(2026, 2, 25, 8))  # 1 h + 0.5 h paused
    assert due == vn(2026, 2, 26, 9, 0)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        CAL.due_at(datetime(2026, 3, 2, 9), TimeLimit(1, "working_days"))


moments = st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2027, 2, 1),
                       timezones=st.just(VN_TZ))
limits = st.builds(TimeLimit, st.integers(0, 25),
                   st.sampled_from(["same_day", "working_days", "working_half_days", "calendar_days", "hours"]))


def inside_working_time(t: datetime) -> bool:
    return any(start <= t <= end for start, end in CAL.sessions_on(t.astimezone(VN_TZ).date()))


@settings(max_examples=200, deadline=None)
@given(moments, limits)
def test_due_is_always_inside_working_time(received: datetime, limit: TimeLimit) -> None:
    due = CAL.due_at(received, limit).due_at
    assert inside_working_time(due)
    assert due >= received or (limit.unit == "same_day" and due.date() >= received.date())


@settings(max_examples=200, deadline=None)
@given(moments, st.timedeltas(timedelta(0), timedelta(days=3)), limits)
def test_due_is_monotonic_in_received_at(received: datetime, later: timedelta, limit: TimeLimit) -> None:
    assert CAL.due_at(received, limit).due_at <= CAL.due_at(received + later, limit).due_at


@settings(max_examples=200, deadline=None)
@given(moments, st.integers(1, 15), st.timedeltas(timedelta(0), timedelta(days=2)),
       st.timedeltas(timedelta(0), timedelta(days=6)))
def test_pause_resume_adds_exactly_the_paused_working_time(
    received: datetime, days: int, pause_after: timedelta, pause_for: timedelta,
) -> None:
    start = CAL.next_working_moment(received)
    due = CAL.due_at(received, TimeLimit(days, "working_days")).due_at
    paused_at = start + pause_after
    resumed_at = paused_at + pause_for
    new_due = CAL.pause_resume(due, paused_at, resumed_at)
    paused = CAL.working_time_between(paused_at, resumed_at)
    assert CAL.working_time_between(start, new_due) == CAL.working_time_between(start, due) + paused
    assert inside_working_time(new_due)


@settings(max_examples=100, deadline=None)
@given(moments, st.integers(1, 10))
def test_no_due_date_on_a_day_off(received: datetime, days: int) -> None:
    cal = WorkingCalendar(overrides=[CalendarOverride(received.date() + timedelta(days=2), "day_off")])
    due = cal.due_at(received, TimeLimit(days, "working_days")).due_at
    assert cal.is_working_day(due.date()) and due.date() not in cal.overrides


def test_zero_calendar_days_received_after_hours_is_due_next_working_day() -> None:
    """Found by Hypothesis: the due date fell before the receipt."""
    due = CAL.due_at(vn(2025, 12, 1, 17, 0) + timedelta(microseconds=1), TimeLimit(0, "calendar_days")).due_at
    assert due == vn(2025, 12, 2, 17)


@pytest.mark.parametrize("moment", [
    datetime(9999, 12, 31, 23, 59, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=7))),
    datetime(9999, 12, 31, 20, tzinfo=timezone(-timedelta(hours=5))),
    datetime(1999, 12, 31, 12, tzinfo=VN_TZ), datetime(2101, 1, 1, 12, tzinfo=VN_TZ),
])
def test_moments_outside_the_supported_years_raise_a_clean_error(moment: datetime) -> None:
    """9999-12-31 and 0001-01-01 overflowed deep inside the calendar (a 500 at calendar/due, issue 21)."""
    cal = WorkingCalendar()
    for call in (lambda: cal.due_at(moment, TimeLimit(3, "working_days")),
                 lambda: cal.due_at(moment, TimeLimit(5, "calendar_days")),
                 lambda: cal.next_working_moment(moment), lambda: cal.add_working_time(moment, timedelta(hours=1)),
                 lambda: cal.working_time_between(moment, moment), lambda: cal.next_working_day(moment.date())):
        with pytest.raises(CalendarRangeError):
            call()
    assert not in_supported_range(moment)


def test_the_bounds_themselves_are_supported() -> None:
    cal = WorkingCalendar()
    first, last = datetime(2000, 1, 1, 0, 0, tzinfo=VN_TZ), datetime(2100, 12, 31, 9, 0, tzinfo=VN_TZ)
    assert in_supported_range(first) and in_supported_range(last) and in_supported_range(date(2100, 12, 31))
    assert cal.due_at(first, TimeLimit(3, "working_days")).due_at > first
    assert not in_supported_range(datetime(2026, 1, 1))  # naive: no offset, not a moment
