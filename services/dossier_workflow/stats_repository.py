"""SQL of the service-index figures: the daily aggregate (kept by a trigger on the history) and its rebuild."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, delete, func, select

from services.dossier_workflow.deadlines import ACTIVE_CLOCK
from services.dossier_workflow.models import ACTIVE_STATUSES, dossiers, stats_daily
from shared.db import Tx

SCORES = range(1, 6)
STAT_COLUMNS = ("received", "electronic_result", "resolved_early", "resolved_on_time", "resolved_late",
                "processing_minutes", "returned", "synced", "rating_count", "rating_sum",
                *(f"rating_{s}" for s in SCORES))
"""What each column counts (workflow_0006), on the Viet Nam day of the event, for the receiving agency:
`received` receipts; `electronic_result` results handed over electronically (`return_result` with method
`electronic`), a subset of `returned`; `resolved_*` resolutions by timing against the original due date;
`synced` the dossiers the national portal acknowledged, each once and on the row of its RECEIPT (so a subset of
`received` for any period and grouping); `rating_count`/`rating_sum` and `rating_<score>` the ratings."""


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
    query = select(*([key.label("group")] if key is not None else []), *sums, *by_channel).where(
        stats_daily.c.day >= start, stats_daily.c.day <= end, *_scope(stats_daily, agency_code, province))
    if key is not None:
        query = query.group_by(key).order_by(key)
    return [dict(r) for r in await tx.fetch(query)]


IN_PROGRESS_KEYS = {"field": dossiers.c.field_code, "procedure": dossiers.c.procedure_code,
                    "channel": dossiers.c.channel}


async def in_progress_counts(tx: Tx, agency_code: str | None, province: str | None, group_by: str | None,
                             now: datetime) -> dict[str | None, dict[str, int]]:
    """Dossiers not yet resolved, now: overdue when the clock runs (not waiting for a supplement) and the
    current due date has passed, as the worklist's `overdue` flag; by group (None: all together)."""
    key = IN_PROGRESS_KEYS.get(group_by or "")
    late = dossiers.c.status.in_(ACTIVE_CLOCK) & dossiers.c.due_at.is_not(None) & (dossiers.c.due_at < now)
    query = select(*([key.label("group")] if key is not None else []),
                   func.count().filter(~late).label("in_progress_on_time"),
                   func.count().filter(late).label("in_progress_overdue"),
                   ).where(dossiers.c.status.in_(ACTIVE_STATUSES), *_scope(dossiers, agency_code, province))
    if key is not None:
        query = query.group_by(key)
    return {(r["group"] if key is not None else None): {"in_progress_on_time": int(r["in_progress_on_time"]),
                                                        "in_progress_overdue": int(r["in_progress_overdue"])}
            for r in await tx.fetch(query)}


# The whole aggregate recomputed from the history: the same meaning as the trigger (workflow_0006), for operators
# (after a bulk load with triggers off) and for the test that proves both agree.
REBUILD_STATS = f"""
INSERT INTO workflow.stats_daily (counted_agency, day, procedure_code, field_code, channel, province, received,
    electronic_result, resolved_early, resolved_on_time, resolved_late, processing_minutes, returned, synced,
    rating_count, rating_sum, {", ".join(f"rating_{s}" for s in SCORES)})
SELECT counted_agency, (at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, procedure_code, field_code, channel,
       split_part(counted_agency, '.', 4),
       count(*) FILTER (WHERE action = 'receive'),
       count(*) FILTER (WHERE action = 'return_result' AND data->>'method' = 'electronic'),
       count(*) FILTER (WHERE resolved AND data->>'timing' = 'early'),
       count(*) FILTER (WHERE resolved AND data->>'timing' = 'on_time'),
       count(*) FILTER (WHERE resolved AND data->>'timing' = 'late'),
       coalesce(sum((data->>'processing_minutes')::bigint) FILTER (WHERE resolved), 0),
       count(*) FILTER (WHERE action = 'return_result'),
       count(*) FILTER (WHERE action = 'receive' AND EXISTS (
           SELECT 1 FROM workflow.history p WHERE p.dossier_code = h.dossier_code AND p.action = 'portal_synced')),
       count(*) FILTER (WHERE action = 'rate'),
       coalesce(sum((data->>'rating')::int) FILTER (WHERE action = 'rate'), 0),
       {", ".join(f"count(*) FILTER (WHERE action = 'rate' AND data->>'rating' = '{s}')" for s in SCORES)}
FROM (SELECT *, to_status = 'resolved' AND from_status IS DISTINCT FROM 'resolved' AS resolved
      FROM workflow.history) h
WHERE action IN ('receive', 'return_result', 'rate') OR resolved
GROUP BY 1, 2, 3, 4, 5
"""


async def rebuild_stats(tx: Tx) -> None:
    """Both statements in one transaction: readers never see the aggregate empty."""
    await tx.execute(delete(stats_daily))
    await tx.execute(REBUILD_STATS)
