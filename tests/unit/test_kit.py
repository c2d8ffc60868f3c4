"""Pure units of the shared kit: masking, cursors, language choice, settings guard."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.logging import mask_personal_data, mask_text
from shared.pagination import decode_cursor, encode_cursor
from shared.problems import ProblemError, prefers_english
from shared.settings import DEV_SECRET, Settings
from shared.waker import JobWaker


def test_citizen_id_and_phone_are_masked() -> None:
    line = "applicant 001090012345 phone 0912345678 and +84912345678"
    masked = mask_text(line)
    assert "001090012345" not in masked and "001******345" in masked
    assert "0912345678" not in masked and "091*****678" in masked
    assert "+84912345678" not in masked


def test_masking_walks_nested_log_fields() -> None:
    event = {"event": "x", "applicant": {"id_number": "079195001234", "phones": ["0987654321"]}}
    out = mask_personal_data(None, "info", event)
    assert out["applicant"]["id_number"] == "079******234"
    assert out["applicant"]["phones"] == ["098*****321"]


def test_dossier_codes_are_not_masked() -> None:
    assert mask_text("000.00.21.H29-261122-0042") == "000.00.21.H29-261122-0042"


def test_cursor_round_trip_and_rejects_garbage() -> None:
    cur = encode_cursor(["2026-11-22T08:00:00+00:00", 42])
    assert decode_cursor(cur, 2) == ["2026-11-22T08:00:00+00:00", 42]
    assert decode_cursor(None, 2) is None
    with pytest.raises(ProblemError) as err:
        decode_cursor("%%%not-base64", 2)
    assert err.value.status == 400
    with pytest.raises(ProblemError):
        decode_cursor(encode_cursor([1]), 2)


@pytest.mark.parametrize(("header", "english"), [
    (None, False), ("vi-VN,vi;q=0.9", False), ("en-US,en;q=0.9", True), ("fr, en;q=0.5", True),
    ("vi, en", False),
])
def test_vietnamese_first_unless_english_is_preferred(header: str | None, english: bool) -> None:
    assert prefers_english(header) is english


def test_production_refuses_the_development_secret() -> None:
    with pytest.raises(ValidationError):
        Settings(environment="production", app_secret=DEV_SECRET)
    assert Settings(environment="production", app_secret="s3cr3t-from-vault").app_secret


def test_password_hashes_verify_and_differ() -> None:
    from gateway.passwords import hash_secret, verify_secret

    a, b = hash_secret("demo"), hash_secret("demo")
    assert a != b
    assert verify_secret("demo", a) and not verify_secret("Demo", a)
    assert not verify_secret("demo", "garbage")


def test_dossier_code_pattern_is_configurable() -> None:
    from datetime import date

    import pytest

    from services.intake.dossier_repository import DEFAULT_PATTERN, code_parts

    day = date(2026, 11, 24)
    assert code_parts(DEFAULT_PATTERN, "000.00.21.H29", day) == ("000.00.21.H29-261124-", "")
    assert code_parts("HS-{yyyymmdd}-{seq}-{agency}", "X", day) == ("HS-20261124-", "-X")
    with pytest.raises(ValueError, match="seq"):
        code_parts("{agency}-{yymmdd}", "X", day)


async def test_job_waker_survives_an_unreachable_database_and_closes() -> None:
    """A wake-up that cannot be sent is logged and dropped (the workers poll); it never breaks a request."""
    import asyncio
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    waker = JobWaker(f"postgresql://nobody@127.0.0.1:{port}/none")
    waker.poke()
    waker.poke()  # coalesced into the one in flight
    task = waker._task
    assert task is not None
    await asyncio.wait_for(task, timeout=10)
    assert task.exception() is None and waker._conn is None
    await waker.close()

