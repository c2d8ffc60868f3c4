"""`make fuzz`: Schemathesis against the whole stack's merged OpenAPI, as an officer and as an admin.

Starts on a database of its own, `<name>_fuzz` beside DATABASE_URL's (the embedded PostgreSQL
under .data/pg-fuzz when DATABASE_URL is unset), dropped and re-created, migrates it and loads the
demo data like the tests do, starts the gateway, the four services and a worker on free ports,
signs in as `canbo.phuong` (officer) and `quantri` (admin), and runs `st run` once per identity
with a bounded number of examples per operation and a request timeout. Prints the counts and exits
non-zero on any server error or any answer (status, content type or body) the OpenAPI does not
declare. Everything it starts is stopped on the way out.

  python -m scripts.fuzz [--max-examples 10] [--request-timeout 10] [--identity officer]
                         [any `st run` option, e.g. --include-path-regex /queue/]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.demo_data import USERS
from scripts.devdb import recreate_database
from scripts.stack import ROOT, Stack

IDENTITIES = {"officer": "canbo.phuong", "admin": "quantri"}
PHASES = "examples,coverage,fuzzing,stateful"
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance")
# Schemathesis' failure codes (`st explain ST101`): a 5xx; an answer the OpenAPI does not declare.
SERVER_ERROR = {"ST101", "ST102"}
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
UNDECLARED = {"ST103", "ST104", "ST105", "ST106", "ST108", "ST109"}


def database_url() -> str:
    """A database of its own, `<name>_fuzz` (re-created each run), on DATABASE_URL's server or else on
    the embedded PostgreSQL (data under .data/pg-fuzz): fuzzing leaves junk behind."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        from scripts.devdb import start

        url = start("pg-fuzz", 54331, fast=True)
    return fuzz_database(url)


def fuzz_database(url: str) -> str:
    server, name = url.rsplit("/", 1)
    return url if name.endswith("_fuzz") else f"{server}/{name}_fuzz"


def prepare_database(url: str) -> None:
    """Fresh, migrated as production is (every alembic history), with the demo data."""
    from scripts.seed import seed_all
    from shared.migrations import upgrade_all
    from shared.settings import Settings

    asyncio.run(recreate_database(url, "_fuzz"))
    upgrade_all(url)
    asyncio.run(seed_all(Settings(database_url=url, environment="test")))


@contextmanager
def running_stack(url: str, log_dir: Path | None = None) -> Iterator[Stack]:
    """The gateway, the four services and a worker on free ports; stopped, and their files removed, after."""
    storage = ROOT / ".data" / f"files-{url.rsplit('/', 1)[1]}"
    stack = Stack.on_free_ports(
        url,
        extra_env={"ENVIRONMENT": "test", "ACCESS_LOG": "false", "RATE_LIMIT": "100000/minute",
                   "STORAGE_DIR": str(storage)},
        quiet=log_dir is None, log_dir=log_dir,
    )
    try:
        with stack.running():
            yield stack
    finally:
        shutil.rmtree(storage, ignore_errors=True)


