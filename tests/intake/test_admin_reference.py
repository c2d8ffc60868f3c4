"""Admin changes of reference data: procedure versions from a date, calendar overrides that move due dates."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.intake.app import create_app
from shared.db import Tx
from tests.conftest import app_client_factory, assert_problem, auth

client = app_client_factory(create_app)


def version(**over: Any) -> dict[str, Any]:
    v: dict[str, Any] = {
        "code": "1.004873", "effective_from": (date.today() + timedelta(days=30)).isoformat(),
        "name": "Cấp Giấy xác nhận tình trạng hôn nhân", "field_code": "HT", "level": "commune",
        "time_limit": {"value": 2, "unit": "working_days"}, "fee": {"kind": "fixed", "amount": 15000},
        "documents": [{"name": "Tờ khai theo mẫu"}], "channels": ["counter", "online"],
        "result_delivery": ["counter", "electronic"]}
    v.update(over)
    return v


async def test_a_procedure_change_is_a_new_version_from_a_date(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    admin = auth(make_token("admin", subject="quantri"))
    r = await client.post("/v1/admin/procedures", json=version(), headers=admin)
    assert r.status_code == 201, r.text
    today = (await client.get("/v1/procedures/1.004873")).json()
    assert today["time_limit"]["value"] == 3  # in force today: the old version
    versions = (await client.get("/v1/admin/procedures/1.004873/versions", headers=admin)).json()
    assert [v["time_limit"]["value"] for v in versions][-1] == 2 and len(versions) >= 2
    assert_problem(await client.post("/v1/admin/procedures", json=version(), headers=admin), 409, "conflict")
    assert_problem(await client.post("/v1/admin/procedures", json=version(effective_from="2020-01-01"),
                                     headers=admin), 422, "validation_error")
    assert_problem(await client.post("/v1/admin/procedures", json=version(fee={"kind": "per_page"}),
                                     headers=admin), 422, "validation_error")
    assert_problem(await client.post("/v1/admin/procedures", json=version(field_code="XX"), headers=admin),
                   422, "validation_error")
    assert_problem(await client.post("/v1/admin/procedures", json=version(),
                                     headers=auth(make_token("officer", agency_code="000.00.21.H29"))),
                   403, "forbidden")


async def test_an_extra_day_off_moves_the_due_date(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    admin = auth(make_token("admin", subject="quantri"))
    params = {"procedure_code": "1.004873", "agency_code": "000.00.21.H29", "received_at": "2026-12-14T09:00:00+07:00"}
    before = (await client.get("/v1/calendar/due", params=params)).json()["due_at"]
    r = await client.post("/v1/admin/calendar/overrides", json={
        "agency_code": "000.00.21.H29", "day": "2026-12-15", "kind": "day_off", "note": "Nghỉ bù"}, headers=admin)
    assert r.status_code == 201, r.text
    after = (await client.get("/v1/calendar/due", params=params)).json()["due_at"]
    assert before.startswith("2026-12-17T09:00") and after.startswith("2026-12-18T09:00")
    assert_problem(await client.post("/v1/admin/calendar/overrides", json={
        "agency_code": "000.00.21.H29", "day": "2026-12-15", "kind": "day_off"}, headers=admin), 409, "conflict")
    listed = (await client.get("/v1/admin/calendar/overrides", params={"year": 2026}, headers=admin)).json()
    assert any(o["day"] == "2026-12-15" for o in listed)
    assert (await client.delete(f"/v1/admin/calendar/overrides/{r.json()['id']}", headers=admin)).status_code == 204
    assert (await client.get("/v1/calendar/due", params=params)).json()["due_at"] == before
    assert_problem(await client.delete("/v1/admin/calendar/overrides/999999", headers=admin), 404, "not_found")


async def test_bad_override_sessions_and_out_of_range_ids_are_4xx(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    admin = auth(make_token("admin", subject="quantri"))
    base = {"agency_code": "000.00.21.H29", "day": "2026-12-19", "kind": "working_day"}
    for sessions in ([{"start": "Ór\t", "end": "11:30"}], [{"start": "11:30", "end": "07:30"}],
                     [{"start": "07:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]):
        assert_problem(await client.post("/v1/admin/calendar/overrides", json={**base, "sessions": sessions},
                                         headers=admin), 422, "validation_error")
    assert_problem(await client.post("/v1/admin/calendar/overrides", json={
        **base, "kind": "day_off", "sessions": [{"start": "07:30", "end": "11:30"}]}, headers=admin),
        422, "validation_error")
    ok = await client.post("/v1/admin/calendar/overrides", json={
        **base, "sessions": [{"start": "07:30", "end": "11:30"}], "note": "Làm bù sáng thứ Bảy"}, headers=admin)
    assert ok.status_code == 201, ok.text
    assert (await client.get("/v1/calendar/due", params={
        "procedure_code": "1.004873", "agency_code": "000.00.21.H29"})).status_code == 200
    assert_problem(await client.delete("/v1/admin/calendar/overrides/99999999999999999999999", headers=admin),
                   400, "bad_request")
    officer = auth(make_token("officer", agency_code="000.00.21.H29"))
    assert_problem(await client.get("/v1/counter-records/99999999999999999999999", headers=officer),
                   400, "bad_request")


async def test_a_years_make_up_saturday_comes_from_an_override_row(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    """National Day 2026: Saturday 22 Aug worked for Monday 31 Aug. Both are rows (migration core_0003), not code:
    deleting the Saturday's row turns it back into a day off and the due date moves; adding it back restores it."""
    admin = auth(make_token("admin", subject="quantri"))
    params = {"procedure_code": "1.004873", "agency_code": "000.00.21.H29", "received_at": "2026-08-21T16:00:00+07:00"}
    listed = (await client.get("/v1/admin/calendar/overrides", params={"year": 2026}, headers=admin)).json()
    national = {o["day"]: o for o in listed if o["agency_code"] is None}
    assert national["2026-08-22"]["kind"] == "working_day" and national["2026-08-31"]["kind"] == "day_off"
    # 3 working days = 22.5 h: Fri 1 h, Sat 22 Aug 7.5 h, Mon 7.5 h, Tue 25 Aug 6.5 h -> 16:00
    assert (await client.get("/v1/calendar/due", params=params)).json()["due_at"].startswith("2026-08-25T16:00")
    removed = await client.delete(f"/v1/admin/calendar/overrides/{national['2026-08-22']['id']}", headers=admin)
    assert removed.status_code == 204
    # without the row, Saturday 22 Aug is an ordinary day off: one working day later
    assert (await client.get("/v1/calendar/due", params=params)).json()["due_at"].startswith("2026-08-26T16:00")
    back = await client.post("/v1/admin/calendar/overrides", json={
        "agency_code": None, "day": "2026-08-22", "kind": "working_day", "note": national["2026-08-22"]["note"]},
        headers=admin)
    assert back.status_code == 201, back.text
    assert (await client.get("/v1/calendar/due", params=params)).json()["due_at"].startswith("2026-08-25T16:00")


