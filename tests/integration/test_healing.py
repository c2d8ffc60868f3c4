"""Self-healing processes, against real worker processes and a PostgreSQL of this module's own that the
tests restart, terminate and stop (so no other test's database is disturbed).

- the job worker survives a PostgreSQL restart (`-m fast`, `-m immediate`) and `pg_terminate_backend` of
  its sessions: the same process reconnects (`worker_reconnecting`) and every queued job gets done;
- a worker SIGKILLed mid-job: the other worker runs the job within 5 s; a slow job on a live worker is
  never taken by another (its heartbeat keeps it);
- the worker stops cleanly on SIGTERM, also while it is waiting for the database to come back;
- `Stack.restart_dead` (what `make run` loops on) restarts a killed child at once and a crash loop with
  backoff; children die with the process that started them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from scripts import devdb
from scripts.stack import ROOT, Stack, free_port
from shared.db import Database
from shared.jobs import enqueue
from shared.settings import Settings
from shared.worker import HEARTBEAT_TIMEOUT
from tests.integration.healing_jobs import SCHEMA_SQL

pytestmark = pytest.mark.e2e

WORKER = ["-m", "shared.worker", "tests.integration.healing_jobs"]
RERUN_BOUND = 5.0  # seconds from a worker's death until its job has run again elsewhere
DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass
class HealDb:
    name: str
    url: str

    @property
    def dsn(self) -> str:
        return self.url.replace("postgresql+asyncpg://", "postgresql://", 1)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])


@pytest.fixture(scope="module")
def heal_db() -> Iterator[HealDb]:
    from alembic import command

    from shared.migrations import alembic_config

    name = f"pg-heal-{os.getpid()}"
    try:
        db = HealDb(name, devdb.start(name, free_port(), fast=True))
        for history in ("core", "jobs"):
            command.upgrade(alembic_config(history, db.url), "head")
        asyncio.run(_execute(db.dsn, *SCHEMA_SQL))
        yield db
    finally:
        devdb.stop(name)
        target = ROOT / ".data" / name
        shutil.rmtree(target.resolve(), ignore_errors=True)
        if target.is_symlink():
            target.unlink()


@pytest.fixture(scope="module")
def workers(heal_db: HealDb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two worker processes (w0, w1) on the module's database, logging to files."""
    stack = Stack(database_url=heal_db.url, log_dir=tmp_path_factory.mktemp("healing-logs"),
                  extra_env={"WORKER_NICE": "0", "WORKER_CONCURRENCY": "20", "LOG_LEVEL": "INFO",
                             "ENVIRONMENT": "test"})
    try:
        for name in ("w0", "w1"):
            stack.spawn(name, WORKER)
        asyncio.run(_wait_for(lambda: _queue_pids_differ(heal_db, set()), 30, "workers connected"))
        yield stack
    finally:
        stack.stop()


# --- helpers -------------------------------------------------------------------------------------------

def _pg_ctl(db: HealDb, action: str, *args: str) -> None:
    """pg_ctl on the module's server, on its own port (devdb.start would take another port while the
    old one still has connections in TIME_WAIT, and the workers know only the old one)."""
    user = devdb.run_as_user()
    pgdata = (ROOT / ".data" / db.name).resolve()
    cmd = [str(devdb.find_bindir() / "pg_ctl"), "-D", str(pgdata), "-w", "-t", "60", *args]
    if action != "stop":
        cmd += ["-l", str(pgdata / "server.log"), "-o", f"-p {db.port}"]
    subprocess.run([*cmd, action], check=True, capture_output=True, cwd="/",
                   user=user.pw_uid if user else None, group=user.pw_gid if user else None)


