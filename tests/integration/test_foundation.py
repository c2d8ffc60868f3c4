"""The shared kit inside a real app on a real database: commits, errors, idempotency, jobs, auth."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import MetaData

from shared.app import create_service_app
from shared.auth import CurrentPrincipal, Principal, current_principal, mint_token, require_roles
from shared.db import DIALECT, Database, Tx, TxDep
from shared.hot_routes import json_body, json_body_doc
from shared.idempotency import Idempotency, idempotency_guard, idempotency_table
from shared.jobs import JobRegistry, enqueue
from shared.problems import ProblemError
from shared.settings import Settings
from shared.worker import run_worker
from tests.conftest import TEST_KID, assert_problem, auth

test_md = MetaData(schema="testkit")
test_keys = idempotency_table(test_md)
registry = JobRegistry("testkit")
HANDLED: list[dict[str, Any]] = []
BATCH_SIZES: list[int] = []


@registry.handler("testkit.record")
async def record(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    """Writes, then fails when asked (its write must not survive)."""
    for data in payloads:
        await tx.execute("INSERT INTO testkit.handled(k) VALUES ($1) ON CONFLICT DO NOTHING", data["k"])
        if data.get("fail"):
            raise RuntimeError("record boom")
        HANDLED.append(data)


@registry.handler("testkit.batch_record", max_batch=50)
async def batch_record(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    """Many payloads in one multi-row insert; one payload asking to fail fails its whole batch."""
    BATCH_SIZES.append(len(payloads))
    await tx.execute("INSERT INTO testkit.handled(k) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
                     [d["k"] for d in payloads])
    if any(d.get("fail") for d in payloads):
        raise RuntimeError("batch boom")


@registry.every("testkit.tick", "* * * * *")
async def tick(tx: Tx) -> None:
    await tx.execute("INSERT INTO testkit.handled(k) VALUES ('tick') ON CONFLICT DO NOTHING")


@registry.handler("testkit.always_fails")
async def always_fails(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    raise RuntimeError("boom")


class Thing(BaseModel):
    name: str = Field(min_length=1, examples=["Hồ sơ mẫu"])
    count: int = 1


router = APIRouter(prefix="/v1")
AFTER_COMMIT: list[str] = []


@router.post("/things", status_code=201)
async def create_thing(
    body: Thing, tx: TxDep, principal: CurrentPrincipal, fail: bool = False,
    idem: Idempotency = Depends(idempotency_guard(test_keys)),
) -> Any:
    if (replay := await idem.begin()) is not None:
        return replay
    await asyncio.sleep(0.05)  # widen the race window
    k = uuid.uuid4().hex
    await enqueue(tx, "testkit.record", {"k": k, "name": body.name})
    tx.after_commit(lambda: AFTER_COMMIT.append(k))
    if fail:
        raise ProblemError(409, "conflict", f"refused after enqueue {k}")
    return await idem.remember(201, {"k": k, "name": body.name})


@router.post("/things/fail-after-enqueue")
async def fail_after_enqueue(tx: TxDep, principal: CurrentPrincipal) -> None:
    await enqueue(tx, "testkit.record", {"k": "never-" + uuid.uuid4().hex})
    raise ProblemError(409, "conflict", "refused after enqueue")


@router.get("/things/touch")
async def touch(tx: TxDep) -> dict[str, int]:
    return {"one": int(await tx.fetchval("SELECT 1"))}


@router.post("/things/commit-fails")
async def commit_fails(tx: TxDep) -> dict[str, str]:
    await tx.execute("CREATE TEMP TABLE dup (x int UNIQUE DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP")
    await tx.execute("INSERT INTO dup VALUES (1), (1)")
    return {"status": "looks fine until commit"}


@router.get("/admin-only")
async def admin_only(p: Principal = Depends(require_roles("supervisor"))) -> dict[str, str]:
    return {"role": p.role}


@router.post("/hot/things", status_code=201, openapi_extra=json_body_doc(Thing))
async def create_hot_thing(request: Request) -> Response:
    """The same as `create_thing`, as a hot route: the Request, parsed by the shared helpers."""
    principal = await current_principal(request)
    body, raw = await json_body(request, Thing)
    async with request.app.state.db.transaction() as tx:
        idem = Idempotency.of_request(request, tx, test_keys, principal, raw, required=True)
        if (replay := await idem.begin()) is not None:
            return replay
        k = uuid.uuid4().hex
        await enqueue(tx, "testkit.record", {"k": k, "name": body.name})
        return await idem.remember(201, {"k": k, "name": body.name})


@router.post("/things/one-statement", status_code=201)
async def one_statement_thing(body: Thing, tx: TxDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """A write that is one statement: no BEGIN, committed on its own."""
    in_transaction = tx.conn.is_in_transaction()
    rows = await tx.statement("INSERT INTO testkit.handled(k) VALUES ($1) RETURNING k", f"one-{body.name}")
    return {"k": rows[0]["k"], "in_transaction_before": in_transaction}


def build(settings: Settings) -> FastAPI:
    return create_service_app(service="testkit", title="testkit", description="",
                              routers=[router], histories=["core", "jobs"], settings=settings,
                              job_registry=registry)


@pytest.fixture(scope="module")
async def testkit_schema(database_url: str) -> None:
    from sqlalchemy.schema import CreateTable

    async with committed(database_url) as tx:
        await tx.execute("CREATE SCHEMA IF NOT EXISTS testkit")
        await tx.execute("CREATE TABLE IF NOT EXISTS testkit.handled (k text PRIMARY KEY)")
        if not await tx.fetchval("SELECT to_regclass('testkit.idempotency_keys') IS NOT NULL"):
            await tx.execute(str(CreateTable(test_keys).compile(dialect=DIALECT)))


@asynccontextmanager
async def committed(database_url: str) -> AsyncIterator[Tx]:
    """A unit of work on its own short-lived pool, committed when the block ends."""
    db = Database(Settings(database_url=database_url), pool_size=1)
    try:
        async with db.transaction() as tx:
            yield tx
    finally:
        await db.dispose()


@pytest.fixture
async def client(settings: Settings, verifier: Any, db_conn: Any, testkit_schema: None):  # type: ignore[no-untyped-def]
    app = build(settings)
    app.state.verifier = verifier
    app.state.db.bind_to(db_conn.conn)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://t") as c:
        yield c


@pytest.fixture
async def real_client(settings: Settings, verifier: Any, testkit_schema: None):  # type: ignore[no-untyped-def]
    app = build(settings)
    app.state.verifier = verifier
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://t") as c:
        yield c
    await app.state.db.dispose()


async def count(database_url: str, sql: str, *args: Any) -> int:
    async with committed(database_url) as tx:
        return int(await tx.fetchval(sql, *args))




async def test_no_free_connection_answers_503_busy_then_recovers(settings: Settings, verifier: Any,
                                                                 testkit_schema: None) -> None:
    """Connections are bounded (no overflow opened per request): a request that cannot get one is told to retry."""
    app = build(settings.model_copy(update={"db_pool_size": 1, "db_pool_timeout": 0.2}))
    app.state.verifier = verifier
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://t") as c:
        async with app.state.db.transaction() as held:
            await held.fetchval("SELECT 1")
            busy = await c.get("/v1/things/touch")
        assert_problem(busy, 503, "busy")
        assert busy.headers["retry-after"] == "1"
        ok = await c.get("/v1/things/touch")
        assert ok.status_code == 200 and ok.json() == {"one": 1}
    await app.state.db.dispose()


@pytest.mark.smoke
async def test_failing_commit_answers_5xx_not_200(client: httpx.AsyncClient, real_client: httpx.AsyncClient) -> None:
    r = await real_client.post("/v1/things/commit-fails")
    assert_problem(r, 500, "internal_error")


@pytest.mark.parametrize("path", ["/v1/things", "/v1/hot/things"])  # a body parameter and `json_body`
async def test_unknown_route_method_malformed_and_invalid_bodies(client: httpx.AsyncClient, make_token: Any,
                                                                 path: str) -> None:
    tok = make_token("officer")
    assert_problem(await client.get("/v1/nowhere"), 404, "not_found")
    assert_problem(await client.delete("/v1/things/commit-fails"), 405, "method_not_allowed")
    assert_problem(await client.post(path, json={"name": "x"}), 401, "unauthorized")
    r = await client.post(path, content=b"{not json", headers=auth(tok, **{
        "Idempotency-Key": "k1", "Content-Type": "application/json"}))
    assert_problem(r, 400, "malformed_json")
    r = await client.post(path, json={"name": "", "count": "many"}, headers=auth(tok, **{"Idempotency-Key": "k2"}))
    body = assert_problem(r, 422, "validation_error")
    assert {(e["field"], e["in"]) for e in body["errors"]} == {("name", "body"), ("count", "body")}
    assert_problem(await client.post(path, json={"name": "x"}, headers=auth(tok)), 400, "idempotency_key_missing")


async def test_titles_follow_accept_language(client: httpx.AsyncClient) -> None:
    vi = (await client.get("/v1/nowhere")).json()
    en = (await client.get("/v1/nowhere", headers={"Accept-Language": "en"})).json()
    assert vi["title"] == "Không tìm thấy" and en["title"] == "Not found"


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r2 = await client.get("/v1/nowhere")
    assert len(r2.headers["x-request-id"]) == 32
    assert r2.json()["request_id"] == r2.headers["x-request-id"]


async def test_tokens_missing_forged_expired_wrong_audience_and_role(
    client: httpx.AsyncClient, make_token: Any, settings: Settings,
) -> None:
    assert_problem(await client.get("/v1/ping"), 401, "unauthorized")
    assert_problem(await client.get("/v1/ping", headers={"Authorization": "Basic x"}), 401, "invalid_token")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = mint_token(other, TEST_KID, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                        subject="x", role="admin")
    assert_problem(await client.get("/v1/ping", headers=auth(forged)), 401, "invalid_token")
    expired = make_token("officer", ttl_seconds=-60)
    body = assert_problem(await client.get("/v1/ping", headers=auth(expired)), 401, "invalid_token")
    assert "hết hạn" in body["detail"]
    wrong_aud = make_token("officer")
    claims = jwt.decode(wrong_aud, options={"verify_signature": False})
    assert claims["aud"] == "mot-cua"
    from tests.conftest import TEST_KID as kid
    assert kid
    r = await client.get("/v1/admin-only", headers=auth(make_token("citizen")))
    assert_problem(r, 403, "forbidden")
    r = await client.get("/v1/admin-only", headers=auth(make_token("supervisor")))
    assert r.status_code == 200 and r.json() == {"role": "supervisor"}
    r = await client.get("/v1/ping", headers=auth(make_token("kiosk", subject="kiosk-1")))
    assert r.json()["subject"] == "kiosk-1"


async def test_wrong_audience_is_refused(client: httpx.AsyncClient, signing_key: Any, settings: Settings) -> None:
    token = mint_token(signing_key, TEST_KID, issuer=settings.jwt_issuer, audience="another-system",
                       subject="x", role="officer")
    assert_problem(await client.get("/v1/ping", headers=auth(token)), 401, "invalid_token")


async def test_idempotency_replay_and_mismatch(client: httpx.AsyncClient, make_token: Any) -> None:
    h = auth(make_token("officer"), **{"Idempotency-Key": "same-key"})
    first = await client.post("/v1/things", json={"name": "Hồ sơ A", "count": 1}, headers=h)
    again = await client.post("/v1/things", json={"count": 1, "name": "Hồ sơ A"}, headers=h)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = await client.post("/v1/things", json={"name": "Hồ sơ B"}, headers=h)
    assert_problem(other, 422, "idempotency_key_mismatch")
    missing = await client.post("/v1/things", json={"name": "x"}, headers=auth(make_token("officer")))
    assert_problem(missing, 400, "idempotency_key_missing")


@pytest.mark.smoke
async def test_twenty_concurrent_retries_write_exactly_once(
    real_client: httpx.AsyncClient, make_token: Any, database_url: str,
) -> None:
    key = uuid.uuid4().hex
    h = auth(make_token("citizen", subject="001090012345"), **{"Idempotency-Key": key})
    results = await asyncio.gather(*(real_client.post("/v1/things", json={"name": "đua"}, headers=h)
                                     for _ in range(20)))
    statuses = sorted(r.status_code for r in results)
    assert set(statuses) <= {201, 409}, statuses
    created = {r.json()["k"] for r in results if r.status_code == 201}
    assert len(created) == 1
    k = created.pop()
    assert await count(database_url, "SELECT count(*) FROM testkit.idempotency_keys WHERE key=$1", key) == 1
    jobs = await count(database_url, "SELECT count(*) FROM jobs.pgqueuer WHERE entrypoint='testkit.record' "
                                     "AND convert_from(payload,'UTF8')::jsonb->'data'->>'k' = $1", k)
    assert jobs == 1
    retry = await real_client.post("/v1/things", json={"name": "đua"}, headers=h)
    assert retry.status_code == 201 and retry.json()["k"] == k


async def test_rolled_back_request_leaves_no_job(
    real_client: httpx.AsyncClient, make_token: Any, database_url: str,
) -> None:
    before = await count(database_url, "SELECT count(*) FROM jobs.pgqueuer WHERE "
                                       "convert_from(payload,'UTF8') LIKE '%never-%'")
    r = await real_client.post("/v1/things/fail-after-enqueue", headers=auth(make_token("officer")))
    assert_problem(r, 409, "conflict")
    after = await count(database_url, "SELECT count(*) FROM jobs.pgqueuer WHERE "
                                      "convert_from(payload,'UTF8') LIKE '%never-%'")
    assert after == before


async def test_workers_are_woken_after_commit_not_from_inside_the_transaction(
    real_client: httpx.AsyncClient, make_token: Any, database_url: str,
) -> None:
    """The request's own connection stays silent (no notify lock held through its commit); the waker speaks after."""
    import asyncpg

    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    listener = await asyncpg.connect(dsn)
    senders: list[int] = []
    await listener.add_listener("ch_pgqueuer", lambda _c, pid, _ch, payload: senders.append(pid)
                                if '"table_changed_event"' in payload else None)
    try:
        officer = auth(make_token("officer"))
        assert_problem(await real_client.post("/v1/things/fail-after-enqueue", headers=officer), 409, "conflict")
        await asyncio.sleep(0.3)
        assert senders == []  # rolled back: nothing to wake anyone for
        r = await real_client.post("/v1/things", json={"name": "đánh thức"},
                                   headers={**officer, "Idempotency-Key": uuid.uuid4().hex})
        assert r.status_code == 201
        for _ in range(50):
            if senders:
                break
            await asyncio.sleep(0.05)
        names = {row["pid"]: row["application_name"] for row in await listener.fetch(
            "SELECT pid, application_name FROM pg_stat_activity WHERE pid = ANY($1::int[])", senders)}
        assert senders and {names.get(pid) for pid in senders} == {"motcua-job-waker"}
    finally:
        await listener.close()


