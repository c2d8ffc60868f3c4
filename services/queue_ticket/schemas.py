"""Request and response bodies of the queue service (examples in Vietnamese)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PriorityGroup = Literal["elderly", "disability", "pregnant", "war_invalid", "child_under_6", "other"]
PRIORITY_NAMES: dict[str, str] = {
    "elderly": "Người cao tuổi",
    "disability": "Người khuyết tật",
    "pregnant": "Phụ nữ mang thai",
    "war_invalid": "Thương binh, bệnh binh, người có công",
    "child_under_6": "Người đi cùng trẻ dưới 6 tuổi",
    "other": "Đối tượng ưu tiên khác",
}

CODE = r"^[A-Za-z0-9_.-]{1,20}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TicketIn(Strict):
    office_code: str = Field(pattern=CODE, examples=["PBD"])
    category_code: str = Field(pattern=CODE, examples=["HT"])
    priority: PriorityGroup | None = Field(None, description="nhóm ưu tiên / priority group", examples=["elderly"])


class WaitEstimate(BaseModel):
    minutes: int = Field(examples=[12])
    average_service_seconds: int = Field(examples=[240])
    samples: int = Field(description="finished tickets the average was learnt from (0: default)")
    counters: int = Field(description="counters serving this category")


class TicketOut(BaseModel):
    id: int = Field(examples=[1024])
    number: str = Field(examples=["A001"])
    office_code: str = Field(examples=["PBD"])
    category_code: str = Field(examples=["HT"])
    category_name: str | None = Field(None, examples=["Hộ tịch"])
    day: date
    status: str = Field(examples=["waiting"])
    priority_group: str | None = None
    booking_code: str | None = None
    position: int | None = Field(None, description="1 = next to be called in this category")
    people_ahead: int | None = None
    estimated_wait: WaitEstimate | None = None
    estimated_call_at: datetime | None = None
    counter_id: int | None = None
    counter_number: int | None = None
    issued_at: datetime
    called_at: datetime | None = None
    serving_at: datetime | None = None
    finished_at: datetime | None = None
    skipped_at: datetime | None = None
    dossier_codes: list[str] = []


class CallNextIn(Strict):
    category_code: str | None = Field(None, pattern=CODE, description="only this category (must be served here)")


class TransferIn(Strict):
    category_code: str | None = Field(None, pattern=CODE, examples=["CT"])
    counter_id: int | None = Field(None, examples=[2])


class FinishIn(Strict):
    dossier_codes: list[str] = Field([], max_length=20, examples=[["000.00.21.H29-261124-0001"]])


class OfficeIn(Strict):
    name: str = Field(min_length=1, max_length=300, examples=["Bộ phận một cửa phường Ba Đình"])
    agency_code: str = Field(min_length=1, max_length=30, examples=["000.00.21.H29"])
    occupancy_cap: int = Field(ge=1, le=1_000_000, examples=[80])
    always_open: bool = False
    hold_seconds: int = Field(300, ge=30, le=3600)
    checkin_early_minutes: int = Field(30, ge=0, le=240)


class CategoryIn(Strict):
    prefix: str = Field(pattern=r"^[A-Z]{1,2}$", examples=["A"])
    name: str = Field(min_length=1, max_length=300, examples=["Hộ tịch"])
    procedure_codes: list[str] = Field([], examples=[["1.001193", "1.000894"]])
    slot_minutes: int = Field(30, ge=5, le=240)
    slot_capacity: int = Field(2, ge=0, le=1000)
    default_service_seconds: int = Field(300, ge=10, le=7200)
    position: int = 0


class CounterIn(Strict):
    name: str = Field(min_length=1, max_length=200, examples=["Quầy 1 — Hộ tịch"])
    category_codes: list[str] = Field(min_length=1, examples=[["HT", "CT"]])
    active: bool = True


class AppointmentIn(Strict):
    office_code: str = Field(pattern=CODE, examples=["PBD"])
    category_code: str = Field(pattern=CODE, examples=["HT"])
    slot_start: datetime = Field(examples=["2026-11-25T08:00:00+07:00"])
    citizen_name: str | None = Field(None, max_length=200, examples=["Nguyễn Văn An"])
    phone: str | None = Field(None, pattern=r"^0\d{9,10}$", examples=["0912345678"])


class AppointmentOut(BaseModel):
    booking_code: str = Field(examples=["K7M3Q9XT"])
    office_code: str
    category_code: str
    slot_start: datetime
    slot_end: datetime
    status: str = Field(examples=["held"])
    hold_expires_at: datetime
    created_at: datetime
    confirmed_at: datetime | None = None
    cancelled_at: datetime | None = None
    checked_in_at: datetime | None = None
    ticket_id: int | None = None
    ticket_number: str | None = None


class SlotOut(BaseModel):
    start_at: datetime
    end_at: datetime
    capacity: int
    taken: int
    free: int


class CallNextOut(BaseModel):
    counter_id: int = Field(examples=[2])
    counter_number: int = Field(examples=[2])
    event_id: int | None = Field(None, description="the board event of this call")
    ticket: TicketOut | None = Field(None, description="null: nobody is waiting")
    detail: str | None = Field(None, examples=["Không còn người chờ / nobody is waiting"])


class CheckInOut(BaseModel):
    booking: AppointmentOut
    ticket: TicketOut


class CounterOut(BaseModel):
    id: int = Field(examples=[2])
    office_code: str = Field(examples=["PBD"])
    number: int = Field(examples=[2])
    name: str = Field(examples=["Quầy 2 — Hộ tịch, Chứng thực"])
    category_codes: list[str] = Field(examples=[["HT", "CT"]])
    officer_subject: str | None = Field(None, examples=["canbo.phuong"])
    officer_name: str | None = Field(None, examples=["Trần Thị Bình"])
    signed_in_at: datetime | None = None
    active: bool = True
    current_ticket_id: int | None = Field(None, description='the ticket served here (call-next If-Match: "<id>")')
