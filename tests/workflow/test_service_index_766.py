"""The rest of the service index (Decision 766/QĐ-TTg): digitisation, online share by online level, procedures
offered online, online payment (null until payments exist), acceptance of online dossiers apart from overdue,
publication on time, and points per criterion. Dossiers go through intake's API and the `dossier.received` job it
queues; every figure of GET /stats is compared with a direct count over the raw tables."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.dossier_workflow import dossiers_repository as repo
from services.dossier_workflow import jobs, service, service_index, stats_repository
from services.dossier_workflow.app import create_app
from services.intake.app import create_app as create_intake_app
from shared.auth import Principal
from shared.calendar import VN_TZ
from shared.db import Tx
from tests.conftest import app_client_factory, auth
from tests.intake.helpers import body
from tests.workflow.helpers import CITIZEN, WARD, new_dossier, officer, received_job, share, stats

client = app_client_factory(create_app)
intake = app_client_factory(create_intake_app)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PARTIAL_ONLINE = "TEST.766"

LOCAL_DAY = "(({col}) AT TIME ZONE 'Asia/Ho_Chi_Minh')::date BETWEEN $2 AND $3"
RECEIPTS = f"FROM workflow.history WHERE counted_agency = $1 AND action = 'receive' AND {LOCAL_DAY.format(col='at')}"
ACCEPTS = f"FROM workflow.history WHERE counted_agency = $1 AND action = 'accept' AND {LOCAL_DAY.format(col='at')}"
DIRECT = f"""
SELECT
  (SELECT count(*) {RECEIPTS}) AS received,
  (SELECT count(*) {RECEIPTS} AND data->>'digitised' = 'true') AS digitised,
  (SELECT count(*) {RECEIPTS} AND data->>'online_level' = 'full') AS level_full,
  (SELECT count(*) {RECEIPTS} AND data->>'online_level' = 'partial') AS level_partial,
  (SELECT count(*) {RECEIPTS} AND data->>'online_level' = 'full' AND channel = 'online') AS online_full,
  (SELECT count(*) {RECEIPTS} AND data->>'online_level' = 'partial' AND channel = 'online') AS online_partial,
  (SELECT count(*) {RECEIPTS} AND channel = 'online') AS online,
  (SELECT count(*) {ACCEPTS}) AS accepted,
  (SELECT count(*) {ACCEPTS} AND data->>'accepted_late' = 'true') AS accepted_late,
  (SELECT count(*) FROM workflow.dossiers WHERE receiving_agency = $1 AND {LOCAL_DAY.format(col="received_at")}
     AND synced_at IS NOT NULL) AS synced,
  (SELECT count(*) FROM workflow.dossiers WHERE receiving_agency = $1 AND {LOCAL_DAY.format(col="received_at")}
     AND synced_at <= received_at + interval '24 hours') AS synced_on_time
"""
# The catalog in force on a day: each code's latest version from then.
CATALOG = """
SELECT count(*) AS procedures,
       count(*) FILTER (WHERE channels ? 'online' AND online_level = 'full') AS online_full,
       count(*) FILTER (WHERE channels ? 'online' AND online_level = 'partial') AS online_partial
FROM (SELECT DISTINCT ON (code) * FROM core.procedures WHERE effective_from <= $1
      ORDER BY code, effective_from DESC) p
"""
# What intake itself holds of each dossier: were its components electronic, at which online level.
INTAKE_FACTS = """
SELECT d.code, d.channel = 'online' OR (jsonb_array_length(d.documents) > 0 AND NOT EXISTS (
           SELECT 1 FROM jsonb_array_elements(d.documents) e
           WHERE coalesce(jsonb_array_length(e->'file_ids'), 0) = 0)) AS digitised,
       p.online_level
