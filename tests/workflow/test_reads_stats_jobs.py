"""Races, jobs between services, statistics equal to the history, worklist, public tracking, rating."""

from __future__ import annotations

import asyncio
import io
import random
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from services.dossier_workflow import jobs, outbox_repository, service, stats_repository
from services.dossier_workflow.app import create_app
from services.dossier_workflow.schemas import ActionIn
from shared.auth import Principal
from shared.db import Database, Tx
from shared.settings import Settings
from tests.conftest import app_client_factory, assert_problem, auth
from tests.workflow.helpers import CITIZEN, WARD, act, job_unit, new_dossier, officer, received_job, vn

client = app_client_factory(create_app)


async def test_two_officers_at_once_exactly_one_wins(
    committed_client_factory: Any, make_token: Any, settings: Settings,
) -> None:
    db = Database(settings)
    try:
        async with db.transaction() as tx:
            code = await new_dossier(tx, vn(2026, 11, 30, 9, 0))
    finally:
        await db.dispose()
    async with committed_client_factory(create_app) as c1, committed_client_factory(create_app) as c2:
        a, b = officer(make_token), officer(make_token, "canbo2.phuong")
        for _ in range(3):
            r = await c1.get(f"/v1/dossiers/{code}", headers=auth(a))
            version = r.json()["version"]
            results = await asyncio.gather(
                act(c1, a, code, version, action="assign", assignee="canbo.phuong"),
                act(c2, b, code, version, action="assign", assignee="canbo2.phuong"))
            assert sorted(r.status_code for r in results) == [200, 412], [r.text for r in results]
            loser = next(r for r in results if r.status_code == 412)
            assert loser.json()["current_version"] == version + 1
        d = (await c1.get(f"/v1/dossiers/{code}", headers=auth(a))).json()
        assert d["version"] == 4 and [h["action"] for h in d["timeline"]].count("assign") == 3


async def test_postal_result_goes_out_once_and_delivery_marks_it_returned(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0), delivery="postal")
    tok, leader = officer(make_token), officer(make_token, "lanhdao.phuong", role="supervisor")
    await act(client, tok, code, 1, action="start")
    assert (await act(client, leader, code, 2, action="approve")).status_code == 200
    jobs_sql = ("SELECT convert_from(payload, 'UTF8')::jsonb->'data' FROM jobs.pgqueuer "
                "WHERE entrypoint = 'shipment.create_outbound' AND convert_from(payload, 'UTF8')::jsonb"
                "->'data'->>'code' = $1")
    queued = [r[0] for r in await db_conn.fetch(jobs_sql, code)]
    assert len(queued) == 1 and queued[0]["ward_code"] == "00004" and queued[0]["recipient_name"] == "Nguyễn Văn An"
    assert_problem(await act(client, tok, code, 3, action="return_result", method="postal"), 422, "validation_error")
    for _ in range(2):  # delivered twice (at least once delivery): returned once
        await jobs.on_result_delivered(db_conn, [{"code": code, "delivered_at": "2026-12-02T10:00:00+07:00",
                                                  "shipment_id": 7}])
    d = (await client.get(f"/v1/dossiers/{code}", headers=auth(tok))).json()
    assert d["status"] == "returned" and d["timeline"][-1]["actor_role"] == "system"
    assert [h["action"] for h in d["timeline"]].count("return_result") == 1


