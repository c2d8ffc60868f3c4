"""Starts and stops the whole system as real processes (used by `make run`, e2e tests, bench, chaos).

Each process is started in a session (process group) of its own, so it can be stopped or killed with
everything it started (uvicorn's --workers). On Linux each also gets SIGTERM when the process that
started it dies (PR_SET_PDEATHSIG), so killing `make run` or a test run leaves no orphan behind; the
death that counts is that of the starting *thread*, so start processes from a thread that outlives them
(the main thread). `restart_dead` brings back a process that died, with backoff when it keeps dying.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {
    "intake": "services.intake.app:create_app",
    "workflow": "services.dossier_workflow.app:create_app",
    "postal": "services.postal_tracking.app:create_app",
    "queue": "services.queue_ticket.app:create_app",
}
WORKER_MODULES = [
    "services.intake.jobs", "services.dossier_workflow.jobs",
    "services.postal_tracking.jobs", "services.queue_ticket.jobs",
]


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
RESTART_FIRST = 0.5  # seconds before restarting a process that died again soon after a restart, doubled ...
RESTART_MAX = 30.0  # ... up to this; the first death after a healthy run is restarted at once
HEALTHY_AFTER = 30.0  # a process that ran this long before dying starts the backoff again


def _libc_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _libc_prctl()  # looked up in the parent: the child, between fork and exec, only calls it


def _die_with_parent(parent: int) -> None:
    """Runs in the child before exec: SIGTERM when the parent dies (or has died already)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class Restarts:
    """A process's deaths: how many in a row came soon after a start, and when it may start again."""

    started: float
    failures: int = 0
    due: float | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Stack:
    database_url: str
    gateway_port: int = 8000
    service_ports: dict[str, int] = field(default_factory=lambda: {
        "intake": 8101, "workflow": 8102, "postal": 8103, "queue": 8104})
    extra_env: dict[str, str] = field(default_factory=dict)
    replicas: dict[str, int] = field(default_factory=dict)
    workers: int = 1
    gateway_workers: int = int(os.environ.get("GATEWAY_WORKERS", "1"))
    log_dir: Path | None = None
    quiet: bool = False
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    commands: dict[str, list[str]] = field(default_factory=dict)
    restarts: dict[str, Restarts] = field(default_factory=dict)

    @classmethod
    def on_free_ports(cls, database_url: str, **options: Any) -> Stack:
        """A stack beside anything else running here (tests, bench, fuzz, chaos): every port picked free."""
        return cls(database_url=database_url, gateway_port=free_port(),
                   service_ports={name: free_port() for name in SERVICES}, **options)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "DATABASE_URL": self.database_url,
            "JWKS_URL": f"{self.gateway_url}/.well-known/jwks.json",
            "JWT_ISSUER": env.get("JWT_ISSUER", f"http://localhost:{self.gateway_port}"),
            "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", f"http://localhost:{self.gateway_port}"),
            "PYTHONPATH": str(ROOT),
            **{f"{name.upper()}_URL": f"http://127.0.0.1:{port}"
               for name, port in self.service_ports.items()},
        })
        env.update(self.extra_env)
        return env

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        """Starts `python <args>` as the process `name` (replacing a dead one of that name)."""
        out: int | object = subprocess.DEVNULL if self.quiet else None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(
            [sys.executable, *args], env=self.env(), cwd=ROOT, stdout=out, stderr=out,  # type: ignore[arg-type]
            start_new_session=True, preexec_fn=functools.partial(_die_with_parent, os.getpid()),
        )
        if out is not None and not isinstance(out, int):
            out.close()  # type: ignore[attr-defined]  # the child has its own copy
        self.commands[name] = args
        self.procs = [(n, p) for n, p in self.procs if n != name] + [(name, proc)]
        self.restarts.setdefault(name, Restarts(started=time.monotonic())).started = time.monotonic()
        return proc

    def proc(self, name: str) -> subprocess.Popen[bytes]:
        for n, p in self.procs:
            if n == name:
                return p
        raise KeyError(name)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Sends `sig` to the process `name` and everything it started (its process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc(name).pid, sig)

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Stops the process `name` (SIGTERM, SIGKILL after 10 s) and starts it again, at once."""
        self._stop_one(self.proc(name), grace=10)
        return self.spawn(name, self.commands[name])

    def restart_dead(self, now: float | None = None) -> list[str]:
        """Starts again every process that has died; call it in a loop (it never blocks). The first death
        after a healthy run (HEALTHY_AFTER) restarts at once; one dying again soon after waits RESTART_FIRST,
        doubled per death up to RESTART_MAX, so a crash loop does not spin. Returns the names started."""
        now = time.monotonic() if now is None else now
        started: list[str] = []
        for name, proc in list(self.procs):
            code = proc.poll()
            if code is None:
                continue
            state = self.restarts.setdefault(name, Restarts(started=now))
            if state.due is None:
                state.failures = 0 if now - state.started >= HEALTHY_AFTER else state.failures + 1
                delay = 0.0 if state.failures == 0 else min(RESTART_FIRST * 2 ** (state.failures - 1), RESTART_MAX)
                state.due = now + delay
                print(f"{name} exited ({code}); restarting" + (f" in {delay:.1f} s" if delay else ""),
                      file=sys.stderr, flush=True)
            if now >= state.due:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # what it started dies with it
                state.due = None
                self.spawn(name, self.commands[name])
                started.append(name)
        return started

    @staticmethod
    def uvicorn_args(target: str, port: int, workers: int = 1) -> list[str]:
        """Plain uvicorn: uvloop and httptools when installed (uvicorn[standard]), else its defaults."""
        args = ["-m", "uvicorn", "--factory", target, "--host", "127.0.0.1", "--port", str(port),
                "--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "3"]
        try:
            import uvloop  # noqa: F401

            args += ["--loop", "uvloop", "--http", "httptools"]
        except ImportError:
            pass
        if workers > 1:
            args += ["--workers", str(workers)]
        return args

    def start(self) -> None:
        for name, target in SERVICES.items():
            self.spawn(name, self.uvicorn_args(target, self.service_ports[name], self.replicas.get(name, 1)))
        self.spawn("gateway", self.uvicorn_args("gateway.app:create_app", self.gateway_port, self.gateway_workers))
        for i in range(self.workers):
            self.spawn(f"worker{i}", ["-m", "shared.worker", *WORKER_MODULES])

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.gateway_url}/readyz", timeout=3) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.3)
        raise RuntimeError(f"stack not ready after {timeout}s: {last}")

    @contextlib.contextmanager
    def running(self, ready_timeout: float = 90.0) -> Iterator[Stack]:
        """Started and ready inside the block, stopped on the way out (tests, fuzz, bench)."""
        self.start()
        try:
            self.wait_ready(timeout=ready_timeout)
            yield self
        finally:
            self.stop()

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, proc in self.procs:
            self._stop_one(proc, grace=max(0.1, deadline - time.monotonic()))
        self.procs.clear()
        self.restarts.clear()

    @staticmethod
    def _stop_one(proc: subprocess.Popen[bytes], grace: float) -> None:
        """SIGTERM to the process's group, SIGKILL after `grace` seconds; the group is gone afterwards."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
