"""The one-statement paths open no transaction, even when the caches miss; an action is one transaction."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from services.dossier_workflow import service
from services.dossier_workflow.app import create_app
from shared.calendars import forget_calendars
from shared.db import Database
from shared.settings import Settings
from tests.conftest import auth
from tests.workflow.helpers import act, officer, received_job, vn


async def test_read_and_received_batch_send_no_begin_even_when_the_caches_miss(
    committed_client_factory: Any, make_token: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    begun: list[bool] = []
    start = asyncpg.transaction.Transaction.start

    async def counting_start(self: Any) -> None:
        begun.append(True)  # a BEGIN or, inside one, a SAVEPOINT
        await start(self)

    db = Database(settings)
    try:
        async with db.transaction() as tx:
            data = await received_job(tx, vn(2026, 11, 30, 9, 0))
        forget_calendars()  # every cache misses: calendars, definitions
        monkeypatch.setattr(service, "_in_force", {})
        monkeypatch.setattr(service, "_definitions", {})
        monkeypatch.setattr(asyncpg.transaction.Transaction, "start", counting_start)
        async with db.transaction() as tx:
            assert await service.receive(tx, data)
        assert begun == []
    finally:
        await db.dispose()
    async with committed_client_factory(create_app) as c:
        tok = officer(make_token)
        monkeypatch.setattr(service, "_definitions", {})
        r = await c.get(f"/v1/dossiers/{data['code']}", headers=auth(tok))
        assert r.status_code == 200 and r.json()["step_name"] and begun == []
        r = await act(c, tok, data["code"], 1, action="start")
        assert r.status_code == 200 and len(begun) == 1  # the action: one transaction, no savepoint in it
