"""Routing by the deciding body (Decree 118/2025 Art. 14, "phi địa giới"): any one-stop office of the province
receives, the dossier goes to the competent body of the applicant's ward or province; another province is a
422 that says where to file; the catalog carries province-level procedures and who decides each procedure."""

from __future__ import annotations

import io
from typing import Any

import httpx
from pypdf import PdfReader

from services.intake.app import create_app
from shared.db import Tx
from tests.conftest import app_client_factory, assert_problem, auth
from tests.intake.helpers import WARD, body, counts, officer

client = app_client_factory(create_app)

JUSTICE = "000.00.07.H29"          # Sở Tư pháp thành phố Hà Nội
SCIENCE = "000.00.10.H29"          # Sở Khoa học và Công nghệ thành phố Hà Nội
POLICE_BA_DINH = "000.30.21.H29"   # Công an phường Ba Đình
HOAN_KIEM = "000.00.22.H29"        # UBND phường Hoàn Kiếm (ward 00070)
POLICE_HOAN_KIEM = "000.30.22.H29"
CENTRE = "000.00.00.H29"           # Trung tâm Phục vụ hành chính công thành phố Hà Nội
SAI_GON = "000.00.21.H79"          # UBND phường Sài Gòn, Thành phố Hồ Chí Minh (ward 26740)


async def submission(c: httpx.AsyncClient, procedure_code: str, ward: str = "00004", **over: Any) -> dict[str, Any]:
    """A complete dossier for the procedure (its mandatory documents from the catalog), applicant in `ward`."""
    proc = (await c.get(f"/v1/procedures/{procedure_code}")).json()
    b = body(procedure_code=procedure_code, documents=[{"name": d["name"]} for d in proc["documents"]], **over)
    b["applicant"] = {**b["applicant"], "address": {"line": "1 phố Thử", "ward_code": ward}}
    return b


async def test_a_province_procedure_received_at_a_commune_goes_to_the_department(
    client: httpx.AsyncClient, make_token: Any,
) -> None:
    r = await client.post("/v1/dossiers", json=await submission(client, "2.000823"), headers=officer(make_token))
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["code"].startswith(WARD + "-")  # the receiving office's register
    assert (d["receiving_agency"], d["receiving_agency_name"]) == (WARD, "UBND phường Ba Đình")
    assert (d["competent_agency"], d["competent_agency_name"]) == (JUSTICE, "Sở Tư pháp thành phố Hà Nội")
    # decided by the provincial chair, appraised by Sở Tư pháp: the dossier goes to Sở Tư pháp
    r = await client.post("/v1/dossiers", json=await submission(client, "1.001122"), headers=officer(make_token))
    assert r.status_code == 201 and r.json()["competent_agency"] == JUSTICE, r.text
    r = await client.post("/v1/dossiers", json=await submission(client, "1.014445"), headers=officer(make_token))
    assert r.status_code == 201 and r.json()["competent_agency"] == SCIENCE, r.text
    # the department's officers may read it
    justice = auth(make_token("officer", agency_code=JUSTICE))
    assert (await client.get(f"/v1/dossiers/{d['code']}", headers=justice)).status_code == 200


async def test_residence_goes_to_the_commune_police_of_the_applicants_ward(
    client: httpx.AsyncClient, make_token: Any,
) -> None:
    r = await client.post("/v1/dossiers", json=await submission(client, "1.004194"), headers=officer(make_token))
    assert r.status_code == 201, r.text
    assert (r.json()["competent_agency"], r.json()["competent_agency_name"]) == (POLICE_BA_DINH,
                                                                                 "Công an phường Ba Đình")
    r = await client.post("/v1/dossiers", json=await submission(client, "1.004222", ward="00070"),
                          headers=officer(make_token))
    assert r.status_code == 201 and r.json()["competent_agency"] == POLICE_HOAN_KIEM, r.text


async def test_same_province_applicant_of_another_ward_goes_to_that_wards_body(
    client: httpx.AsyncClient, make_token: Any,
) -> None:
    r = await client.post("/v1/dossiers", json=await submission(client, "1.001193", ward="00070"),
                          headers=officer(make_token))
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["receiving_agency"] == WARD and d["code"].startswith(WARD + "-")
    assert (d["competent_agency"], d["competent_agency_name"]) == (HOAN_KIEM, "UBND phường Hoàn Kiếm")
    # the province's service centre receives a commune procedure and sends it to the ward
    r = await client.post("/v1/dossiers", json=await submission(client, "1.001193", receiving_agency_code=CENTRE),
                          headers=officer(make_token, agency=CENTRE))
    assert r.status_code == 201 and r.json()["competent_agency"] == WARD, r.text