async def test_received_job_is_idempotent_and_supplemented_job_resumes_at_handover_time(
    db_conn: Tx,
) -> None:
    data = await received_job(db_conn, vn(2026, 11, 30, 9, 0))
    await jobs.on_received(db_conn, [data])
    await jobs.on_received(db_conn, [data])
    code = data["code"]
    assert await db_conn.fetchval("SELECT count(*) FROM workflow.history WHERE dossier_code=$1", code) == 1
    queued = await db_conn.fetchval(
        "SELECT count(*) FROM jobs.pgqueuer WHERE $1 IN (convert_from(payload, 'UTF8')::jsonb->'data'->>"
        "'code', convert_from(payload, 'UTF8')::jsonb->'data'->>'dossier_code')", code)
    assert queued == 0  # no job per dossier: the portal sync and the message go through outboxes
    outbox = await db_conn.fetchrow(
        "SELECT (SELECT count(*) FROM workflow.portal_outbox WHERE code=$1), "
        "(SELECT count(*) FROM workflow.notification_outbox WHERE dossier_code=$1 AND template='dossier_received')",
        code)
    assert outbox is not None and tuple(outbox) == (1, 1)
    epoch = "SELECT floor(extract(epoch FROM clock_timestamp()))::bigint"
    first_second = await db_conn.fetchval(epoch)
    others = [await received_job(db_conn, vn(2026, 11, 30, 9, 5 + i)) for i in range(20)]
    for other in others:
        await jobs.on_received(db_conn, [other])
    last_second = await db_conn.fetchval(epoch)
    for entrypoint in ("portal.sync", "notification.flush"):  # one coalesced job a second, not one a dossier
        coalesced = await db_conn.fetchval(
            "SELECT count(*) FROM jobs.pgqueuer WHERE entrypoint = $1 AND status = 'queued' "
            "AND CASE WHEN split_part(dedupe_key, ':', 2) ~ '^[0-9]+$' THEN split_part(dedupe_key, ':', 2)::bigint "
            "END BETWEEN $2 AND $3",  # per-second keys (a full batch's follow-ups are keyed ...:more:a/b)
            entrypoint, first_second, last_second)
        assert 1 <= coalesced <= last_second - first_second + 1
    await jobs.on_portal_sync(db_conn, [{}])
    await jobs.on_portal_sync(db_conn, [{}])
    assert await db_conn.fetchval("SELECT count(*) FROM workflow.portal_outbox WHERE code=$1", code) == 0
    synced = await db_conn.fetchrow(
        "SELECT d.synced_at IS NOT NULL, (SELECT count(*) FROM workflow.history h WHERE h.dossier_code = d.code "
        "AND h.action = 'portal_synced' AND h.to_status = 'received') FROM workflow.dossiers d WHERE d.code=$1",
        code)
    assert synced is not None and tuple(synced) == (True, 1)
    d = await service.readable(db_conn, code, Principal(subject="x", role="admin"))
    await service.apply(db_conn, d, Principal(subject="canbo.phuong", role="officer", agency_code=WARD),
                        ActionIn(action="request_supplement", documents=["Tờ khai"]), vn(2026, 12, 1, 10, 0))
    await jobs.on_supplemented(db_conn, [{"code": code, "supplemented_at": "2026-12-02T10:00:00+07:00"}])
    await jobs.on_supplemented(db_conn, [{"code": code, "supplemented_at": "2026-12-02T10:00:00+07:00"}])
    row = await db_conn.fetchrow("SELECT status, due_at FROM workflow.dossiers WHERE code=$1", code)
    assert row is not None and row["status"] == "in_progress" and row["due_at"] == vn(2026, 12, 4, 9, 0)


HISTORY_COUNT = """
SELECT counted_agency, (at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS day, procedure_code, field_code, channel,
       count(*) FILTER (WHERE action = 'receive') AS received,
       count(*) FILTER (WHERE action = 'return_result' AND data->>'method' = 'electronic') AS electronic_result,
       count(*) FILTER (WHERE to_status = 'resolved' AND from_status <> 'resolved' AND data->>'timing' = 'early')
         AS resolved_early,
       count(*) FILTER (WHERE to_status = 'resolved' AND from_status <> 'resolved' AND data->>'timing' = 'on_time')
         AS resolved_on_time,
       count(*) FILTER (WHERE to_status = 'resolved' AND from_status <> 'resolved' AND data->>'timing' = 'late')
         AS resolved_late,
       coalesce(sum((data->>'processing_minutes')::bigint) FILTER (WHERE to_status = 'resolved'
         AND from_status <> 'resolved'), 0) AS processing_minutes,
       count(*) FILTER (WHERE action = 'return_result') AS returned,
       count(*) FILTER (WHERE action = 'receive' AND EXISTS (SELECT 1 FROM workflow.history p
         WHERE p.dossier_code = h.dossier_code AND p.action = 'portal_synced')) AS synced,
       count(*) FILTER (WHERE action = 'rate') AS rating_count,
       coalesce(sum((data->>'rating')::int) FILTER (WHERE action = 'rate'), 0) AS rating_sum
FROM workflow.history h WHERE action IN ('receive', 'return_result', 'rate')
  OR (to_status = 'resolved' AND from_status <> 'resolved') GROUP BY 1, 2, 3, 4, 5
"""
AGGREGATE = """
SELECT counted_agency, day, procedure_code, field_code, channel, received, electronic_result, resolved_early,
       resolved_on_time, resolved_late, processing_minutes, returned, synced, rating_count, rating_sum
FROM workflow.stats_daily
"""


