"""Job worker process: runs the handlers of the given services' `jobs` modules.

Usage: python -m shared.worker services.dossier_workflow.jobs services.postal_tracking.jobs
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import random
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
QUICK = {"synchronous_commit": "off"}
# A running job's heartbeat is written every HEARTBEAT_TIMEOUT / 2; a picked job whose heartbeat is older
# than HEARTBEAT_TIMEOUT belongs to a dead worker and is taken again by the next dequeue. An idle worker
# dequeues at least every IDLE_POLL, so a dead worker's job runs again 1-4 s after the death. A live job
# is taken twice only if its worker's event loop stalls for more than ~1 s (handlers are idempotent).
HEARTBEAT_TIMEOUT = timedelta(seconds=3)
IDLE_POLL = timedelta(seconds=1)
# The queue connection: a statement this slow means a dead peer (a network blip with no reset).
QUEUE_COMMAND_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
RECONNECT_FIRST = 0.2  # seconds; doubled per failed attempt up to RECONNECT_MAX
RECONNECT_MAX = 2.0  # a database back up is found again within this long
HEALTHY_AFTER = 10.0  # a connection that lasted this long starts the backoff from RECONNECT_FIRST again


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


class ConnectionLost(Exception):
    """The queue connection closed under the worker (a database restart, a terminated session)."""


# What a lost database looks like (logged without a traceback). Anything else that ends a connected run
# (asyncpg's protocol state after a connection broke mid-statement, a schema not migrated yet) is logged
# with its traceback, and the worker starts again all the same: it never exits but when told to.
CONNECTION_LOST = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
                   asyncpg.exceptions.InternalClientError, ConnectionLost)


def reconnect_delay(failures: int) -> float:
    """Seconds to wait before reconnect attempt `failures` (1, 2, ...): doubling from RECONNECT_FIRST up to
    RECONNECT_MAX, with jitter so the workers of a fleet do not knock all at once."""
    base: float = min(RECONNECT_FIRST * 2.0 ** (failures - 1), RECONNECT_MAX)
    return base * random.uniform(0.8, 1.0)


async def run_worker(
    modules: Sequence[str], *, settings: Settings | None = None, drain: bool = False,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until signalled or `stop` is set (or, with drain=True, until the queue is empty).

    A lost database connection never ends it: the queue connection is opened again with backoff
    (`worker_reconnecting`), the handlers' pool replaces its dead connections, and the jobs that were
    running when the connection went are taken again once their heartbeat is HEARTBEAT_TIMEOUT old.
    """
    settings = settings or get_settings()
    registries = load_registries(modules)
    stopping = stop or asyncio.Event()
    signals: tuple[signal.Signals, ...] = ()
    if stop is None and not drain:
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, stopping.set)
    # Bounded: unbounded, a backlog of thousands of jobs would all start at once and wait for connections.
    concurrency = max(settings.worker_concurrency, 2)
    # A job's commit does not wait for the WAL flush: delivery is at least once and handlers are
    # idempotent, so a commit lost in a database crash only means the job runs again. A request's
    # commit (a citizen told "received") keeps waiting for it.
    db = Database(settings, application_name="motcua-worker", pool_size=concurrency + 2, server_settings=QUICK,
                  role="job")
    failures = 0
    try:
        while not stopping.is_set():
            started = time.monotonic()
            try:
                await _run_connected(db, registries, settings, concurrency, drain=drain, stopping=stopping)
            except Exception as exc:  # whatever broke the queue connection: start it again
                failure: Exception = exc
            else:
                return  # stopped, or drained
            if stopping.is_set():
                return
            failures = 1 if time.monotonic() - started > HEALTHY_AFTER else failures + 1
            delay = reconnect_delay(failures)
            log.warning("worker_reconnecting", error=f"{type(failure).__name__}: {failure}", attempt=failures,
                        delay=round(delay, 2), exc_info=not isinstance(failure, CONNECTION_LOST))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
    finally:
        for sig in signals:
            asyncio.get_running_loop().remove_signal_handler(sig)
        for registry in registries:
            for close in registry.shutdown:
                await close()
        await db.dispose()


async def _run_connected(
    db: Database, registries: Sequence[JobRegistry], settings: Settings, concurrency: int, *,
    drain: bool, stopping: asyncio.Event,
) -> None:
    """One queue connection's life: returns when stopped or drained, raises when the connection is lost."""
    conn = await asyncpg.connect(
        settings.asyncpg_dsn, timeout=CONNECT_TIMEOUT, command_timeout=QUEUE_COMMAND_TIMEOUT,
        server_settings={"application_name": "motcua-queue", **QUICK},
    )
    pgq = PgQueuer.from_asyncpg_connection(conn)
    lost = False

    def on_closed(_conn: object) -> None:  # the server ended the session: stop dequeuing, reconnect
        nonlocal lost
        lost = True
        pgq.shutdown.set()

    conn.add_termination_listener(on_closed)
    relay_task: asyncio.Task[None] | None = None
    try:
        # The handlers' pool may hold connections that died with this one (a restart, a terminated
        # session): they are replaced on their next use instead of failing a job each.
        await (await db.pool()).expire_connections()
        # With every slot busy, pgqueuer sleeps this long (100 ms by default) before claiming again unless
        # a NOTIFY arrives; finished jobs send none (jobs_0002), so a backlog drained at ~20 jobs per
        # 100 ms. The re-check is two index probes (a LIMIT 1 and a count by worker).
        pgq.qm.min_dequeue_poll_interval = RECHECK_WHEN_BUSY
        pace_dequeues(pgq)
        build(pgq, db, registries)

        async def relay() -> None:
            await stopping.wait()
            pgq.shutdown.set()

        relay_task = asyncio.create_task(relay())
        batch = min(10, concurrency // 2)  # jobs taken per dequeue (pgqueuer wants concurrency >= 2 batches)
        if drain:
            await pgq.qm.run(mode=QueueExecutionMode.drain, dequeue_timeout=timedelta(seconds=1),
                             batch_size=batch, max_concurrent_tasks=concurrency,
                             heartbeat_timeout=HEARTBEAT_TIMEOUT)
        else:
            await pgq.run(dequeue_timeout=IDLE_POLL, batch_size=batch, max_concurrent_tasks=concurrency,
                          heartbeat_timeout=HEARTBEAT_TIMEOUT)
    finally:
        if relay_task is not None:
            relay_task.cancel()
        if not conn.is_closed():
            conn.remove_termination_listener(on_closed)
            try:
                await conn.close(timeout=2)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()
    if lost and not stopping.is_set():
        raise ConnectionLost("the queue connection was closed by the server")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("modules", nargs="+")
    args = parser.parse_args()
    settings = get_settings()
    configure_logging("worker", settings.log_level)
    load_registries(args.modules)  # imported at full priority: a restart on a busy machine is not slowed
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
