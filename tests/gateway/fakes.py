"""A scriptable HTTP/1.1 upstream on a raw socket: it records exactly what the gateway sent and can
misbehave in ways a real service should not (unsolicited answers, silence, dropped connections)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class Seen:
    """One request as it arrived: the connection it came on and its raw head and body."""

    connection: int
    request_line: bytes
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def target(self) -> str:
        return self.request_line.split(b" ")[1].decode("latin-1")

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)


def response(status: int, body: bytes, content_type: bytes = b"application/json", extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 %d X\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n" % (
        status, content_type, len(body), extra)) + body


@dataclass
class FakeUpstream:
    """Answers by the path it is sent (after the gateway maps /api/<service>/v1/... to /v1/...):

    - /v1/unsolicited: answers, then 50 ms later writes a second answer nobody asked for;
    - /v1/pipelined: answers with two answers in one write;
    - /v1/silent: reads the request and never answers; /v1/close: closes without answering;
    - /v1/big/N: N bytes; /v1/stall, /v1/bigstall: headers and half the body, then silence;
    - /v1/offices/X/board/stream: an event stream, one event every 50 ms;
    - /v1/status/N/...: status N; /v1/partners/X/events: 401 unless `x-test-signature: valid`;
      anything else: 200 with what it received, as JSON.
    """

    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self.writers.append(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head[:-4].split(b"\r\n")
                headers = [(k.strip().lower().decode("latin-1"), v.strip().decode("latin-1"))
                           for k, _, v in (line.partition(b":") for line in lines[1:])]
                length = int(next((v for k, v in headers if k == "content-length"), "0"))
                body = await reader.readexactly(length) if length else b""
                seen = Seen(number, lines[0], headers, body)
                self.seen.append(seen)
                if not await self.answer(seen, writer):
                    return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def answer(self, seen: Seen, writer: asyncio.StreamWriter) -> bool:
        """Writes the answer; False when the connection is to be closed."""
        path = seen.target.partition("?")[0]
        if path == "/v1/silent":
            await asyncio.sleep(3600)
        if path == "/v1/close":
            return False
        if path == "/v1/unsolicited":
            writer.write(response(200, b'{"mine": true}'))
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(response(200, b'{"smuggled": "another citizen\'s dossier"}'))
            await writer.drain()
            return True
        if path == "/v1/pipelined":
            writer.write(response(200, b'{"mine": true}') + response(200, b'{"smuggled": true}'))
            await writer.drain()
            return True
        if path.startswith("/v1/big/"):
            size = int(path.rsplit("/", 1)[1])
            writer.write(response(200, b"x" * size, b"application/octet-stream"))
            await writer.drain()
            return True
        if path == "/v1/bigstall":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (3 * 1024 * 1024))
            writer.write(b"x" * (1536 * 1024))
            await writer.drain()
            await asyncio.sleep(3600)
        if path == "/v1/stall":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 10\r\n\r\nhalf.")
            await writer.drain()
            await asyncio.sleep(3600)
        if path.endswith("/board/stream"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            for i in range(1000):
                event = b"id: %d\ndata: {}\n\n" % i
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await writer.drain()
                await asyncio.sleep(0.05)
            return False
        status = int(path.split("/")[3]) if path.startswith("/v1/status/") else 200
        if path.startswith("/v1/partners/") and seen.header("x-test-signature") != "valid":
            status = 401  # as the postal service answers a delivery whose signature it cannot verify
        body = json.dumps({"connection": seen.connection, "target": seen.target,
                           "method": seen.request_line.split(b" ")[0].decode(),
                           "headers": seen.headers, "body": seen.body.decode("latin-1")}).encode()
        answer = response(status, body, extra=b"etag: \"7\"\r\nx-upstream: fake\r\n")
        if seen.request_line.startswith(b"HEAD ") or status == 204:
            answer = answer.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
        writer.write(answer)
        await writer.drain()
        return True


@asynccontextmanager
async def fake_upstream() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream()
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    upstream.port = server.sockets[0].getsockname()[1]
    try:
        yield upstream
    finally:
        server.close()
        for writer in upstream.writers:
            writer.close()


@asynccontextmanager
async def unaccepting_port() -> AsyncIterator[int]:
    """A port whose listener never accepts and whose backlog is full: a connect there hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect(("127.0.0.1", port))
        fillers.append(s)
    await asyncio.sleep(0.1)
    try:
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


@dataclass
class RawAnswer:
    status: int
    head: bytes
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name:
                return value.strip()
        return None


async def raw_exchange(url: str, data: bytes, wait: float = 2.0) -> bytes:
    """Writes `data` as it is on a new connection; returns all it gets until the peer closes or is quiet."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    await writer.drain()
    got = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), wait):
            got += chunk
    except (TimeoutError, ConnectionError):
        pass
    writer.close()
    return got


async def raw_get(url: str, target: bytes, headers: bytes = b"") -> RawAnswer:
    """One request with the target exactly as given (no client library normalises it)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: gw\r\n" + headers + b"\r\n")
    try:
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5))[:-4]
        answer = RawAnswer(int(head.split(b" ")[1]), head, b"")
        length = answer.header(b"content-length")
        if length is not None:
            answer.body = await asyncio.wait_for(reader.readexactly(int(length)), 5)
        return answer
    finally:
        writer.close()
