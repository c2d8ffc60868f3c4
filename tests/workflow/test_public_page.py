"""The public tracking page: the QR on form 01 opens it; it asks for the last four phone digits and shows the
status, due date and next step from the public JSON API (tested through the gateway and in Chromium)."""

from __future__ import annotations

import asyncio
import io
import random
import re
import shutil
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
import qrcode
from fastapi import FastAPI
from PIL import Image
from pypdf import PdfReader

from scripts.stack import Stack
from services.dossier_workflow.app import create_app as create_workflow_app
from services.intake.app import create_app as create_intake_app
from services.intake.receipt import tracking_url
from shared.pdf import format_vn_datetime
from shared.settings import Settings
from tests.conftest import app_client_factory, login
from tests.intake.helpers import body, officer

client = app_client_factory(create_intake_app)  # the intake service in-process (renders form 01)

PHONE = "0987654321"
CODE = "000.00.21.H29-260305-0001"


def qr_matches(pdf: bytes, url: str) -> bool:
    """Reads the QR modules back from the image embedded in the PDF and compares them with `url`'s QR.

    No QR decoder is installed here, so the matrix `url` encodes to (the same library and settings as
    shared/pdf.py) is sampled at each module's centre in the image the PDF really holds."""
    images = [img for page in PdfReader(io.BytesIO(pdf)).pages for img in page.images]
    assert len(images) == 1, f"expected one QR image, found {len(images)}"
    embedded = images[0].image
    assert embedded is not None
    picture: Image.Image = embedded.convert("L")
    code = qrcode.QRCode(border=1)
    code.add_data(url)
    code.make(fit=True)
    matrix = code.get_matrix()
    n = len(matrix)
    box = picture.width / n
    if abs(picture.height / n - box) > 1e-6:
        return False
    for row, line in enumerate(matrix):
        for col, dark in enumerate(line):
            pixel = picture.getpixel((int((col + 0.5) * box), int((row + 0.5) * box)))
            assert isinstance(pixel, int)
            if (pixel < 128) != dark:
                return False
    return True


async def test_receipt_qr_opens_the_tracking_page_not_the_json_api(
    client: httpx.AsyncClient, make_token: Any, settings: Settings,
) -> None:
    r = await client.post("/v1/dossiers", json=body(), headers=officer(make_token))
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    r = await client.get(f"/v1/dossiers/{code}/receipt", headers=officer(make_token))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    page = f"{settings.public_base_url.rstrip('/')}/api/workflow/v1/public/tra-cuu/{code}"
    assert tracking_url(settings.public_base_url, code) == page
    assert qr_matches(r.content, page)
    # the reading can fail: the old target (the JSON API, 422 without phone_last4) is not what the QR holds
    assert not qr_matches(r.content, f"{settings.public_base_url}/api/workflow/v1/public/dossiers/{code}")


async def test_page_and_its_assets_are_served_without_a_token(
    committed_client_factory: Callable[[Callable[[Settings], FastAPI]], httpx.AsyncClient],
) -> None:
    async with committed_client_factory(create_workflow_app) as c:
        r = await c.get(f"/v1/public/tra-cuu/{CODE}")
        assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
        assert '<html lang="vi">' in r.text and "4 số cuối" in r.text and "<script src=" in r.text
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
        assert "<script>" not in r.text and re.search(r"\son[a-z]+=", r.text) is None  # no inline code
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
        for name, media in (("tra-cuu.js", "text/javascript"), ("tra-cuu.css", "text/css")):
            a = await c.get(f"/v1/public/assets/{name}")
            assert a.status_code == 200 and a.headers["content-type"].startswith(media), name
        # hostile input: a 404 or 422 problem, never a 500 or another file
        for path in ("/v1/public/assets/router.py", "/v1/public/assets/..%2Frouter.py",
                     "/v1/public/tra-cuu/%3Cscript%3E", "/v1/public/tra-cuu/" + "9" * 65):
            bad = await c.get(path)
            assert bad.status_code in (404, 422), (path, bad.status_code)
            assert bad.headers["content-type"].startswith("application/problem+json"), path


# --- through the gateway, with real processes -------------------------------------------------------------