async def test_there_is_no_district_level(client: httpx.AsyncClient, make_token: Any, db_conn: Tx) -> None:
    """Since 1 July 2025 (two-level local government) a level is commune, province or central."""
    admin = auth(make_token("admin", subject="quantri"))
    for level in ("district", "huyện", "Quận"):
        body = assert_problem(await client.post("/v1/admin/procedures", json=version(level=level), headers=admin),
                              422, "validation_error")
        (error,) = body["errors"]
        assert error["field"] == "level" and "1 July 2025" in error["message"] and "01/7/2025" in error["message"]
    assert_problem(await client.post("/v1/admin/procedures", json=version(level="county"), headers=admin),
                   422, "validation_error")
    # the tables keep "district" for history only (an inactive agency, a version before 1 July 2025)
    insert_agency = ("INSERT INTO core.agencies (code, name, search_text, level, admin_unit_code, sessions, active) "
                     "VALUES ($1, 'UBND quận Ba Đình', 'ubnd quan ba dinh', 'district', '001', '[]', $2)")
    with pytest.raises(asyncpg.CheckViolationError):  # `statement`: in a savepoint, the test's transaction lives on
        await db_conn.statement(insert_agency, "000.00.01.H29", True)
    await db_conn.statement(insert_agency, "000.00.01.H29", False)
    insert_version = ("INSERT INTO core.procedures (code, effective_from, name, search_text, field_code, level, "
                      "time_limit, fee, documents, channels, online_level, result_delivery) SELECT 'X.1', $1, name, "
                      "search_text, field_code, 'district', time_limit, fee, documents, channels, online_level, "
                      "result_delivery FROM core.procedures WHERE code = '1.004873' LIMIT 1")
    with pytest.raises(asyncpg.CheckViolationError):
        await db_conn.statement(insert_version, date(2025, 7, 1))
    await db_conn.statement(insert_version, date(2025, 6, 30))


async def test_listing_agencies_by_the_district_level_is_a_422_that_says_why(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/agencies", params={"level": "district"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert "01/7/2025" in r.text
    assert (await client.get("/v1/agencies", params={"level": "commune"})).status_code == 200
