"""Request and response bodies of the workflow API (Vietnamese examples)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["assign", "start", "forward", "request_supplement", "receive_supplement", "expire_supplement",
                 "transfer", "approve", "reject", "issue_apology", "return_result", "withdraw"]


class ActionIn(BaseModel):
    """One action on a dossier; which fields matter depends on `action`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"action": "assign", "assignee": "canbo2.phuong", "note": "Giao chị Tuấn thẩm định"},
        {"action": "request_supplement", "documents": ["Bản sao Giấy chứng sinh"], "supplement_days": 5,
         "note": "Giấy chứng sinh bị mờ, đề nghị nộp bản rõ"},
        {"action": "issue_apology", "reason": "Cần xác minh thêm tại nơi cư trú cũ",
         "new_due_at": "2026-12-04T17:00:00+07:00"},
        {"action": "reject", "reason": "Người yêu cầu không thuộc diện được cấp"},
        {"action": "transfer", "target_agency": "000.00.07.H29", "note": "Chuyển Sở Tư pháp"},
        {"action": "transfer", "external_system": "BHXH", "note": "Liên thông cấp thẻ BHYT"},
    ]})

    action: Action
    note: str | None = Field(None, max_length=2000, examples=["Đã kiểm tra đủ thành phần hồ sơ"])
    assignee: str | None = Field(None, max_length=100, examples=["canbo2.phuong"])
    documents: list[str] | None = Field(None, max_length=50, examples=[["Bản sao Giấy chứng sinh"]])
    supplement_days: int = Field(5, ge=1, le=30, description="working days the citizen has to supplement")
    target_agency: str | None = Field(None, max_length=30, examples=["000.00.07.H29"])
    external_system: str | None = Field(None, max_length=60, examples=["BHXH"])
    reason: str | None = Field(None, max_length=2000, examples=["Cần xác minh thêm"])
    new_due_at: datetime | None = Field(None, examples=["2026-12-04T17:00:00+07:00"])
    method: Literal["counter", "electronic", "postal"] | None = Field(
        None, description="how the result is handed over (return_result)")


class TransferCallbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"decision": "accepted", "external_ref": "BHXH-2026-000123", "note": "Đã tiếp nhận"}]})

    decision: Literal["accepted", "rejected"]
    external_ref: str | None = Field(None, max_length=100)
    note: str | None = Field(None, max_length=2000)


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"score": 5, "comment": "Cán bộ hướng dẫn tận tình"}]})

    score: int = Field(..., ge=1, le=5)
    comment: str | None = Field(None, max_length=1000)


class HistoryOut(BaseModel):
    at: datetime
    actor: str
    actor_role: str
    actor_agency: str | None
    action: str
    from_status: str | None
    to_status: str
    step: str
    step_due_at: datetime | None
    note: str | None


class DossierOut(BaseModel):
    code: str
    procedure_code: str
    procedure_name: str
    status: str
    outcome: str | None
    outcome_reason: str | None
    version: int
    channel: str
    applicant_name: str
    received_at: datetime
    due_at: datetime
    original_due_at: datetime
    overdue: bool
    paused: bool
    supplement_due_at: datetime | None
    step: str
    step_name: str
    step_due_at: datetime | None
    current_agency: str
    assignee: str | None
    result_delivery: str
    pending_transfer: dict[str, Any] | None
    rating: int | None
    synced_at: datetime | None = Field(None, description="when the national portal (Cổng DVCQG) acknowledged it")
    allowed_actions: list[str]
    timeline: list[HistoryOut]


class PublicDossierOut(BaseModel):
    code: str
    procedure_name: str
    status: str
    status_text: str
    due_at: datetime
    next_step: str | None


class StatsOut(BaseModel):
    group: str | None = None
    received: int
    received_counter: int
    received_online: int
    received_postal: int
    resolved: int
    resolved_early: int
    resolved_on_time: int
    resolved_late: int
    on_time_rate: float | None
    average_processing_hours: float | None
    returned: int
    share_online: float | None
    share_postal: float | None
    share_electronic_result: float | None
    share_synced: float | None
    rating_count: int
    average_rating: float | None