async def test_a_batch_of_received_jobs_enters_each_dossier_once_in_one_statement(
    db_conn: Tx, client: httpx.AsyncClient, make_token: Any,
) -> None:
    """What the worker hands over after a burst: many payloads, one delivered twice, one already in."""
    items = [await received_job(db_conn, vn(2026, 11, 30, 9, i), phone=None if i == 3 else "0912345678",
                                delivery="postal" if i % 2 else "counter") for i in range(12)]
    assert await service.receive(db_conn, items[0])  # entered before the batch: not entered again
    batch = [*items, items[5]]  # at least once: the same job twice in one batch
    before = await db_conn.fetchval("SELECT coalesce(sum(received), 0) FROM workflow.stats_daily")
    assert await service.receive_many(db_conn, batch) == 11
    assert await service.receive_many(db_conn, batch) == 0
    codes = [d["code"] for d in items]
    rows = await db_conn.fetch(
        "SELECT d.code, (SELECT count(*) FROM workflow.history h WHERE h.dossier_code = d.code), "
        "(SELECT count(*) FROM workflow.portal_outbox o WHERE o.code = d.code), "
        "(SELECT count(*) FROM workflow.notification_outbox n WHERE n.dossier_code = d.code), "
        "d.delivery_address->>'ward_code', d.step_due_at IS NOT NULL, d.due_at = d.original_due_at "
        "FROM workflow.dossiers d WHERE d.code = ANY($1) ORDER BY d.code", codes)
    assert [r[0] for r in rows] == sorted(codes)
    by_code = {r[0]: tuple(r[1:]) for r in rows}
    for i, code in enumerate(codes):
        assert by_code[code] == (1, 1, 0 if i == 3 else 1, "00004" if i % 2 else None, True, True), (i, by_code[code])
    after = await db_conn.fetchval("SELECT coalesce(sum(received), 0) FROM workflow.stats_daily")
    assert after - before == 11  # the statement-level statistics trigger counts a batch once per dossier
    one = (await client.get(f"/v1/dossiers/{codes[7]}", headers=auth(officer(make_token)))).json()
    assert one["status"] == "received" and one["applicant_name"] == "Nguyễn Văn An"
    assert [h["action"] for h in one["timeline"]] == ["receive"]