FROM intake.dossiers d JOIN core.procedures p ON p.id = d.procedure_version_id WHERE d.code = ANY($1)
"""


async def _submit(intake: httpx.AsyncClient, headers: dict[str, str], **over: Any) -> str:
    r = await intake.post("/v1/dossiers", json=body(**over), headers={**headers,
                                                                    "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 201, r.text
    return str(r.json()["code"])


async def _accept(tx: Tx, code: str, at: datetime, late: bool) -> None:
    """The history row helper B's `accept` action writes (data accepted_late, acceptance_due_at), written through
    the repository function every action uses. LEAD: once B's action is merged, drive it through
    POST /v1/dossiers/{code}/actions {"action": "accept"} instead."""
    d = await repo.get_dossier(tx, code)
    assert d is not None
    who = Principal(subject="canbo.phuong", role="officer", agency_code=WARD)
    due = at + (timedelta(hours=-1) if late else timedelta(hours=4))
    await repo.transition(tx, code, {}, service.history_row(
        d, who, "accept", d["status"], at, data={"accepted_late": late, "acceptance_due_at": due.isoformat()}))


async def _received_from_intake(tx: Tx, codes: list[str]) -> list[dict[str, Any]]:
    rows = await tx.fetch("SELECT convert_from(payload, 'UTF8')::jsonb->'data' AS data FROM jobs.pgqueuer "
                          "WHERE entrypoint = 'dossier.received' "
                          "AND convert_from(payload, 'UTF8')::jsonb->'data'->>'code' = ANY($1)", codes)
    return [dict(r["data"]) for r in rows]


async def test_each_new_figure_equals_a_direct_count(
    client: httpx.AsyncClient, intake: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    leader = officer(make_token, "lanhdao.phuong", role="supervisor")
    today = datetime.now(UTC).astimezone(VN_TZ).date()
    before = (await stats(client, leader, today - timedelta(days=30), today))[0]
    counter = auth(make_token("officer", subject="canbo.phuong", agency_code=WARD))
    citizen = auth(make_token("citizen", subject=CITIZEN))
    # A procedure offered online in part (the seed has none): a version of 1.001193 under another code.
    await db_conn.execute(
        "INSERT INTO core.procedures (code, effective_from, name, search_text, field_code, level, time_limit, fee, "
        "documents, channels, online_level, urgent, result_delivery, inter_agency, notes) SELECT $1, effective_from, "
        "name, search_text, field_code, level, time_limit, fee, documents, '[\"counter\", \"online\"]'::jsonb, "
        "'partial', urgent, result_delivery, inter_agency, notes FROM core.procedures WHERE code = '1.001193' "
        "ORDER BY effective_from DESC LIMIT 1", PARTIAL_ONLINE)
    scans = []
    for name in ("to-khai.png", "giay-chung-sinh.png"):
        r = await intake.post("/v1/files", files={"file": (name, PNG, "image/png")}, headers=counter)
        assert r.status_code == 201, r.text
        scans.append(r.json()["id"])
    documents = [{"name": "Tờ khai đăng ký khai sinh", "file_ids": [scans[0]]},
                 {"name": "Giấy chứng sinh", "file_ids": [scans[1]]}]
    codes = [
        await _submit(intake, counter),  # paper only: not digitised (full-online procedure, at the counter)
        await _submit(intake, counter, documents=documents),  # every paper scanned: digitised
        await _submit(intake, counter, documents=[documents[0], {"name": "Giấy chứng sinh"}]),  # one not: not
        await _submit(intake, citizen, channel="online"),  # filed online: digitised, full level
        await _submit(intake, citizen, channel="online", procedure_code=PARTIAL_ONLINE),  # online, partial level
        await _submit(intake, counter, procedure_code=PARTIAL_ONLINE),  # counter, partial level
        await _submit(intake, counter, procedure_code="2.000884",  # counter only: partial level, not online
                      documents=[{"name": "Giấy tờ cần chứng thực chữ ký"}, {"name": "Giấy tờ tùy thân"}]),
    ]
    payloads = await _received_from_intake(db_conn, codes)
    assert len(payloads) == len(codes)
    await jobs.on_received(db_conn, payloads)
    facts = {r["code"]: (r["digitised"], r["online_level"]) for r in await db_conn.fetch(INTAKE_FACTS, codes)}
    carried = {p["code"]: (p["digitised"], p["online_level"]) for p in payloads}
    assert carried == facts  # the event carries what intake holds
    assert [facts[c][0] for c in codes] == [False, True, False, True, True, False, False]
    assert [facts[c][1] for c in codes] == ["full", "full", "full", "full", "partial", "partial", "partial"]

    now = datetime.now(UTC)
    # Received three days ago (an older event without the new keys: digitised when online), synced now: late.
    old_job = await received_job(db_conn, now - timedelta(days=3), channel="online")
    assert await service.receive(db_conn, old_job)
    await new_dossier(db_conn, now - timedelta(days=3))
    await jobs.on_portal_sync(db_conn, [{}])  # everything in the outbox: the new ones on time, the old late
    unsynced = await new_dossier(db_conn, now - timedelta(seconds=10), channel="online")
    for code, late in ((codes[3], False), (codes[4], True), (old_job["code"], True)):
        await _accept(db_conn, code, now - timedelta(seconds=5), late)

    for start, end in ((today, today), (today - timedelta(days=30), today)):
        got = (await stats(client, leader, start, end))[0]
        d = await db_conn.fetchrow(DIRECT, WARD, start, end)
        c = await db_conn.fetchrow(CATALOG, end)
        assert d is not None and c is not None
        expected = {
            "received": d["received"], "digitised": d["digitised"],
            "digitisation_rate": share(d["digitised"], d["received"]),
            "received_level_full": d["level_full"], "received_level_partial": d["level_partial"],
            "received_online_full": d["online_full"], "received_online_partial": d["online_partial"],
            "share_online_full": share(d["online_full"], d["level_full"]),
            "share_online_partial": share(d["online_partial"], d["level_partial"]),
            "share_online": share(d["online"], d["received"]),
            "procedures": c["procedures"], "procedures_online_full": c["online_full"],
            "procedures_online_partial": c["online_partial"],
            "share_procedures_online": share(c["online_full"] + c["online_partial"], c["procedures"]),
            "share_procedures_online_full": share(c["online_full"], c["procedures"]),
            "share_procedures_online_partial": share(c["online_partial"], c["procedures"]),
            "online_payments": None, "share_online_payment": None,
            "accepted": d["accepted"], "accepted_late": d["accepted_late"],
            "share_accepted_late": share(d["accepted_late"], d["accepted"]),
            "synced": d["synced"], "synced_on_time": d["synced_on_time"],
            "share_synced_on_time": share(d["synced_on_time"], d["received"]),
        }
        assert {k: got[k] for k in expected} == expected, (start, end)
        assert "thanh toán" in got["online_payment_note"] and "payment" in got["online_payment_note"]
        shares = [k for k in got if (k.startswith("share_") or k.endswith("_rate")) and got[k] is not None]
        assert all(0 <= got[k] <= 1 for k in shares), {k: got[k] for k in shares}

    month = (await stats(client, leader, today - timedelta(days=30), today))[0]
    # What this test built (other tests may have committed dossiers of this agency: differences), so the direct
    # counts are not both zero: 10 receipts, 3 of the intake ones digitised and the job helper's 2 online ones;
    # 2 of 3 online acceptances late; the intake ones synced on time, the two old ones late, `unsynced` not.
    grew = {k: month[k] - before[k] for k in ("received", "digitised", "received_level_full",
                                              "received_level_partial", "received_online_full",
                                              "received_online_partial", "accepted", "accepted_late", "synced",
                                              "synced_on_time")}
    assert {k: v for k, v in grew.items() if not k.startswith("synced")} == {
        "received": 10, "digitised": 5, "received_level_full": 4, "received_level_partial": 3,
        "received_online_full": 1, "received_online_partial": 1, "accepted": 3, "accepted_late": 2}
    assert grew["synced_on_time"] >= 7 and grew["synced"] - grew["synced_on_time"] >= 2
    assert month["procedures_online_partial"] >= 1 and month["share_procedures_online"] is not None
    assert await db_conn.fetchval("SELECT synced_at FROM workflow.dossiers WHERE code = $1", unsynced) is None

    by_channel = await stats(client, leader, today - timedelta(days=30), today, "channel")
    for key in ("digitised", "received_level_full", "received_level_partial", "accepted", "accepted_late",
                "synced_on_time"):
        assert sum(g[key] for g in by_channel) == month[key], key
    by_procedure = {g["group"]: g for g in await stats(client, leader, today - timedelta(days=30), today,
                                                         "procedure")}
    assert by_procedure[PARTIAL_ONLINE]["procedures"] == 1
    assert by_procedure[PARTIAL_ONLINE]["procedures_online_partial"] == 1


async def test_points_per_criterion_follow_the_table(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    leader = officer(make_token, "lanhdao.phuong", role="supervisor")
    now = datetime.now(UTC)
    for i in range(3):
        await new_dossier(db_conn, now - timedelta(minutes=i + 1), channel="online" if i else "counter")
    await jobs.on_portal_sync(db_conn, [{}])
    today = now.astimezone(VN_TZ).date()
    got = (await stats(client, leader, today, today))[0]
    assert sum(c["max_points"] for c in service_index.CRITERIA) == 100
    for spec in service_index.CRITERIA:  # the weights of each criterion make its maximum
        assert sum(i["weight"] for i in spec["indicators"]) == spec["max_points"], spec["code"]
    by_code = {c["code"]: c for c in got["criteria"]}
    assert list(by_code) == ["transparency", "progress", "digitisation", "online", "satisfaction"]
    for criterion in got["criteria"]:
        for ind in criterion["indicators"]:
            value = got[ind["figure"]] if ind["figure"] else None
            assert ind["value"] == value
            assert ind["points"] == (round(ind["weight"] * value, 2) if value is not None else None), ind["code"]
        known = [i for i in criterion["indicators"] if i["points"] is not None]
        assert criterion["known_max_points"] == sum(i["weight"] for i in known)
        assert criterion["points"] == (round(sum(i["points"] for i in known), 2) if known else None)
        assert criterion["points"] is None or 0 <= criterion["points"] <= criterion["known_max_points"]
    # Indicators the system does not record are unknown, not zero; the known ones here are all there.
    transparency = by_code["transparency"]
    assert transparency["points"] is not None and transparency["known_max_points"] == 14
    online = {i["code"]: i for i in by_code["online"]["indicators"]}
    assert online["online_payment"]["points"] is None and online["dossiers_online"]["value"] == got["share_online"]
    assert online["procedures_online"]["points"] is not None and by_code["online"]["known_max_points"] == 16
    assert all(i["points"] is None for c in got["criteria"] for i in c["indicators"] if i["figure"] is None)
    known = [c for c in got["criteria"] if c["points"] is not None]
    assert got["index_points"] == round(sum(c["points"] for c in known), 2)
    assert got["index_known_max_points"] == sum(c["known_max_points"] for c in known)


async def test_an_empty_period_divides_by_nothing(client: httpx.AsyncClient, make_token: Any) -> None:
    leader = officer(make_token, "lanhdao.phuong", role="supervisor")
    start = datetime.now(UTC).astimezone(VN_TZ).date() - timedelta(days=200)
    got = (await stats(client, leader, start, start + timedelta(days=5), "month"))
    assert got == [] or all(g["received"] == 0 for g in got)
    whole = (await stats(client, leader, start, start + timedelta(days=5)))[0]
    assert whole["received"] == 0 and whole["digitisation_rate"] is None and whole["share_online_full"] is None
    assert whole["share_synced_on_time"] is None and whole["share_accepted_late"] is None
    assert whole["share_online_payment"] is None and whole["online_payment_note"]
    assert {c["code"]: c["points"] for c in whole["criteria"]}["digitisation"] is None


TOTALS = ("SELECT coalesce(sum(received), 0) AS r, coalesce(sum(synced), 0) AS s, coalesce(sum(synced_on_time), 0) "
          "AS t, coalesce(sum(received_digitised), 0) AS g, coalesce(sum(accepted), 0) AS a, "
          "coalesce(sum(accepted_late), 0) AS al FROM workflow.stats_daily")


async def test_trigger_and_rebuild_agree_on_the_new_counts(make_token: Any, db_conn: Tx) -> None:
    now = datetime.now(UTC)
    before = await db_conn.fetchrow(TOTALS)
    for i in range(6):
        job = await received_job(db_conn, now - timedelta(days=i, minutes=1), channel="online" if i % 2 else "counter")
        job.update(digitised=i % 3 == 0, online_level=("full", "partial", None)[i % 3])
        assert await service.receive(db_conn, job)
        if i % 2:
            await _accept(db_conn, job["code"], now - timedelta(seconds=i), late=i == 3)
    await jobs.on_portal_sync(db_conn, [{}])
    columns = ", ".join(stats_repository.STAT_COLUMNS)
    query = f"SELECT counted_agency, day, procedure_code, field_code, channel, {columns} FROM workflow.stats_daily"
    by_trigger = {tuple(r[:5]): tuple(r[5:]) for r in await db_conn.fetch(query)}
    await stats_repository.rebuild_stats(db_conn)
    assert {tuple(r[:5]): tuple(r[5:]) for r in await db_conn.fetch(query)} == by_trigger
    after = await db_conn.fetchrow(TOTALS)
    assert before is not None and after is not None
    assert tuple(after[k] - before[k] for k in ("r", "g", "a", "al")) == (6, 2, 3, 1)
    assert after["t"] - before["t"] >= 1 and after["t"] <= after["s"] <= after["r"]
