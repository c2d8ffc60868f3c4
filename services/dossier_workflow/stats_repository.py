"""SQL of the service-index figures: the daily aggregate (kept by a trigger on the history) and its rebuild."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, delete, func, select

from services.dossier_workflow.models import ACTIVE_STATUSES, dossiers, stats_daily
from shared.db import Tx

STAT_COLUMNS = ("received", "electronic_result", "resolved_early", "resolved_on_time", "resolved_late",
                "processing_minutes", "returned", "synced", "rating_count", "rating_sum")


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


async def in_progress_counts(tx: Tx, agency_code: str | None, province: str | None, now: datetime) -> dict[str, int]:
    late = dossiers.c.status.in_(("received", "in_progress")) & (dossiers.c.due_at < now)
    row = await tx.fetchrow(select(
        func.count().filter(~late).label("in_progress_on_time"), func.count().filter(late).label("in_progress_overdue"),
    ).where(dossiers.c.status.in_(ACTIVE_STATUSES), *_scope(dossiers, agency_code, province)))
    assert row is not None
    return {"in_progress_on_time": int(row["in_progress_on_time"]),
            "in_progress_overdue": int(row["in_progress_overdue"])}


# The whole aggregate recomputed from the history: the same meaning as the trigger, for operators
# (after a bulk load with triggers off) and for the test that proves both agree.
REBUILD_STATS = """
INSERT INTO workflow.stats_daily (counted_agency, day, procedure_code, field_code, channel, province, received,
    electronic_result, resolved_early, resolved_on_time, resolved_late, processing_minutes, returned, synced,
    rating_count, rating_sum)
SELECT counted_agency, (at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, procedure_code, field_code, channel,
       split_part(counted_agency, '.', 4),
       count(*) FILTER (WHERE action = 'receive'),
       count(*) FILTER (WHERE action = 'receive' AND data->>'result_delivery' = 'electronic'),
       count(*) FILTER (WHERE resolved AND data->>'timing' = 'early'),
       count(*) FILTER (WHERE resolved AND data->>'timing' = 'on_time'),
       count(*) FILTER (WHERE resolved AND data->>'timing' = 'late'),
       coalesce(sum((data->>'processing_minutes')::bigint) FILTER (WHERE resolved), 0),
       count(*) FILTER (WHERE action = 'return_result'),
       count(*) FILTER (WHERE action = 'portal_synced'),
       count(*) FILTER (WHERE action = 'rate'),
       coalesce(sum((data->>'rating')::int) FILTER (WHERE action = 'rate'), 0)
FROM (SELECT *, to_status = 'resolved' AND from_status IS DISTINCT FROM 'resolved' AS resolved
      FROM workflow.history) h
WHERE action IN ('receive', 'return_result', 'portal_synced', 'rate') OR resolved
GROUP BY 1, 2, 3, 4, 5
"""


async def rebuild_stats(tx: Tx) -> None:
    """Both statements in one transaction: readers never see the aggregate empty."""
    await tx.execute(delete(stats_daily))
    await tx.execute(REBUILD_STATS)
