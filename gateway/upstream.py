"""A small keep-alive HTTP/1.1 client for the proxy's hot path (httptools parser, no frills).

aiohttp's client cost most of the gateway's CPU per request (py-spy); this one does only what a
reverse proxy to our own services needs: one request per pooled connection, whole bodies.
Streams (SSE) and HEAD still go through aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httptools


class UpstreamError(Exception):
    """Connection refused, reset or closed before a whole response arrived."""


class _Connection(asyncio.Protocol):
    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes]] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.closed = False
        self.got_bytes = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"bad response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        self._fail(UpstreamError("connection closed"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.headers, self.body = [], []
            return
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, self.headers, b"".join(self.body)))
        if not self.parser.should_keep_alive():
            self.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def send(self, data: bytes) -> asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes]]:
        self.headers, self.body, self.got_bytes = [], [], False
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(data)
        return self.waiter


def _expire(waiter: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes]]) -> None:
    """The upstream took longer than the gateway's timeout (cheaper than wrapping each wait in wait_for)."""
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class UpstreamPool:
    """Idle keep-alive connections to one upstream host."""

    def __init__(self, host: str, port: int, max_idle: int = 128) -> None:
        self.host = host
        self.port = port
        self.host_header = f"{host}:{port}".encode()
        self.max_idle = max_idle
        self.idle: list[_Connection] = []

    def forget(self, conn: _Connection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _Connection(self), self.host, self.port)
        except OSError as exc:
            raise ConnectionRefusedError(str(exc)) from exc
        return conn

    async def request(
        self, method: str, target: str, headers: Sequence[tuple[bytes, bytes]], body: bytes | None,
        timeout: float,  # noqa: ASYNC109 - one deadline per upstream round trip
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        head = [f"{method} {target} HTTP/1.1\r\n".encode("latin-1"), b"host: ", self.host_header, b"\r\n"]
        for k, v in headers:
            head += [k, b": ", v, b"\r\n"]
        head.append(b"content-length: %d\r\n\r\n" % len(body or b""))
        payload = b"".join(head) + (body or b"")
        for attempt in (0, 1):
            reused = bool(self.idle)
            conn = self.idle.pop() if reused else await self._connect()
            waiter = conn.send(payload)
            deadline = asyncio.get_running_loop().call_later(timeout, _expire, waiter)
            try:
                result = await waiter
            except UpstreamError:
                conn.close()
                # An idle connection the upstream had just closed: nothing was processed; retry once.
                if reused and not conn.got_bytes and attempt == 0:
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            finally:
                deadline.cancel()
            if not conn.closed and len(self.idle) < self.max_idle:
                self.idle.append(conn)
            return result
        raise UpstreamError("unreachable")

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()
