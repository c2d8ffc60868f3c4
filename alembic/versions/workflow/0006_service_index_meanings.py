"""service index (Decision 766/QĐ-TTg): each figure counts what it names

Revision ID: workflow_0006
Revises: workflow_0005
Create Date: 2026-12-07

- `electronic_result` counts results actually issued electronically (a `return_result` with method
  `electronic`, on the day of the return), no longer receipts that merely asked for one;
- `synced` counts each dossier once, on the row (agency, day, procedure, field, channel) of its receipt,
  when the national portal first acknowledges it: over any period and grouping it is a number of the
  dossiers received there, so the synced share can never exceed 1 (it reached 1.5 when a day's
  synchronisations of the previous days' receipts were divided by that day's receipts);
- `rating_1` … `rating_5` count the ratings of each score, so the satisfaction share is read with the
  satisfied levels chosen at read time.

The aggregate is recomputed from the history with these meanings.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "workflow_0006"
down_revision: str | None = "workflow_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCORES = range(1, 6)
RATING_COLUMNS = ", ".join(f"rating_{s}" for s in SCORES)

COUNT_BATCH = f"""
CREATE OR REPLACE FUNCTION workflow.count_history_batch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO workflow.stats_daily AS s (counted_agency, day, procedure_code, field_code, channel, province,
      received, electronic_result, resolved_early, resolved_on_time, resolved_late, processing_minutes,
      returned, synced, rating_count, rating_sum, {RATING_COLUMNS})
  SELECT counted_agency, day, procedure_code, field_code, channel, split_part(counted_agency, '.', 4),
         sum(received), sum(electronic_result), sum(resolved_early), sum(resolved_on_time), sum(resolved_late),
         sum(processing_minutes), sum(returned), sum(synced), sum(rating_count), sum(rating_sum),
         {", ".join(f"sum(rating_{s})" for s in SCORES)}
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
    -- the portal's first acknowledgement of a dossier counts on the row of the dossier's receipt
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
      received = s.received + EXCLUDED.received,
      electronic_result = s.electronic_result + EXCLUDED.electronic_result,
      resolved_early = s.resolved_early + EXCLUDED.resolved_early,
      resolved_on_time = s.resolved_on_time + EXCLUDED.resolved_on_time,
      resolved_late = s.resolved_late + EXCLUDED.resolved_late,
      processing_minutes = s.processing_minutes + EXCLUDED.processing_minutes,
      returned = s.returned + EXCLUDED.returned, synced = s.synced + EXCLUDED.synced,
      rating_count = s.rating_count + EXCLUDED.rating_count, rating_sum = s.rating_sum + EXCLUDED.rating_sum,
      {", ".join(f"rating_{s} = s.rating_{s} + EXCLUDED.rating_{s}" for s in SCORES)};
  RETURN NULL;
END $$"""

# The same meaning over the whole history (kept equal to stats_repository.REBUILD_STATS at this revision).
REBUILD = f"""
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

# workflow_0005's function and rebuild, for the downgrade.
OLD_COUNT_BATCH = """
CREATE OR REPLACE FUNCTION workflow.count_history_batch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO workflow.stats_daily AS s (counted_agency, day, procedure_code, field_code, channel, province,
      received, electronic_result, resolved_early, resolved_on_time, resolved_late, processing_minutes,
      returned, synced, rating_count, rating_sum)
  SELECT counted_agency, day, procedure_code, field_code, channel, split_part(counted_agency, '.', 4),
         sum(received), sum(electronic_result), sum(resolved_early), sum(resolved_on_time), sum(resolved_late),
         sum(processing_minutes), sum(returned), sum(synced), sum(rating_count), sum(rating_sum)
  FROM (
    SELECT n.counted_agency, (n.at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS day, n.procedure_code, n.field_code,
           n.channel, (n.action = 'receive')::int AS received,
           ((n.action = 'receive') AND coalesce(n.data->>'result_delivery' = 'electronic', false))::int
             AS electronic_result,
           (e.resolved AND coalesce(n.data->>'timing' = 'early', false))::int AS resolved_early,
           (e.resolved AND coalesce(n.data->>'timing' = 'on_time', false))::int AS resolved_on_time,
           (e.resolved AND coalesce(n.data->>'timing' = 'late', false))::int AS resolved_late,
           CASE WHEN e.resolved THEN coalesce((n.data->>'processing_minutes')::bigint, 0) ELSE 0 END
             AS processing_minutes,
           (n.action = 'return_result')::int AS returned, (n.action = 'portal_synced')::int AS synced,
           (n.action = 'rate')::int AS rating_count,
           CASE WHEN n.action = 'rate' THEN coalesce((n.data->>'rating')::int, 0) ELSE 0 END AS rating_sum
    FROM new_rows n
    CROSS JOIN LATERAL (SELECT n.to_status = 'resolved' AND n.from_status IS DISTINCT FROM 'resolved' AS resolved) e
    WHERE n.action IN ('receive', 'return_result', 'portal_synced', 'rate') OR e.resolved
  ) counted
  GROUP BY counted_agency, day, procedure_code, field_code, channel
  ORDER BY counted_agency, day, procedure_code, field_code, channel
  ON CONFLICT (counted_agency, day, procedure_code, field_code, channel) DO UPDATE SET
      received = s.received + EXCLUDED.received,
      electronic_result = s.electronic_result + EXCLUDED.electronic_result,
      resolved_early = s.resolved_early + EXCLUDED.resolved_early,
      resolved_on_time = s.resolved_on_time + EXCLUDED.resolved_on_time,
      resolved_late = s.resolved_late + EXCLUDED.resolved_late,
      processing_minutes = s.processing_minutes + EXCLUDED.processing_minutes,
      returned = s.returned + EXCLUDED.returned, synced = s.synced + EXCLUDED.synced,
      rating_count = s.rating_count + EXCLUDED.rating_count, rating_sum = s.rating_sum + EXCLUDED.rating_sum;
  RETURN NULL;
END $$"""

OLD_REBUILD = """
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


def upgrade() -> None:
    for s in SCORES:
        op.add_column("stats_daily", sa.Column(f"rating_{s}", sa.Integer, nullable=False, server_default="0",
                                               comment=f"ratings of score {s}"), schema="workflow")
    op.execute(COUNT_BATCH)
    op.execute("DELETE FROM workflow.stats_daily")
    op.execute(REBUILD)


def downgrade() -> None:
    op.execute(OLD_COUNT_BATCH)
    for s in SCORES:
        op.drop_column("stats_daily", f"rating_{s}", schema="workflow")
    op.execute("DELETE FROM workflow.stats_daily")
    op.execute(OLD_REBUILD)
