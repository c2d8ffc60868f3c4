"""Dossier codes by date and service type (issue 22 item 7): `<receiving agency>-YYMMDD-XXXX`, and from
25 January 2026 `<deciding body>-YYMMDD-AAXXXX` for nationally centralised services (Circular 04/2025)."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from services.intake import dossier_repository, submission
from services.intake.app import create_app
from services.intake.dossier_codes import code_format
from services.intake.dossier_repository import DEFAULT_PATTERN
from shared.calendar import VN_TZ
from shared.db import Tx
from tests.conftest import app_client_factory, auth
from tests.intake.helpers import WARD, body, officer

client = app_client_factory(create_app)

COPY_PROCEDURE = """
INSERT INTO core.procedures
SELECT (jsonb_populate_record(NULL::core.procedures, to_jsonb(p) || jsonb_build_object(
    'id', nextval(pg_get_serial_sequence('core.procedures', 'id')), 'code', $1::text))).*
FROM core.procedures p WHERE p.code = '1.001193'
"""


async def centralised_procedure(conn: Tx | asyncpg.Connection, owner_digits: str,
                                since: date | None = None) -> str:
    """A test-made copy of 1.001193 (birth registration) flagged as a nationally centralised service."""
    code = f"T.{uuid.uuid4().hex[:8]}"
    await conn.execute(COPY_PROCEDURE, code)
    if since is None:
        await conn.execute("INSERT INTO intake.centralised_services (procedure_code, owner_digits) VALUES ($1, $2)",
                           code, owner_digits)
    else:
        await conn.execute("INSERT INTO intake.centralised_services (procedure_code, owner_digits, since) "
                           "VALUES ($1, $2, $3)", code, owner_digits, since)
    return code


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The instant a submission takes as "now" (clock[0]; set it in the test): the router's call of
    `submission.submit` gets it in place of the real clock."""
    at: list[datetime] = [datetime.now(UTC)]
    real = submission.submit

    async def at_clock(tx: Tx, body: Any, who: Any, now: datetime, idempotency: Any) -> tuple[str, str]:
        return await real(tx, body, who, at[0], idempotency)

    monkeypatch.setattr(submission, "submit", at_clock)
    return at


async def submit(client: httpx.AsyncClient, make_token: Any, procedure_code: str) -> dict[str, Any]:
    r = await client.post("/v1/dossiers", json=body(procedure_code=procedure_code), headers=officer(make_token))
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


def test_the_format_follows_the_receipt_day_and_the_service_type() -> None:
    before, boundary = date(2026, 1, 24), date(2026, 1, 25)
    old = code_format(before, "R.1", "D.2", "01", None, DEFAULT_PATTERN)
    assert (old.counter_agency, old.series, old.prefix, old.suffix) == ("R.1", "", "R.1-260124-", "")
    new = code_format(boundary, "R.1", "D.2", "01", None, DEFAULT_PATTERN)
    assert (new.counter_agency, new.series, new.prefix, new.suffix) == ("D.2", "01", "D.2-260125-01", "")
    assert code_format(boundary, "R.1", "D.2", None, None, DEFAULT_PATTERN).prefix == "R.1-260125-"
    later = date(2026, 3, 1)  # a service centralised later keeps the old code until its day
    assert code_format(date(2026, 2, 28), "R.1", "D.2", "07", later, DEFAULT_PATTERN).series == ""
    assert code_format(later, "R.1", "D.2", "07", later, DEFAULT_PATTERN).prefix == "D.2-260301-07"


