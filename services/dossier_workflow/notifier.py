"""Messages to citizens (SMS / email / Zalo) behind one interface; the default adapter writes a log line.

A real adapter implements `Notifier.send` (e.g. an SMS brand-name provider's HTTP API) and is
chosen with SMS_API_URL / SMS_API_KEY; it raises on a failure so the message is retried.

Every message carries a stable id (`message_id`, derived from its dedupe key): the same message sent
again - after a crash, a timeout or a refusal - carries the same id, which an HTTP provider receives as
its `Idempotency-Key` and uses to deliver it once.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import httpx
import structlog

TEMPLATES = {
    "dossier_received": "Ho so {code} ({procedure}) da duoc tiep nhan. Hen tra: {due_at}.",
    "status_changed": "Ho so {code} dang duoc giai quyet.",
    "supplement_requested": "Ho so {code} can bo sung: {documents}. Han bo sung: {supplement_due_at}.",
    "supplement_received": "Ho so {code} da nhan bo sung. Hen tra moi: {due_at}.",
    "result_ready": "Ho so {code} da co ket qua ({outcome}).",
    "result_returned": "Ket qua ho so {code} da duoc tra ({method}).",
    "apology": "Xin loi: ho so {code} tre han vi {reason}. Hen tra moi: {new_due_at}.",
    "withdrawn": "Ho so {code} da dung giai quyet theo de nghi.",
    "dossier_submitted": "Ho so {code} ({procedure}) da duoc gui. Han tiep nhan: {acceptance_due_at}.",
    "dossier_received_waiting_paper": "Ho so {code} ({procedure}) da dang ky. Thoi han tinh tu khi nhan ho so giay.",
    "accepted": "Ho so {code} da duoc tiep nhan. Hen tra: {due_at}.",
    "verification_extended": "Ho so {code} gia han {days} ngay lam viec de xac minh ({reason}). Hen tra moi: "
                             "{new_due_at}.",
    "staff_acceptance_due": "Ho so truc tuyen cho tiep nhan tai {agency}: {codes}.",
}
SEND_TIMEOUT = 5.0  # seconds one provider call may take, all of it (connect, send, answer)
SENDS_AT_ONCE = 10  # provider calls in flight per process (and the HTTP pool's connections)
_IDS = uuid.UUID("6f1d2c3e-7a8b-4c5d-9e0f-1a2b3c4d5e6f")  # namespace of message ids


def message_id(dedupe_key: str) -> str:
    """A message's stable id (ASCII, fit for an HTTP header): the same dedupe key, the same id."""
    return str(uuid.uuid5(_IDS, dedupe_key))


@dataclass(frozen=True)
class Message:
    id: str
    channel: str
    to: str
    template: str
    params: dict[str, Any]

    def text(self) -> str:
        template = TEMPLATES.get(self.template, "{code}: " + self.template)
        try:
            return template.format(**self.params)
        except (KeyError, IndexError):
            return f"{self.template}: {json.dumps(self.params, ensure_ascii=False)}"


class Notifier(Protocol):
    async def send(self, message: Message) -> None: ...

    async def aclose(self) -> None: ...


class LogNotifier:
    """Development and tests: one JSON line per message in a file (and the structured log)."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    async def send(self, message: Message) -> None:
        self.outbox.parent.mkdir(parents=True, exist_ok=True)
        with self.outbox.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"id": message.id, "channel": message.channel, "to": message.to,
                                "text": message.text()}, ensure_ascii=False) + "\n")
        structlog.get_logger("notifier").info("notification_sent", channel=message.channel, to=message.to,
                                              template=message.template, message_id=message.id)

    async def aclose(self) -> None:
        return None


class HttpSmsNotifier:
    """An SMS provider's HTTP API: POST {id, to, text} with a bearer key and `Idempotency-Key: <id>`;
    any non-2xx, a connection error or a timeout raises (the message is retried with the same id).

    One HTTP client (one connection pool, kept-alive connections) per process and event loop, created on
    the first send and closed by `aclose` (the worker's shutdown hook)."""

    clients_built: ClassVar[int] = 0  # HTTP clients this process has built (tests: one, however many sends)

    def __init__(self, url: str, api_key: str, *, timeout: float = SEND_TIMEOUT,
                 max_connections: int = SENDS_AT_ONCE) -> None:
        self.url, self.api_key = url, api_key
        self.timeout, self.max_connections = timeout, max_connections
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:  # a client belongs to the loop it was made in
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                limits=httpx.Limits(max_connections=self.max_connections,
                                    max_keepalive_connections=self.max_connections),
                headers={"Authorization": f"Bearer {self.api_key}"})
            self._loop = loop
            HttpSmsNotifier.clients_built += 1
        return self._client

    async def send(self, message: Message) -> None:
        r = await self._http().post(self.url, json={"id": message.id, "to": message.to, "text": message.text()},
                                    headers={"Idempotency-Key": message.id})
        r.raise_for_status()

    async def aclose(self) -> None:
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            await client.aclose()


def notifier_from_env(storage_dir: str, sms_url: str | None = None, sms_key: str | None = None) -> Notifier:
    if sms_url and sms_key:
        return HttpSmsNotifier(sms_url, sms_key)
    return LogNotifier(Path(storage_dir) / "notifications.jsonl")
