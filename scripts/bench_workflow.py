"""Workflow part of `make bench`: dossier reads, actions, and statistics over a million dossiers."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

ACTIONABLE = """
WITH d AS (
  INSERT INTO workflow.dossiers (code, procedure_code, procedure_name, field_code, definition_id, receiving_agency,
      competent_agency, current_agency, channel, applicant_name, applicant_name_key, applicant_id_number,
      applicant_phone, status, step, received_at, due_at, original_due_at, working_minutes, result_delivery, fee,
      clock_started)
  SELECT 'ACT-' || lpad(g::text, 7, '0'), '1.004873', 'Cấp Giấy xác nhận tình trạng hôn nhân', 'HT', $2,
         '000.00.21.H29', '000.00.21.H29', '000.00.21.H29', 'counter', 'Nguyễn Văn ' || g, 'nguyen van ' || g,
         '001090012345', '0912345678', 'received', 'receive', now(), now() + interval '3 days',
         now() + interval '3 days', 1350, 'counter', 0, true
  FROM generate_series(1, $1::int) g
  RETURNING code, receiving_agency, procedure_code, field_code, channel, received_at
)
INSERT INTO workflow.history (dossier_code, at, actor, actor_role, action, to_status, step, data, counted_agency,
    procedure_code, field_code, channel)
SELECT code, received_at, 'intake', 'system', 'receive', 'received', 'receive', '{}'::jsonb, receiving_agency,
       procedure_code, field_code, channel FROM d
"""


async def seed_actionable(dsn: str, n: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        definition = await conn.fetchval("SELECT id FROM workflow.process_definitions WHERE procedure_code='*'")
        await conn.execute(ACTIONABLE, n, definition)
    finally:
        await conn.close()


def actionable_codes(dsn: str, n: int) -> Path:
    """n dossiers in state `received` at version 1, their codes in a file for wrk."""
    asyncio.run(seed_actionable(dsn, n))
    path = Path(tempfile.mkstemp(suffix=".codes")[1])
    path.write_text("".join(f"ACT-{i:07d}\n" for i in range(1, n + 1)))
    return path


async def stats_latency(gateway: str, token: str, requests: int = 300) -> tuple[float, float]:
    """p50 and p95 (ms) of one province's figures for one month, one request at a time."""
    params = {"province": "B99", "from": "2026-10-01", "to": "2026-10-31"}
    timings = []
    async with httpx.AsyncClient(base_url=gateway, headers={"Authorization": f"Bearer {token}"}) as c:
        for _ in range(10):
            (await c.get("/api/workflow/v1/stats", params=params)).raise_for_status()
        for _ in range(requests):
            t0 = time.perf_counter()
            r = await c.get("/api/workflow/v1/stats", params=params)
            timings.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
        by_month = await c.get("/api/workflow/v1/stats", params={**params, "group_by": "procedure"})
        by_month.raise_for_status()
    cuts = statistics.quantiles(timings, n=100)
    return cuts[49], cuts[94]


def run_stats_latency(gateway: str, token: str) -> tuple[float, float]:
    return asyncio.run(stats_latency(gateway, token))