def password_token(gateway: str, username: str) -> str:
    user = next(u for u in USERS if u.username == username)
    body = urllib.parse.urlencode({"grant_type": "password", "username": user.username,
                                   "password": user.password}).encode()
    req = urllib.request.Request(f"{gateway}/api/auth/v1/token", data=body,  # noqa: S310
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
        token: str = json.load(resp)["access_token"]
        return token


@dataclass
class Failure:
    identity: str
    operation: str
    code: str
    title: str
    message: str
    request: str
    answer: str


@dataclass
class Result:
    operations: set[str] = field(default_factory=set)
    requests: int = 0
    failures: list[Failure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def server_errors(self) -> list[Failure]:
        return [f for f in self.failures if f.code in SERVER_ERROR]

    @property
    def undeclared(self) -> list[Failure]:
        return [f for f in self.failures if f.code in UNDECLARED  # a 500 counts once, as a server error
                and not (f.code == "ST103" and f.answer.startswith("500"))]

    @property
    def ok(self) -> bool:
        """No failure of any check, and something was tested. Schemathesis' own errors (it could not
        generate for an operation: printed) do not fail the run."""
        return not self.failures and self.requests > 0

    def summary(self) -> str:
        counted = [id(f) for f in self.server_errors + self.undeclared]
        others = sum(1 for f in self.failures if id(f) not in counted
                     and not (f.code == "ST103" and f.answer.startswith("500")))
        lines = [
            f"operations: {len(self.operations)}",
            f"requests: {self.requests}",
            f"server errors: {len(self.server_errors)}",
            f"undeclared answers: {len(self.undeclared)}",
            f"other failures: {others}",
            f"fuzzer errors (an operation it could not test): {len(self.errors)}",
        ]
        for f in self.failures:
            if f.code == "ST103" and f.answer.startswith("500"):
                continue  # the same answer as its server error
            message = " ".join(f.message.split())
            lines.append(f"  [{f.identity}] {f.operation}: {f.code} {f.title}: {message[:400]}\n"
                         f"      request: {f.request}\n      answer: {f.answer}")
        lines += [f"  error: {e[:800]}" for e in self.errors]
        return "\n".join(lines)


def _text(payload: Any, limit: int = 300) -> str:
    """A recorded body ({"$base64": ...} or text) as short text."""
    if isinstance(payload, dict) and "$base64" in payload:
        raw = base64.b64decode(payload["$base64"])
        text = raw.decode("utf-8", "replace")
    elif isinstance(payload, dict):
        text = str(payload.get("string", payload))
    else:
        text = "" if payload is None else str(payload)
    return text if len(text) <= limit else text[:limit] + "…"


def read_ndjson(path: Path, identity: str, result: Result) -> None:
    """Counts from Schemathesis' NDJSON event stream: each recorded interaction is a request, each check
    failure (once per operation, code and message) a failure with the request that caused it."""
    seen: set[tuple[str, str, str]] = set()
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if isinstance(finished, dict):
            recorder = finished.get("recorder") or {}
            label = recorder.get("label", "?")
            interactions = recorder.get("interactions") or {}
            if interactions and label.split(" ", 1)[0] in METHODS:  # not "Stateful tests"
                result.operations.add(label)
            result.requests += len(interactions)
            for case_id, checks in (recorder.get("checks") or {}).items():
                for check in checks:
                    if check.get("status") != "failure":
                        continue
                    info = (check.get("failure_info") or {}).get("failure") or {}
                    code, message = info.get("code", check.get("name", "?")), info.get("message", "")
                    if (label, code, message) in seen:
                        continue
                    seen.add((label, code, message))
                    exchange = interactions.get(case_id) or {}
                    req, resp = exchange.get("request") or {}, exchange.get("response") or {}
                    request = f"{req.get('method', '?')} {req.get('uri', '?')}"
                    if req.get("body") is not None:
                        request += f" body={_text(req['body'])}"
                    answer = f"{resp.get('status_code', '?')} {_text(resp.get('content') or resp.get('body'))}"
                    result.failures.append(Failure(identity, label, code, info.get("title", "?"), message,
                                                   request, answer))
        error = event.get("NonFatalError")
        if isinstance(error, dict):
            value = error.get("value") or {}
            result.errors.append(f"[{identity}] {error.get('label', '?')}: "
                                 f"{value.get('message') if isinstance(value, dict) else value}")


def run_schemathesis(gateway: str, token: str, identity: str, *, max_examples: int, request_timeout: float,
                     workers: int, phases: str, extra: Sequence[str], result: Result, report_dir: Path) -> None:
    """One `st run` as this identity; its NDJSON report read into `result`."""
    ndjson = report_dir / f"{identity}.ndjson"
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{gateway}/openapi.json", "--url", gateway,
        "--phases", phases,
        "--checks", ",".join(CHECKS), "--max-examples", str(max_examples),
        "--request-timeout", str(request_timeout), "--workers", str(workers),
        "--header", f"Authorization: Bearer {token}",
        "--generation-database", "none", "--no-shrink",
        "--suppress-health-check", "all", "--continue-on-failure",
        "--report", "ndjson", "--report-ndjson-path", str(ndjson),
        "--warnings", "off", "--no-color", *extra,
    ]
    proc = subprocess.run(cmd, cwd=report_dir, capture_output=True, text=True, check=False)
    (report_dir / f"{identity}.out").write_text(proc.stdout + proc.stderr)
    if not ndjson.exists():
        result.failures.append(Failure(identity, "-", "no-report", "Schemathesis wrote no report",
                                       f"exit {proc.returncode}: {(proc.stdout + proc.stderr)[-2000:]}",
                                       " ".join(cmd[:6]), "-"))
        return
    read_ndjson(ndjson, identity, result)


def fuzz(url: str, *, max_examples: int, report_dir: Path, request_timeout: float = 10.0, workers: int = 2,
         phases: str = PHASES, identities: Sequence[str] = tuple(IDENTITIES), extra: Sequence[str] = (),
         log_dir: Path | None = None) -> Result:
    """A fresh database at `url`, the whole stack on it, one Schemathesis run per identity."""
    prepare_database(url)
    result = Result()
    with running_stack(url, log_dir) as stack:
        tokens = {name: password_token(stack.gateway_url, IDENTITIES[name]) for name in identities}
        for name in identities:
            run_schemathesis(stack.gateway_url, tokens[name], name, max_examples=max_examples,
                             request_timeout=request_timeout, workers=workers, phases=phases, extra=extra,
                             result=result, report_dir=report_dir)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_EXAMPLES", "10")),
                        help="test cases per operation and phase (default 10, or FUZZ_EXAMPLES)")
    parser.add_argument("--request-timeout", type=float, default=10.0, help="seconds, per request")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--phases", default=PHASES)
    parser.add_argument("--identity", action="append", choices=sorted(IDENTITIES),
                        help="sign in as (default: officer and admin, one run each)")
    parser.add_argument("--report-dir", type=Path, default=None,
                        help="keep Schemathesis' reports here (default: a temporary directory)")
    parser.add_argument("--log-dir", type=Path, default=None, help="the processes' output, one file each")
    args, extra = parser.parse_known_args(argv)
    started = time.monotonic()
    embedded = not os.environ.get("DATABASE_URL")
    try:
        with tempfile.TemporaryDirectory(prefix="motcua-fuzz-") as tmp:
            report_dir = args.report_dir or Path(tmp)
            report_dir.mkdir(parents=True, exist_ok=True)
            result = fuzz(database_url(), max_examples=args.max_examples, request_timeout=args.request_timeout,
                          workers=args.workers, phases=args.phases, extra=extra,
                          identities=args.identity or list(IDENTITIES), report_dir=report_dir.resolve(),
                          log_dir=args.log_dir)
    finally:
        if embedded:
            from scripts.devdb import stop

            stop("pg-fuzz")
    print(result.summary())
    print(f"took {time.monotonic() - started:.0f} s")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
