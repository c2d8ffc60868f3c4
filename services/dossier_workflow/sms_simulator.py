"""A local SMS provider that speaks HTTP: the counterpart of `HttpSmsNotifier` for tests and fault runs.

It delivers a message (records it, as a phone would receive it) and answers 200, deduplicating by the
`Idempotency-Key` header as a careful provider does: a request whose key it has seen is answered again
without a second delivery. Switches make it misbehave: ignore keys (every request is a delivery), be slow
before accepting, accept and then be slow to answer (the caller times out after the delivery), fail.

Run:  python -m services.dossier_workflow.sms_simulator --port 8199 [--ignore-keys] [--delay 0.2]
      then point the worker at it: SMS_API_URL=http://127.0.0.1:8199/sms SMS_API_KEY=anything

HTTP:
- POST /sms            {"to", "text", "id"?} + Idempotency-Key -> 200 {"message_id", "status": "accepted"}
- GET  /stats          {"requests", "received", "unique", "duplicates", "replayed", "failed", "connections"}
                       received = deliveries; unique = distinct messages (key, else to + text) delivered;
                       duplicates = received - unique (a citizen got the same SMS twice)
- GET  /messages       the deliveries in order: [{"key", "to", "text", "at"}]
- GET  /switches, PUT /switches {"honour_keys", "delay", "delay_after_accept", "fail_next", "fail_rate",
                                 "fail_status"} (a partial body changes only what it names)
- POST /reset          forget messages and counts (switches stay)
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class Switches:
    honour_keys: bool = True  # dedupe by Idempotency-Key
    delay: float = 0.0  # seconds before the message is accepted (a slow provider)
    delay_after_accept: float = 0.0  # seconds between the delivery and the answer (a caller may time out)
    fail_next: int = 0  # the next N requests fail (with fail_status), delivering nothing
    fail_rate: float = 0.0  # then this share of requests fails
    fail_status: int = 503


DEFAULTS = Switches()


@dataclass
class Provider:
    switches: Switches = field(default_factory=Switches)
    requests: int = 0
    replayed: int = 0
    failed: int = 0
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # Idempotency-Key -> first answer
    peers: set[tuple[str, int]] = field(default_factory=set)  # TCP connections seen (client host, port)

    def stats(self) -> dict[str, int]:
        identities = {d["key"] or f"{d['to']}\n{d['text']}" for d in self.deliveries}
        return {"requests": self.requests, "received": len(self.deliveries), "unique": len(identities),
                "duplicates": len(self.deliveries) - len(identities), "replayed": self.replayed,
                "failed": self.failed, "connections": len(self.peers)}

    def reset(self) -> None:
        self.requests = self.replayed = self.failed = 0
        self.deliveries.clear()
        self.answers.clear()
        self.peers.clear()


def create_app(switches: Switches | None = None) -> Starlette:
    provider = Provider(switches or Switches())

    async def send(request: Request) -> JSONResponse:
        provider.requests += 1
        if request.client is not None:
            provider.peers.add((request.client.host, request.client.port))
        try:
            body = await request.json()
            to, text = str(body["to"]), str(body["text"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "body must be JSON with to and text"}, status_code=400)
        s = provider.switches
        if s.delay:
            await asyncio.sleep(s.delay)
        if s.fail_next > 0 or (s.fail_rate and random.random() < s.fail_rate):
            s.fail_next = max(0, s.fail_next - 1)
            provider.failed += 1
            return JSONResponse({"error": "injected failure"}, status_code=s.fail_status)
        key = request.headers.get("idempotency-key")
        if s.honour_keys and key is not None and key in provider.answers:  # checked and kept with no await between
            provider.replayed += 1
            return JSONResponse(provider.answers[key], headers={"Idempotent-Replayed": "true"})
        answer = {"message_id": uuid.uuid4().hex, "status": "accepted"}
        provider.deliveries.append({"key": key, "to": to, "text": text, "at": time.time()})
        if key is not None:
            provider.answers[key] = answer
        if s.delay_after_accept:
            await asyncio.sleep(s.delay_after_accept)
        return JSONResponse(answer)

    async def stats(_: Request) -> JSONResponse:
        return JSONResponse(provider.stats())

    async def messages(_: Request) -> JSONResponse:
        return JSONResponse(provider.deliveries)

    async def switches_route(request: Request) -> JSONResponse:
        if request.method == "PUT":
            try:
                changes = await request.json()
            except ValueError:
                changes = None
            known = {f.name for f in fields(Switches)}
            if not isinstance(changes, dict) or not set(changes) <= known or not all(
                    _fits(getattr(DEFAULTS, name), value) for name, value in changes.items()):
                return JSONResponse({"error": f"known switches: {asdict(provider.switches)}"}, status_code=400)
            for name, value in changes.items():
                setattr(provider.switches, name, type(getattr(DEFAULTS, name))(value))
        return JSONResponse(asdict(provider.switches))

    async def reset(_: Request) -> JSONResponse:
        provider.reset()
        return JSONResponse(provider.stats())

    app = Starlette(routes=[
        Route("/sms", send, methods=["POST"]), Route("/stats", stats), Route("/messages", messages),
        Route("/switches", switches_route, methods=["GET", "PUT"]), Route("/reset", reset, methods=["POST"]),
    ])
    app.state.provider = provider
    return app


def _fits(current: Any, value: Any) -> bool:
    if isinstance(current, bool):
        return isinstance(value, bool)
    if isinstance(current, int):
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Local SMS provider (see the module's docstring).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8199)
    parser.add_argument("--ignore-keys", action="store_true", help="deliver every request (no dedupe)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before accepting")
    parser.add_argument("--delay-after-accept", type=float, default=0.0, help="seconds after delivering")
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--fail-status", type=int, default=503)
    args = parser.parse_args()
    switches = Switches(honour_keys=not args.ignore_keys, delay=args.delay, delay_after_accept=args.delay_after_accept,
                        fail_rate=args.fail_rate, fail_status=args.fail_status)
    uvicorn.run(create_app(switches), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
