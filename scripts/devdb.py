"""Embedded PostgreSQL for `make run` and `make test` when no DATABASE_URL is given.

Uses the machine's PostgreSQL binaries (PATH, /usr/lib/postgresql/*/bin, ...) or the
pip-installable `pgserver` package's. Data lives under .data/<name>; started on 127.0.0.1.
As root, the server runs as the `postgres` user (or `nobody`), as PostgreSQL refuses root.

  python -m scripts.devdb start [--name pg] [--port 54329]   -> prints the DATABASE_URL
  python -m scripts.devdb stop  [--name pg]
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_USER = "motcua"


def find_bindir() -> Path:
    candidates: list[str] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(os.path.realpath(on_path)).parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    candidates += sorted(glob.glob("/usr/pgsql-*/bin"), reverse=True)
    candidates += sorted(glob.glob("/opt/homebrew/opt/postgresql*/bin"), reverse=True)
    candidates += sorted(glob.glob("/usr/local/opt/postgresql*/bin"), reverse=True)
    try:
        import pgserver  # type: ignore[import-not-found]

        candidates.append(str(Path(pgserver.__file__).parent / "pginstall" / "bin"))
    except ImportError:
        pass
    for c in candidates:
        if (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    raise SystemExit(
        "No PostgreSQL binaries found. Install them (Debian/Ubuntu: apt-get install postgresql; "
        "or: .venv/bin/pip install pgserver), or set DATABASE_URL to a running server."
    )


def run_as_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: pick an unprivileged account."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise SystemExit("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


def _accessible_by(user: pwd.struct_passwd, path: Path) -> bool:
    probe = subprocess.run(
        ["test", "-w", str(path)], user=user.pw_uid, group=user.pw_gid, check=False,
    )
    return probe.returncode == 0


def data_dir(name: str, user: pwd.struct_passwd | None) -> Path:
    """.data/<name>; as root, if the postgres user cannot reach it, a linked dir in /var/tmp."""
    target = ROOT / ".data" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if user is None:
        target.mkdir(exist_ok=True)
        return target
    if target.is_symlink() or target.exists():
        real = target.resolve()
    else:
        target.mkdir()
        real = target
    os.chown(real, user.pw_uid, user.pw_gid)
    os.chmod(real, 0o700)
    if not _accessible_by(user, real):
        if target.is_symlink():
            raise SystemExit(f"{real} is not writable by {user.pw_name}")
        shutil.rmtree(target)
        real = Path(f"/var/tmp/motcua-{abs(hash(str(ROOT))) % 10**8}-{name}")  # noqa: S108
        real.mkdir(parents=True, exist_ok=True)
        os.chown(real, user.pw_uid, user.pw_gid)
        os.chmod(real, 0o700)
        target.symlink_to(real)
    return real


def _run(cmd: list[str], user: pwd.struct_passwd | None, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    if user is not None:
        env["HOME"] = user.pw_dir
        result: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
            cmd, user=user.pw_uid, group=user.pw_gid, env=env, text=True, cwd="/", **kw)
        return result
    plain: subprocess.CompletedProcess[str] = subprocess.run(cmd, env=env, text=True, **kw)  # type: ignore[call-overload]
    return plain


def start(name: str, port: int, fast: bool) -> str:
    bindir = find_bindir()
    user = run_as_user()
    pgdata = data_dir(name, user)
    if not (pgdata / "PG_VERSION").exists():
        res = _run([str(bindir / "initdb"), "-D", str(pgdata), "-U", DB_USER, "--auth=trust",
                    "-E", "UTF8", "--locale=C.UTF-8"], user, capture_output=True)
        if res.returncode != 0:
            raise SystemExit(f"initdb failed:\n{res.stdout}\n{res.stderr}")
        conf = [
            f"port = {port}", "listen_addresses = '127.0.0.1'", f"unix_socket_directories = '{pgdata}'",
            "max_connections = 300", "shared_buffers = 256MB", "timezone = 'UTC'",
            "log_min_messages = warning", "logging_collector = off",
        ]
        if fast:  # test databases: durability traded for speed, nothing else differs
            conf += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with open(pgdata / "postgresql.conf", "a") as fh:
            fh.write("\n# Một Cửa\n" + "\n".join(conf) + "\n")
    status = _run([str(bindir / "pg_ctl"), "-D", str(pgdata), "status"], user, capture_output=True)
    if status.returncode == 0:
        port = running_port(pgdata) or port
    else:
        port = port if port_is_free(port) else any_free_port()
        (pgdata / "postmaster.pid").unlink(missing_ok=True) if status.returncode == 3 else None
        res = _run([str(bindir / "pg_ctl"), "-D", str(pgdata), "-l", str(pgdata / "server.log"),
                    "-o", f"-p {port}", "-w", "-t", "60", "start"], user, capture_output=True)
        if res.returncode != 0:
            logfile = pgdata / "server.log"
            log = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
            raise SystemExit(f"PostgreSQL did not start:\n{res.stdout}\n{res.stderr}\n{log}")
    create_database(bindir, user, port, "motcua")
    return f"postgresql+asyncpg://{DB_USER}@127.0.0.1:{port}/motcua"


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def any_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        chosen: int = s.getsockname()[1]
        return chosen


def running_port(pgdata: Path) -> int | None:
    """The port a running server of this data directory listens on (postmaster.pid line 4)."""
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return None


def create_database(bindir: Path, user: pwd.struct_passwd | None, port: int, db: str) -> None:
    for _ in range(50):
        ready = _run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], user,
                     capture_output=True)
        if ready.returncode == 0:
            break
        time.sleep(0.2)
    exists = _run([str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", DB_USER, "-d",
                   "postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{db}'"], user,
                  capture_output=True)
    if exists.stdout.strip() != "1":
        _run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", DB_USER, db],
             user, capture_output=True)


def stop(name: str) -> None:
    target = ROOT / ".data" / name
    if not (target / "PG_VERSION").exists():
        return
    _run([str(find_bindir() / "pg_ctl"), "-D", str(target.resolve()), "-m", "fast", "-w", "stop"],
         run_as_user(), capture_output=True)


async def recreate_database(url: str, disposable_suffix: str) -> None:
    """The database of `url` made empty when its name ends with `disposable_suffix` (tests, bench, fuzz:
    dropped and created again), else created only if missing; never drops anyone else's database."""
    import asyncpg

    server, name = url.replace("postgresql+asyncpg://", "postgresql://", 1).rsplit("/", 1)
    conn = await asyncpg.connect(server + "/postgres")
    try:
        if name.endswith(disposable_suffix):
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        elif not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname=$1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def restart(name: str, mode: str = "fast") -> None:
    """Fault drills: restart a running instance with shutdown mode `fast` or `immediate` (crash-like)."""
    target = ROOT / ".data" / name
    pgdata = target.resolve()
    port = running_port(pgdata)
    res = _run([str(find_bindir() / "pg_ctl"), "-D", str(pgdata), "-m", mode, "-w", "-t", "60",
                "-l", str(pgdata / "server.log"), "-o", f"-p {port}", "restart"], run_as_user(),
               capture_output=True)
    if res.returncode != 0:
        raise RuntimeError(f"pg_ctl restart failed: {res.stdout}{res.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "url"])
    parser.add_argument("--name", default="pg")
    parser.add_argument("--port", type=int, default=54329)
    parser.add_argument("--fast", action="store_true", help="fsync off (tests only)")
    args = parser.parse_args()
    if args.action == "stop":
        stop(args.name)
        return
    if args.action == "url":
        sys.stdout.write(f"{find_bindir()}\n")
        return
    url = start(args.name, args.port, args.fast)
    sys.stdout.write(url + "\n")


if __name__ == "__main__":
    main()