async def test_another_province_is_a_422_that_says_where_to_file(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    before = await counts(db_conn)
    for procedure_code in ("1.001193", "2.000823", "1.004194"):  # commune, province, police: all refused
        r = await client.post("/v1/dossiers", json=await submission(client, procedure_code, ward="26740"),
                              headers=officer(make_token))
        problem = assert_problem(r, 422, "validation_error")
        [error] = problem["errors"]
        assert (error["field"], error["type"]) == ("applicant.address.ward_code", "outside_province")
        for said in ("Thành phố Hồ Chí Minh", "Thành phố Hà Nội", "Điều 14", "Decree 118/2025 Art. 14",
                     "Cổng Dịch vụ công quốc gia", "one-stop office of Thành phố Hồ Chí Minh"):
            assert said in error["message"] and said in problem["detail"], said
    # an HCMC office does not receive a Hà Nội applicant either (online or at the counter)
    admin = auth(make_token("admin", subject="quantri"), **{"Idempotency-Key": "cross-1"})
    r = await client.post("/v1/dossiers", json=await submission(client, "1.001193", receiving_agency_code=SAI_GON),
                          headers=admin)
    assert [e["type"] for e in assert_problem(r, 422, "validation_error")["errors"]] == ["outside_province"]
    assert await counts(db_conn) == before


async def test_no_agency_of_the_needed_body_is_a_422(client: httpx.AsyncClient, make_token: Any, db_conn: Tx) -> None:
    before = await counts(db_conn)
    # Phường Ngọc Hà (00008) is in Hà Nội, but the catalog has neither its People's Committee nor its police
    for procedure_code, body_text in (("1.001193", "Ủy ban nhân dân cấp xã"), ("1.004194", "Công an cấp xã")):
        r = await client.post("/v1/dossiers", json=await submission(client, procedure_code, ward="00008"),
                              headers=officer(make_token))
        [error] = assert_problem(r, 422, "validation_error")["errors"]
        assert error["type"] == "no_competent_agency"
        assert body_text in error["message"] and "Ngọc Hà" in error["message"], error
    assert await counts(db_conn) == before


async def test_catalog_lists_province_procedures_with_codes_limits_fees_and_deciding_bodies(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/v1/procedures", params={"level": "province", "limit": 200})
    assert r.status_code == 200, r.text
    procs = {p["code"]: p for p in r.json()}
    assert len(procs) >= 10 and all(p["level"] == "province" for p in procs.values())
    expected = {  # legal-2025.md §3.3
        "1.004122": (22, "nong_nghiep_moi_truong"), "2.001738": (15, "nong_nghiep_moi_truong"),
        "1.004253": (8, "nong_nghiep_moi_truong"), "1.012498": (43, "nong_nghiep_moi_truong"),
        "1.004232": (45, "nong_nghiep_moi_truong"), "1.013401": (14, "cong_thuong"), "1.013411": (14, "cong_thuong"),
        "1.013416": (14, "cong_thuong"), "1.013418": (10, "cong_thuong"), "2.000823": (30, "tu_phap"),
        "1.014445": (15, "khoa_hoc_cong_nghe"), "1.012507": (15, "tai_chinh"),
    }
    for code, (days, department) in expected.items():
        p = procs[code]
        assert p["time_limit"]["value"] == days and p["time_limit"]["unit"] == "working_days", code
        assert (p["deciding_body"], p["department"]) == ("province_department", department), code
        assert p["notes"], code  # whose publication decision it comes from
    assert procs["1.004253"]["fee"] == {"kind": "free"}
    assert procs["1.004122"]["fee"]["amount"] == 0 and "HĐND" in procs["1.004122"]["fee"]["note"]
    assert "100.000đ" in procs["1.012507"]["fee"]["note"] and procs["1.012507"]["deciding_body_name"] == "Sở Tài chính"
    chair = procs["1.001122"]
    assert (chair["deciding_body"], chair["department"]) == ("province_chair", "tu_phap")
    assert chair["deciding_body_name"] == "Chủ tịch Ủy ban nhân dân cấp tỉnh (qua Sở Tư pháp)"
    residence = (await client.get("/v1/procedures/1.004222")).json()
    assert (residence["level"], residence["deciding_body"], residence["deciding_body_name"]) == (
        "commune", "commune_police", "Công an cấp xã")
    assert (await client.get("/v1/procedures/1.001193")).json()["deciding_body"] == "commune_people_committee"
    police = (await client.get("/v1/agencies", params={"body_type": "commune_police"})).json()
    assert {a["code"] for a in police} == {POLICE_BA_DINH, POLICE_HOAN_KIEM}
    departments = (await client.get("/v1/agencies", params={"body_type": "province_department"})).json()
    assert {a["department"] for a in departments} >= {"tu_phap", "xay_dung", "nong_nghiep_moi_truong",
                                                      "cong_thuong", "khoa_hoc_cong_nghe", "tai_chinh"}


async def test_receipt_names_the_receiving_and_the_competent_agency(
    client: httpx.AsyncClient, make_token: Any,
) -> None:
    code = (await client.post("/v1/dossiers", json=await submission(client, "2.000823"),
                              headers=officer(make_token))).json()["code"]
    r = await client.get(f"/v1/dossiers/{code}/receipt", headers=officer(make_token))
    assert r.status_code == 200
    text = " ".join("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages).split())
    assert "Cơ quan tiếp nhận: UBND phường Ba Đình" in text, text
    assert "Cơ quan có thẩm quyền giải quyết: Sở Tư pháp thành phố Hà Nội" in text, text


async def test_a_procedure_version_names_a_deciding_body_of_its_level(
    client: httpx.AsyncClient, make_token: Any,
) -> None:
    admin = auth(make_token("admin", subject="quantri"))
    v = {"code": "X.PROV.1", "effective_from": "2099-01-01", "name": "Thủ tục thử cấp tỉnh", "field_code": "GDTP",
         "level": "province", "time_limit": {"value": 5, "unit": "working_days"}, "fee": {"kind": "free"},
         "documents": [], "channels": ["counter"], "result_delivery": ["counter"]}
    assert_problem(await client.post("/v1/admin/procedures", json=v, headers=admin), 422, "validation_error")
    assert_problem(await client.post("/v1/admin/procedures", json={**v, "deciding_body": "commune_police"},
                                     headers=admin), 422, "validation_error")
    assert_problem(await client.post("/v1/admin/procedures", json={**v, "deciding_body": "province_department"},
                                     headers=admin), 422, "validation_error")
    r = await client.post("/v1/admin/procedures", json={**v, "deciding_body": "province_department",
                                                         "department": "tu_phap"}, headers=admin)
    assert r.status_code == 201, r.text
    assert (r.json()["deciding_body"], r.json()["department"]) == ("province_department", "tu_phap")


async def test_the_due_date_follows_the_deciding_bodys_working_days(
    client: httpx.AsyncClient, make_token: Any,
) -> None:
    """Received at the ward, decided by Sở NN&MT: a day the department is closed moves the due date (the
    workflow counts on the deciding body's calendar; the receipt must say the same date)."""
    environment = "000.00.09.H29"  # Sở Nông nghiệp và Môi trường thành phố Hà Nội
    params = {"procedure_code": "1.004253", "agency_code": WARD}
    due_day = (await client.get("/v1/calendar/due", params=params)).json()["due_at"][:10]
    admin = auth(make_token("admin", subject="quantri"))
    r = await client.post("/v1/admin/calendar/overrides", json={
        "agency_code": environment, "day": due_day, "kind": "day_off", "note": "Sở nghỉ"}, headers=admin)
    assert r.status_code == 201, r.text
    r = await client.post("/v1/dossiers", json=await submission(client, "1.004253"), headers=officer(make_token))
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["competent_agency"] == environment
    at = {"procedure_code": "1.004253", "received_at": d["received_at"]}
    at_department = (await client.get("/v1/calendar/due", params={**at, "agency_code": environment})).json()
    at_ward = (await client.get("/v1/calendar/due", params={**at, "agency_code": WARD})).json()
    assert d["due_at"] == at_department["due_at"] != at_ward["due_at"]
