"""Test fixtures: a real PostgreSQL migrated like production, tokens, apps and the whole stack.

- Without DATABASE_URL an embedded PostgreSQL is started under .data/pg-test.
- A database whose name ends in `_test` is dropped and re-created at the start of a run.
- `db_conn` gives each test an outer transaction that is rolled back (isolation).
- `committed_db` is for tests that need real commits (races, jobs, end-to-end).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from scripts.devdb import recreate_database
from shared.auth import TokenVerifier, mint_token
from shared.db import Tx, json_codecs
from shared.settings import Settings

TEST_KID = "test-key"


def _base_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from scripts.devdb import start

    base = start("pg-test", 54330, fast=True)
    return base.rsplit("/", 1)[0] + "/motcua_test"


@pytest.fixture(scope="session")
def database_url() -> str:
    """Migrated exactly as production does (every alembic history), with the demo data."""
    from scripts.seed import seed_all
    from shared.migrations import upgrade_all

    url = _base_url()
    asyncio.run(recreate_database(url, "_test"))
    upgrade_all(url)
    asyncio.run(seed_all(Settings(database_url=url, environment="test")))
    return url


@pytest.fixture(scope="session")
def signing_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, environment="test", access_log=False,
                    jwt_issuer="http://test-issuer", jwt_audience="mot-cua",
                    storage_dir=".data/test-files", db_pool_size=5)


@pytest.fixture(scope="session")
def verifier(settings: Settings, signing_key: Any) -> TokenVerifier:
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key(), as_dict=True)
    jwk.update({"kid": TEST_KID, "alg": "RS256", "use": "sig"})
    return TokenVerifier(issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                         jwks={"keys": [jwk]})


TokenFactory = Callable[..., str]


@pytest.fixture(scope="session")
def make_token(settings: Settings, signing_key: Any) -> TokenFactory:
    """make_token("officer", agency_code="000.00.21.H29") -> 'Bearer-ready' JWT."""

    def factory(role: str, subject: str | None = None, **claims: Any) -> str:
        return mint_token(signing_key, TEST_KID, issuer=settings.jwt_issuer,
                          audience=settings.jwt_audience, subject=subject or f"test-{role}",
                          role=role, **claims)

    return factory


def auth(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """An RFC 9457 answer with our fields, this status and code, and no traceback."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    for key in ("type", "title", "status", "detail", "code", "request_id"):
        assert key in body, key
    assert body["code"] == code and body["status"] == status and body["detail"]
    assert "Traceback" not in r.text
    return body


@pytest.fixture
async def db_conn(settings: Settings) -> AsyncIterator[Tx]:
    """An outer transaction rolled back after the test: nothing a test writes survives it. Apps built
    by `app_client_factory` run their units of work in savepoints of it."""
    conn = await asyncpg.connect(settings.asyncpg_dsn, server_settings={"timezone": "UTC"})
    await json_codecs(conn)
    outer = conn.transaction()
    await outer.start()
    try:
        yield Tx(conn, nested=True)
    finally:
        await outer.rollback()
        await conn.close()


def app_client_factory(
    create_app: Callable[[Settings], FastAPI],
) -> Callable[..., Any]:
    """Builds a fixture giving an httpx client on an in-process app bound to `db_conn`."""

    @pytest.fixture
    async def client(
        settings: Settings, verifier: TokenVerifier, db_conn: Tx,
    ) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings)
        app.state.verifier = verifier
        app.state.db.bind_to(db_conn.conn)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c
        await app.state.close(app)

    return client


@pytest.fixture
async def committed_client_factory(
    settings: Settings, verifier: TokenVerifier,
) -> AsyncIterator[Callable[[Callable[[Settings], FastAPI]], httpx.AsyncClient]]:
    """For races and jobs: an in-process app on a real pool (its commits are real)."""
    apps: list[FastAPI] = []

    def build(create_app: Callable[[Settings], FastAPI]) -> httpx.AsyncClient:
        app = create_app(settings)
        app.state.verifier = verifier
        apps.append(app)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url="http://test")

    yield build
    for app in apps:
        await app.state.close(app)


@pytest.fixture(scope="session")
def stack(database_url: str) -> Iterator[Any]:
    """The whole system as real processes on free ports (gateway, four services, a worker)."""
    from scripts.stack import Stack

    with Stack.on_free_ports(
        database_url,
        extra_env={"ENVIRONMENT": "test", "ACCESS_LOG": "false", "RATE_LIMIT": "100000/minute",
                   "STORAGE_DIR": ".data/test-files"},
        quiet=os.environ.get("STACK_LOGS") != "1",
    ).running() as s:
        yield s


async def login(base_url: str, username: str, password: str) -> str:
    async with httpx.AsyncClient(base_url=base_url) as c:
        r = await c.post("/api/auth/v1/token",
                         data={"grant_type": "password", "username": username, "password": password})
        r.raise_for_status()
        token: str = r.json()["access_token"]
        return token


async def client_token(base_url: str, client_id: str, secret: str) -> str:
    async with httpx.AsyncClient(base_url=base_url) as c:
        r = await c.post("/api/auth/v1/token", data={
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
        r.raise_for_status()
        token: str = r.json()["access_token"]
        return token


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the live stack run last: its worker consumes queued jobs that other tests inspect."""
    items.sort(key=lambda item: "stack" in getattr(item, "fixturenames", ()))
