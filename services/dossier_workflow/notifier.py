"""Messages to citizens (SMS / email / Zalo) behind one interface; the default adapter writes a log line.

A real adapter implements `Notifier.send` (e.g. an SMS brand-name provider's HTTP API) and is
chosen with NOTIFIER; it raises on a failure so the job is retried.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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
}


@dataclass(frozen=True)
class Message:
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


class LogNotifier:
    """Development and tests: one JSON line per message in a file (and the structured log)."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    async def send(self, message: Message) -> None:
        self.outbox.parent.mkdir(parents=True, exist_ok=True)
        with self.outbox.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"channel": message.channel, "to": message.to, "text": message.text()},
                               ensure_ascii=False) + "\n")
        structlog.get_logger("notifier").info("notification_sent", channel=message.channel, to=message.to,
                                              template=message.template)


class HttpSmsNotifier:
    """Shape of a real SMS provider adapter: POST {to, text} with a bearer key; any non-2xx raises."""

    def __init__(self, url: str, api_key: str) -> None:
        self.url, self.api_key = url, api_key

    async def send(self, message: Message) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(self.url, json={"to": message.to, "text": message.text()},
                                  headers={"Authorization": f"Bearer {self.api_key}"})
            r.raise_for_status()


def notifier_from_env(storage_dir: str, sms_url: str | None = None, sms_key: str | None = None) -> Notifier:
    if sms_url and sms_key:
        return HttpSmsNotifier(sms_url, sms_key)
    return LogNotifier(Path(storage_dir) / "notifications.jsonl")
