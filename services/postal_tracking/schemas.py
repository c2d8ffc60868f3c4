"""Request and response bodies of the postal-tracking service (pydantic v2, Vietnamese examples)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from shared.calendar import bounded_moment

Moment = Annotated[AwareDatetime, AfterValidator(bounded_moment)]  # 2000-01-01…2100-12-31, with an offset

Status = Literal["created", "picked_up", "in_transit", "out_for_delivery", "delivered", "failed_attempt",
                 "returned_to_sender", "cancelled"]
FailureReason = Literal["recipient_not_home", "recipient_refused", "address_not_found", "damaged", "other"]
Direction = Literal["inbound", "outbound"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AddressIn(Strict):
    name: str = Field(min_length=1, max_length=200, examples=["Nguyễn Văn An"])
    phone: str | None = Field(None, pattern=r"^(\+84|0)\d{9,10}$", examples=["0912345678"])
    address_line: str = Field(min_length=1, max_length=300, examples=["12 phố Kim Mã"])
    ward_code: str = Field(pattern=r"^\d{5}$", examples=["00004"])


class ShipmentIn(Strict):
    direction: Direction = Field(examples=["outbound"])
    dossier_code: str = Field(min_length=3, max_length=40, pattern=r"^[A-Za-z0-9.\-]+$",
                              examples=["000.00.21.H29-251124-0001"])
    agency_code: str = Field(min_length=1, max_length=30, examples=["000.00.21.H29"])
    partner_code: str | None = Field(None, max_length=30, examples=["VNPOST"])
    tracking_number: str | None = Field(None, pattern=r"^[A-Z0-9\-]{6,40}$", examples=["EB123456785VN"],
                                        description="the partner's number; allocated here when absent")
    service_code: str | None = Field(None, max_length=30, examples=["HCC-KQ"])
    sender: AddressIn | None = Field(None, description="the citizen, for inbound (the agency otherwise)")
    recipient: AddressIn | None = Field(None, description="the citizen, for outbound (the agency otherwise)")
    weight_grams: int = Field(200, ge=1, le=30_000)
    postage: int | None = Field(None, ge=0, le=10_000_000, description="VND; from the partner's fee table when absent")
    cod_amount: int = Field(0, ge=0, le=100_000_000, description="fees to collect on delivery, VND")
    note: str | None = Field(None, max_length=1000, examples=["Giao trong giờ hành chính"])


class DossierFact(BaseModel):
    """Payload of `postal.dossier_received` (enqueued by intake with the dossier): the facts that decide who
    may create the dossier's shipments. Postal never reads intake's schema."""

    model_config = ConfigDict(extra="ignore")

    code: str = Field(min_length=3, max_length=40)
    receiving_agency: str = Field(min_length=1, max_length=30)
    competent_agency: str = Field(min_length=1, max_length=30)
    channel: str = Field(max_length=10)
    result_delivery: str = Field(max_length=20)
    partner_code: str | None = Field(None, max_length=30, description="the partner that registered it")
    received_at: AwareDatetime


class EventOut(BaseModel):
    status: Status
    occurred_at: datetime
    received_at: datetime
    source: str
    correction: bool
    failure_reason: FailureReason | None = None
    raw_code: str | None = None
    location: str | None = None
    note: str | None = None
    event_id: str | None = None


class ShipmentOut(BaseModel):
    id: str
    direction: Direction
    dossier_code: str
    agency_code: str
    partner_code: str
    tracking_number: str
    service_code: str
    sender: dict[str, Any]
    recipient: dict[str, Any]
    weight_grams: int
    postage: int
    cod_amount: int
    status: Status
    status_at: datetime
    failure_reason: FailureReason | None = None
    failure_raw_code: str | None = None
    failed_attempts: int
    last_event_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    version: int
    note: str | None = None
    timeline: list[EventOut] | None = None


class ShipmentPage(BaseModel):
    items: list[ShipmentOut]
    next_cursor: str | None = None


class EventIn(Strict):
    """One tracking event in a partner's webhook delivery."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    event_id: str | None = Field(None, max_length=200, examples=["VNP-EV-0001"],
                                 description="the partner's event id (deduplicates events across deliveries)")
    tracking_number: str = Field(min_length=1, max_length=40, examples=["HC100000014VN"])
    status: Status = Field(examples=["failed_attempt"])
    occurred_at: Moment = Field(examples=["2026-03-02T10:15:00+07:00"])
    reason_code: str | None = Field(None, max_length=60, examples=["KH_VANG_NHA"],
                                    description="the partner's raw reason code (kept as is)")
    reason: FailureReason | None = Field(None, description="normalised reason, when the partner knows it")
    location: str | None = Field(None, max_length=200, examples=["Bưu cục Ba Đình"])
    note: str | None = Field(None, max_length=1000, examples=["Người nhận vắng nhà, hẹn phát lại"])
    correction: bool = Field(False, description="true: the partner corrects an earlier final status")


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    events: list[EventIn] = Field(min_length=1, max_length=1000)


class WebhookResult(BaseModel):
    duplicate: bool = Field(description="true: this webhook-id was already received; nothing changed")
    accepted: int = Field(description="new events placed on timelines")
    ignored: int = Field(description="events already known (same event id or content)")
    shipments: list[dict[str, Any]] = Field(default_factory=list)


class Signer(Strict):
    name: str = Field(min_length=1, max_length=200, examples=["Lê Thị Hoa"])
    title: str = Field(min_length=1, max_length=200, examples=["Công chức Bộ phận Một cửa"])


class HandoverIn(Strict):
    kind: Literal["to_postal", "to_office"] = Field(
        examples=["to_postal"],
        description="to_postal: the office hands results (outbound) to the postman; "
                    "to_office: the postman hands dossiers (inbound) to the office")
    agency_code: str = Field(min_length=1, max_length=30, examples=["000.00.21.H29"])
    partner_code: str | None = Field(None, max_length=30, examples=["VNPOST"])
    shipment_ids: list[str] = Field(min_length=1, max_length=500)
    handed_over_at: Moment | None = Field(None, examples=["2026-03-02T15:30:00+07:00"],
                                          description="within the last 30 days; now when absent")
    office_signer: Signer
    postal_signer: Signer = Field(examples=[{"name": "Trần Văn Bưu", "title": "Bưu tá Bưu cục Ba Đình"}])
    location: str | None = Field(None, max_length=300, examples=["Bộ phận Một cửa phường Ba Đình"])
    note: str | None = Field(None, max_length=1000)


class HandoverItemOut(BaseModel):
    shipment_id: str
    dossier_code: str
    tracking_number: str
    direction: Direction
    status: Status
    weight_grams: int
    postage: int
    cod_amount: int
    citizen: str = Field(examples=["Nguyễn Văn An"])


class HandoverTotals(BaseModel):
    count: int
    postage: int = Field(description="VND")
    cod_amount: int = Field(description="VND")


class HandoverOut(BaseModel):
    id: str
    kind: Literal["to_postal", "to_office"]
    status: Literal["open", "confirmed", "cancelled"]
    agency_code: str
    partner_code: str
    handed_over_at: datetime
    office_signer: dict[str, Any] = Field(examples=[{"name": "Lê Thị Hoa", "title": "Công chức Bộ phận Một cửa"}])
    postal_signer: dict[str, Any] = Field(examples=[{"name": "Trần Văn Bưu", "title": "Bưu tá Bưu cục Ba Đình"}])
    location: str | None = None
    note: str | None = None
    created_by: str
    created_at: datetime
    confirmed_at: datetime | None = None
    items: list[HandoverItemOut]
    totals: HandoverTotals