async def test_statistics_equal_a_count_over_the_history(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    rng = random.Random(7)
    tok, leader = officer(make_token), officer(make_token, "lanhdao.phuong", role="supervisor")
    citizen = make_token("citizen", subject=CITIZEN)
    for i in range(40):
        received = vn(2026, 11, 2, 8, 0) + timedelta(days=rng.randrange(28), minutes=rng.randrange(480))
        code = await new_dossier(db_conn, received, channel=rng.choice(["counter", "online", "postal"]),
                                 delivery=rng.choice(["counter", "electronic"]))
        if i % 3 == 0:
            await jobs.on_portal_sync(db_conn, [{"code": code}])
        plan = rng.choice([[], ["start"], ["start", "approve"], ["reject"], ["start", "approve", "return_result"],
                           ["withdraw"]])
        for version, action in enumerate(plan, start=1):
            who = leader if action in ("approve", "reject") else tok
            extra = {"reason": "Không đủ điều kiện"} if action == "reject" else {}
            assert (await act(client, who, code, version, action=action, **extra)).status_code == 200
        if plan and plan[-1] == "return_result":
            assert (await client.post(f"/v1/dossiers/{code}/rating", json={"score": rng.randint(1, 5)},
                                      headers=auth(citizen))).status_code == 201
    synced = await db_conn.fetchval("SELECT code FROM workflow.dossiers WHERE synced_at IS NOT NULL LIMIT 1")
    assert (await client.get(f"/v1/dossiers/{synced}", headers=auth(tok))).json()["synced_at"] is not None
    by_history = {tuple(r[:5]): tuple(r[5:]) for r in await db_conn.fetch(HISTORY_COUNT)}
    by_aggregate = {tuple(r[:5]): tuple(r[5:]) for r in await db_conn.fetch(AGGREGATE)}
    assert by_history == by_aggregate and sum(v[0] for v in by_history.values()) >= 40
    await stats_repository.rebuild_stats(db_conn)  # the operators' rebuild gives the same table as the trigger
    assert {tuple(r[:5]): tuple(r[5:]) for r in await db_conn.fetch(AGGREGATE)} == by_aggregate
    figures = (await client.get("/v1/stats", params={"from": "2026-11-01", "to": "2026-12-31"},
                                headers=auth(leader))).json()[0]
    mine = [v for k, v in by_history.items() if k[0] == WARD and date(2026, 11, 1) <= k[1] <= date(2026, 12, 31)]
    assert figures["received"] == sum(v[0] for v in mine)
    assert figures["resolved"] == sum(v[2] + v[3] + v[4] for v in mine)
    assert figures["rating_count"] == sum(v[8] for v in mine)
    grouped = (await client.get("/v1/stats", params={"from": "2026-11-01", "to": "2026-12-31", "group_by": "channel"},
                                headers=auth(leader))).json()
    assert sum(g["received"] for g in grouped) == figures["received"]
    assert {g["group"] for g in grouped} <= {"counter", "online", "postal"}
    assert_problem(await client.get("/v1/stats", params={"from": "2026-11-01", "to": "2026-12-31"},
                                    headers=auth(tok)), 403, "forbidden")
    assert_problem(await client.get("/v1/stats", params={"from": "2026-12-01", "to": "2026-11-01"},
                                    headers=auth(leader)), 422, "validation_error")


async def test_worklist_filters_search_without_accents_and_pages_by_key(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    marker = uuid.uuid4().hex[:6]
    codes = [await new_dossier(db_conn, vn(2026, 11, 2, 8, 0) + timedelta(hours=i), name=f"Trần Thị Ánh {marker}")
             for i in range(7)]
    tok = officer(make_token)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": f"tran thi anh {marker}", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/dossiers", params=params, headers=auth(tok))).json()
        seen += [d["code"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(codes) and len(set(seen)) == len(seen)
    overdue = (await client.get("/v1/dossiers", params={"q": marker, "overdue": "true"}, headers=auth(tok))).json()
    assert len(overdue["items"]) == 7 and all(d["overdue"] for d in overdue["items"])
    assert_problem(await client.get("/v1/dossiers", headers=auth(make_token("citizen", subject=CITIZEN))),
                   403, "forbidden")
    assert_problem(await client.get("/v1/dossiers", params={"cursor": "!!"}, headers=auth(tok)), 400, "bad_request")
    from shared.pagination import encode_cursor

    assert_problem(await client.get("/v1/dossiers", params={"cursor": encode_cursor(["x", "y"])}, headers=auth(tok)),
                   400, "bad_request")
    book = await client.get("/v1/tracking-book", params={"from": "2026-11-02", "to": "2026-11-02"},
                            headers=auth(tok, Accept="text/csv"))
    assert book.headers["content-type"].startswith("text/csv") and "Trần Thị Ánh" in book.text


async def test_public_tracking_reveals_nothing_personal_and_is_rate_limited(
    client: httpx.AsyncClient, db_conn: Tx,
) -> None:
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0), phone="0987654321")
    r = await client.get(f"/v1/public/dossiers/{code}", params={"phone_last4": "4321"})
    assert r.status_code == 200 and set(r.json()) == {"code", "procedure_name", "status", "status_text", "due_at",
                                                       "acceptance_due_at", "next_step"}
    assert "Nguyễn" not in r.text and r.json()["next_step"] == "Thẩm định, xử lý"
    wrong = await client.get(f"/v1/public/dossiers/{code}", params={"phone_last4": "0000"})
    unknown = await client.get(f"/v1/public/dossiers/{code}X", params={"phone_last4": "4321"})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json()["detail"] == unknown.json()["detail"]
    statuses = [(await client.get(f"/v1/public/dossiers/{code}", params={"phone_last4": "1111"})).status_code
                for _ in range(12)]
    assert 429 in statuses


