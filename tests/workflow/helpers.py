"""Builders shared by the workflow tests: dossiers entered the way intake's job enters them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.dossier_workflow import service
from shared.calendar import VN_TZ, TimeLimit
from shared.calendars import calendar_for_agency
from tests.conftest import auth

WARD = "000.00.21.H29"
PROVINCE = "000.00.07.H29"
CITIZEN = "001090012345"


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=VN_TZ)


async def received_job(session: AsyncSession, received_at: datetime, *, agency: str = WARD,
                       procedure: str = "1.004873", days: int = 3, phone: str | None = "0912345678",
                       delivery: str = "counter", channel: str = "counter", name: str = "Nguyễn Văn An",
                       id_number: str = CITIZEN) -> dict[str, Any]:
    """The `dossier.received` payload intake would send (a 3-working-day procedure by default)."""
    calendar = await calendar_for_agency(session, agency)
    due = calendar.due_at(received_at, TimeLimit(days, "working_days")).due_at
    code = f"{agency}-{received_at:%y%m%d}-T{uuid.uuid4().hex[:8]}"
    address = {"line": "12 phố Kim Mã", "ward_code": "00004", "recipient_name": name, "phone": phone}
    return {
        "code": code, "procedure_code": procedure, "procedure_name": "Cấp Giấy xác nhận tình trạng hôn nhân",
        "field_code": "HT", "receiving_agency": agency, "competent_agency": agency, "channel": channel,
        "applicant": {"name": name, "id_number": id_number, "phone": phone, "email": None},
        "received_at": received_at.isoformat(), "due_at": due.isoformat(),
        "time_limit": {"value": days, "unit": "working_days"}, "result_delivery": delivery,
        "delivery_address": address if delivery == "postal" else None, "fee": 0, "clock_started": True,
    }


async def new_dossier(conn: AsyncConnection, received_at: datetime, **kw: Any) -> str:
    session = AsyncSession(bind=conn, join_transaction_mode="create_savepoint")
    data = await received_job(session, received_at, **kw)
    assert await service.receive(session, data)
    await session.flush()
    return str(data["code"])


def officer(make_token: Any, who: str = "canbo.phuong", agency: str = WARD, role: str = "officer") -> str:
    return str(make_token(role, subject=who, agency_code=agency))


async def act(client: httpx.AsyncClient, token: str, code: str, version: int | str | None,
              **body: Any) -> httpx.Response:
    headers = auth(token)
    if version is not None:
        headers["If-Match"] = f'"{version}"'
    return await client.post(f"/v1/dossiers/{code}/actions", json=body, headers=headers)


async def snapshot(conn: AsyncConnection, code: str) -> tuple[Any, ...]:
    """The dossier row and its history length: what 'nothing changed' is checked against."""
    row = (await conn.execute(text("SELECT status, version, due_at, current_agency, assignee FROM "
                                   "workflow.dossiers WHERE code = :c"), {"c": code})).one()
    n = (await conn.execute(text("SELECT count(*) FROM workflow.history WHERE dossier_code = :c"),
                            {"c": code})).scalar_one()
    return (*row, n)


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code and body["status"] == status and body["detail"]
    return body
