"""Deadline arithmetic of a dossier on its agency's working calendar (pure functions)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from shared.calendar import VN_TZ, TimeLimit, WorkingCalendar
from shared.settings import Settings

ACTIVE_CLOCK = ("received", "in_progress")
T = TypeVar("T")


def step_deadline(calendar: WorkingCalendar, start: datetime, definition: dict[str, Any], step: str,
                  working_minutes: int) -> datetime | None:
    """Each step gets its share of the procedure's working time, counted from when it starts."""
    share = next((float(s.get("share", 0)) for s in definition["steps"] if s["code"] == step), None)
    if share is None or working_minutes <= 0:
        return None
    return calendar.add_working_time(start, timedelta(minutes=round(working_minutes * share)))


def step_name(definition: dict[str, Any], step: str) -> str:
    return next((str(s["name"]) for s in definition["steps"] if s["code"] == step), step)


def next_step(definition: dict[str, Any], step: str) -> dict[str, Any] | None:
    codes = [s["code"] for s in definition["steps"]]
    if step not in codes or codes.index(step) + 1 >= len(codes):
        return None
    return dict(definition["steps"][codes.index(step) + 1])


def is_overdue(dossier: dict[str, Any], now: datetime) -> bool:
    """Past due and not resolved; a paused dossier (waiting for a supplement) is not running late, nor one
    whose clock has not started (no due date: an online dossier not yet accepted, postal paper not arrived)."""
    return dossier["status"] in ACTIVE_CLOCK and dossier["due_at"] is not None and dossier["due_at"] < now


def awaiting_acceptance(dossier: dict[str, Any]) -> bool:
    """An online dossier whose clock waits for an officer's acceptance (`accept`, or a supplement request)."""
    return dossier["channel"] == "online" and dossier["clock_started_at"] is None and dossier["status"] == "received"


def acceptance_timer(calendar: WorkingCalendar, submitted_at: datetime, settings: Settings) -> dict[str, datetime]:
    """When the one-stop officers are alerted and when the acceptance is due, in working hours from submission."""
    start = calendar.next_working_moment(submitted_at)
    return {"alert_at": calendar.add_working_time(start, timedelta(hours=settings.online_acceptance_alert_hours)),
            "due_at": calendar.add_working_time(start, timedelta(hours=settings.online_acceptance_hours))}


def limit_minutes(calendar: WorkingCalendar, start: datetime, due_at: datetime | None) -> int:
    """The procedure's working time for this dossier (steps take their shares of it); 0 before the clock starts."""
    if due_at is None or due_at <= start:
        return 0
    return int(calendar.working_time_between(start, due_at).total_seconds() // 60)


def start_clock(calendar: WorkingCalendar, dossier: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The clock starts at `at` (acceptance, or a complete dossier after a supplement): the stored limit of the
    dossier's channel gives the due date, the legal one too."""
    due = calendar.due_at(at, TimeLimit.of(dossier["time_limit"] or {"value": 0, "unit": "same_day"})).due_at
    return {"clock_started_at": at, "due_at": due, "original_due_at": due,
            "working_minutes": limit_minutes(calendar, at, due),
            "overdue_marked_at": None, "due_soon_warned_at": None}


def timing(resolved_at: datetime, original_due_at: datetime | None) -> str:
    """Early (before the due day), on time (by the due moment) or late, against the ORIGINAL due date
    (a dossier resolved before its clock started is on time)."""
    if original_due_at is None:
        return "on_time"
    if resolved_at > original_due_at:
        return "late"
    if resolved_at.astimezone(VN_TZ).date() < original_due_at.astimezone(VN_TZ).date():
        return "early"
    return "on_time"


def processing_minutes(calendar: WorkingCalendar, dossier: dict[str, Any], resolved_at: datetime) -> int:
    """Working time from the start of the clock (receipt, acceptance, a complete dossier, the paper's arrival)
    to resolution, without the time spent waiting for supplements; 0 when resolved before it started."""
    started = dossier["clock_started_at"]
    if started is None or resolved_at <= started:
        return 0
    spent = calendar.working_time_between(started, resolved_at)
    return max(0, int(spent.total_seconds() // 60) - int(dossier["paused_minutes"]))


def resume(calendar: WorkingCalendar, dossier: dict[str, Any], resumed_at: datetime) -> dict[str, Any]:
    """End a pause of a running clock: due dates (the legal one too) move by exactly the working time that
    passed (a dossier whose clock had not started starts it instead: `actions.start_clock`)."""
    paused_at: datetime = dossier["paused_at"]
    resumed_at = max(resumed_at, paused_at)  # a supplement stamped before the request counts as no pause
    paused = calendar.working_time_between(paused_at, resumed_at)
    values: dict[str, Any] = {
        "due_at": calendar.pause_resume(dossier["due_at"], paused_at, resumed_at),
        "original_due_at": calendar.pause_resume(dossier["original_due_at"], paused_at, resumed_at),
        "paused_at": None, "supplement_due_at": None,
        "paused_minutes": int(dossier["paused_minutes"]) + int(paused.total_seconds() // 60),
    }
    if dossier["step_due_at"] is not None:
        values["step_due_at"] = calendar.pause_resume(dossier["step_due_at"], paused_at, resumed_at)
    return values


def localize(value: T) -> T:
    """Times go out in Viet Nam time (RFC 3339 with +07:00): what citizens and officers read."""
    return cast(T, _local(value))


def _local(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(VN_TZ)
    if isinstance(value, dict):
        return {k: _local(v) if isinstance(v, datetime | dict | list) else v for k, v in value.items()}
    if isinstance(value, list):
        return [_local(v) for v in value]
    return value