async def test_strangers_guessing_wrong_never_lock_the_owner_out_of_public_tracking(
    client: httpx.AsyncClient, db_conn: Tx,
) -> None:
    """Ten wrong guesses from each of ten addresses; the owner, from an address of their own, still sees the
    dossier. Before, the limit was keyed by the code alone and the owner got 429."""
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0), phone="0987654321")
    seen = []
    for stranger in range(10):
        statuses = [(await client.get(f"/v1/public/dossiers/{code}", params={"phone_last4": "0000"},
                                      headers={"X-Forwarded-For": f"203.0.113.{stranger}"})).status_code
                    for _ in range(11)]
        seen.append(statuses)
    assert seen[0] == [404] * 10 + [429]  # one address: ten guesses a minute on one code
    assert all(set(s) <= {404, 429} for s in seen) and seen[-1].count(404) < 10  # and 50 wrong an hour in all
    owner = await client.get(f"/v1/public/dossiers/{code}", params={"phone_last4": "4321"},
                             headers={"X-Forwarded-For": "198.51.100.7"})
    assert owner.status_code == 200 and owner.json()["code"] == code


async def test_rating_once_after_return(client: httpx.AsyncClient, make_token: Any, db_conn: Tx) -> None:
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))
    citizen = auth(make_token("citizen", subject=CITIZEN))
    assert_problem(await client.post(f"/v1/dossiers/{code}/rating", json={"score": 5}, headers=citizen),
                   409, "not_returned")
    tok, leader = officer(make_token), officer(make_token, "lanhdao.phuong", role="supervisor")
    await act(client, tok, code, 1, action="start")
    await act(client, leader, code, 2, action="approve")
    await act(client, tok, code, 3, action="return_result")
    assert_problem(await client.post(f"/v1/dossiers/{code}/rating", json={"score": 6}, headers=citizen),
                   422, "validation_error")
    assert (await client.post(f"/v1/dossiers/{code}/rating", json={"score": 4, "comment": "Tốt"},
                              headers=citizen)).status_code == 201
    assert_problem(await client.post(f"/v1/dossiers/{code}/rating", json={"score": 5}, headers=citizen),
                   409, "already_rated")
    assert_problem(await client.post(f"/v1/dossiers/{code}/rating", json={"score": 5}, headers=auth(tok)),
                   404, "not_found")


@pytest.mark.parametrize("who", ["citizen", "officer"])
async def test_withdraw_form_05(client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
                                who: str) -> None:
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))
    tok = make_token("citizen", subject=CITIZEN) if who == "citizen" else officer(make_token)
    assert_problem(await client.get(f"/v1/dossiers/{code}/withdrawal-notice", headers=auth(tok)), 409, "conflict")
    r = await act(client, tok, code, 1, action="withdraw", note="Tôi không cần nữa")
    assert r.status_code == 200 and r.json()["status"] == "withdrawn" and r.json()["allowed_actions"] == []
    pdf = await client.get(f"/v1/dossiers/{code}/withdrawal-notice", headers=auth(tok))
    words = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "DỪNG GIẢI QUYẾT" in words and "Tôi không cần nữa" in words


