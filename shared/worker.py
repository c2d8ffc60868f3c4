"""Job worker process: runs the handlers of the given services' `jobs` modules.

Usage: python -m shared.worker services.dossier_workflow.jobs services.postal_tracking.jobs
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import signal
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from pgqueuer import PgQueuer
from pgqueuer.executors import DatabaseRetryEntrypointExecutor
from pgqueuer.models import Job, Schedule
from pgqueuer.types import QueueExecutionMode

from shared.db import Database
from shared.job_batches import JobBatcher
from shared.jobs import Entrypoint, JobRegistry, PeriodicHandler
from shared.logging import configure_logging
from shared.settings import Settings, get_settings

RECHECK_WHEN_BUSY = timedelta(milliseconds=10)
GATHER_SECONDS = 0.02  # after a dequeue that found less than a batch, let the next jobs gather this long
log = structlog.get_logger("worker")
MAX_ATTEMPTS = 5


def load_registries(modules: Sequence[str]) -> list[JobRegistry]:
    registries = []
    for name in modules:
        module = importlib.import_module(name)
        registry = getattr(module, "registry", None)
        if not isinstance(registry, JobRegistry):
            raise SystemExit(f"{name} has no `registry: JobRegistry`")
        registries.append(registry)
    return registries


def _bind_job(job: Job, entrypoint: str) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads(job.payload or b"{}")
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        request_id=envelope.get("request_id"), job_id=int(job.id), entrypoint=entrypoint,
    )
    data: dict[str, Any] = envelope.get("data") or {}
    return data


def _job_runner(db: Database, entrypoint: str, spec: Entrypoint) -> Any:
    """One runner for every entrypoint: each job is its own pgqueuer row (retried, held when it keeps
    failing, listed by the admin API); with `max_batch` > 1 the jobs held at once share one call."""

    async def run_items(items: list[dict[str, Any]]) -> None:
        async with db.transaction() as tx:
            await spec.handler(tx, items)

    batcher = JobBatcher(run_items, max_batch=spec.max_batch) if spec.max_batch > 1 else None

    async def run(job: Job) -> None:
        data = _bind_job(job, entrypoint)
        try:
            if batcher is None:
                await run_items([data])
            else:
                await batcher.submit(data)
        except Exception:
            log.exception("job_failed", attempts=job.attempts)
            raise
        log.info("job_done", attempts=job.attempts)

    return run


def _periodic_runner(db: Database, name: str, fn: PeriodicHandler) -> Any:
    async def run(_schedule: Schedule) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(periodic=name)
        try:
            async with db.transaction() as tx:
                await fn(tx)
        except Exception:
            log.exception("periodic_failed")
            raise

    return run


def pace_dequeues(pgq: PgQueuer, gather: float = GATHER_SECONDS) -> None:
    """After a dequeue that found less than a full batch, the next one waits until `gather` has passed:
    a dequeue costs PostgreSQL more than the few jobs a keeping-up worker would fetch (docs/performance.md),
    so jobs gather into full batches. A job waits at most that long."""
    queries = pgq.qm.queries
    dequeue = queries.dequeue
    caught_up_at = 0.0

    async def paced(*, batch_size: int, **kwargs: Any) -> list[Job]:
        nonlocal caught_up_at
        wait = caught_up_at + gather - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        jobs = await dequeue(batch_size=batch_size, **kwargs)
        caught_up_at = time.monotonic() if len(jobs) < batch_size else 0.0
        return jobs

    setattr(queries, "dequeue", paced)  # noqa: B010 - an instance's method, wrapped


def build(pgq: PgQueuer, db: Database, registries: Sequence[JobRegistry]) -> None:
    def executor(params: Any) -> DatabaseRetryEntrypointExecutor:
        return DatabaseRetryEntrypointExecutor(
            params, max_attempts=MAX_ATTEMPTS, initial_delay=timedelta(seconds=1),
            max_delay=timedelta(minutes=5),
        )

    for registry in registries:
        for entrypoint, spec in registry.entrypoints.items():
            pgq.entrypoint(entrypoint, on_failure="hold", executor_factory=executor)(
                _job_runner(db, entrypoint, spec)
            )
        for name, (cron, pfn) in registry.periodic.items():
            pgq.schedule(name, cron)(_periodic_runner(db, name, pfn))


async def run_worker(
    modules: Sequence[str], *, settings: Settings | None = None, drain: bool = False,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until signalled or `stop` is set (or, with drain=True, until the queue is empty)."""
    settings = settings or get_settings()
    # Bounded: unbounded, a backlog of thousands of jobs would all start at once and wait for connections.
    concurrency = max(settings.worker_concurrency, 2)
    batch = min(10, concurrency // 2)  # jobs taken per dequeue (pgqueuer wants concurrency >= 2 batches)
    # A job's commit does not wait for the WAL flush: delivery is at least once and handlers are
    # idempotent, so a commit lost in a database crash only means the job runs again. A request's
    # commit (a citizen told "received") keeps waiting for it.
    quick = {"synchronous_commit": "off"}
    db = Database(settings, application_name="motcua-worker", pool_size=concurrency + 2, server_settings=quick)
    conn = await asyncpg.connect(settings.asyncpg_dsn, server_settings={"application_name": "motcua-queue",
                                                                        **quick})
    pgq = PgQueuer.from_asyncpg_connection(conn)
    # With every slot busy, pgqueuer sleeps this long (100 ms by default) before claiming again unless
    # a NOTIFY arrives; finished jobs send none (jobs_0002), so a backlog drained at ~20 jobs per
    # 100 ms. The re-check is two index probes (a LIMIT 1 and a count by worker).
    pgq.qm.min_dequeue_poll_interval = RECHECK_WHEN_BUSY
    pace_dequeues(pgq)
    build(pgq, db, load_registries(modules))
    if stop is not None:
        async def relay() -> None:
            await stop.wait()
            pgq.shutdown.set()

        relay_task = asyncio.create_task(relay())
    elif not drain:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, pgq.shutdown.set)
    try:
        mode = QueueExecutionMode.drain if drain else QueueExecutionMode.continuous
        if drain:
            await pgq.qm.run(mode=mode, dequeue_timeout=timedelta(seconds=1), batch_size=batch,
                             max_concurrent_tasks=concurrency)
        else:
            await pgq.run(dequeue_timeout=timedelta(seconds=5), batch_size=batch,
                          max_concurrent_tasks=concurrency)
    finally:
        if stop is not None:
            relay_task.cancel()
        await conn.close()
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("modules", nargs="+")
    args = parser.parse_args()
    settings = get_settings()
    configure_logging("worker", settings.log_level)
    if settings.worker_nice:  # requests first: a burst of jobs waits for idle CPU, a citizen does not
        os.nice(settings.worker_nice)
    log.info("worker_starting", modules=args.modules, nice=settings.worker_nice)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run_worker(args.modules, settings=settings))


if __name__ == "__main__":
    main()