async def test_centralised_service_changes_format_at_midnight_of_25_january_2026(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, clock: list[datetime],
) -> None:
    central = await centralised_procedure(db_conn, "01")
    clock[0] = datetime(2026, 1, 24, 16, 59, 59, tzinfo=UTC)  # 23:59:59 on 24/1 in Viet Nam
    first = await submit(client, make_token, central)
    assert re.fullmatch(r"000\.00\.21\.H29-260124-\d{4}", first["code"]), first["code"]
    clock[0] = datetime(2026, 1, 24, 17, 0, tzinfo=UTC)  # 00:00 on 25/1 in Viet Nam
    codes = [(await submit(client, make_token, central))["code"] for _ in range(3)]
    plain = await submit(client, make_token, "1.001193")  # not centralised: the receiving agency's code
    codes.append((await submit(client, make_token, central))["code"])
    assert plain["competent_agency"] == WARD
    assert codes == [f"{WARD}-260125-01000{n}" for n in (1, 2, 3, 4)]  # deciding body, AA, no gap
    assert re.fullmatch(r"000\.00\.21\.H29-260125-\d{4}", plain["code"]), plain["code"]
    stored = await db_conn.fetch("SELECT code FROM intake.dossiers WHERE procedure_code = $1 ORDER BY code", central)
    assert [r["code"] for r in stored] == sorted([first["code"], *codes])
    counters = await db_conn.fetch("SELECT series, last_number FROM intake.daily_counters "
                                   "WHERE agency_code = $1 AND day = '2026-01-25' ORDER BY series", WARD)
    assert [(r["series"], r["last_number"]) for r in counters][1:] == [("01", 4)]


async def test_centralised_numbers_go_past_9999_with_more_digits(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx, clock: list[datetime],
) -> None:
    central = await centralised_procedure(db_conn, "42")
    clock[0] = datetime(2026, 2, 2, 3, 0, tzinfo=UTC)
    await db_conn.execute("INSERT INTO intake.daily_counters (agency_code, day, series, last_number) "
                          "VALUES ($1, '2026-02-02', '42', 9998)", WARD)
    codes = [(await submit(client, make_token, central))["code"] for _ in range(3)]
    assert codes == [f"{WARD}-260202-429999", f"{WARD}-260202-4210000", f"{WARD}-260202-4210001"]
    await db_conn.execute("INSERT INTO intake.daily_counters (agency_code, day, last_number) "
                          "VALUES ($1, '2026-02-02', 9999)", WARD)
    r = await client.post("/v1/dossiers", json=body(), headers=officer(make_token))  # the 4-digit code stops
    assert r.status_code == 409 and r.json()["code"] == "daily_sequence_exhausted", r.text


async def test_a_row_with_bad_owner_digits_is_refused_by_the_database(db_conn: Tx) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        async with db_conn.conn.transaction():
            await db_conn.execute("INSERT INTO intake.centralised_services (procedure_code, owner_digits) "
                                  "VALUES ('T.bad', 'A1')")


async def test_concurrent_submissions_of_both_formats_are_numbered_without_gaps(
    committed_client_factory: Any, make_token: Any, database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        central = await centralised_procedure(conn, "93")
        today = datetime.now(UTC).astimezone(VN_TZ).date()
        assert today >= date(2026, 1, 25)
        admin = auth(make_token("admin", subject="quantri"))
        dossier_repository._group().sizes.clear()
        async with committed_client_factory(create_app) as c:
            rs = await asyncio.gather(*(c.post("/v1/dossiers", json=body(procedure_code=code), headers={
                **admin, "Idempotency-Key": uuid.uuid4().hex}) for code in [central, "1.001193"] * 12))
        assert {r.status_code for r in rs} == {201}, [r.text for r in rs if r.status_code != 201][:2]
        prefix = f"{WARD}-{today:%y%m%d}-93"
        numbers = sorted(int(r.json()["code"].removeprefix(prefix)) for r in rs[::2])
        assert all(r.json()["code"].startswith(prefix) for r in rs[::2])
        assert numbers == list(range(1, 13))  # this test's series: 1..12, none lost or repeated
        plain = sorted(int(r.json()["code"][-4:]) for r in rs[1::2])
        assert all(len(r.json()["code"]) == len(WARD) + 12 for r in rs[1::2])
        assert plain == list(range(plain[0], plain[0] + 12))  # the receiving agency's series, no gap
        last = await conn.fetchval("SELECT last_number FROM intake.daily_counters "
                                   "WHERE agency_code = $1 AND day = $2 AND series = '93'", WARD, today)
        assert last == 12
        assert max(dossier_repository._group().sizes) > 1  # the group statement numbered both series at once
    finally:
        await conn.close()