async def submitted(stack: Stack) -> tuple[str, dict[str, str], bytes]:
    """A counter dossier submitted through the gateway and handed to workflow; its code and receipt."""
    token = await login(stack.gateway_url, "canbo.phuong", "demo-officer")
    staff = {"Authorization": f"Bearer {token}"}
    applicant = {**body()["applicant"], "phone": PHONE}
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as c:
        r = await c.post("/api/intake/v1/dossiers", json=body(applicant=applicant),
                         headers={**staff, "Idempotency-Key": uuid.uuid4().hex})
        assert r.status_code == 201, r.text
        code: str = r.json()["code"]
        for _ in range(600):  # the worker hands it over; generous on a loaded machine
            if (await c.get(f"/api/workflow/v1/dossiers/{code}", headers=staff)).status_code == 200:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{code} never reached workflow")
        receipt = await c.get(f"/api/intake/v1/dossiers/{code}/receipt", headers=staff)
        assert receipt.status_code == 200, receipt.text
    return code, staff, receipt.content


def stranger() -> dict[str, str]:
    """A caller address of its own (the stack trusts X-Forwarded-For from 127.0.0.1), so this test's look-ups
    neither use up nor depend on the public rate limit other tests share."""
    return {"X-Forwarded-For": f"198.51.100.{random.randint(1, 254)}"}


@pytest.mark.e2e
async def test_page_is_public_through_the_gateway_and_the_receipt_points_at_it(stack: Stack) -> None:
    code, _, receipt = await submitted(stack)
    page_url = tracking_url(stack.env()["PUBLIC_BASE_URL"], code)
    assert qr_matches(receipt, page_url)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as c:
        r = await c.get(f"/api/workflow/v1/public/tra-cuu/{code}")  # no token
        assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8", r.text
        assert "content-security-policy" in r.headers and "Tra cứu tình trạng hồ sơ" in r.text
        for name in ("tra-cuu.js", "tra-cuu.css"):
            assert (await c.get(f"/api/workflow/v1/public/assets/{name}")).status_code == 200


@pytest.mark.e2e
@pytest.mark.browser
async def test_tracking_page_in_chromium_wrong_digits_then_status_due_date_next_step(stack: Stack) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (make browser-deps)")
    from playwright.async_api import async_playwright

    code, _, receipt = await submitted(stack)
    # the page is opened at the very address the QR holds (PUBLIC_BASE_URL is the gateway here)
    page_url = tracking_url(stack.env()["PUBLIC_BASE_URL"], code)
    assert qr_matches(receipt, page_url)
    who = stranger()
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as c:
        r = await c.get(f"/api/workflow/v1/public/dossiers/{code}", params={"phone_last4": PHONE[-4:]},
                        headers={"X-Forwarded-For": "203.0.113.9"})
        assert r.status_code == 200, r.text
        expected = r.json()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, headless=True,
                                          args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            context = await browser.new_context(extra_http_headers=who, viewport={"width": 390, "height": 844},
                                                is_mobile=True, has_touch=True)
            page = await context.new_page()
            troubles: list[str] = []
            page.on("console", lambda m: troubles.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: troubles.append(str(e)))
            await page.goto(page_url)
            assert await page.locator("#code").inner_text() == code
            digits, error = page.locator("#phone-last4"), page.locator("#error")
            # wrong digits: a Vietnamese message, the form stays
            await digits.fill("0000" if PHONE[-4:] != "0000" else "1111")
            await page.locator("#submit").click()
            await error.filter(has_text="Không tìm thấy hồ sơ").wait_for(timeout=15_000)
            assert await page.locator("#result").is_hidden()
            # the right digits: status, due date and next step
            await digits.fill(PHONE[-4:])
            await page.locator("#submit").click()
            await page.locator("#result").wait_for(state="visible", timeout=15_000)
            assert await page.locator("#status").inner_text() == "Đã tiếp nhận"
            assert expected["status_text"].startswith("Đã tiếp nhận")
            due = format_vn_datetime(datetime.fromisoformat(expected["due_at"]))
            assert (await page.locator("#due").inner_text()).startswith(due)
            next_text = await page.locator("#next").inner_text()
            assert next_text == (expected["next_step"] or "Cơ quan đang xử lý hồ sơ")
            assert await page.locator("#procedure").inner_text() == expected["procedure_name"]
            # guessing on: the rate limit answers 429 and the page says to try again later
            await page.locator("#again").click()
            for _ in range(15):
                await digits.fill("9999" if PHONE[-4:] != "9999" else "8888")
                await page.locator("#submit").click()
                await error.wait_for(state="visible", timeout=15_000)
                if "thử lại sau" in await error.inner_text():
                    break
            assert "Vui lòng thử lại sau 1 phút" in await error.inner_text()
            # the only console errors are the refused look-ups themselves: no CSP violation, no script error
            unexpected = [m for m in troubles if "status of 404" not in m and "status of 429" not in m]
            assert not unexpected, unexpected
        finally:
            await browser.close()
