"""A dossier's life through the gateway: intake submits, the worker hands it to workflow, officers act."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from scripts.stack import Stack
from tests.conftest import login

pytestmark = pytest.mark.e2e

BODY: dict[str, Any] = {
    "channel": "counter", "procedure_code": "1.004873", "receiving_agency_code": "000.00.21.H29",
    "applicant": {"full_name": "Lê Văn Bình", "id_number": "001090012345", "date_of_birth": "1990-05-12",
                  "phone": "0912345678", "address": {"line": "12 phố Kim Mã", "ward_code": "00004"}},
    "documents": [{"name": "Tờ khai theo mẫu"}],
}


async def wait_for(c: httpx.AsyncClient, path: str, headers: dict[str, str]) -> httpx.Response:
    for _ in range(100):
        r = await c.get(path, headers=headers)
        if r.status_code == 200:
            return r
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never appeared: {r.text}")


@pytest.mark.smoke
async def test_submitted_dossier_is_processed_through_the_gateway(stack: Stack) -> None:
    officer = {"Authorization": f"Bearer {await login(stack.gateway_url, 'canbo.phuong', 'demo-officer')}"}
    leader = {"Authorization": f"Bearer {await login(stack.gateway_url, 'lanhdao.phuong', 'demo-supervisor')}"}
    citizen = {"Authorization": f"Bearer {await login(stack.gateway_url, 'congdan', 'demo-citizen')}"}
    async with httpx.AsyncClient(base_url=stack.gateway_url) as c:
        r = await c.post("/api/intake/v1/dossiers", json=BODY, headers={**officer, "Idempotency-Key": uuid.uuid4().hex})
        assert r.status_code == 201, r.text
        code = r.json()["code"]
        r = await wait_for(c, f"/api/workflow/v1/dossiers/{code}", officer)
        assert r.headers["etag"] == '"1"' and r.json()["status"] == "received"
        path = f"/api/workflow/v1/dossiers/{code}/actions"
        r = await c.post(path, json={"action": "start"}, headers={**officer, "If-Match": '"1"'})
        assert r.status_code == 200 and r.headers["etag"] == '"2"'
        stale = await c.post(path, json={"action": "forward"}, headers={**officer, "If-Match": '"1"'})
        assert stale.status_code == 412 and stale.headers["content-type"].startswith("application/problem+json")
        r = await c.post(path, json={"action": "approve"}, headers={**leader, "If-Match": '"2"'})
        assert r.status_code == 200 and r.json()["status"] == "resolved"
        mine = await c.get(f"/api/workflow/v1/dossiers/{code}", headers=citizen)
        assert mine.status_code == 200 and mine.json()["outcome"] == "approved"
        public = await c.get(f"/api/workflow/v1/public/dossiers/{code}", params={"phone_last4": "5678"})
        assert public.status_code == 200 and public.json()["status"] == "resolved"
        slip = await c.get(f"/api/workflow/v1/dossiers/{code}/control-slip",
                           headers={**officer, "Accept": "application/pdf"})
        assert slip.status_code == 200 and slip.content.startswith(b"%PDF")
