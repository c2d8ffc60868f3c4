"""The authorization matrix (tests/security/authz_matrix.yaml) walked against the whole stack.

Every operation of the gateway's merged /openapi.json is called once per identity (12 identities:
no token, two citizens, officers of two agencies, a supervisor, an admin, kiosks of two offices, two
postal partners, gov_system) through the gateway, with path parameters naming resources owned by the
first citizen / the ward agency / office PBD / partner VNPOST. The answer's class (see the table's
header: A allowed, N not found, F forbidden, U unauthenticated) must be the table's; an operation
without a row, or a row without an operation, fails too. The differences are printed as a list.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]
from sqlalchemy.dialects.postgresql import insert

from gateway.models import clients
from gateway.passwords import hash_secret
from scripts.demo_data import PROVINCE_AGENCY, WARD_AGENCY
from scripts.stack import Stack
from services.postal_tracking.models import partners
from services.queue_ticket.seed import CATEGORIES, COUNTERS, OFFICES
from shared.db import Database
from shared.settings import Settings

pytestmark = pytest.mark.e2e

TABLE = Path(__file__).with_name("authz_matrix.yaml")
METHODS = ("get", "post", "put", "patch", "delete")
# 4xx answers that judge the request's content or state: the caller got past authorization.
PAST_AUTHORIZATION = {400, 409, 412, 413, 415, 422, 428}
CLASS_OF = {401: "U", 403: "F", 404: "N"}

CITIZEN_ID, CITIZEN2_ID = "001090012345", "079195001234"
SECOND_PARTNER, SECOND_PARTNER_CLIENT, SECOND_PARTNER_SECRET = "VTPOST", "vtpost", "authz-matrix-vtpost-secret"
PBD = next(o for o in OFFICES if o["code"] == "PBD")
PBD_HT = next(c for c in CATEGORIES if c["office_code"] == "PBD" and c["code"] == "HT")
PBD_COUNTER = next(k for k in COUNTERS if k["office_code"] == "PBD" and k["number"] == 3)
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@dataclass(frozen=True)
class Identity:
    name: str
    role: str
    login: tuple[str, str, str] | None = None  # (grant, username or client_id, password or secret)
    agency_code: str | None = None


IDENTITIES = [
    Identity("anon", "anon"),
    Identity("cit", "citizen", ("password", "congdan", "demo-citizen")),
    Identity("cit2", "citizen", ("password", "congdan2", "demo-citizen")),
    Identity("off", "officer", ("password", "canbo.phuong", "demo-officer"), WARD_AGENCY),
    Identity("off2", "officer", ("password", "canbo.so", "demo-officer"), PROVINCE_AGENCY),
    Identity("sup", "supervisor", ("password", "lanhdao.phuong", "demo-supervisor"), WARD_AGENCY),
    Identity("adm", "admin", ("password", "quantri", "demo-admin")),
    Identity("ksk", "kiosk", ("client_credentials", "kiosk-pbd", "demo-kiosk-secret"), WARD_AGENCY),
    Identity("ksk2", "kiosk", ("client_credentials", "kiosk-stp", "demo-kiosk-secret"), PROVINCE_AGENCY),
    Identity("pst", "postal_partner", ("client_credentials", "vnpost", "demo-vnpost-secret")),
    Identity("pst2", "postal_partner", ("client_credentials", SECOND_PARTNER_CLIENT, SECOND_PARTNER_SECRET)),
    Identity("gov", "gov_system", ("client_credentials", "dvcqg", "demo-dvcqg-secret")),
]


def token_form(who: Identity) -> dict[str, str]:
    assert who.login is not None
    grant, user, secret = who.login
    if grant == "password":
        return {"grant_type": grant, "username": user, "password": secret}
    return {"grant_type": grant, "client_id": user, "client_secret": secret}


# --- the table ---------------------------------------------------------------------------------------


def load_table() -> tuple[list[str], dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    raw = yaml.safe_load(TABLE.read_text(encoding="utf-8"))
    columns: list[str] = raw["columns"]
    assert columns == [i.name for i in IDENTITIES], "the table's columns are the test's identities, in order"

    def rows(section: dict[str, str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for op, cells in section.items():
            values = str(cells).split()
            assert len(values) == len(columns) and set(values) <= {"A", "N", "F", "U"}, f"row {op!r}: {cells!r}"
            out[op] = dict(zip(columns, values, strict=True))
        return out

    return columns, rows(raw["operations"]), rows(raw.get("outside_openapi") or {})


def test_table_is_well_formed() -> None:
    """Runs without the stack: every row has one known class per identity."""
    _columns, operations, outside = load_table()
    assert len(operations) > 50 and not set(operations) & set(outside)
    for op in [*operations, *outside]:
        method, _, path = op.partition(" ")
        assert method in {m.upper() for m in METHODS} and path.startswith("/"), op


def classify(status: int) -> str:
    if 200 <= status < 400 or status in PAST_AUTHORIZATION:
        return "A"
    return CLASS_OF.get(status, f"!{status}")


# --- the world the walk points at ----------------------------------------------------------------------


@dataclass
class World:
    tokens: dict[str, str] = field(default_factory=dict)
    dossier: str = ""           # received online from `cit` by the ward, result by post, file attached
    postal_dossier: str = ""    # received by post through VNPOST for `cit` by the ward
    file_id: str = ""
    record_id: int = 0
    shipment_id: str = ""
    handover_id: str = ""
    ticket_id: int = 0
    counter_id: int = 0
    booking_code: str = ""
    slot_start: str = ""
    override_id: int = 0
    transfer_id: int = 0
    spare_day: str = ""

    def headers(self, who: Identity) -> dict[str, str]:
        token = self.tokens.get(who.name)
        return {"Authorization": f"Bearer {token}"} if token else {}


def applicant(id_number: str = CITIZEN_ID) -> dict[str, Any]:
    born = "1990-05-12" if id_number == CITIZEN_ID else "1995-01-01"
    name = "Nguyễn Văn An" if id_number == CITIZEN_ID else "Trần Thị Bình"
    return {"full_name": name, "id_number": id_number, "date_of_birth": born, "phone": "0912345678",
            "address": {"line": "12 phố Kim Mã", "ward_code": "00004"}}


def dossier_body(channel: str, id_number: str = CITIZEN_ID, file_ids: list[str] | None = None) -> dict[str, Any]:
    return {
        "channel": channel, "procedure_code": "1.004873", "receiving_agency_code": WARD_AGENCY,
        "applicant": applicant(id_number),
        "documents": [{"name": "Tờ khai theo mẫu", "original": 1, "file_ids": file_ids or []}],
        "result_delivery": "postal",
        "delivery_address": {"line": "12 phố Kim Mã", "ward_code": "00004", "recipient_name": "Nguyễn Văn An",
                             "phone": "0912345678"},
    }


CITIZEN_ADDRESS = {"name": "Nguyễn Văn An", "phone": "0912345678", "address_line": "12 phố Kim Mã",
                   "ward_code": "00004"}


def shipment_body(who: Identity, w: World) -> dict[str, Any]:
    if who.role == "postal_partner":
        return {"direction": "inbound", "dossier_code": w.postal_dossier, "agency_code": WARD_AGENCY,
                "sender": CITIZEN_ADDRESS}
    return {"direction": "outbound", "dossier_code": w.dossier, "agency_code": who.agency_code or WARD_AGENCY,
            "recipient": CITIZEN_ADDRESS}


def handover_body(w: World) -> dict[str, Any]:
    return {"kind": "to_postal", "agency_code": WARD_AGENCY, "shipment_ids": [w.shipment_id],
            "office_signer": {"name": "Lê Thị Hoa", "title": "Công chức Bộ phận Một cửa"},
            "postal_signer": {"name": "Trần Văn Bưu", "title": "Bưu tá Bưu cục Ba Đình"}}


def office_body(always_open: bool) -> dict[str, Any]:
    return {**{k: PBD[k] for k in ("name", "agency_code", "occupancy_cap")}, "always_open": always_open}


def submit_body(who: Identity, w: World) -> dict[str, Any]:
    if who.name == "cit":
        return dossier_body("online")
    if who.name == "cit2":
        return dossier_body("online", CITIZEN2_ID)
    if who.role in ("officer", "supervisor", "admin"):
        return dossier_body("counter")
    if who.role == "postal_partner":
        return dossier_body("postal")
    return dossier_body("online")


def today_vn() -> date:
    return (datetime.now(UTC) + timedelta(hours=7)).date()


# Per operation: what a call carries besides its path (a function of the identity and the world).
Extra = Callable[[Identity, World], dict[str, Any]]
SPECIAL: dict[str, Extra] = {
    # anon: a request the endpoint judges on its content (400 invalid_request)
    "POST /api/auth/v1/token": lambda who, w: {"data": token_form(who) if who.login else {"grant_type": "password"}},
    "GET /api/intake/v1/calendar/due": lambda who, w: {"params": {"procedure_code": "1.004873",
                                                                   "agency_code": WARD_AGENCY}},
    "POST /api/intake/v1/dossiers": lambda who, w: {"json": submit_body(who, w)},
    "POST /api/intake/v1/dossiers/{code}/supplements": lambda who, w: {"json": {
        "documents": [{"name": "Bản sao Giấy chứng sinh", "original": 1}], "note": "bổ sung"}},
    "POST /api/intake/v1/counter-records": lambda who, w: {"json": {
        "kind": "refusal", "procedure_code": "1.004873", "receiving_agency_code": WARD_AGENCY,
        "applicant": {"full_name": "Nguyễn Văn An"}, "reason": "Không thuộc thẩm quyền"}},
    "POST /api/intake/v1/files": lambda who, w: {"files": {"file": ("to-khai.pdf", PDF, "application/pdf")}},
    # an unknown field: refused with 422 after the role gate, so nothing is written
    "POST /api/intake/v1/admin/procedures": lambda who, w: {"json": {
        "code": "9.999999", "effective_from": (today_vn() + timedelta(days=30)).isoformat(), "name": "Thủ tục thử",
        "field_code": "ZZZ-UNKNOWN", "level": "commune", "time_limit": {"value": 1, "unit": "working_days"},
        "fee": {"kind": "fixed", "amount": 0}, "documents": [{"name": "Tờ khai"}], "channels": ["counter"],
        "result_delivery": ["counter"]}},
    "POST /api/intake/v1/admin/calendar/overrides": lambda who, w: {"json": {
        "agency_code": WARD_AGENCY, "day": w.spare_day, "kind": "day_off", "note": "authz matrix"}},
    # the ward's head as seeded: an admin's call changes nothing the other tests read
    "PUT /api/intake/v1/admin/agencies/{agency_code}/head": lambda who, w: {"json": {
        "head_name": "Hoàng Văn Dũng", "head_title": "Chủ tịch"}},
    # a stale If-Match: the version check comes after the reader and agency checks, so nothing changes
    "POST /api/workflow/v1/dossiers/{code}/actions": lambda who, w: {
        "json": {"action": "start"}, "headers": {"If-Match": '"999999"'}},
    "GET /api/workflow/v1/public/dossiers/{code}": lambda who, w: {"params": {"phone_last4": "5678"}},
    "POST /api/workflow/v1/dossiers/{code}/rating": lambda who, w: {"json": {"score": 5}},
    "POST /api/workflow/v1/transfers/{transfer_id}/callback": lambda who, w: {"json": {"decision": "accepted"}},
    "GET /api/workflow/v1/tracking-book": lambda who, w: {"params": {
        "from": (today_vn() - timedelta(days=7)).isoformat(), "to": today_vn().isoformat()}},
    "GET /api/workflow/v1/stats": lambda who, w: {"params": {
        "from": (today_vn() - timedelta(days=7)).isoformat(), "to": today_vn().isoformat()}},
    "POST /api/postal/v1/shipments": lambda who, w: {"json": shipment_body(who, w)},
    "POST /api/postal/v1/partners/{partner_code}/events": lambda who, w: {"json": {"events": [{
        "tracking_number": "HC000000000VN", "status": "delivered",
        "occurred_at": datetime.now(UTC).isoformat()}]}},
    "POST /api/postal/v1/handovers": lambda who, w: {"json": handover_body(w)},
    "POST /api/queue/v1/tickets": lambda who, w: {"json": {"office_code": "PBD", "category_code": "HT"}},
    "POST /api/queue/v1/counters/{counter_id}/tickets/{ticket_id}/transfer": lambda who, w: {
        "json": {"category_code": "HT"}},
    "POST /api/queue/v1/tickets/{ticket_id}/transfer": lambda who, w: {"json": {"category_code": "HT"}},
    "POST /api/queue/v1/counters/{counter_id}/tickets/{ticket_id}/finish": lambda who, w: {"json": {}},
    "POST /api/queue/v1/tickets/{ticket_id}/finish": lambda who, w: {"json": {}},
    "PUT /api/queue/v1/offices/{office_code}": lambda who, w: {"json": office_body(True)},
    "PUT /api/queue/v1/offices/{office_code}/categories/{category_code}": lambda who, w: {"json": {
        k: PBD_HT[k] for k in ("prefix", "name", "procedure_codes", "slot_minutes", "slot_capacity",
                               "default_service_seconds", "position")}},
    "PUT /api/queue/v1/offices/{office_code}/counters/{number}": lambda who, w: {"json": {
        "name": PBD_COUNTER["name"], "category_codes": PBD_COUNTER["category_codes"], "active": True}},
    "GET /api/queue/v1/offices/{office_code}/slots": lambda who, w: {"params": {
        "category_code": "HT", "date": (today_vn() + timedelta(days=1)).isoformat()}},
    "POST /api/queue/v1/appointments": lambda who, w: {"json": {
        "office_code": "PBD", "category_code": "HT", "slot_start": w.slot_start}},
}


def no_extra(_who: Identity, _w: World) -> dict[str, Any]:
    return {}


def path_values(op: str, who: Identity, w: World, turn: int) -> dict[str, str]:
    """The path parameters of one call (the public look-up spreads over two dossiers: it is rate limited
    per code)."""
    code = w.dossier
    if "/public/" in op:
        code = (w.dossier, w.postal_dossier)[turn % 2]
    if "/admin/procedures/" in op:
        code = "1.004873"
    return {
        "code": code, "procedure_code": "1.004873", "agency_code": WARD_AGENCY, "record_id": str(w.record_id),
        "file_id": w.file_id, "override_id": str(w.override_id), "job_id": "2000000000",
        "transfer_id": str(w.transfer_id), "shipment_id": w.shipment_id, "partner_code": "VNPOST",
        "handover_id": w.handover_id, "ticket_id": str(w.ticket_id), "counter_id": str(w.counter_id),
        "action": "recall", "office_code": "PBD", "category_code": "HT", "number": "3",
        "booking_code": w.booking_code,
    }


# --- building the world through the gateway, as its users would --------------------------------------------


async def add_second_partner(database_url: str) -> None:
    """A second postal partner and its API client, the way the demo seed adds the first one."""
    db = Database(Settings(database_url=database_url, environment="test"), application_name="authz-matrix")
    try:
        async with db.transaction() as tx:
            await tx.execute(insert(partners).values(
                code=SECOND_PARTNER, name="Tổng công ty Bưu chính Viettel", client_id=SECOND_PARTNER_CLIENT,
                tracking_api="none", tracking_prefix="VT").on_conflict_do_nothing())
            await tx.execute(insert(clients).values(
                client_id=SECOND_PARTNER_CLIENT, secret_hash=hash_secret(SECOND_PARTNER_SECRET),
                role="postal_partner", name="Viettel Post", partner_code=SECOND_PARTNER).on_conflict_do_nothing())
    finally:
        await db.dispose()


def ok(r: httpx.Response, *statuses: int) -> Any:
    assert r.status_code in (statuses or (200, 201)), f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json() if r.content and r.headers.get("content-type", "").endswith("json") else None


async def build_world(c: httpx.AsyncClient) -> World:
    w = World()
    for who in IDENTITIES:
        if who.login:
            w.tokens[who.name] = ok(await c.post("/api/auth/v1/token", data=token_form(who)))["access_token"]
    by = {i.name: i for i in IDENTITIES}

    def h(name: str) -> dict[str, str]:
        return {**w.headers(by[name]), "Idempotency-Key": uuid.uuid4().hex}

    ok(await c.put("/api/queue/v1/offices/PBD", headers=h("adm"), json=office_body(True)))
    w.file_id = ok(await c.post("/api/intake/v1/files", headers=h("cit"),
                                files={"file": ("to-khai.pdf", PDF, "application/pdf")}), 200, 201)["id"]
    w.dossier = ok(await c.post("/api/intake/v1/dossiers", headers=h("cit"),
                                json=dossier_body("online", file_ids=[w.file_id])))["code"]
    w.postal_dossier = ok(await c.post("/api/intake/v1/dossiers", headers=h("pst"),
                                       json=dossier_body("postal")))["code"]
    w.record_id = ok(await c.post("/api/intake/v1/counter-records", headers=h("off"), json=SPECIAL[
        "POST /api/intake/v1/counter-records"](by["off"], w)["json"]))["id"]
    w.ticket_id = ok(await c.post("/api/queue/v1/tickets", headers=h("cit"),
                                  json={"office_code": "PBD", "category_code": "HT"}))["id"]
    counters = ok(await c.get("/api/queue/v1/offices/PBD/counters", headers=h("off")))
    w.counter_id = next(k["id"] for k in counters if k["number"] == PBD_COUNTER["number"])
    for days in range(1, 15):
        day = (today_vn() + timedelta(days=days)).isoformat()
        slots = ok(await c.get("/api/queue/v1/offices/PBD/slots", params={"category_code": "HT", "date": day}))
        free = [s for s in slots if s["free"] > 0]
        if free:
            w.slot_start = free[0]["start_at"]
            break
    w.booking_code = ok(await c.post("/api/queue/v1/appointments", headers=h("cit"), json={
        "office_code": "PBD", "category_code": "HT", "slot_start": w.slot_start}))["booking_code"]
    later = [today_vn() + timedelta(days=n) for n in range(60, 120)]
    sundays = [d for d in later if d.weekday() == 6]
    w.spare_day = sundays[0].isoformat()
    w.override_id = ok(await c.post("/api/intake/v1/admin/calendar/overrides", headers=h("adm"), json={
        "agency_code": WARD_AGENCY, "day": sundays[1].isoformat(), "kind": "day_off", "note": "authz matrix"}))["id"]
    # the worker hands both dossiers to the workflow; shipments are for dossiers that exist there
    deadline = time.monotonic() + 60
    for code in (w.dossier, w.postal_dossier):
        while (await c.get(f"/api/workflow/v1/dossiers/{code}", headers=h("adm"))).status_code != 200:
            assert time.monotonic() < deadline, f"dossier {code} never reached the workflow"
            await asyncio.sleep(0.2)
    # the ward issues an apology (form 04) for the dossier and transfers it to an outside system (liên thông)
    actions = f"/api/workflow/v1/dossiers/{w.dossier}/actions"
    d = ok(await c.get(f"/api/workflow/v1/dossiers/{w.dossier}", headers=h("off")))
    # an online dossier: its clock starts when the one-stop officer accepts it
    d = ok(await c.post(actions, headers={**h("off"), "If-Match": f'"{d["version"]}"'}, json={"action": "accept"}))
    new_due = (datetime.fromisoformat(d["due_at"]) + timedelta(days=3)).isoformat()
    d = ok(await c.post(actions, headers={**h("off"), "If-Match": f'"{d["version"]}"'}, json={
        "action": "issue_apology", "reason": "Cần xác minh thêm", "new_due_at": new_due}))
    d = ok(await c.post(actions, headers={**h("off"), "If-Match": f'"{d["version"]}"'}, json={
        "action": "transfer", "external_system": "BHXH", "note": "liên thông"}), 202)
    w.transfer_id = int(d["pending_transfer"]["id"])
    w.shipment_id = ok(await c.post("/api/postal/v1/shipments", headers=h("off"),
                                    json=shipment_body(by["off"], w)))["id"]
    w.handover_id = ok(await c.post("/api/postal/v1/handovers", headers=h("off"),
                                    json=handover_body(w)))["id"]
    return w


# --- the walk ----------------------------------------------------------------------------------------------


async def call(c: httpx.AsyncClient, op: str, who: Identity, w: World, turn: int) -> tuple[int, str]:
    """(status, problem code) of one call; a stream is closed as soon as its head arrived."""
    method, _, template = op.partition(" ")
    url = template.format(**path_values(op, who, w, turn))
    extra = SPECIAL.get(op, no_extra)(who, w)
    headers = {**w.headers(who), **extra.pop("headers", {})}
    if method == "POST":
        headers["Idempotency-Key"] = uuid.uuid4().hex
    request = c.build_request(method, url, headers=headers, **extra)
    resp = await c.send(request, stream=True)
    try:
        if resp.headers.get("content-type", "").startswith("text/event-stream"):
            return resp.status_code, ""
        await resp.aread()
    finally:
        await resp.aclose()
    problem = ""
    if resp.headers.get("content-type", "").startswith("application/problem+json"):
        try:
            problem = str(resp.json().get("code", ""))
        except ValueError:
            problem = "?"
    return resp.status_code, problem


async def test_every_operation_for_every_identity_matches_the_table(stack: Stack, database_url: str) -> None:
    started = time.perf_counter()
    _columns, table, outside = load_table()
    await add_second_partner(database_url)
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30, limits=limits) as c:
        spec = ok(await c.get("/openapi.json"))
        operations = {f"{m.upper()} {p}" for p, item in spec["paths"].items() for m in item if m in METHODS}
        missing_rows = sorted(operations - set(table))
        stale_rows = sorted(set(table) - operations)

        world = await build_world(c)
        setup_seconds = time.perf_counter() - started
        gate = asyncio.Semaphore(6)
        walk = [(op, who, turn) for op in sorted((operations & set(table)) | set(outside))
                for turn, who in enumerate(IDENTITIES)]

        async def one(op: str, who: Identity, turn: int) -> tuple[str, str, int, str]:
            async with gate:
                try:
                    status, problem = await call(c, op, who, world, turn)
                except httpx.HTTPError as exc:
                    return op, who.name, 0, type(exc).__name__
            return op, who.name, status, problem

        try:
            # reads side by side; writes one after another (several touch the same shipment, handover, ticket
            # or counter: side by side they would measure lock waits, not authorization)
            results = list(await asyncio.gather(*(one(*call_) for call_ in walk if call_[0].startswith("GET "))))
            for call_ in walk:
                if not call_[0].startswith("GET "):
                    results.append(await one(*call_))
        finally:
            await c.post(f"/api/queue/v1/counters/{world.counter_id}/sign-out", headers=world.headers(IDENTITIES[6]))
            await c.put("/api/queue/v1/offices/PBD", headers=world.headers(IDENTITIES[6]), json=office_body(False))

    rows = {**table, **outside}
    differences = []
    for op, name, status, problem in results:
        got = classify(status) if status else "!no answer"
        if got != rows[op][name]:
            differences.append(f"  {op:<72} {name:<5} expected {rows[op][name]}  got {got:<4} "
                               f"({status or '-'} {problem})")
    elapsed = time.perf_counter() - started
    report = [f"authz matrix: {len(walk)} calls over {len(operations & set(table)) + len(outside)} operations x "
              f"{len(IDENTITIES)} identities in {elapsed:.1f}s (setup {setup_seconds:.1f}s)"]
    if missing_rows:
        report.append("operations in the OpenAPI without a row:\n" + "\n".join(f"  {op}" for op in missing_rows))
    if stale_rows:
        report.append("rows without an operation in the OpenAPI:\n" + "\n".join(f"  {op}" for op in stale_rows))
    if differences:
        report.append(f"{len(differences)} differences (operation, identity, expected, got):\n"
                      + "\n".join(differences))
    print("\n".join(report))
    if dump := os.environ.get("AUTHZ_MATRIX_DUMP"):  # every answer, for reading the table against them
        Path(dump).write_text("".join(f"{op}\t{name}\t{status}\t{problem}\n" for op, name, status, problem
                                      in sorted(results)), encoding="utf-8")
    assert not (missing_rows or stale_rows or differences), "\n".join(report)
