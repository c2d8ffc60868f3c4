"""The partner simulator against the real stack: shipments through the gateway, a dossier's whole journey."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest

from scripts.stack import ROOT, Stack
from tests.conftest import login

pytestmark = pytest.mark.e2e
FINAL = {"delivered", "returned_to_sender"}


def simulate(stack: Stack, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "services.postal_tracking.simulator", "--gateway", stack.gateway_url, "--once",
         "--step-delay", "0.02", "--seed", "7", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def wait_until(c: httpx.AsyncClient, path: str, headers: dict[str, str], done: Any,
                     tries: int = 200) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(tries):
        r = await c.get(path, headers=headers)
        if r.status_code == 200:
            body = r.json()
            if done(body):
                return body
        await asyncio.sleep(0.15)
    raise AssertionError(f"{path} never got there: {body}")


DOSSIER = {
    "channel": "counter", "procedure_code": "1.004873", "receiving_agency_code": "000.00.21.H29",
    "applicant": {"full_name": "Lê Văn Bình", "id_number": "001090012345", "date_of_birth": "1990-05-12",
                  "phone": "0912345678", "address": {"line": "12 phố Kim Mã", "ward_code": "00004"}},
    "documents": [{"name": "Tờ khai theo mẫu"}], "result_delivery": "postal",
    "delivery_address": {"line": "5 phố Đội Cấn", "ward_code": "00004", "recipient_name": "Lê Văn Bình",
                         "phone": "0912345678"},
}


async def submitted(c: httpx.AsyncClient, officer: dict[str, str]) -> str:
    r = await c.post("/api/intake/v1/dossiers", json=DOSSIER, headers={**officer, "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 201, r.text
    code: str = r.json()["code"]
    return code


async def create_when_known(c: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    """Postal learns of a dossier from intake's job within about a second: 404 until then (the same key)."""
    headers = {**headers, "Idempotency-Key": uuid.uuid4().hex}
    for _ in range(200):
        r = await c.post("/api/postal/v1/shipments", json=body, headers=headers)
        if r.status_code != 404:
            return r
        await asyncio.sleep(0.1)
    return r


async def test_simulator_delivers_pending_shipments_through_the_gateway(stack: Stack) -> None:
    officer = {"Authorization": f"Bearer {await login(stack.gateway_url, 'canbo.phuong', 'demo-officer')}"}
    async with httpx.AsyncClient(base_url=stack.gateway_url) as c:
        ids = []
        for i in range(12):
            body = {"direction": "outbound" if i % 3 else "inbound",
                    "dossier_code": await submitted(c, officer), "agency_code": "000.00.21.H29",
                    ("recipient" if i % 3 else "sender"): {"name": "Nguyễn Văn An", "phone": "0912345678",
                                                           "address_line": "12 phố Kim Mã", "ward_code": "00004"}}
            r = await create_when_known(c, body, officer)
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        result = simulate(stack, "--duplicate-rate", "0.3", "--reorder-rate", "0.4", "--failure-rate", "0.4")
        assert result["shipments"] >= 12 and result["duplicates"] > 0 and result["refused"] == 0
        for sid in ids:
            s = (await c.get(f"/api/postal/v1/shipments/{sid}", headers=officer)).json()
            statuses = [e["status"] for e in s["timeline"]]
            assert s["status"] in FINAL and statuses[-1] == s["status"], s
            assert statuses[:3] == ["picked_up", "in_transit", "out_for_delivery"]
            event_ids = [e["event_id"] for e in s["timeline"]]
            assert len(event_ids) == len(set(event_ids))  # duplicates were stored once
            assert s["failed_attempts"] == statuses.count("failed_attempt")
        # the partner reads its own shipments; it cannot read with another partner's claim
        partner_tok = await partner_token(stack)
        r = await c.get(f"/api/postal/v1/shipments/{ids[0]}", headers={"Authorization": f"Bearer {partner_tok}"})
        assert r.status_code == 200
        # a forged delivery through the gateway is refused as problem+json
        r = await c.post("/api/postal/v1/partners/VNPOST/events", content=b'{"events": []}',
                         headers={"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"})
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")


async def partner_token(stack: Stack) -> str:
    from tests.conftest import client_token

    return await client_token(stack.gateway_url, "vnpost", "demo-vnpost-secret")


async def test_resolved_dossier_goes_out_by_post_and_comes_back_returned(stack: Stack) -> None:
    """dossier resolved → outbound shipment (job) → simulator delivers → dossier `returned` (job)."""
    officer = {"Authorization": f"Bearer {await login(stack.gateway_url, 'canbo.phuong', 'demo-officer')}"}
    leader = {"Authorization": f"Bearer {await login(stack.gateway_url, 'lanhdao.phuong', 'demo-supervisor')}"}
    dossier = DOSSIER
    async with httpx.AsyncClient(base_url=stack.gateway_url) as c:
        r = await c.post("/api/intake/v1/dossiers", json=dossier,
                         headers={**officer, "Idempotency-Key": uuid.uuid4().hex})
        assert r.status_code == 201, r.text
        code = r.json()["code"]
        path = f"/api/workflow/v1/dossiers/{code}"
        await wait_until(c, path, officer, lambda d: d["status"] == "received")
        r = await c.post(f"{path}/actions", json={"action": "start"}, headers={**officer, "If-Match": '"1"'})
        assert r.status_code == 200, r.text
        r = await c.post(f"{path}/actions", json={"action": "approve"}, headers={**leader, "If-Match": '"2"'})
        assert r.status_code == 200 and r.json()["status"] == "resolved", r.text
        shipments: dict[str, Any] = {}
        for _ in range(200):
            shipments = (await c.get("/api/postal/v1/shipments", params={"dossier_code": code},
                                     headers=officer)).json()
            if shipments["items"]:
                break
            await asyncio.sleep(0.15)
        assert [s["direction"] for s in shipments["items"]] == ["outbound"], shipments
        shipment = shipments["items"][0]
        assert shipment["recipient"]["address_line"] == "5 phố Đội Cấn" and shipment["status"] == "created"
        simulate(stack, "--failure-rate", "0", "--duplicate-rate", "0.5")
        s = (await c.get(f"/api/postal/v1/shipments/{shipment['id']}", headers=officer)).json()
        assert s["status"] == "delivered", s
        d = await wait_until(c, path, officer, lambda d: d["status"] == "returned")
        assert [h["action"] for h in d["timeline"]].count("return_result") == 1
