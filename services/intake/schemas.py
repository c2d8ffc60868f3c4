"""Request and response bodies of the intake service (examples in Vietnamese)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TimeLimitOut(BaseModel):
    value: int = Field(examples=[3])
    unit: Literal["same_day", "working_days", "calendar_days", "hours"] = Field(examples=["working_days"])
    verification_extension: int = Field(0, description="extra working days allowed for verification")


class DocumentOut(BaseModel):
    name: str = Field(examples=["Tờ khai đăng ký khai sinh"])
    original: int = 1
    copy_count: int = Field(0, alias="copy")
    mandatory: bool = True

    model_config = ConfigDict(populate_by_name=True)


class ProcedureOut(BaseModel):
    code: str = Field(examples=["1.001193"])
    name: str = Field(examples=["Đăng ký khai sinh"])
    field_code: str = Field(examples=["HT"])
    field_name: str = Field(examples=["Hộ tịch"])
    level: str = Field(examples=["commune"])
    effective_from: date
    time_limit: TimeLimitOut
    fee: dict[str, Any] = Field(examples=[{"kind": "fixed", "amount": 0}])
    documents: list[DocumentOut]
    channels: list[str] = Field(examples=[["counter", "online", "postal"]])
    online_level: str = Field(examples=["full"])
    urgent: bool
    result_delivery: list[str]
    inter_agency: str | None = None
    notes: str | None = None


class Session(BaseModel):
    start: str = Field(examples=["07:30"])
    end: str = Field(examples=["11:30"])


class AgencyOut(BaseModel):
    code: str = Field(examples=["000.00.21.H29"])
    name: str = Field(examples=["UBND phường Ba Đình"])
    level: str = Field(examples=["commune"])
    parent_code: str | None = None
    admin_unit_code: str = Field(examples=["00004"])
    sessions: list[Session]


class DueOut(BaseModel):
    procedure_code: str
    agency_code: str
    received_at: datetime
    due_at: datetime
    working_time_limit_minutes: int
    explanation: str = Field(examples=["Nhận lúc 09:00 02/03/2026; 3 ngày làm việc; hẹn trả 09:00 05/03/2026"])
