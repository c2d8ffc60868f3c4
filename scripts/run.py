"""`make run`: database (embedded unless DATABASE_URL is set), migrations, demo data, all processes.

A process that dies is started again (`<name> exited (<code>); restarting`); Ctrl-C stops everything.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from scripts.demo_data import CLIENTS, USERS
from scripts.stack import Stack

BANNER = """
────────────────────────────────────────────────────────────────────────
 Một Cửa is running.
   API gateway     {gw}
   API docs        {gw}/docs
   Readiness       {gw}/readyz
   Kiosk page      {gw}/queue/kiosk/PBD#client_id=kiosk-pbd&client_secret=demo-kiosk-secret
   Display board   {gw}/queue/board/PBD
   Database        {db}

 Demo people (password grant) — local use only:
{users}
 Demo clients (client_credentials):
{clients}
 Try it:
   TOKEN=$(curl -s -d grant_type=password -d username=canbo.phuong -d password=demo-officer \\
           {gw}/api/auth/v1/token | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
   curl -s -H "Authorization: Bearer $TOKEN" "{gw}/api/intake/v1/ping"
   curl -s "{gw}/api/intake/v1/procedures?q=khai%20sinh"
   curl -s "{gw}/api/intake/v1/calendar/due?procedure_code=1.004873&agency_code=000.00.21.H29"
   make simulate-postal    # in another terminal: the postal partner delivers what is waiting

 Ctrl-C stops everything.
────────────────────────────────────────────────────────────────────────
"""


def main() -> None:
    started_db = False
    url = os.environ.get("DATABASE_URL")
    if not url:
        from scripts.devdb import start as start_db

        print("Starting the embedded PostgreSQL under .data/pg ...", flush=True)
        url = start_db("pg", 54329, fast=False)
        started_db = True
        os.environ["DATABASE_URL"] = url
    from scripts.seed import seed_all
    from shared.migrations import upgrade_all
    from shared.settings import get_settings

    print("Migrating ...", flush=True)
    upgrade_all(url)
    print("Loading demo data ...", flush=True)
    asyncio.run(seed_all(get_settings()))
    port = int(os.environ.get("GATEWAY_PORT", "8000"))
    stack = Stack(database_url=url, gateway_port=port)
    stopping = False

    def on_signal(_sig: int, _frm: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
        stack.wait_ready(timeout=90)
        users = "\n".join(f"   {u.username:<16} {u.password:<16} {u.role:<11} {u.name}"
                          for u in USERS)
        clients = "\n".join(f"   {c.client_id:<16} {c.secret:<20} {c.role}" for c in CLIENTS)
        print(BANNER.format(gw=stack.gateway_url, db=url.split("@")[-1], users=users,
                            clients=clients), flush=True)
        while not stopping:  # a process that dies is started again (with backoff if it keeps dying)
            stack.restart_dead()
            time.sleep(0.2)
    finally:
        print("Stopping ...", flush=True)
        stack.stop()
        if started_db:
            from scripts.devdb import stop as stop_db

            stop_db("pg")
        print("Stopped.", flush=True)


if __name__ == "__main__":
    main()
