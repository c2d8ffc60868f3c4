"""service index (Decision 766/QĐ-TTg), the rest: digitisation, online level, acceptance, sync on time

Revision ID: workflow_0009
Revises: workflow_0008
Create Date: 2026-12-08

New counts of `stats_daily`, each from the history:
- `received_digitised`: receipts whose components were electronic (the `receive` row's data `digitised`:
  every document came with files, or the dossier was filed online);
- `received_level_full` / `received_level_partial`: receipts of procedures offered online in full (toàn trình)
  or in part (một phần), from the `receive` row's data `online_level` (a receipt without it counts in neither);
- `accepted` / `accepted_late`: online dossiers accepted (history action `accept`), and those accepted after
  their acceptance time (data `accepted_late`), on the day of the acceptance: counted apart from overdue;
- `synced_on_time`: of `synced`, the dossiers the national portal first acknowledged within 24 hours of their
  receipt, on the row of the receipt (so `synced_on_time` <= `synced` <= `received`).

The aggregate is recomputed from the history with these meanings.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "workflow_0009"
down_revision: str | None = "workflow_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCORES = range(1, 6)
RATING_COLUMNS = ", ".join(f"rating_{s}" for s in SCORES)
NEW_COLUMNS = {
    "received_digitised": "receipts with electronic components (digitised)",
    "received_level_full": "receipts of procedures offered fully online (toàn trình)",
    "received_level_partial": "receipts of procedures offered partly online (một phần)",
    "accepted": "online dossiers accepted (action accept)",
    "accepted_late": "online dossiers accepted after their acceptance time",
    "synced_on_time": "synced dossiers first acknowledged within 24 hours of receipt",
}
SYNC_ON_TIME = "interval '24 hours'"
ALL_SUMS = ("received", "electronic_result", "resolved_early", "resolved_on_time", "resolved_late",
            "processing_minutes", "returned", "synced", "rating_count", "rating_sum",
            *(f"rating_{s}" for s in SCORES), *NEW_COLUMNS)

COUNT_BATCH = f"""
CREATE OR REPLACE FUNCTION workflow.count_history_batch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO workflow.stats_daily AS s (counted_agency, day, procedure_code, field_code, channel, province,
      {", ".join(ALL_SUMS)})
  SELECT counted_agency, day, procedure_code, field_code, channel, split_part(counted_agency, '.', 4),
         {", ".join(f"sum({c})" for c in ALL_SUMS)}
  FROM (
    SELECT n.counted_agency, (n.at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS day, n.procedure_code, n.field_code,
           n.channel, (n.action = 'receive')::int AS received,
           ((n.action = 'return_result') AND coalesce(n.data->>'method' = 'electronic', false))::int
             AS electronic_result,
           (e.resolved AND coalesce(n.data->>'timing' = 'early', false))::int AS resolved_early,
           (e.resolved AND coalesce(n.data->>'timing' = 'on_time', false))::int AS resolved_on_time,
           (e.resolved AND coalesce(n.data->>'timing' = 'late', false))::int AS resolved_late,
           CASE WHEN e.resolved THEN coalesce((n.data->>'processing_minutes')::bigint, 0) ELSE 0 END
             AS processing_minutes,
           (n.action = 'return_result')::int AS returned, 0 AS synced,
           (n.action = 'rate')::int AS rating_count,
           CASE WHEN n.action = 'rate' THEN coalesce((n.data->>'rating')::int, 0) ELSE 0 END AS rating_sum,
           {", ".join(f"((n.action = 'rate') AND coalesce(n.data->>'rating' = '{s}', false))::int AS rating_{s}"
                      for s in SCORES)},
           ((n.action = 'receive') AND coalesce(n.data->>'digitised' = 'true', false))::int AS received_digitised,
           ((n.action = 'receive') AND coalesce(n.data->>'online_level' = 'full', false))::int
             AS received_level_full,
           ((n.action = 'receive') AND coalesce(n.data->>'online_level' = 'partial', false))::int
             AS received_level_partial,
           (n.action = 'accept')::int AS accepted,
           ((n.action = 'accept') AND coalesce(n.data->>'accepted_late' = 'true', false))::int AS accepted_late,
           0 AS synced_on_time
    FROM new_rows n
    CROSS JOIN LATERAL (SELECT n.to_status = 'resolved' AND n.from_status IS DISTINCT FROM 'resolved' AS resolved) e
    WHERE n.action IN ('receive', 'return_result', 'rate', 'accept') OR e.resolved
    UNION ALL
    -- the portal's first acknowledgement of a dossier counts on the row of the dossier's receipt
    SELECT r.counted_agency, (r.at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, r.procedure_code, r.field_code,
           r.channel, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, {", ".join("0" for _ in SCORES)}, 0, 0, 0, 0, 0,
           (n.at <= r.at + {SYNC_ON_TIME})::int
    FROM new_rows n
    CROSS JOIN LATERAL (SELECT * FROM workflow.history r WHERE r.dossier_code = n.dossier_code
                        AND r.action = 'receive' ORDER BY r.id LIMIT 1) r
    WHERE n.action = 'portal_synced' AND NOT EXISTS (
        SELECT 1 FROM workflow.history p WHERE p.dossier_code = n.dossier_code AND p.action = 'portal_synced'
        AND p.id < n.id)
  ) counted
  GROUP BY counted_agency, day, procedure_code, field_code, channel
  ORDER BY counted_agency, day, procedure_code, field_code, channel
  ON CONFLICT (counted_agency, day, procedure_code, field_code, channel) DO UPDATE SET
      {", ".join(f"{c} = s.{c} + EXCLUDED.{c}" for c in ALL_SUMS)};
  RETURN NULL;
END $$"""

# The same meaning over the whole history (kept equal to stats_repository.REBUILD_STATS at this revision).
REBUILD = f"""
INSERT INTO workflow.stats_daily (counted_agency, day, procedure_code, field_code, channel, province,
    {", ".join(ALL_SUMS)})
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
       count(*) FILTER (WHERE action = 'receive' AND first_sync <= at + {SYNC_ON_TIME})
FROM (SELECT *, to_status = 'resolved' AND from_status IS DISTINCT FROM 'resolved' AS resolved,
             CASE WHEN action = 'receive' THEN (
                 SELECT p.at FROM workflow.history p WHERE p.dossier_code = h0.dossier_code
                 AND p.action = 'portal_synced' ORDER BY p.id LIMIT 1) END AS first_sync
      FROM workflow.history h0) h
WHERE action IN ('receive', 'return_result', 'rate', 'accept') OR resolved
GROUP BY 1, 2, 3, 4, 5
"""

# workflow_0006's function and rebuild, for the downgrade.
OLD_COLUMNS = ALL_SUMS[:-len(NEW_COLUMNS)]
OLD_COUNT_BATCH = f"""
CREATE OR REPLACE FUNCTION workflow.count_history_batch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO workflow.stats_daily AS s (counted_agency, day, procedure_code, field_code, channel, province,
      {", ".join(OLD_COLUMNS)})
  SELECT counted_agency, day, procedure_code, field_code, channel, split_part(counted_agency, '.', 4),
         {", ".join(f"sum({c})" for c in OLD_COLUMNS)}
  FROM (
    SELECT n.counted_agency, (n.at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS day, n.procedure_code, n.field_code,
           n.channel, (n.action = 'receive')::int AS received,
           ((n.action = 'return_result') AND coalesce(n.data->>'method' = 'electronic', false))::int
             AS electronic_result,
           (e.resolved AND coalesce(n.data->>'timing' = 'early', false))::int AS resolved_early,
           (e.resolved AND coalesce(n.data->>'timing' = 'on_time', false))::int AS resolved_on_time,
           (e.resolved AND coalesce(n.data->>'timing' = 'late', false))::int AS resolved_late,
           CASE WHEN e.resolved THEN coalesce((n.data->>'processing_minutes')::bigint, 0) ELSE 0 END
             AS processing_minutes,
           (n.action = 'return_result')::int AS returned, 0 AS synced,
           (n.action = 'rate')::int AS rating_count,
           CASE WHEN n.action = 'rate' THEN coalesce((n.data->>'rating')::int, 0) ELSE 0 END AS rating_sum,
           {", ".join(f"((n.action = 'rate') AND coalesce(n.data->>'rating' = '{s}', false))::int AS rating_{s}"
                      for s in SCORES)}
    FROM new_rows n
    CROSS JOIN LATERAL (SELECT n.to_status = 'resolved' AND n.from_status IS DISTINCT FROM 'resolved' AS resolved) e
    WHERE n.action IN ('receive', 'return_result', 'rate') OR e.resolved
    UNION ALL
    SELECT r.counted_agency, (r.at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, r.procedure_code, r.field_code,
           r.channel, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, {", ".join("0" for _ in SCORES)}
    FROM new_rows n
    CROSS JOIN LATERAL (SELECT * FROM workflow.history r WHERE r.dossier_code = n.dossier_code
                        AND r.action = 'receive' ORDER BY r.id LIMIT 1) r
    WHERE n.action = 'portal_synced' AND NOT EXISTS (
        SELECT 1 FROM workflow.history p WHERE p.dossier_code = n.dossier_code AND p.action = 'portal_synced'
        AND p.id < n.id)
  ) counted
  GROUP BY counted_agency, day, procedure_code, field_code, channel
  ORDER BY counted_agency, day, procedure_code, field_code, channel
  ON CONFLICT (counted_agency, day, procedure_code, field_code, channel) DO UPDATE SET
      {", ".join(f"{c} = s.{c} + EXCLUDED.{c}" for c in OLD_COLUMNS)};
  RETURN NULL;
END $$"""

OLD_REBUILD = f"""
INSERT INTO workflow.stats_daily (counted_agency, day, procedure_code, field_code, channel, province, received,
    electronic_result, resolved_early, resolved_on_time, resolved_late, processing_minutes, returned, synced,
    rating_count, rating_sum, {RATING_COLUMNS})
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


def upgrade() -> None:
    for name, comment in NEW_COLUMNS.items():
        op.add_column("stats_daily", sa.Column(name, sa.Integer, nullable=False, server_default="0",
                                               comment=comment), schema="workflow")
    op.execute(COUNT_BATCH)
    op.execute("DELETE FROM workflow.stats_daily")
    op.execute(REBUILD)


def downgrade() -> None:
    op.execute(OLD_COUNT_BATCH)
    for name in NEW_COLUMNS:
        op.drop_column("stats_daily", name, schema="workflow")
    op.execute("DELETE FROM workflow.stats_daily")
    op.execute(OLD_REBUILD)
