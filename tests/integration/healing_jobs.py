"""A job for the self-healing tests (tests/integration/test_healing.py), run by real worker processes.

`healing.record` notes each start in a trace file (when asked), may sleep (on every run, or only on
the first one: the run a test kills), then upserts its row in `healing.done`, counting its runs.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from shared.db import Tx
from shared.jobs import JobRegistry

registry = JobRegistry(service="healing")

SCHEMA_SQL = (
    "CREATE SCHEMA IF NOT EXISTS healing",
    "CREATE TABLE IF NOT EXISTS healing.done (k text PRIMARY KEY, pid int NOT NULL, runs int NOT NULL, "
    "finished timestamptz NOT NULL DEFAULT clock_timestamp())",
)


@registry.handler("healing.record")
async def record(tx: Tx, payloads: list[dict[str, Any]]) -> None:
    for data in payloads:
        first = True
        if trace := data.get("trace"):
            path = Path(trace)
            first = not path.exists() or not path.read_text().strip()
            with path.open("a") as fh:
                fh.write(f"{os.getpid()}\n")
        if data.get("sleep") and (first or not data.get("sleep_first_only")):
            await asyncio.sleep(float(data["sleep"]))
        await tx.execute(
            "INSERT INTO healing.done AS d (k, pid, runs) VALUES ($1, $2, 1) ON CONFLICT (k) DO UPDATE "
            "SET runs = d.runs + 1, pid = EXCLUDED.pid, finished = clock_timestamp()", data["k"], os.getpid())
