"""SQL of the service-index figures: the daily aggregate (kept by a trigger on the history) and its rebuild."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects.postgresql import distinct_on

from services.dossier_workflow.deadlines import ACTIVE_CLOCK
from services.dossier_workflow.models import ACTIVE_STATUSES, dossiers, stats_daily
from shared.core_models import procedures
from shared.db import Tx

SCORES = range(1, 6)
NEW_COLUMNS = ("received_digitised", "received_level_full", "received_level_partial", "accepted", "accepted_late",
               "synced_on_time")
STAT_COLUMNS = ("received", "electronic_result", "resolved_early", "resolved_on_time", "resolved_late",
                "processing_minutes", "returned", "synced", "rating_count", "rating_sum",
                *(f"rating_{s}" for s in SCORES), *NEW_COLUMNS)
"""What each column counts (workflow_0006, workflow_0009), on the Viet Nam day of the event, for the receiving
agency: `received` receipts; `electronic_result` results handed over electronically (`return_result` with method
`electronic`), a subset of `returned`; `resolved_*` resolutions by timing against the original due date;
`synced` the dossiers the national portal acknowledged, each once and on the row of its RECEIPT (so a subset of
`received` for any period and grouping), `synced_on_time` those of them first acknowledged within SYNC_ON_TIME of
the receipt; `rating_count`/`rating_sum` and `rating_<score>` the ratings; `received_digitised` receipts whose
components were electronic (the receipt's data `digitised`); `received_level_full`/`_partial` receipts of
procedures offered online in full / in part (data `online_level`); `accepted`/`accepted_late` online dossiers
accepted (history action `accept`) and those accepted after their acceptance time (data `accepted_late`)."""

ONLINE_LEVELS = ("full", "partial")
"""Decree 42/2022: online public services in full (toàn trình) or in part (một phần)."""

SYNC_ON_TIME = timedelta(hours=24)
"""A dossier is published on time when the national portal first acknowledges it within this time of its receipt.
An assumption (Decision 766 asks for status "in real time" and gives no number): it is fixed in the trigger of
workflow_0009 and in REBUILD_STATS; changing it takes a migration and a rebuild."""


def _scope(table: Table, agency_code: str | None, province: str | None) -> list[Any]:
    where = []
    if agency_code:
        where.append(table.c.counted_agency == agency_code if table is stats_daily
                     else table.c.receiving_agency == agency_code)
    if province:
        where.append(table.c.province == province)
    return where


async def stats_from_aggregate(
    tx: Tx, agency_code: str | None, province: str | None, start: date, end: date, group_by: str | None,
) -> list[dict[str, Any]]:
    key = {"field": stats_daily.c.field_code, "procedure": stats_daily.c.procedure_code,
           "channel": stats_daily.c.channel,
           "month": func.to_char(stats_daily.c.day, "YYYY-MM")}.get(group_by or "")
    sums = [func.coalesce(func.sum(stats_daily.c[c]), 0).label(c) for c in STAT_COLUMNS]
    by_channel = [func.coalesce(func.sum(stats_daily.c.received).filter(stats_daily.c.channel == ch), 0)
                  .label(f"received_{ch}") for ch in ("counter", "online", "postal")]
    online_by_level = [func.coalesce(func.sum(stats_daily.c[f"received_level_{level}"])
                                     .filter(stats_daily.c.channel == "online"), 0).label(f"received_online_{level}")
                       for level in ONLINE_LEVELS]
    query = select(*([key.label("group")] if key is not None else []), *sums, *by_channel, *online_by_level).where(
        stats_daily.c.day >= start, stats_daily.c.day <= end, *_scope(stats_daily, agency_code, province))
    if key is not None:
        query = query.group_by(key).order_by(key)
    return [dict(r) for r in await tx.fetch(query)]


IN_PROGRESS_KEYS = {"field": dossiers.c.field_code, "procedure": dossiers.c.procedure_code,
                    "channel": dossiers.c.channel}


IN_PROGRESS_FIGURES = ("in_progress_on_time", "in_progress_overdue", "awaiting_acceptance", "awaiting_acceptance_late")


async def in_progress_counts(tx: Tx, agency_code: str | None, province: str | None, group_by: str | None,
                             now: datetime) -> dict[str | None, dict[str, int]]:
    """Dossiers not yet resolved, now: overdue when the clock runs (not waiting for a supplement) and the
    current due date has passed, as the worklist's `overdue` flag; by group (None: all together)."""
    key = IN_PROGRESS_KEYS.get(group_by or "")
    late = dossiers.c.status.in_(ACTIVE_CLOCK) & dossiers.c.due_at.is_not(None) & (dossiers.c.due_at < now)
    # online dossiers not yet accepted (no due date yet), and those past their acceptance deadline
    waiting = (dossiers.c.status == "received") & dossiers.c.acceptance_due_at.is_not(None) & \
        dossiers.c.accepted_at.is_(None)
    waiting_late = waiting & (dossiers.c.acceptance_due_at < now)
    query = select(*([key.label("group")] if key is not None else []),
                   func.count().filter(~late).label("in_progress_on_time"),
                   func.count().filter(late).label("in_progress_overdue"),
                   func.count().filter(waiting).label("awaiting_acceptance"),
                   func.count().filter(waiting_late).label("awaiting_acceptance_late"),
                   ).where(dossiers.c.status.in_(ACTIVE_STATUSES), *_scope(dossiers, agency_code, province))
    if key is not None:
        query = query.group_by(key)
    return {(r["group"] if key is not None else None): {k: int(r[k]) for k in IN_PROGRESS_FIGURES}
            for r in await tx.fetch(query)}


# The whole aggregate recomputed from the history: the same meaning as the trigger (workflow_0009), for operators
# (after a bulk load with triggers off) and for the test that proves both agree.
REBUILD_STATS = f"""
INSERT INTO workflow.stats_daily (counted_agency, day, procedure_code, field_code, channel, province,
    {", ".join(STAT_COLUMNS)})
SELECT counted_agency, (at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, procedure_code, field_code, channel,
       split_part(counted_agency, '.', 4),
       count(*) FILTER (WHERE action = 'receive'),
       count(*) FILTER (WHERE action = 'return_result' AND data->>'method' = 'electronic'),
       count(*) FILTER (WHERE resolved AND data->>'timing' = 'early'),
       count(*) FILTER (WHERE resolved AND data->>'timing' = 'on_time'),
       count(*) FILTER (WHERE resolved AND data->>'timing' = 'late'),
       coalesce(sum((data->>'processing_minutes')::bigint) FILTER (WHERE resolved), 0),
       count(*) FILTER (WHERE action = 'return_result'),
       count(*) FILTER (WHERE action = 'receive' AND first_sync IS NOT NULL),
       count(*) FILTER (WHERE action = 'rate'),
       coalesce(sum((data->>'rating')::int) FILTER (WHERE action = 'rate'), 0),
       {", ".join(f"count(*) FILTER (WHERE action = 'rate' AND data->>'rating' = '{s}')" for s in SCORES)},
       count(*) FILTER (WHERE action = 'receive' AND data->>'digitised' = 'true'),
       count(*) FILTER (WHERE action = 'receive' AND data->>'online_level' = 'full'),
       count(*) FILTER (WHERE action = 'receive' AND data->>'online_level' = 'partial'),
       count(*) FILTER (WHERE action = 'accept'),
       count(*) FILTER (WHERE action = 'accept' AND data->>'accepted_late' = 'true'),
       count(*) FILTER (WHERE action = 'receive'
                        AND first_sync <= at + interval '{int(SYNC_ON_TIME.total_seconds())} seconds')
FROM (SELECT *, to_status = 'resolved' AND from_status IS DISTINCT FROM 'resolved' AS resolved,
             CASE WHEN action = 'receive' THEN (
                 SELECT p.at FROM workflow.history p WHERE p.dossier_code = h0.dossier_code
                 AND p.action = 'portal_synced' ORDER BY p.id LIMIT 1) END AS first_sync
      FROM workflow.history h0) h
WHERE action IN ('receive', 'return_result', 'rate', 'accept') OR resolved
GROUP BY 1, 2, 3, 4, 5
"""


async def procedures_online(tx: Tx, day: date, group_by: str | None) -> dict[str | None, dict[str, int]]:
    """The catalog's procedures in force on `day` (each code's latest version from then), and those offered
    online in full / in part: `online` among its channels, split by its `online_level`. The catalog is national
    (core.procedures), so the counts are the whole catalog's, by field or procedure when grouped so, else for
    every group alike (key None)."""
    latest = (select(procedures.c.code, procedures.c.field_code, procedures.c.channels, procedures.c.online_level)
              .where(procedures.c.effective_from <= day)
              .ext(distinct_on(procedures.c.code)).order_by(procedures.c.code, procedures.c.effective_from.desc())
              .subquery())
    key = {"field": latest.c.field_code, "procedure": latest.c.code}.get(group_by or "")
    online = latest.c.channels.contains(["online"])
    query = select(*([key.label("group")] if key is not None else []), func.count().label("procedures"),
                   *(func.count().filter(online & (latest.c.online_level == level)).label(f"procedures_online_{level}")
                     for level in ONLINE_LEVELS))
    if key is not None:
        query = query.group_by(key)
    return {(r["group"] if key is not None else None): {k: int(v) for k, v in dict(r).items() if k != "group"}
            for r in await tx.fetch(query)}


async def rebuild_stats(tx: Tx) -> None:
    """Both statements in one transaction: readers never see the aggregate empty."""
    await tx.execute(delete(stats_daily))
    await tx.execute(REBUILD_STATS)
