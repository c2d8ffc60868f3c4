"""`make seed-stats`: load N finished dossiers (default 1 million) with their history, for statistics at scale.

Dossiers are spread over 2026, over the 64 bench communes of province B99, eight procedures and the
three channels; about 2 % are still open. The history is bulk-loaded with triggers off and the daily
aggregate is then rebuilt from it (the same SQL the workflow service offers operators).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import asyncpg
from tqdm import tqdm

from services.dossier_workflow.stats_repository import REBUILD_STATS

BATCH = 50_000
PROCEDURES = ["1.001193", "1.000894", "1.000656", "1.004873", "2.000815", "2.000884", "1.004222", "1.001612"]

DOSSIERS = """
INSERT INTO workflow.dossiers (code, procedure_code, procedure_name, field_code, definition_id, receiving_agency,
    competent_agency, current_agency, channel, applicant_name, applicant_name_key, applicant_id_number,
    applicant_phone, status, outcome, step, received_at, due_at, original_due_at, working_minutes, resolved_at,
    returned_at, result_delivery, fee, clock_started)
SELECT 'STAT-' || lpad(g::text, 8, '0'), p.code, 'Thủ tục ' || p.code, p.field, $3, a.code, a.code, a.code,
       (ARRAY['counter', 'online', 'postal'])[1 + g % 3], 'Công dân ' || g, 'cong dan ' || g,
       lpad((g % 1000000000)::text, 12, '0'), '09' || lpad((g % 100000000)::text, 8, '0'),
       CASE WHEN g % 50 = 0 THEN 'in_progress' WHEN g % 2 = 0 THEN 'returned' ELSE 'resolved' END,
       CASE WHEN g % 50 = 0 THEN NULL WHEN g % 11 = 0 THEN 'rejected' ELSE 'approved' END,
       CASE WHEN g % 50 = 0 THEN 'review' ELSE 'return' END,
       t.received, t.received + interval '3 days', t.received + interval '3 days', 1350,
       CASE WHEN g % 50 = 0 THEN NULL ELSE t.received + (g % 97) * interval '1 hour' END,
       CASE WHEN g % 50 <> 0 AND g % 2 = 0 THEN t.received + (g % 97 + 2) * interval '1 hour' END,
       (ARRAY['counter', 'electronic', 'postal'])[1 + g % 3], 0, true
FROM generate_series($1::bigint, $2::bigint) g
CROSS JOIN LATERAL (SELECT timestamptz '2026-01-01 08:00+07' + (g % 365) * interval '1 day'
                           + (g % 9) * interval '1 hour' AS received) t
CROSS JOIN LATERAL (SELECT '000.00.' || lpad((1 + g % 64)::text, 2, '0') || '.B99' AS code) a
CROSS JOIN LATERAL (SELECT (ARRAY[{procedures}])[1 + g % 8] AS code,
                           CASE WHEN g % 8 IN (4, 5) THEN 'CT' WHEN g % 8 IN (6) THEN 'CTR'
                                WHEN g % 8 = 7 THEN 'HKD' ELSE 'HT' END AS field) p
"""

HISTORY = """
INSERT INTO workflow.history (dossier_code, at, actor, actor_role, actor_agency, action, from_status, to_status,
    step, data, counted_agency, procedure_code, field_code, channel)
SELECT d.code, e.at, e.actor, e.role, d.receiving_agency, e.action, e.from_status, e.to_status, e.step, e.data,
       d.receiving_agency, d.procedure_code, d.field_code, d.channel
FROM workflow.dossiers d
CROSS JOIN LATERAL (VALUES
    (d.received_at, 'intake', 'system', 'receive', NULL, 'received', 'receive',
     jsonb_build_object('result_delivery', d.result_delivery)),
    (d.resolved_at, 'lanhdao', 'supervisor', CASE WHEN d.outcome = 'rejected' THEN 'reject' ELSE 'approve' END,
     'in_progress', 'resolved', 'return',
     jsonb_build_object('outcome', d.outcome, 'processing_minutes', 60 * (1 + length(d.code) % 20),
                        'timing', CASE WHEN d.resolved_at > d.original_due_at THEN 'late'
                                       WHEN d.resolved_at::date < d.original_due_at::date THEN 'early'
                                       ELSE 'on_time' END)),
    (d.returned_at, 'canbo', 'officer', 'return_result', 'resolved', 'returned', 'done', '{}'::jsonb)
) AS e(at, actor, role, action, from_status, to_status, step, data)
WHERE d.code BETWEEN $1 AND $2 AND e.at IS NOT NULL
"""


async def seed(dsn: str, total: int, progress: bool = True) -> float:
    """Returns the seconds it took."""
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        definition = await conn.fetchval("SELECT id FROM workflow.process_definitions WHERE procedure_code='*'")
        await conn.execute("DELETE FROM workflow.dossiers WHERE code LIKE 'STAT-%'")
        dossiers = DOSSIERS.format(procedures=", ".join(f"'{p}'" for p in PROCEDURES))
        with tqdm(total=total, unit=" dossiers", disable=not progress) as bar:
            for first in range(1, total + 1, BATCH):
                last = min(total, first + BATCH - 1)
                async with conn.transaction():
                    await conn.execute("SET LOCAL session_replication_role = replica")  # bulk load: no triggers
                    await conn.execute(dossiers, first, last, definition)
                    await conn.execute(HISTORY, f"STAT-{first:08d}", f"STAT-{last:08d}")
                bar.update(last - first + 1)
        async with conn.transaction():
            await conn.execute("DELETE FROM workflow.stats_daily")
            await conn.execute(REBUILD_STATS)
        await conn.execute("VACUUM ANALYZE workflow.stats_daily")
        await conn.execute("VACUUM ANALYZE workflow.dossiers")  # index-only counts need the visibility map
    finally:
        await conn.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dossiers", type=int, default=1_000_000)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    if not url:
        from scripts.devdb import start

        url = start("pg", 54329, fast=False)
    seconds = asyncio.run(seed(url.replace("postgresql+asyncpg://", "postgresql://", 1), args.dossiers))
    print(f"{args.dossiers} dossiers with their history loaded in {seconds:.0f} s; statistics rebuilt")


if __name__ == "__main__":
    main()