async def test_a_retried_action_with_the_same_key_is_replayed_not_repeated(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    code = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))
    headers = auth(officer(make_token), **{"If-Match": '"1"', "Idempotency-Key": uuid.uuid4().hex})
    first = await client.post(f"/v1/dossiers/{code}/actions", json={"action": "start"}, headers=headers)
    again = await client.post(f"/v1/dossiers/{code}/actions", json={"action": "start"}, headers=headers)
    assert first.status_code == again.status_code == 200 and again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    n = await db_conn.fetchval("SELECT count(*) FROM workflow.history WHERE dossier_code=$1 AND action='start'", code)
    assert n == 1


async def test_deadline_watch_marks_overdue_and_warns_supervisors_once(db_conn: Tx) -> None:
    late = await new_dossier(db_conn, vn(2026, 11, 30, 9, 0))  # due Thursday 3 Dec 09:00
    soon = await new_dossier(db_conn, vn(2026, 12, 1, 9, 0))  # due Friday 4 Dec 09:00
    far = await new_dossier(db_conn, vn(2026, 12, 3, 9, 0))  # due Tuesday 8 Dec 09:00
    now = vn(2026, 12, 3, 10, 0)
    await jobs.run_deadline_watch(db_conn, now)
    await jobs.run_deadline_watch(db_conn, now)  # a second tick warns nobody again
    flags = {r[0]: r[1] for r in await db_conn.fetch(
        "SELECT code, (overdue_marked_at IS NOT NULL)::text || '/' || (due_soon_warned_at IS NOT NULL)::text "
        "FROM workflow.dossiers WHERE code IN ($1, $2, $3)", late, soon, far)}
    assert flags == {late: "true/false", soon: "false/true", far: "false/false"}
    warnings = [dict(r) for r in await db_conn.fetch(
        "SELECT template, recipient AS to, params FROM workflow.notification_outbox "
        "WHERE template LIKE 'supervisor_%'")]
    overdue = [w for w in warnings if w["template"] == "supervisor_overdue" and late in w["params"]["codes"]]
    due_soon = [w for w in warnings if w["template"] == "supervisor_due_soon" and soon in w["params"]["codes"]]
    assert len(overdue) == 1 and len(due_soon) == 1 and overdue[0]["to"] == f"lanh-dao@{WARD}"


