"""Time limits as data: half-day units and limits that depend on the channel (issue 22, item 2)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from shared.calendar import VN_TZ, TimeLimit, WorkingCalendar, WorkSession, limit_for

CAL = WorkingCalendar()


def vn(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=VN_TZ)


def test_a_half_day_is_half_the_standard_days_working_time() -> None:
    # Mon 2 Mar 2026 09:00: 2 h 30 left in the morning session, 1 h 15 after 13:30 → 14:45 (not 11:30).
    result = CAL.due_at(vn(2026, 3, 2, 9), TimeLimit(1, "working_half_days"))
    assert result.due_at == vn(2026, 3, 2, 14, 45)
    assert result.working_time_limit == timedelta(hours=3, minutes=45)
    assert "1 buổi làm việc (0.5 ngày)" in result.explanation
    # Received at 16:00: 1 h that day, 2 h 45 the next morning.
    assert CAL.due_at(vn(2026, 3, 2, 16), TimeLimit(1, "working_half_days")).due_at == vn(2026, 3, 3, 10, 15)
    # 1.5 working days = 3 half days = 11 h 15 of working time.
    assert CAL.due_at(vn(2026, 3, 2, 8), TimeLimit(3, "working_half_days")).due_at == vn(2026, 3, 3, 13, 45)
    # Two half days are exactly one working day; a Friday afternoon half day ends on Monday.
    for start in (vn(2026, 3, 2, 8), vn(2026, 3, 4, 15, 20)):
        assert (CAL.due_at(start, TimeLimit(2, "working_half_days")).due_at
                == CAL.due_at(start, TimeLimit(1, "working_days")).due_at)
    assert CAL.due_at(vn(2026, 3, 6, 16), TimeLimit(1, "working_half_days")).due_at == vn(2026, 3, 9, 10, 15)


def test_a_half_day_follows_the_agencys_sessions() -> None:
    # An agency open 08:00-12:00 and 13:00-17:00 (8 h): a half day is 4 h.
    cal = WorkingCalendar(sessions=(WorkSession(time(8), time(12)), WorkSession(time(13), time(17))))
    assert cal.due_at(vn(2026, 3, 2, 10), TimeLimit(1, "working_half_days")).due_at == vn(2026, 3, 2, 15)


def test_limits_by_channel_are_data() -> None:
    catalog = {"value": 3, "unit": "working_days", "verification_extension": 5,
               "by_channel": {"counter": {"value": 20, "unit": "working_days"},
                              "postal": {"value": 20, "unit": "working_days"}}}
    assert TimeLimit.of(catalog, "online") == TimeLimit(3, "working_days")
    assert TimeLimit.of(catalog, "postal") == TimeLimit(20, "working_days")
    assert TimeLimit.of(catalog, None) == TimeLimit(3, "working_days")
    assert limit_for(catalog, "counter") == {"value": 20, "unit": "working_days", "verification_extension": 5}
    assert limit_for({"value": 0, "unit": "same_day"}, "online") == {
        "value": 0, "unit": "same_day", "verification_extension": 0}
