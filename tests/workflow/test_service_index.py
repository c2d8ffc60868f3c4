"""The service index (Decision 766/QĐ-TTg): each figure of GET /stats equals a direct count over the dossiers
and their history, for dossiers built through the real action paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.dossier_workflow import jobs, stats_repository
from services.dossier_workflow.app import create_app
from services.dossier_workflow.schemas import StatsOut
from shared.calendar import VN_TZ
from shared.db import Tx
from tests.conftest import app_client_factory, auth
from tests.workflow.helpers import CITIZEN, WARD, act, new_dossier, officer, share, stats

client = app_client_factory(create_app)

LOCAL_DAY = "(({col}) AT TIME ZONE 'Asia/Ho_Chi_Minh')::date BETWEEN $2 AND $3"
# Direct counts, from the dossiers and their history, never from the aggregate.
DIRECT = f"""
SELECT
  (SELECT count(*) FROM workflow.dossiers WHERE receiving_agency = $1 AND {LOCAL_DAY.format(col="received_at")})
    AS received,
  (SELECT count(*) FROM workflow.dossiers WHERE receiving_agency = $1 AND {LOCAL_DAY.format(col="received_at")}
     AND synced_at IS NOT NULL) AS synced,
  (SELECT count(*) FROM workflow.dossiers WHERE receiving_agency = $1 AND {LOCAL_DAY.format(col="resolved_at")})
    AS resolved,
  (SELECT count(*) FROM workflow.dossiers WHERE receiving_agency = $1 AND {LOCAL_DAY.format(col="resolved_at")}
     AND resolved_at <= original_due_at) AS resolved_in_time,
  (SELECT count(*) FROM workflow.dossiers WHERE receiving_agency = $1 AND {LOCAL_DAY.format(col="resolved_at")}
     AND (resolved_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date < (original_due_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date)
    AS resolved_early,
  (SELECT count(*) FROM workflow.dossiers WHERE receiving_agency = $1 AND {LOCAL_DAY.format(col="returned_at")})
    AS returned,
  (SELECT count(*) FROM workflow.history WHERE counted_agency = $1 AND {LOCAL_DAY.format(col="at")}
     AND action = 'return_result' AND data->>'method' = 'electronic') AS electronic_results,
  (SELECT count(*) FROM workflow.history WHERE counted_agency = $1 AND {LOCAL_DAY.format(col="at")}
     AND action = 'rate') AS rating_count,
  (SELECT count(*) FROM workflow.history WHERE counted_agency = $1 AND {LOCAL_DAY.format(col="at")}
     AND action = 'rate' AND (data->>'rating')::int >= 4) AS rating_satisfied,
  (SELECT count(*) FROM workflow.dossiers WHERE receiving_agency = $1
     AND status IN ('received', 'in_progress', 'supplement_requested')
     AND NOT (status IN ('received', 'in_progress') AND coalesce(due_at < $4, false))) AS in_progress_on_time,
  (SELECT count(*) FROM workflow.dossiers WHERE receiving_agency = $1
     AND status IN ('received', 'in_progress') AND due_at < $4) AS in_progress_overdue
"""
# What the old figures counted: results asked for at receipt, and synchronisations by the day they happened.
REQUESTED_ELECTRONIC = f"""SELECT count(*) FROM workflow.history WHERE counted_agency = $1
    AND {LOCAL_DAY.format(col="at")} AND action = 'receive' AND data->>'result_delivery' = 'electronic'"""
SYNCED_THAT_DAY = f"""SELECT count(*) FROM workflow.history WHERE counted_agency = $1
    AND {LOCAL_DAY.format(col="at")} AND action = 'portal_synced'"""


async def _run(client: httpx.AsyncClient, token: str, code: str, steps: list[tuple[str, dict[str, Any]]]) -> None:
    """Actions in order; `approve` carries the approving leader's token as its body's `_by`."""
    for version, (action, body) in enumerate(steps, start=1):
        who = body.get("_by", token)
        r = await act(client, who, code, version, action=action, **{k: v for k, v in body.items() if k != "_by"})
        assert r.status_code == 200, (action, r.text)


async def test_every_figure_equals_a_direct_count(client: httpx.AsyncClient, make_token: Any, db_conn: Tx) -> None:
    tok, leader = officer(make_token), officer(make_token, "lanhdao.phuong", role="supervisor")
    citizen = make_token("citizen", subject=CITIZEN)
    now = datetime.now(UTC)
    today = now.astimezone(VN_TZ).date()
    days_ago = [now - timedelta(days=d) for d in (3, 12, 20)]

    # Received days ago, synchronised today: a day's synchronisations are not that day's receipts.
    old = [await new_dossier(db_conn, days_ago[0] + timedelta(minutes=i)) for i in range(2)]
    fresh = await new_dossier(db_conn, now - timedelta(seconds=30))
    asked_e = await new_dossier(db_conn, days_ago[0], delivery="electronic")
    got_e = await new_dossier(db_conn, days_ago[0])
    default_e = await new_dossier(db_conn, now - timedelta(minutes=5), delivery="electronic")
    late = await new_dossier(db_conn, days_ago[2])
    overdue = await new_dossier(db_conn, days_ago[1])
    paused = await new_dossier(db_conn, days_ago[1])
    await jobs.on_portal_sync(db_conn, [{"code": old[0]}])  # syncs the whole outbox, each dossier once
    await jobs.on_portal_sync(db_conn, [{"code": fresh}])  # again: nothing new
    unsynced = await new_dossier(db_conn, now - timedelta(seconds=20))
    assert fresh != unsynced

    approve = ("approve", {"_by": leader})
    # Asked for an electronic result and took it at the counter; asked for paper and got it electronically.
    await _run(client, tok, asked_e, [("start", {}), approve, ("return_result", {"method": "counter"})])
    await _run(client, tok, got_e, [("start", {}), approve, ("return_result", {"method": "electronic"})])
    await _run(client, tok, default_e, [("start", {}), approve, ("return_result", {})])  # early: due in 3 days
    await _run(client, tok, late, [("start", {}), approve, ("return_result", {})])  # late: due long ago
    for code, score in ((asked_e, 5), (got_e, 4), (late, 2)):
        r = await client.post(f"/v1/dossiers/{code}/rating", json={"score": score}, headers=auth(citizen))
        assert r.status_code == 201, r.text
    # In progress now: overdue (clock running, past due), on time, and paused for a supplement (not overdue).
    await _run(client, tok, overdue, [("start", {})])
    await _run(client, tok, paused, [("request_supplement", {"documents": ["Bản sao Giấy khai sinh"]})])

    checked = datetime.now(UTC)
    for start, end in ((today, today), (today - timedelta(days=30), today)):
        figures = (await stats(client, leader, start, end))[0]
        d = await db_conn.fetchrow(DIRECT, WARD, start, end, checked)
        assert d is not None
        expected = {
            "received": d["received"], "resolved": d["resolved"],
            "resolved_early": d["resolved_early"], "resolved_on_time": d["resolved_in_time"] - d["resolved_early"],
            "resolved_late": d["resolved"] - d["resolved_in_time"],
            "on_time_rate": share(d["resolved_in_time"], d["resolved"]), "returned": d["returned"],
            "electronic_results": d["electronic_results"],
            "share_electronic_result": share(d["electronic_results"], d["returned"]),
            "synced": d["synced"], "share_synced": share(d["synced"], d["received"]),
            "rating_count": d["rating_count"], "rating_satisfied": d["rating_satisfied"],
            "satisfaction_rate": share(d["rating_satisfied"], d["rating_count"]),
            "in_progress_on_time": d["in_progress_on_time"], "in_progress_overdue": d["in_progress_overdue"],
        }
        assert {k: figures[k] for k in expected} == expected, (start, end)

    # Today: three dossiers received, two of them synced; nine synchronisations happened today (3.0 before).
    day = (await stats(client, leader, today, today))[0]
    if (now - timedelta(seconds=30)).astimezone(VN_TZ).date() == today:
        assert day["received"] >= 2 and day["share_synced"] is not None and day["share_synced"] < 1
        assert await db_conn.fetchval(SYNCED_THAT_DAY, WARD, today, today) > day["received"]
    month = (await stats(client, leader, today - timedelta(days=30), today))[0]
    assert month["synced"] == month["received"] - 1  # every dossier but `unsynced` (and none twice)
    assert month["resolved"] == 4 and month["resolved_late"] >= 1 and month["resolved_early"] >= 1
    # Electronic results ISSUED: got_e and default_e; asked_e asked for one and took paper.
    assert month["electronic_results"] == 2 and month["share_electronic_result"] == 0.5
    assert await db_conn.fetchval(REQUESTED_ELECTRONIC, WARD, today - timedelta(days=30), today) == 2
    assert month["rating_count"] == 3 and month["rating_satisfied"] == 2 and month["satisfaction_rate"] == 0.6667
    assert month["average_rating"] == round(11 / 3, 2)
    assert month["in_progress_overdue"] >= 1 and month["in_progress_on_time"] >= 3  # paused, fresh, unsynced, old
    assert all(0 <= month[k] <= 1 for k in ("share_synced", "share_electronic_result", "satisfaction_rate",
                                            "on_time_rate"))


async def test_groups_add_up_and_in_progress_is_not_a_month_figure(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    tok, leader = officer(make_token), officer(make_token, "lanhdao.phuong", role="supervisor")
    now = datetime.now(UTC)
    today = now.astimezone(VN_TZ).date()
    for i, channel in enumerate(["counter", "online", "postal", "online"]):
        code = await new_dossier(db_conn, now - timedelta(days=10 + i), channel=channel)
        if i % 2:
            assert (await act(client, tok, code, 1, action="start")).status_code == 200
    # Received long before the period, still in progress now: its channel shows though it had no event.
    await new_dossier(db_conn, now - timedelta(days=80), channel="postal")
    start = today - timedelta(days=30)
    whole = (await stats(client, leader, start, today))[0]
    by_channel = await stats(client, leader, start, today, "channel")
    for key in ("received", "in_progress_on_time", "in_progress_overdue", "synced"):
        assert sum(g[key] for g in by_channel) == whole[key], key
    assert whole["in_progress_on_time"] + whole["in_progress_overdue"] == await db_conn.fetchval(
        "SELECT count(*) FROM workflow.dossiers WHERE receiving_agency = $1 AND status IN "
        "('received', 'in_progress', 'supplement_requested')", WARD)
    recent = (await stats(client, leader, today - timedelta(days=5), today, "channel"))
    assert {g["group"] for g in recent} >= {"postal"}  # groups with dossiers in progress only
    assert all(g["received"] == 0 for g in recent if g["group"] == "postal")
    by_month = await stats(client, leader, start, today, "month")
    assert all(g["in_progress_on_time"] is None and g["in_progress_overdue"] is None for g in by_month)


async def test_trigger_and_rebuild_agree_on_the_new_meanings(
    client: httpx.AsyncClient, make_token: Any, db_conn: Tx,
) -> None:
    tok, leader = officer(make_token), officer(make_token, "lanhdao.phuong", role="supervisor")
    citizen = make_token("citizen", subject=CITIZEN)
    now = datetime.now(UTC)
    for i in range(6):
        code = await new_dossier(db_conn, now - timedelta(days=i, minutes=1), delivery="electronic" if i % 2
                                 else "counter", channel="online" if i % 3 else "counter")
        if i % 2 == 0:
            await jobs.on_portal_sync(db_conn, [{"code": code}])
        if i < 4:
            await _run(client, tok, code, [("start", {}), ("approve", {"_by": leader}),
                                           ("return_result", {"method": "electronic" if i % 3 else "counter"})])
            r = await client.post(f"/v1/dossiers/{code}/rating", json={"score": i + 2}, headers=auth(citizen))
            assert r.status_code == 201
    columns = ", ".join(stats_repository.STAT_COLUMNS)
    query = f"SELECT counted_agency, day, procedure_code, field_code, channel, {columns} FROM workflow.stats_daily"
    by_trigger = {tuple(r[:5]): tuple(r[5:]) for r in await db_conn.fetch(query)}
    await stats_repository.rebuild_stats(db_conn)
    assert {tuple(r[:5]): tuple(r[5:]) for r in await db_conn.fetch(query)} == by_trigger
    totals = await db_conn.fetchrow("SELECT sum(synced) AS s, sum(received) AS r, sum(rating_4) + sum(rating_5) AS "
                                    "happy, sum(rating_count) AS n FROM workflow.stats_daily")
    assert totals is not None and totals["s"] <= totals["r"] and totals["happy"] <= totals["n"]


def test_openapi_example_names_every_figure() -> None:
    schema = StatsOut.model_json_schema()
    assert set(schema["examples"][0]) == set(StatsOut.model_fields)
    StatsOut.model_validate(schema["examples"][0])
    assert all(" / " in (f.description or "") for f in StatsOut.model_fields.values())
