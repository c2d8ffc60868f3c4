"""Request and response bodies of the intake service (examples in Vietnamese)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, computed_field, model_validator

from services.intake.bodies import DecidingBody, Department, body_name, level_fits
from shared.admin_units import AgencyLevel
from shared.calendar import Unit, bounded_date

Day = Annotated[date, AfterValidator(bounded_date)]  # 2000-01-01…2100-12-31


UNIT_DOC = "working_half_days: value N = N half days (0.5 working day = 1), each half the standard day's working time"


class ChannelLimit(BaseModel):
    value: int = Field(ge=0, le=365, examples=[20])
    unit: Unit = Field(examples=["working_days"], description=UNIT_DOC)


class TimeLimitOut(BaseModel):
    value: int = Field(examples=[3])
    unit: Unit = Field(examples=["working_days"], description=UNIT_DOC)
    verification_extension: int = Field(0, description="extra working days allowed for verification")
    by_channel: dict[Literal["counter", "online", "postal"], ChannelLimit] | None = Field(
        None, description="a channel's own limit (e.g. liên thông on paper vs online); other channels: value/unit")


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
    deciding_body: str = Field(examples=["commune_police"], description="who decides (cơ quan có thẩm quyền)")
    department: str | None = Field(None, examples=["tu_phap"], description="the provincial department")
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

    @computed_field(examples=["Công an cấp xã"])  # type: ignore[prop-decorator]
    @property
    def deciding_body_name(self) -> str:
        return body_name(self.deciding_body, self.department)


class Session(BaseModel):
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["07:30"])
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["11:30"])

    @model_validator(mode="after")
    def ends_after_it_starts(self) -> Session:
        if self.end <= self.start:
            raise ValueError("a session ends after it starts")
        return self


class AgencyOut(BaseModel):
    code: str = Field(examples=["000.00.21.H29"])
    name: str = Field(examples=["UBND phường Ba Đình"])
    level: str = Field(examples=["commune"])
    parent_code: str | None = None
    admin_unit_code: str = Field(examples=["00004"])
    sessions: list[Session]
    body_type: str = Field(examples=["commune_people_committee"])
    department: str | None = Field(None, examples=["tu_phap"])
    head_name: str | None = Field(None, description="thủ trưởng ký mẫu 04, 05 / the head who signs forms 04 and 05",
                                  examples=["Hoàng Văn Dũng"])
    head_title: str | None = Field(None, examples=["Chủ tịch"])


class AgencyHeadIn(BaseModel):
    """The head of an agency as forms 04 and 05 name them (full name and title); from the day it is set."""

    head_name: str = Field(min_length=2, max_length=200, examples=["Hoàng Văn Dũng"])
    head_title: str = Field(min_length=2, max_length=200, examples=["Chủ tịch"])


class DueOut(BaseModel):
    procedure_code: str
    agency_code: str
    received_at: datetime
    due_at: datetime
    working_time_limit_minutes: int
    explanation: str = Field(examples=["Nhận lúc 09:00 02/03/2026; 3 ngày làm việc; hẹn trả 09:00 05/03/2026"])


class AddressIn(BaseModel):
    line: str = Field(min_length=1, max_length=300, examples=["12 phố Kim Mã"])
    ward_code: str = Field(pattern=r"^\d{5}$", examples=["00004"])


class ApplicantIn(BaseModel):
    full_name: str = Field(min_length=1, max_length=200, examples=["Nguyễn Văn An"])
    id_number: str = Field(examples=["001090012345"])
    date_of_birth: date = Field(examples=["1990-05-12"])
    phone: str = Field(pattern=r"^(0|\+84)\d{9,10}$", examples=["0912345678"])
    email: str | None = Field(None, max_length=200, examples=["an.nguyen@example.vn"])
    address: AddressIn


class RepresentativeIn(BaseModel):
    full_name: str = Field(min_length=1, max_length=200, examples=["Nguyễn Văn Bình"])
    id_number: str = Field(examples=["001090012345"])
    relation: str = Field(min_length=1, max_length=100, examples=["cha"])


class DocumentIn(BaseModel):
    name: str = Field(min_length=1, max_length=300, examples=["Tờ khai đăng ký khai sinh"])
    original: int = Field(1, ge=0, le=100)
    copy_count: int = Field(0, ge=0, le=100, alias="copy")
    file_ids: list[str] = Field(default_factory=list, max_length=20)

    model_config = ConfigDict(populate_by_name=True)


class DeliveryAddressIn(AddressIn):
    recipient_name: str = Field(min_length=1, max_length=200, examples=["Nguyễn Văn An"])
    phone: str = Field(pattern=r"^(0|\+84)\d{9,10}$", examples=["0912345678"])


class DossierIn(BaseModel):
    channel: Literal["counter", "online", "postal"] = Field(examples=["counter"])
    procedure_code: str = Field(max_length=30, examples=["1.001193"])
    receiving_agency_code: str = Field(max_length=30, examples=["000.00.21.H29"])
    applicant: ApplicantIn
    representative: RepresentativeIn | None = None
    documents: list[DocumentIn] = Field(default_factory=list, max_length=50)
    number_of_sets: int = Field(1, ge=1, le=20)
    pages_per_copy: int = Field(1, ge=1, le=1000, description="for per-page fees (certified copies)")
    result_delivery: Literal["counter", "postal", "electronic"] = "counter"
    delivery_address: DeliveryAddressIn | None = None
    received_at: datetime | None = Field(None, description="postal channel: the postal handover time (with a UTC "
                                         "offset, within the last 30 days)")
    queue_ticket_id: str | None = Field(None, max_length=40)
    notes: str | None = Field(None, max_length=2000)

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "channel": "counter", "procedure_code": "1.001193", "receiving_agency_code": "000.00.21.H29",
        "applicant": {"full_name": "Nguyễn Văn An", "id_number": "001090012345", "date_of_birth": "1990-05-12",
                      "phone": "0912345678", "address": {"line": "12 phố Kim Mã", "ward_code": "00004"}},
        "documents": [{"name": "Tờ khai đăng ký khai sinh", "original": 1},
                      {"name": "Giấy chứng sinh", "original": 1}],
        "result_delivery": "counter"}]})


class DossierOut(BaseModel):
    code: str = Field(examples=["000.00.21.H29-260302-0001"])
    status: str = Field(examples=["received"])
    channel: str
    procedure_code: str
    receiving_agency: str
    receiving_agency_name: str = Field(examples=["UBND phường Ba Đình"])
    competent_agency: str = Field(examples=["000.00.07.H29"])
    competent_agency_name: str = Field(examples=["Sở Tư pháp thành phố Hà Nội"])
    received_at: datetime
    due_at: datetime | None = Field(description="null until the clock starts: an online dossier when an officer "
                                    "accepts it, a certification sent by post when the paper arrives")
    fee: int = Field(examples=[0])
    receipt_url: str


class PersonIn(BaseModel):
    full_name: str = Field(min_length=1, max_length=200, examples=["Nguyễn Văn An"])
    id_number: str | None = Field(None, pattern=r"^\d{12}$", examples=["001090012345"])
    phone: str | None = Field(None, pattern=r"^(0|\+84)\d{9,10}$", examples=["0912345678"])


class CounterRecordIn(BaseModel):
    """Form 03 (refusal, with reason) or form 02 (request to complete, listing documents and why)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "kind": "completion_request", "procedure_code": "1.001193", "receiving_agency_code": "000.00.21.H29",
        "applicant": {"full_name": "Nguyễn Văn An", "phone": "0912345678"},
        "reason": "Thiếu giấy chứng sinh bản chính", "documents": ["Giấy chứng sinh (bản chính)"]}]})

    kind: Literal["refusal", "completion_request"]
    procedure_code: str = Field(max_length=30)
    receiving_agency_code: str = Field(max_length=30)
    applicant: PersonIn
    reason: str = Field(min_length=3, max_length=2000)
    documents: list[str] = Field(default_factory=list, max_length=50)


class SupplementIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "documents": [{"name": "Bản sao Giấy chứng sinh", "original": 1, "file_ids": []}],
        "note": "Nộp bổ sung theo phiếu yêu cầu"}]})

    documents: list[DocumentIn] = Field(min_length=1, max_length=50)
    note: str | None = Field(None, max_length=2000)


class TimeLimitIn(BaseModel):
    value: int = Field(ge=0, le=365, examples=[3])
    unit: Unit = Field(examples=["working_days"], description=UNIT_DOC)
    verification_extension: int = Field(0, ge=0, le=60)
    by_channel: dict[Literal["counter", "online", "postal"], ChannelLimit] | None = None


class ProcedureDocumentIn(BaseModel):
    name: str = Field(min_length=1, max_length=300, examples=["Tờ khai theo mẫu"])
    original: int = Field(1, ge=0, le=20)
    copy_count: int = Field(0, ge=0, le=20, alias="copy")
    mandatory: bool = True

    model_config = ConfigDict(populate_by_name=True)


class ProcedureVersionIn(BaseModel):
    """A new version of a procedure, in force from `effective_from` (Viet Nam date)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "code": "1.004873", "effective_from": "2027-01-01", "name": "Cấp Giấy xác nhận tình trạng hôn nhân",
        "field_code": "HT", "level": "commune", "time_limit": {"value": 2, "unit": "working_days"},
        "fee": {"kind": "fixed", "amount": 15000}, "documents": [{"name": "Tờ khai theo mẫu"}],
        "channels": ["counter", "online", "postal"], "result_delivery": ["counter", "postal", "electronic"]}]})

    code: str = Field(min_length=3, max_length=30)
    effective_from: Day
    name: str = Field(min_length=3, max_length=400)
    field_code: str = Field(max_length=30)
    level: AgencyLevel = Field(description="commune | province | central: no district level since 1 July 2025")
    deciding_body: DecidingBody | None = Field(None, description="who decides; default for a commune procedure: "
                                               "commune_people_committee")
    department: Department | None = Field(None, description="the provincial department (province_department: "
                                          "required; province_chair: the one that appraises)")
    time_limit: TimeLimitIn
    fee: dict[str, Any] = Field(examples=[{"kind": "fixed", "amount": 0}])
    documents: list[ProcedureDocumentIn] = Field(max_length=50)
    channels: list[Literal["counter", "online", "postal"]] = Field(min_length=1)
    online_level: Literal["full", "partial"] = "partial"
    urgent: bool = False
    result_delivery: list[Literal["counter", "postal", "electronic"]] = Field(min_length=1)
    inter_agency: str | None = None
    notes: str | None = None

    @model_validator(mode="after")
    def fee_rule_is_known(self) -> ProcedureVersionIn:
        kind = self.fee.get("kind")
        needs = {"free": (), "fixed": ("amount",), "per_copy": ("amount",),
                 "per_page": ("first_pages", "first_rate", "rate", "cap_per_copy")}
        if kind not in needs or any(not isinstance(self.fee.get(k), int) for k in needs[kind]):
            raise ValueError("fee: kind free | fixed{amount} | per_copy{amount} | "
                             "per_page{first_pages, first_rate, rate, cap_per_copy}, integers in VND")
        return self

    @model_validator(mode="after")
    def deciding_body_fits_the_level(self) -> ProcedureVersionIn:
        if self.deciding_body is None and self.level == "commune":
            self.deciding_body = "commune_people_committee"
        if self.deciding_body is None or not level_fits(self.deciding_body, self.level):
            raise ValueError(f"deciding_body: cơ quan giải quyết phải cùng cấp {self.level} / the deciding body must "
                             f"be of the procedure's level ({self.level})")
        if self.deciding_body == "province_department" and self.department is None:
            raise ValueError("department: cần tên sở / province_department needs the department")
        if self.department is not None and self.deciding_body not in (
                "province_department", "province_chair", "province_people_committee"):
            raise ValueError("department: chỉ cho cơ quan cấp tỉnh / only for a provincial body")
        return self


class CalendarOverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "agency_code": None, "day": "2026-11-24", "kind": "day_off",
        "note": "Ngày Văn hóa Việt Nam / Viet Nam Culture Day"}]})

    agency_code: str | None = Field(None, max_length=30, description="null: every agency")
    day: Day
    kind: Literal["day_off", "working_day"]
    sessions: list[Session] | None = Field(None, max_length=6, description="working_day only: its opening hours")
    note: str = Field("", max_length=500)

    @model_validator(mode="after")
    def sessions_only_on_working_days(self) -> CalendarOverrideIn:
        if self.sessions is not None and self.kind != "working_day":
            raise ValueError("sessions are given only for a working_day")
        return self