async def _execute(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def _fetchval(db: HealDb, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(db.dsn, timeout=3)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def _wait_for(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Polls `check` (database errors count as not yet) until true; returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if await check():
                return time.monotonic() - start
        except DB_ERRORS:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


async def _queue_pids(db: HealDb) -> set[int]:
    rows = await _fetchval(db, "SELECT array_agg(pid) FROM pg_stat_activity WHERE application_name = 'motcua-queue'")
    return set(rows or ())


async def _queue_pids_differ(db: HealDb, old: set[int], count: int = 2) -> bool:
    """`count` workers have a queue session, none of them one of `old`."""
    pids = await _queue_pids(db)
    return len(pids) == count and not pids & old


async def _enqueue(db: HealDb, n: int, **data: Any) -> list[str]:
    keys = [uuid.uuid4().hex for _ in range(n)]
    database = Database(Settings(database_url=db.url), pool_size=1)
    try:
        async with database.transaction() as tx:
            for k in keys:
                await enqueue(tx, "healing.record", {"k": k, **data})
    finally:
        await database.dispose()
    return keys


async def _done(db: HealDb, keys: list[str]) -> int:
    return int(await _fetchval(db, "SELECT count(*) FROM healing.done WHERE k = ANY($1)", keys))


def _alive(stack: Stack) -> dict[str, int]:
    return {name: proc.pid for name, proc in stack.procs if proc.poll() is None}


def _log(stack: Stack, name: str) -> str:
    assert stack.log_dir is not None
    return (stack.log_dir / f"{name}.log").read_text(errors="replace")


def _report(what: str, **seconds: float) -> None:
    print(f"\n[healing] {what}: " + ", ".join(f"{k}={v:.2f}s" for k, v in seconds.items()))


# --- the worker heals ----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_worker_survives_a_postgres_restart(heal_db: HealDb, workers: Stack, mode: str) -> None:
    before = _alive(workers)
    assert len(before) == 2
    old_sessions = await _queue_pids(heal_db)
    keys = await _enqueue(heal_db, 200, sleep=0.3)  # ~1.5 s of work for two workers of 20 slots
    await _wait_for(lambda: _done_some(heal_db, keys), 15, "jobs under way")
    fault = time.monotonic()
    await asyncio.to_thread(_pg_ctl, heal_db, "restart", "-m", mode)
    back = time.monotonic()
    resumed = await _wait_for(lambda: _queue_pids_differ(heal_db, old_sessions), 15, "workers reconnected")
    all_done = await _wait_for(lambda: _all_done(heal_db, keys), 30, "every job done")
    assert _alive(workers) == before  # the same processes: nobody restarted them
    for name in before:
        assert "worker_reconnecting" in _log(workers, name)
    _report(f"postgres restart -m {mode}", restart_took=back - fault, reconnected_after_db_up=resumed,
            all_jobs_done_after_db_up=all_done)


async def test_worker_survives_its_sessions_being_terminated(heal_db: HealDb, workers: Stack) -> None:
    before = _alive(workers)
    old_sessions = await _queue_pids(heal_db)
    keys = await _enqueue(heal_db, 100, sleep=0.3)
    await _wait_for(lambda: _done_some(heal_db, keys), 15, "jobs under way")
    killed = await _fetchval(heal_db, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                      "WHERE application_name IN ('motcua-queue', 'motcua-worker')")
    assert killed >= 4  # both queue connections and pool connections of both workers
    resumed = await _wait_for(lambda: _queue_pids_differ(heal_db, old_sessions), 15, "workers reconnected")
    all_done = await _wait_for(lambda: _all_done(heal_db, keys), 30, "every job done")
    assert _alive(workers) == before
    _report("pg_terminate_backend of the worker sessions", reconnected=resumed, all_jobs_done=all_done)


async def test_a_killed_workers_job_runs_again_within_five_seconds(
    heal_db: HealDb, workers: Stack, tmp_path: Path,
) -> None:
    trace = tmp_path / "trace"
    [k] = await _enqueue(heal_db, 1, sleep=60, sleep_first_only=True, trace=str(trace))
    await _wait_for(lambda: _has_line(trace), 15, "the job started")
    holder = int(trace.read_text().split()[0])
    victim = next(name for name, pid in _alive(workers).items() if pid == holder)
    other = next(name for name in _alive(workers) if name != victim)
    workers.kill(victim, signal.SIGKILL)
    rerun = await _wait_for(lambda: _all_done(heal_db, [k]), 30, "the job ran again")
    assert await _fetchval(heal_db, "SELECT pid FROM healing.done WHERE k = $1", k) == workers.proc(other).pid
    _report("SIGKILL of a worker mid-job", job_ran_again_after=rerun)
    assert rerun <= RERUN_BOUND
    workers.restart(victim)
    await _wait_for(lambda: _queue_count(heal_db, 2), 30, "the worker is back")


async def test_a_slow_job_on_a_live_worker_is_never_taken_by_another(
    heal_db: HealDb, workers: Stack, tmp_path: Path,
) -> None:
    """The job outlives the heartbeat timeout twice over; its heartbeat keeps it with its worker."""
    trace = tmp_path / "trace"
    slow = 2 * HEARTBEAT_TIMEOUT.total_seconds() + 0.5
    [k] = await _enqueue(heal_db, 1, sleep=slow, trace=str(trace))
    await _wait_for(lambda: _all_done(heal_db, [k]), slow + 20, "the slow job done")
    assert len(trace.read_text().split()) == 1
    assert await _fetchval(heal_db, "SELECT runs FROM healing.done WHERE k = $1", k) == 1


async def test_the_worker_stops_on_sigterm_even_while_the_database_is_down(
    heal_db: HealDb, workers: Stack,
) -> None:
    await asyncio.to_thread(_pg_ctl, heal_db, "stop", "-m", "fast")
    try:
        await asyncio.sleep(0.5)  # reconnecting by now
        proc = workers.proc("w1")
        workers.kill("w1", signal.SIGTERM)
        took = await _wait_for(lambda: _exited(proc), 10, "the worker stopped")
        assert proc.returncode == 0, _log(workers, "w1")[-2000:]
    finally:
        await asyncio.to_thread(_pg_ctl, heal_db, "start")
    _report("SIGTERM while the database is down", stopped_after=took)
    workers.spawn("w1", WORKER)
    await _wait_for(lambda: _queue_count(heal_db, 2), 30, "both workers back")


async def _done_some(db: HealDb, keys: list[str]) -> bool:
    return await _done(db, keys) > 0


async def _all_done(db: HealDb, keys: list[str]) -> bool:
    return await _done(db, keys) == len(keys)


async def _has_line(path: Path) -> bool:
    return path.exists() and bool(path.read_text().strip())


async def _queue_count(db: HealDb, n: int) -> bool:
    return len(await _queue_pids(db)) == n


async def _exited(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is not None


# --- make run's supervision ----------------------------------------------------------------------------

def _sleeper() -> list[str]:
    return ["-c", "import time; time.sleep(60)"]


def test_restart_dead_restarts_a_killed_child_and_backs_off_a_crash_loop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    stack = Stack(database_url="postgresql+asyncpg://unused@127.0.0.1:1/unused", quiet=True)
    try:
        first = stack.spawn("sleeper", _sleeper())
        stack.spawn("crasher", ["-c", "raise SystemExit(3)"])
        stack.kill("sleeper", signal.SIGKILL)
        first.wait(timeout=5)
        restarts: dict[str, int] = {"sleeper": 0, "crasher": 0}
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            for name in stack.restart_dead():
                restarts[name] += 1
            time.sleep(0.02)
        assert restarts["sleeper"] == 1
        assert stack.proc("sleeper").poll() is None and stack.proc("sleeper").pid != first.pid
        # a crash loop restarts after 0.5, 1, 2 s ... not 150 times in 3 s
        assert 2 <= restarts["crasher"] <= 3
        err = capsys.readouterr().err
        assert "sleeper exited (-9); restarting" in err and "crasher exited (3); restarting" in err
    finally:
        stack.stop()


def test_children_die_with_the_process_that_started_them(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: `make run` (or a test run) killed with SIGKILL leaves no orphan behind."""
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from scripts.stack import Stack
        stack = Stack(database_url="postgresql+asyncpg://unused@127.0.0.1:1/unused", quiet=True)
        child = stack.spawn("sleeper", ["-c", "import time; time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(60)
    """)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 15
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(pid_file.read_text())
        assert _running(child)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 5
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(child)
    finally:
        parent.kill()
        parent.wait()


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for its new parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
