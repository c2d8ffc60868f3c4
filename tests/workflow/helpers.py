"""Builders shared by the workflow tests: dossiers entered the way intake's job enters them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any

import httpx
import pytest

from services.dossier_workflow import router as workflow_router
from services.dossier_workflow import service
from shared.calendar import VN_TZ, TimeLimit
from shared.calendars import calendar_for_agency
from shared.db import Tx
from tests.conftest import auth

WARD = "000.00.21.H29"
PROVINCE = "000.00.07.H29"
CITIZEN = "001090012345"


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=VN_TZ)


async def received_job(tx: Tx, received_at: datetime, *, agency: str = WARD,
                       procedure: str = "1.004873", days: int = 3, phone: str | None = "0912345678",
                       delivery: str = "counter", channel: str = "counter", name: str = "Nguyễn Văn An",
                       id_number: str = CITIZEN) -> dict[str, Any]:
    """The `dossier.received` payload intake would send (a 3-working-day procedure by default)."""
    calendar = await calendar_for_agency(tx, agency)
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


async def new_dossier(tx: Tx, received_at: datetime, **kw: Any) -> str:
    data = await received_job(tx, received_at, **kw)
    assert await service.receive(tx, data)
    return str(data["code"])


@asynccontextmanager
async def job_unit(db_conn: Tx) -> AsyncIterator[Tx]:
    """As the worker runs a job: its own unit of work (a savepoint of the test's transaction), rolled back
    when the handler raises."""
    async with db_conn.conn.transaction():
        yield Tx(db_conn.conn, nested=True)


def officer(make_token: Any, who: str = "canbo.phuong", agency: str = WARD, role: str = "officer") -> str:
    return str(make_token(role, subject=who, agency_code=agency))


async def act(client: httpx.AsyncClient, token: str, code: str, version: int | str | None,
              **body: Any) -> httpx.Response:
    headers = auth(token)
    if version is not None:
        headers["If-Match"] = f'"{version}"'
    return await client.post(f"/v1/dossiers/{code}/actions", json=body, headers=headers)


async def snapshot(tx: Tx, code: str) -> tuple[Any, ...]:
    """The dossier row and its history length: what 'nothing changed' is checked against."""
    row = await tx.fetchrow("SELECT status, version, due_at, current_agency, assignee FROM workflow.dossiers "
                            "WHERE code = $1", code)
    assert row is not None
    n = await tx.fetchval("SELECT count(*) FROM workflow.history WHERE dossier_code = $1", code)
    return (*row.values(), n)




class Clock:
    """The service's notion of now, moved by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: datetime) -> None:
        self.t = start
        monkeypatch.setattr(workflow_router, "now", lambda: self.t)

    def set(self, t: datetime) -> None:
        self.t = t


def share(part: int, whole: int) -> float | None:
    """A share as the statistics give it (4 decimals; None without a whole)."""
    return round(part / whole, 4) if whole else None


async def stats(client: httpx.AsyncClient, leader: str, start: date, end: date,
                group_by: str | None = None) -> list[dict[str, Any]]:
    """GET /v1/stats for the period (and grouping), as `leader`."""
    params = {"from": start.isoformat(), "to": end.isoformat(), **({"group_by": group_by} if group_by else {})}
    r = await client.get("/v1/stats", params=params, headers=auth(leader))
    assert r.status_code == 200, r.text
    return list(r.json())
