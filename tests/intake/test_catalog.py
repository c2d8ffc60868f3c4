"""Catalog, agencies and the due-date answer, on the seeded reference data."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.intake.app import create_app
from tests.conftest import app_client_factory

client = app_client_factory(create_app)
pytestmark = pytest.mark.smoke


async def names(c: httpx.AsyncClient, **params: Any) -> list[str]:
    r = await c.get("/v1/procedures", params=params)
    assert r.status_code == 200, r.text
    return [p["name"] for p in r.json()]


async def test_accent_insensitive_search_finds_birth_registration_first(client: httpx.AsyncClient) -> None:
    for q in ("dang ky khai sinh", "khai sinh", "Đăng ký khai sinh", "KHAI SINH", "sinh khai"):
        found = await names(client, q=q)
        assert found and found[0] == "Đăng ký khai sinh", (q, found[:3])
    assert await names(client, q="khong co thu tuc nay") == []


async def test_catalog_has_twenty_real_procedures_with_fees_and_limits(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/procedures", params={"limit": 200})
    procs = {p["code"]: p for p in r.json()}
    assert len(procs) >= 20
    copy = procs["2.000815"]
    assert copy["fee"] == {"kind": "per_page", "first_pages": 2, "first_rate": 2000, "rate": 1000,
                           "cap_per_copy": 200000}
    assert procs["1.004873"]["time_limit"] == {"value": 3, "unit": "working_days", "verification_extension": 23,
                                               "by_channel": None}
    assert await names(client, field="CT") and all(
        p["field_code"] == "CT" for p in (await client.get("/v1/procedures", params={"field": "CT"})).json())


async def test_one_procedure_and_unknowns(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/procedures/1.001193")
    assert r.status_code == 200 and r.json()["field_name"] == "Hộ tịch"
    r = await client.get("/v1/procedures/9.999999")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await client.get("/v1/procedures", params={"agency_code": "000.00.00.X00"})
    assert r.status_code == 404


async def test_agencies_by_level_and_text(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/agencies", params={"level": "commune"})
    communes = {a["code"]: a for a in r.json()}
    assert "000.00.21.H29" in communes and all(a["level"] == "commune" for a in communes.values())
    assert communes["000.30.21.H29"]["body_type"] == "commune_police"
    r = await client.get("/v1/agencies", params={"q": "so tu phap"})
    assert [a["name"] for a in r.json()] == ["Sở Tư pháp thành phố Hà Nội"]
    assert (await client.get("/v1/agencies", params={"level": "planet"})).status_code == 422


async def test_due_date_answer_uses_the_agency_calendar(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/calendar/due", params={
        "procedure_code": "1.004873", "agency_code": "000.00.21.H29", "received_at": "2026-02-13T14:00:00+07:00"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["due_at"] == "2026-02-25T14:00:00+07:00"
    assert body["working_time_limit_minutes"] == 3 * 450
    assert "hẹn trả" in body["explanation"]
    r = await client.get("/v1/calendar/due", params={
        "procedure_code": "1.004873", "agency_code": "000.00.21.H29", "received_at": "2026-02-13T14:00:00"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "received_at"
