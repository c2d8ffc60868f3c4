"""The shipment's state as a pure function of its timeline (whatever order the events arrived in).

Events are placed by `occurred_at` (ties broken by the natural progression of statuses, then the
event's key), and folded: each event sets the status, except that a final status (`delivered`,
`returned_to_sender`, `cancelled`) is only left by an explicit correction from the partner.
The timeline itself keeps everything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.postal_tracking.models import FINAL_STATUSES, STATUSES

RANK = {s: i for i, s in enumerate(
    ("created", "picked_up", "in_transit", "out_for_delivery", "failed_attempt", "delivered",
     "returned_to_sender", "cancelled"))}
assert set(RANK) == set(STATUSES)

# Partners' raw reason codes (VNPost's and common English ones) → normalised reasons.
RAW_REASONS: dict[str, str] = {}
for _reason, _codes in {
    "recipient_not_home": ("NOT_HOME", "KH_VANG_NHA", "VANG_NHA", "KHONG_CO_NHA", "NO_ONE_HOME", "R01"),
    "recipient_refused": ("REFUSED", "KH_TU_CHOI", "TU_CHOI", "TU_CHOI_NHAN", "R02"),
    "address_not_found": ("ADDRESS_NOT_FOUND", "BAD_ADDRESS", "SAI_DIA_CHI", "KHONG_TIM_THAY_DIA_CHI", "R03"),
    "damaged": ("DAMAGED", "HU_HONG", "BUU_GUI_HU_HONG", "R04"),
}.items():
    for _code in _codes:
        RAW_REASONS[_code] = _reason

REASON_TEXT = {
    "recipient_not_home": "Người nhận vắng nhà",
    "recipient_refused": "Người nhận từ chối nhận",
    "address_not_found": "Không tìm thấy địa chỉ",
    "damaged": "Bưu gửi bị hư hỏng",
    "other": "Lý do khác",
}


def normalise_reason(status: str, reason: str | None, raw_code: str | None) -> str | None:
    """A failure reason for failed attempts and returns; the partner's raw code is kept apart."""
    if reason:
        return reason
    if raw_code:
        return RAW_REASONS.get(raw_code.strip().upper().replace("-", "_").replace(" ", "_"), "other")
    if status in ("failed_attempt", "returned_to_sender"):
        return "other"
    return None


def dedupe_key(event_id: str | None, status: str, occurred_at: datetime, raw_code: str | None,
               correction: bool) -> str:
    """The partner's event id when it gives one; otherwise the event's content."""
    if event_id:
        return f"id:{event_id}"
    content = f"{status}|{occurred_at.timestamp():.6f}|{raw_code or ''}|{int(correction)}"
    return "h:" + hashlib.sha256(content.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class State:
    status: str
    status_at: datetime
    failure_reason: str | None
    failure_raw_code: str | None
    failed_attempts: int
    last_event_at: datetime | None


def order_key(e: dict[str, Any]) -> tuple[datetime, int, str]:
    return (e["occurred_at"], RANK[e["status"]], e["dedupe_key"])


def fold(created_at: datetime, events: Iterable[dict[str, Any]]) -> State:
    """events: dicts with status, occurred_at, correction, failure_reason, raw_code, dedupe_key."""
    status, status_at = "created", created_at
    reason: str | None = None
    raw: str | None = None
    attempts = 0
    last: datetime | None = None
    for e in sorted(events, key=order_key):
        last = e["occurred_at"] if last is None or e["occurred_at"] > last else last
        if e["status"] == "failed_attempt":
            attempts += 1
        if status in FINAL_STATUSES and not e["correction"]:
            continue
        status, status_at = e["status"], e["occurred_at"]
        if e["status"] in ("failed_attempt", "returned_to_sender") and e.get("failure_reason"):
            reason, raw = e["failure_reason"], e.get("raw_code")
        elif e["status"] == "delivered":
            reason, raw = None, None
    return State(status, status_at, reason, raw, attempts, last)
