"""Starts and stops the whole system as real processes (used by `make run`, e2e tests, bench)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

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

    def _spawn(self, name: str, args: list[str]) -> None:
        out: int | object = subprocess.DEVNULL if self.quiet else None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(
            [sys.executable, *args], env=self.env(), cwd=ROOT, stdout=out, stderr=out,  # type: ignore[arg-type]
            start_new_session=True,
        )
        self.procs.append((name, proc))

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
            self._spawn(name, self.uvicorn_args(target, self.service_ports[name],
                                               self.replicas.get(name, 1)))
        self._spawn("gateway", self.uvicorn_args("gateway.app:create_app", self.gateway_port,
                                                self.gateway_workers))
        for i in range(self.workers):
            self._spawn(f"worker{i}", ["-m", "shared.worker", *WORKER_MODULES])

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

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