async def test_notifications_go_through_the_adapter_once_per_key(
    db_conn: Tx, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.dossier_workflow.notifier import LogNotifier

    outbox = tmp_path / "outbox.jsonl"
    monkeypatch.setattr(jobs, "_notifier", LogNotifier(outbox))
    message = {"channel": "sms", "to": "0912345678", "template": "result_ready", "dossier_code": "X-1",
               "params": {"code": "X-1", "procedure": "Khai sinh", "outcome": "approved"}, "key": uuid.uuid4().hex}
    await jobs.on_notification(db_conn, [message])
    await jobs.on_notification(db_conn, [message])  # delivered twice by the queue: sent once
    lines = outbox.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and "X-1" in lines[0] and "0912345678" in lines[0]


async def test_a_failing_provider_leaves_the_notification_unrecorded_for_a_retry(
    db_conn: Tx, monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Down:
        async def send(self, message: Any) -> None:
            raise ConnectionError("SMS provider down")

    monkeypatch.setattr(jobs, "_notifier", Down())
    key = uuid.uuid4().hex
    with pytest.raises(ConnectionError):
        async with job_unit(db_conn) as tx:  # as the worker runs a job: the transaction rolls back on the error
            await jobs.on_notification(tx, [{"channel": "sms", "to": "0912345678", "template": "apology",
                                              "params": {}, "key": key}])
    assert await db_conn.fetchval("SELECT count(*) FROM workflow.notifications WHERE dedupe_key=$1", key) == 0


async def test_the_outbox_flush_sends_each_message_once_and_hands_a_refused_one_to_its_own_job(
    db_conn: Tx, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.dossier_workflow.notifier import LogNotifier, Message

    sent_file = tmp_path / "sent.jsonl"

    class RefusesOneNumber(LogNotifier):
        async def send(self, message: Message) -> None:
            if message.to == "0900000000":
                raise ConnectionError("provider refused the number")
            await super().send(message)

    monkeypatch.setattr(jobs, "_notifier", RefusesOneNumber(sent_file))
    await db_conn.execute("DELETE FROM workflow.notification_outbox")
    tag = uuid.uuid4().hex[:8]
    for i, to in enumerate(["0912345678", "0900000000", "0987654321"]):
        message = {"channel": "sms", "to": to, "template": "result_ready", "dossier_code": f"X-{tag}-{i}",
                   "params": {"code": f"X-{tag}-{i}", "procedure": "Khai sinh", "outcome": "approved"},
                   "key": f"{tag}:{i}"}
        await outbox_repository.queue_notification(db_conn, message)
        await outbox_repository.queue_notification(db_conn, message)  # queued twice under one key: kept once
    await jobs.on_notification_flush(db_conn, [{}])
    await jobs.on_notification_flush(db_conn, [{}])  # the outbox is empty now: nothing sent again
    lines = sent_file.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and all(tag in line for line in lines) and "0900000000" not in "".join(lines)
    left = await db_conn.fetchval("SELECT count(*) FROM workflow.notification_outbox")
    recorded = [r[0] for r in await db_conn.fetch(
        "SELECT dedupe_key FROM workflow.notifications WHERE dedupe_key LIKE $1 ORDER BY 1", f"{tag}:%")]
    retried = [r[0] for r in await db_conn.fetch(
        "SELECT convert_from(payload, 'UTF8')::jsonb->'data'->>'key' FROM jobs.pgqueuer "
        "WHERE entrypoint = 'notification.send' AND convert_from(payload, 'UTF8')::jsonb->'data'->>'key' LIKE $1",
        f"{tag}:%")]
    assert left == 0 and recorded == [f"{tag}:0", f"{tag}:2"] and retried == [f"{tag}:1"]


async def test_a_full_notification_batch_queues_the_next_flush_at_once_and_chains_merge(
    db_conn: Tx, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.dossier_workflow.notifier import LogNotifier

    monkeypatch.setattr(jobs, "_notifier", LogNotifier(tmp_path / "sent.jsonl"))
    monkeypatch.setattr(jobs, "NOTIFICATION_BATCH", 2)
    await db_conn.execute("DELETE FROM workflow.notification_outbox")
    await db_conn.execute("DELETE FROM jobs.pgqueuer WHERE entrypoint = 'notification.flush'")
    tag = uuid.uuid4().hex[:8]
    for i in range(7):
        await outbox_repository.queue_notification(db_conn, {
            "channel": "sms", "to": "0912345678", "template": "result_ready", "dossier_code": f"X-{tag}-{i}",
            "params": {"code": f"X-{tag}-{i}"}, "key": f"{tag}:{i}"})
    await db_conn.execute("DELETE FROM jobs.pgqueuer WHERE entrypoint = 'notification.flush'")

    async def follow_ups() -> list[tuple[str, bool]]:
        rows = await db_conn.fetch(
            "SELECT dedupe_key, execute_after <= now() AS due FROM jobs.pgqueuer "
            "WHERE entrypoint = 'notification.flush' ORDER BY id")
        return [(r[0], r[1]) for r in rows]

    await jobs.on_notification_flush(db_conn, [{}])  # a per-second flush: full batch -> chain "a", due now
    assert await follow_ups() == [("notification.flush:more:a", True)]
    await jobs.on_notification_flush(db_conn, [{"chain": "a"}])  # the follow-up runs: full -> "b"
    assert await follow_ups() == [("notification.flush:more:a", True), ("notification.flush:more:b", True)]
    await jobs.on_notification_flush(db_conn, [{"chain": "a"}])  # another "a" chain meets the queued "b": merges
    assert [k for k, _ in await follow_ups()].count("notification.flush:more:b") == 1
    await jobs.on_notification_flush(db_conn, [{"chain": "b"}])  # 1 message left: not full, no follow-up
    assert len(await follow_ups()) == 2
    assert await db_conn.fetchval("SELECT count(*) FROM workflow.notification_outbox") == 0
