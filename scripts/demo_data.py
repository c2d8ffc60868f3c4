"""Demo people and clients that `make run` loads (local use only: the secrets are public)."""

from __future__ import annotations

from dataclasses import dataclass

# The demo agencies (their catalog data is seeded by intake into schema core).
WARD_AGENCY = "000.00.21.H29"        # UBND phường Ba Đình (Hà Nội), commune level
PROVINCE_AGENCY = "000.00.07.H29"    # Sở Tư pháp thành phố Hà Nội, province level
WARD_OFFICE = "PBD"                  # waiting room of the ward's one-stop office
PROVINCE_OFFICE = "STP"              # waiting room of the department


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: str
    subject: str
    name: str
    agency_code: str | None = None
    office_code: str | None = None
    title: str | None = None  # chức danh, printed under the name on forms


@dataclass(frozen=True)
class DemoClient:
    client_id: str
    secret: str
    role: str
    name: str
    partner_code: str | None = None
    agency_code: str | None = None
    office_code: str | None = None


USERS = [
    DemoUser("congdan", "demo-citizen", "citizen", "001090012345", "Nguyễn Văn An"),
    DemoUser("congdan2", "demo-citizen", "citizen", "079195001234", "Trần Thị Bình"),
    DemoUser("canbo.phuong", "demo-officer", "officer", "canbo.phuong", "Lê Thị Hoa",
             WARD_AGENCY, WARD_OFFICE, "Công chức Tư pháp - Hộ tịch"),
    DemoUser("canbo2.phuong", "demo-officer", "officer", "canbo2.phuong", "Phạm Minh Tuấn",
             WARD_AGENCY, WARD_OFFICE, "Công chức Văn phòng - Thống kê"),
    DemoUser("lanhdao.phuong", "demo-supervisor", "supervisor", "lanhdao.phuong",
             "Hoàng Văn Dũng", WARD_AGENCY, WARD_OFFICE, "Chủ tịch Ủy ban nhân dân phường Ba Đình"),
    DemoUser("canbo.so", "demo-officer", "officer", "canbo.so", "Vũ Thị Lan",
             PROVINCE_AGENCY, PROVINCE_OFFICE, "Chuyên viên Phòng Hành chính tư pháp"),
    DemoUser("lanhdao.so", "demo-supervisor", "supervisor", "lanhdao.so", "Đặng Quốc Huy",
             PROVINCE_AGENCY, PROVINCE_OFFICE, "Phó Giám đốc Sở Tư pháp"),
    DemoUser("quantri", "demo-admin", "admin", "quantri", "Nguyễn Đức Thành", title="Quản trị viên hệ thống"),
]

CLIENTS = [
    DemoClient("vnpost", "demo-vnpost-secret", "postal_partner", "Bưu điện Việt Nam (VNPost)",
               partner_code="VNPOST"),
    DemoClient("dvcqg", "demo-dvcqg-secret", "gov_system", "Cổng Dịch vụ công quốc gia"),
    DemoClient("kiosk-pbd", "demo-kiosk-secret", "kiosk", "Kiosk phường Ba Đình",
               agency_code=WARD_AGENCY, office_code=WARD_OFFICE),
    DemoClient("kiosk-stp", "demo-kiosk-secret", "kiosk", "Kiosk Sở Tư pháp",
               agency_code=PROVINCE_AGENCY, office_code=PROVINCE_OFFICE),
]
