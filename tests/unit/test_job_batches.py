"""The worker's batcher: payloads held at once go together; a failed batch is retried one by one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.job_batches import JobBatcher


async def test_payloads_submitted_together_run_as_one_batch_up_to_the_maximum() -> None:
    seen: list[list[int]] = []

    async def run(items: list[dict[str, Any]]) -> None:
        seen.append([d["n"] for d in items])

    batcher = JobBatcher(run, max_batch=4, window=0.01)
    await asyncio.gather(*(batcher.submit({"n": n}) for n in range(10)))
    assert sorted(n for batch in seen for n in batch) == list(range(10))
    assert [len(b) for b in seen] == [4, 4, 2]


async def test_a_failed_batch_runs_one_by_one_and_only_the_bad_payload_fails() -> None:
    calls: list[list[int]] = []

    async def run(items: list[dict[str, Any]]) -> None:
        calls.append([d["n"] for d in items])
        if any(d["n"] == 2 for d in items):
            raise ValueError("bad payload 2")

    batcher = JobBatcher(run, max_batch=10)
    results = await asyncio.gather(*(batcher.submit({"n": n}) for n in range(5)), return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["NoneType", "NoneType", "ValueError", "NoneType", "NoneType"]
    assert calls == [[0, 1, 2, 3, 4], [0], [1], [2], [3], [4]]


async def test_a_lone_payload_is_not_held_past_the_window() -> None:
    async def run(items: list[dict[str, Any]]) -> None:
        return None

    batcher = JobBatcher(run, max_batch=50, window=0.005)
    await asyncio.wait_for(batcher.submit({"n": 1}), timeout=1)
    assert list(batcher.sizes) == [1]
    with pytest.raises(asyncio.TimeoutError):  # a batch that never ends keeps its jobs waiting (not done)
        slow = JobBatcher(lambda items: asyncio.sleep(10), max_batch=50, window=0.001)
        await asyncio.wait_for(slow.submit({"n": 1}), timeout=0.05)


async def test_a_dequeue_after_a_partial_batch_waits_for_jobs_to_gather() -> None:
    import itertools
    import time
    from types import SimpleNamespace

    from shared.worker import pace_dequeues

    calls: list[float] = []
    found = iter([[1] * 10, [1, 2], [], [1] * 10])

    async def dequeue(*, batch_size: int, **_: Any) -> list[int]:
        calls.append(time.monotonic())
        return next(found)

    pgq: Any = SimpleNamespace(qm=SimpleNamespace(queries=SimpleNamespace(dequeue=dequeue)))
    pace_dequeues(pgq, gather=0.05)
    for _ in range(4):
        await pgq.qm.queries.dequeue(batch_size=10, entrypoints={})
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[0] < 0.04  # a full batch: more are waiting, take them at once
    assert gaps[1] >= 0.045 and gaps[2] >= 0.045  # after a partial or an empty batch: let them gather
