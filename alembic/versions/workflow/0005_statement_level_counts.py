"""statistics counted once per statement (a transition table) instead of once per history row

Revision ID: workflow_0005
Revises: workflow_0004
Create Date: 2026-12-03

A batch (the portal sync marks up to 1,000 dossiers in one statement) then makes one upsert per
statistics row it touches instead of one per history row. Rows are upserted in key order, so two
batches running at once lock them in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "workflow_0005"
down_revision: str | None = "workflow_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNT_BATCH = """
CREATE FUNCTION workflow.count_history_batch() RETURNS trigger LANGUAGE plpgsql AS $$
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


def upgrade() -> None:
    op.execute(COUNT_BATCH)
    op.execute("DROP TRIGGER history_counts ON workflow.history")
    op.execute("CREATE TRIGGER history_counts AFTER INSERT ON workflow.history REFERENCING NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION workflow.count_history_batch()")


def downgrade() -> None:
    op.execute("DROP TRIGGER history_counts ON workflow.history")
    op.execute("CREATE TRIGGER history_counts AFTER INSERT ON workflow.history "
               "FOR EACH ROW EXECUTE FUNCTION workflow.count_history()")
    op.execute("DROP FUNCTION workflow.count_history_batch()")