async def test_worker_runs_committed_jobs_and_holds_failures(
    real_client: httpx.AsyncClient, make_token: Any, database_url: str, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shared.worker as worker

    monkeypatch.setattr(worker, "MAX_ATTEMPTS", 0)
    r = await real_client.post("/v1/things", json={"name": "việc"},
                               headers=auth(make_token("officer"), **{"Idempotency-Key": uuid.uuid4().hex}))
    k = r.json()["k"]
    async with committed(database_url) as tx:
        await enqueue(tx, "testkit.always_fails", {"why": "test"})
    await asyncio.wait_for(run_worker(["tests.integration.test_foundation"], settings=settings,
                                      drain=True), timeout=60)
    assert await count(database_url, "SELECT count(*) FROM testkit.handled WHERE k=$1", k) == 1
    admin = auth(make_token("admin", subject="quantri"))
    failed = (await real_client.get("/v1/admin/jobs/failed", headers=admin)).json()
    mine = [j for j in failed if j["entrypoint"] == "testkit.always_fails"]
    assert mine and "boom" in (mine[0]["last_error"] or "")
    assert_problem(await real_client.get("/v1/admin/jobs/failed", headers=auth(make_token("officer"))),
                   403, "forbidden")
    retried = await real_client.post(f"/v1/admin/jobs/{mine[0]['id']}/retry", headers=admin)
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    assert_problem(await real_client.post(f"/v1/admin/jobs/{mine[0]['id']}/retry", headers=admin),
                   404, "not_found")
    # leave nothing queued that always fails
    async with committed(database_url) as tx:
        await tx.execute("DELETE FROM jobs.pgqueuer WHERE entrypoint='testkit.always_fails'")


async def test_readyz_and_metrics(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"] == {"core": "ok", "jobs": "ok"}
    await client.get("/healthz")
    m = await client.get("/metrics")
    assert "http_requests_total" in m.text


def test_token_helper_sets_standard_claims(signing_key: Any) -> None:
    token = mint_token(signing_key, "k", issuer="i", audience="a", subject="s", role="officer",
                       agency_code="000.00.21.H29", partner_code=None)
    claims = jwt.decode(token, signing_key.public_key(), algorithms=["RS256"], audience="a")
    assert claims["agency_code"] == "000.00.21.H29" and "partner_code" not in claims
    assert claims["exp"] - claims["iat"] == 3600 and claims["iat"] <= time.time()


async def test_periodic_jobs_are_scheduled_by_the_worker(settings: Settings, database_url: str,
                                                         testkit_schema: None) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(["tests.integration.test_foundation"], settings=settings,
                                          stop=stop))
    n = 0
    for _ in range(50):
        await asyncio.sleep(0.1)
        n = await count(database_url, "SELECT count(*) FROM jobs.pgqueuer_schedules "
                                      "WHERE entrypoint = 'testkit.tick' AND expression = '* * * * *'")
        if n:
            break
    stop.set()
    await asyncio.wait_for(task, timeout=30)
    assert n == 1


async def _jobs_for(database_url: str, k: str) -> int:
    return await count(database_url, "SELECT count(*) FROM jobs.pgqueuer WHERE entrypoint='testkit.record' "
                                     "AND convert_from(payload,'UTF8')::jsonb->'data'->>'k' = $1", k)


@pytest.mark.smoke
async def test_a_request_commits_before_answering_and_rolls_back_on_error(
    real_client: httpx.AsyncClient, make_token: Any, database_url: str,
) -> None:
    """A route's work is committed when its response arrives; a refused one leaves nothing, and its
    after-commit hooks never run."""
    h = auth(make_token("officer"), **{"Idempotency-Key": uuid.uuid4().hex})
    ok = await real_client.post("/v1/things", json={"name": "nhanh"}, headers=h)
    assert ok.status_code == 201, ok.text
    k = ok.json()["k"]
    assert await _jobs_for(database_url, k) == 1
    assert k in AFTER_COMMIT
    refused = await real_client.post("/v1/things?fail=true", json={"name": "nhanh"},
                                     headers=auth(make_token("officer"), **{"Idempotency-Key": uuid.uuid4().hex}))
    body = assert_problem(refused, 409, "conflict")
    never = body["detail"].rsplit(" ", 1)[1]
    assert await _jobs_for(database_url, never) == 0
    assert never not in AFTER_COMMIT
    assert await count(database_url, "SELECT count(*) FROM testkit.idempotency_keys WHERE key=$1",
                       refused.request.headers["idempotency-key"]) == 0


async def test_a_one_statement_write_sends_no_begin_and_commits(
    real_client: httpx.AsyncClient, make_token: Any, database_url: str,
) -> None:
    name = uuid.uuid4().hex
    r = await real_client.post("/v1/things/one-statement", json={"name": name}, headers=auth(make_token("officer")))
    assert r.status_code == 201, r.text
    assert r.json() == {"k": f"one-{name}", "in_transaction_before": False}
    assert await count(database_url, "SELECT count(*) FROM testkit.handled WHERE k=$1", f"one-{name}") == 1


async def test_a_one_statement_write_inside_a_test_transaction_fails_alone(db_conn: Tx) -> None:
    """Under the tests' outer transaction a failing one-statement write leaves it usable."""
    await db_conn.execute("CREATE TEMP TABLE once (x int PRIMARY KEY)")
    await db_conn.statement("INSERT INTO once VALUES (1)")
    with pytest.raises(Exception, match="duplicate key"):
        await db_conn.statement("INSERT INTO once VALUES (1)")
    assert await db_conn.fetchval("SELECT count(*) FROM once") == 1


async def test_core_statements_compile_for_asyncpg(db_conn: Tx) -> None:
    from sqlalchemy import Integer, String, column, select, table, values

    rows = values(column("id", Integer), column("name", String), name="v").data([(1, "một"), (2, "hai"), (3, "ba")])
    v = rows.alias("v")
    found = await db_conn.fetch(select(v.c.name).where(v.c.id.in_([1, 3])).order_by(v.c.id))
    assert [r["name"] for r in found] == ["một", "ba"]
    assert await db_conn.fetchval(select(table("pg_namespace", column("nspname")).c.nspname)
                                  .where(column("nspname") == "testkit_none")) is None


async def test_pool_exhausted_answers_503_busy_with_retry_after(settings: Settings, verifier: Any, make_token: Any,
                                                               testkit_schema: None) -> None:
    app = build(settings.model_copy(update={"db_pool_size": 1, "db_pool_timeout": 0.2}))
    app.state.verifier = verifier
    h = auth(make_token("officer"), **{"Idempotency-Key": uuid.uuid4().hex})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://t") as c:
        async with app.state.db.transaction() as held:
            await held.fetchval("SELECT 1")
            busy = await c.post("/v1/things", json={"name": "chờ"}, headers=h)
        assert_problem(busy, 503, "busy")
        assert busy.headers["retry-after"] == "1"
        assert (await c.post("/v1/things", json={"name": "chờ"}, headers=h)).status_code == 201
    await app.state.db.dispose()


async def test_jobs_commit_their_writes_and_roll_back_failures(
    database_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch, testkit_schema: None,
) -> None:
    import shared.worker as worker

    monkeypatch.setattr(worker, "MAX_ATTEMPTS", 0)
    ok, failing = f"job-{uuid.uuid4().hex}", f"job-{uuid.uuid4().hex}"
    async with committed(database_url) as tx:
        await enqueue(tx, "testkit.record", {"k": ok})
        await enqueue(tx, "testkit.record", {"k": failing, "fail": True})
    await asyncio.wait_for(run_worker(["tests.integration.test_foundation"], settings=settings, drain=True),
                           timeout=60)
    assert await count(database_url, "SELECT count(*) FROM testkit.handled WHERE k=$1", ok) == 1
    assert await count(database_url, "SELECT count(*) FROM testkit.handled WHERE k=$1", failing) == 0
    held = await count(database_url, "SELECT count(*) FROM jobs.pgqueuer WHERE entrypoint='testkit.record' "
                                     "AND status='failed'")
    assert held == 1
    async with committed(database_url) as tx:
        await tx.execute("DELETE FROM jobs.pgqueuer WHERE entrypoint='testkit.record' AND status='failed'")


async def test_batch_jobs_run_together_and_a_bad_one_fails_alone_listed_and_retried(
    database_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch, testkit_schema: None,
    real_client: httpx.AsyncClient, make_token: Any,
) -> None:
    """The worker hands a batch handler the jobs it holds at once; when the batch fails, each job runs
    alone, so the good ones commit and only the bad one is held as failed — listed by the admin API
    and put back in the queue by it like any other job."""
    import shared.worker as worker

    monkeypatch.setattr(worker, "MAX_ATTEMPTS", 0)
    BATCH_SIZES.clear()
    run = uuid.uuid4().hex
    keys = [f"batch-{run}-{i}" for i in range(15)]
    async with committed(database_url) as tx:
        for i, k in enumerate(keys):
            await enqueue(tx, "testkit.batch_record", {"k": k, "fail": i == 4})
    await asyncio.wait_for(run_worker(["tests.integration.test_foundation"], settings=settings, drain=True),
                           timeout=60)
    handled = await count(database_url, "SELECT count(*) FROM testkit.handled WHERE k LIKE $1", f"batch-{run}-%")
    assert handled == 14
    assert await count(database_url, "SELECT count(*) FROM testkit.handled WHERE k = $1", keys[4]) == 0
    assert max(BATCH_SIZES) > 1, BATCH_SIZES  # gathered, not one by one
    assert 1 in BATCH_SIZES  # the failed batch ran again job by job
    admin = auth(make_token("admin", subject="quantri"))
    failed = (await real_client.get("/v1/admin/jobs/failed", headers=admin)).json()
    mine = [j for j in failed if j["entrypoint"] == "testkit.batch_record"]
    assert len(mine) == 1 and mine[0]["payload"]["data"]["k"] == keys[4]
    assert "batch boom" in (mine[0]["last_error"] or "")
    retried = await real_client.post(f"/v1/admin/jobs/{mine[0]['id']}/retry", headers=admin)
    assert retried.status_code == 200 and retried.json() == {
        "id": mine[0]["id"], "entrypoint": "testkit.batch_record", "status": "queued"}
    assert await count(database_url, "SELECT count(*) FROM jobs.pgqueuer WHERE id = $1 AND status = 'queued'",
                       mine[0]["id"]) == 1
    async with committed(database_url) as tx:
        await tx.execute("DELETE FROM jobs.pgqueuer WHERE entrypoint='testkit.batch_record'")


def test_a_hot_routes_body_is_declared_in_openapi(settings: Settings) -> None:
    spec = build(settings).openapi()
    body = spec["paths"]["/v1/hot/things"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Thing"}
    assert set(spec["components"]["schemas"]["Thing"]["properties"]) == {"name", "count"}
