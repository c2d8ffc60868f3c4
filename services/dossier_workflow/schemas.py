"""Request and response bodies of the workflow API (Vietnamese examples)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["assign", "start", "forward", "request_supplement", "receive_supplement", "expire_supplement",
                 "transfer", "approve", "reject", "issue_apology", "return_result", "withdraw", "accept",
                 "extend_for_verification"]


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
        {"action": "accept", "note": "Hồ sơ trực tuyến đầy đủ, hợp lệ"},
        {"action": "extend_for_verification", "days": 2, "reason": "Cần xác minh tại nơi cư trú trước đây"},
        {"action": "withdraw", "reason": "Tôi không có nhu cầu giải quyết nữa"},
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
    days: int | None = Field(None, ge=1, le=60, description="extend_for_verification: working days to add (within "
                             "the procedure's verification extension, in total)")


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
    actor_name: str | None = Field(None, description="họ và tên / full name", examples=["Lê Thị Hoa"])
    actor_title: str | None = Field(None, description="chức danh / title", examples=["Công chức Tư pháp - Hộ tịch"])


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
    due_at: datetime | None = Field(description="hẹn trả hiện tại; null khi thời hạn chưa bắt đầu / current due "
                                    "date; null until the clock starts (online: acceptance; postal certification: "
                                    "the paper's arrival)")
    original_due_at: datetime | None = Field(description="hạn theo quy định (gia hạn xác minh dời hạn này, xin lỗi "
                                             "thì không) / the legal due date: on time or late is judged on it")
    clock_started: bool
    awaiting_acceptance: bool = Field(description="hồ sơ trực tuyến chờ cán bộ tiếp nhận / online, not yet accepted")
    acceptance_due_at: datetime | None = Field(description="hạn tiếp nhận hồ sơ trực tuyến / online acceptance due")
    accepted_at: datetime | None
    verification_days: int = Field(description="số ngày làm việc đã kéo dài để xác minh / working days added for "
                                   "verification so far")
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
    due_at: datetime | None = Field(description="null until the clock starts")
    acceptance_due_at: datetime | None = Field(None, description="online dossier not yet accepted: acceptance due")
    next_step: str | None


class IndicatorOut(BaseModel):
    """One indicator of a criterion: the figure it reads, its weight and its points (weight x share)."""

    code: str = Field(..., description="mã chỉ tiêu / indicator code", examples=["resolved_on_time"])
    name: str = Field(..., description="tên chỉ tiêu / indicator name")
    figure: str | None = Field(..., description="số liệu dùng để tính / the figure of this row it reads; null: the "
                               "system does not record it")
    weight: float = Field(..., description="điểm tối đa của chỉ tiêu (giả định) / the indicator's points (assumed)")
    value: float | None = Field(..., description="giá trị tỷ lệ / the share read (null: unknown or no denominator)")
    points: float | None = Field(..., description="điểm đạt được / points reached (null: unknown)")


class CriterionOut(BaseModel):
    """One criterion of Decision 766 with its points from the figures the system knows (docs/workflow.md)."""

    code: str = Field(..., description="mã tiêu chí / criterion code", examples=["progress"])
    name: str = Field(..., description="tên tiêu chí / criterion name")
    max_points: float = Field(..., description="điểm tối đa theo QĐ 766 / the criterion's maximum points")
    points: float | None = Field(..., description="điểm từ các chỉ tiêu hệ thống biết / points from the indicators "
                                 "the system knows (null: none known)")
    known_max_points: float = Field(..., description="điểm tối đa của các chỉ tiêu đã biết / the most the known "
                                    "indicators can give")
    indicators: list[IndicatorOut] = Field(..., description="các chỉ tiêu / the indicators")


_EXAMPLE_CRITERIA: list[Any] = [
    {"code": "progress", "name": "Tiến độ, kết quả giải quyết / progress and results", "max_points": 20,
     "points": 19.0, "known_max_points": 20, "indicators": [
        {"code": "resolved_on_time", "name": "Hồ sơ giải quyết trước hạn, đúng hạn / dossiers resolved early or on "
         "time", "figure": "on_time_rate", "weight": 20, "value": 0.95, "points": 19.0}]},
]


class StatsOut(BaseModel):
    """Figures of the service index (Bộ chỉ số phục vụ người dân, doanh nghiệp, Decision 766/QĐ-TTg) for the
    period: events counted on the Viet Nam day they happened, for the receiving agency. In-progress counts are a
    count of now (not of the period); they are absent (null) when grouped by month. Every share is ≤ 1 and null
    when its denominator is 0. Procedure counts are the national catalog's in force on the period's last day."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "group": None, "received": 120, "received_counter": 70, "received_online": 42, "received_postal": 8,
        "resolved": 100, "resolved_early": 61, "resolved_on_time": 34, "resolved_late": 5, "on_time_rate": 0.95,
        "average_processing_hours": 14.5, "in_progress_on_time": 17, "in_progress_overdue": 3,
        "awaiting_acceptance": 2, "awaiting_acceptance_late": 1, "returned": 90,
        "share_online": 0.35, "share_postal": 0.0667, "electronic_results": 27, "share_electronic_result": 0.3,
        "synced": 118, "share_synced": 0.9833, "synced_on_time": 110, "share_synced_on_time": 0.9167,
        "rating_count": 40, "average_rating": 4.3, "rating_satisfied": 35, "satisfaction_rate": 0.875,
        "digitised": 60, "digitisation_rate": 0.5, "received_level_full": 80, "received_level_partial": 40,
        "received_online_full": 40, "received_online_partial": 2, "share_online_full": 0.5,
        "share_online_partial": 0.05, "procedures": 25, "procedures_online_full": 18, "procedures_online_partial": 0,
        "share_procedures_online": 0.72, "share_procedures_online_full": 0.72, "share_procedures_online_partial": 0.0,
        "online_payments": None, "share_online_payment": None,
        "online_payment_note": "Chưa có dữ liệu thanh toán / no payment data yet",
        "accepted": 40, "accepted_late": 2, "share_accepted_late": 0.05,
        "criteria": _EXAMPLE_CRITERIA, "index_points": 19.0, "index_known_max_points": 20}]})

    group: str | None = Field(None, description="lĩnh vực, thủ tục, kênh hoặc tháng / field, procedure, channel "
                              "or month (YYYY-MM); null when not grouped")
    received: int = Field(..., description="hồ sơ tiếp nhận / dossiers received")
    received_counter: int = Field(..., description="tiếp nhận trực tiếp / received at the counter")
    received_online: int = Field(..., description="tiếp nhận trực tuyến / received online")
    received_postal: int = Field(..., description="tiếp nhận qua bưu chính công ích / received by post")
    resolved: int = Field(..., description="hồ sơ đã giải quyết / dossiers resolved in the period")
    resolved_early: int = Field(..., description="giải quyết trước hạn / resolved before the due day")
    resolved_on_time: int = Field(..., description="giải quyết đúng hạn / resolved on the due day, by its time")
    resolved_late: int = Field(..., description="giải quyết quá hạn (so với hạn ban đầu) / resolved late, against "
                               "the original due date (an apology does not make it on time)")
    on_time_rate: float | None = Field(..., description="tỷ lệ giải quyết trước hạn và đúng hạn / (early + on "
                                       "time) / resolved")
    average_processing_hours: float | None = Field(..., description="thời gian giải quyết trung bình (giờ làm "
                                                   "việc) / average working hours, supplement waits excluded")
    in_progress_on_time: int | None = Field(None, description="đang giải quyết trong hạn (hiện tại) / not yet "
                                            "resolved and not overdue, now (waiting for a supplement counts here)")
    in_progress_overdue: int | None = Field(None, description="đang giải quyết quá hạn (hiện tại) / not yet "
                                            "resolved, clock running and past the current due date, now")
    awaiting_acceptance: int | None = Field(None, description="hồ sơ trực tuyến chờ tiếp nhận (hiện tại) / online "
                                            "dossiers not yet accepted, now (no due date yet)")
    awaiting_acceptance_late: int | None = Field(None, description="hồ sơ trực tuyến chậm tiếp nhận, chưa tiếp nhận "
                                                 "(hiện tại) / of those, past their acceptance deadline, now")
    returned: int = Field(..., description="đã trả kết quả / results handed over in the period")
    share_online: float | None = Field(..., description="tỷ lệ tiếp nhận trực tuyến / received_online / received")
    share_postal: float | None = Field(..., description="tỷ lệ qua bưu chính / received_postal / received")
    electronic_results: int = Field(..., description="kết quả điện tử đã cấp / results actually handed over "
                                    "electronically (not merely requested)")
    share_electronic_result: float | None = Field(..., description="tỷ lệ cấp kết quả điện tử / "
                                                  "electronic_results / returned")
    synced: int = Field(..., description="hồ sơ tiếp nhận đã đồng bộ lên Cổng DVCQG / dossiers received in the "
                        "period that the national portal has acknowledged, each once")
    share_synced: float | None = Field(..., description="tỷ lệ đồng bộ / synced / received (≤ 1)")
    rating_count: int = Field(..., description="lượt đánh giá / ratings given in the period")
    average_rating: float | None = Field(..., description="điểm đánh giá trung bình (1–5) / average score")
    rating_satisfied: int = Field(..., description="lượt đánh giá hài lòng (4–5 điểm) / ratings of 4 or 5")
    satisfaction_rate: float | None = Field(..., description="tỷ lệ hài lòng / rating_satisfied / rating_count")
    synced_on_time: int = Field(0, description="đồng bộ kịp thời / of `synced`, first acknowledged by the portal "
                                "within 24 hours of receipt")
    share_synced_on_time: float | None = Field(None, description="tỷ lệ đồng bộ kịp thời / synced_on_time / received")
    digitised: int = Field(0, description="hồ sơ được số hóa / receipts whose components were electronic (every "
                           "document with files, or filed online)")
    digitisation_rate: float | None = Field(None, description="tỷ lệ số hóa hồ sơ / digitised / received")
    received_level_full: int = Field(0, description="tiếp nhận của TTHC trực tuyến toàn trình / receipts of "
                                     "procedures offered fully online")
    received_level_partial: int = Field(0, description="tiếp nhận của TTHC trực tuyến một phần / receipts of "
                                        "procedures offered partly online")
    received_online_full: int = Field(0, description="trong đó nộp trực tuyến / of those, filed online (full)")
    received_online_partial: int = Field(0, description="trong đó nộp trực tuyến / of those, filed online "
                                         "(partial)")
    share_online_full: float | None = Field(None, description="tỷ lệ hồ sơ trực tuyến toàn trình / "
                                            "received_online_full / received_level_full")
    share_online_partial: float | None = Field(None, description="tỷ lệ hồ sơ trực tuyến một phần / "
                                               "received_online_partial / received_level_partial")
    procedures: int = Field(0, description="số TTHC trong danh mục / procedures in force in the catalog (of the "
                            "field or procedure when grouped so)")
    procedures_online_full: int = Field(0, description="TTHC trực tuyến toàn trình / procedures offered fully "
                                        "online")
    procedures_online_partial: int = Field(0, description="TTHC trực tuyến một phần / procedures offered partly "
                                           "online")
    share_procedures_online: float | None = Field(None, description="tỷ lệ TTHC cung cấp trực tuyến / (full + "
                                                  "partial) / procedures")
    share_procedures_online_full: float | None = Field(None, description="tỷ lệ TTHC toàn trình / "
                                                       "procedures_online_full / procedures")
    share_procedures_online_partial: float | None = Field(None, description="tỷ lệ TTHC một phần / "
                                                          "procedures_online_partial / procedures")
    online_payments: int | None = Field(None, description="thanh toán trực tuyến / online payments: null until "
                                        "payments are recorded")
    share_online_payment: float | None = Field(None, description="tỷ lệ thanh toán trực tuyến / online payment "
                                               "share: null until payments are recorded (see online_payment_note)")
    online_payment_note: str | None = Field(None, description="lý do thiếu số liệu thanh toán / why the payment "
                                            "figures are null")
    accepted: int = Field(0, description="hồ sơ trực tuyến đã tiếp nhận / online dossiers accepted in the period")
    accepted_late: int = Field(0, description="hồ sơ trực tuyến chậm tiếp nhận / accepted after their acceptance "
                               "time (counted apart from overdue)")
    share_accepted_late: float | None = Field(None, description="tỷ lệ chậm tiếp nhận / accepted_late / accepted")
    criteria: list[CriterionOut] = Field(default_factory=list, description="điểm theo tiêu chí QĐ 766 / points "
                                         "per criterion")
    index_points: float | None = Field(None, description="tổng điểm các tiêu chí đã biết / points of the known "
                                       "criteria")
    index_known_max_points: float = Field(0, description="điểm tối đa của các tiêu chí đã biết / the most the "
                                          "known criteria can give (of 100)")
