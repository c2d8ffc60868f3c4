"""A small keep-alive HTTP/1.1 client for the proxy's hot path (httptools parser, no frills).

aiohttp's client cost most of the gateway's CPU per request (py-spy); this one does only what a
reverse proxy to our own services needs: one request per pooled connection, whole bodies.
Streams (SSE) and HEAD still go through aiohttp. The exchange is callback-driven so that the
gateway's fast protocol (gateway/fast.py) forwards without a task or a future; `request` wraps
it for coroutine callers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import httptools

Result = tuple[int, list[tuple[bytes, bytes]], bytes]
OnDone = Callable[[Result | None, BaseException | None], None]


class UpstreamError(Exception):
    """Connection refused, reset or closed before a whole response arrived."""


class _Connection(asyncio.Protocol):
    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.on_done: OnDone | None = None
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
            self.close()
            self._finish(None, UpstreamError(f"bad response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        self._finish(None, UpstreamError("connection closed"))

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
        if not self.parser.should_keep_alive():
            self.close()  # before the caller decides whether to pool it
        self._finish((status, self.headers, b"".join(self.body)), None)

    def _finish(self, result: Result | None, exc: BaseException | None) -> None:
        on_done, self.on_done = self.on_done, None
        if on_done is not None:
            on_done(result, exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def send(self, data: bytes, on_done: OnDone) -> None:
        self.headers, self.body, self.got_bytes = [], [], False
        self.on_done = on_done
        assert self.transport is not None
        self.transport.write(data)


class _Exchange:
    """One request: an idle connection (or a new one), one retry when an idle one was stale, a deadline."""

    __slots__ = ("attempt", "conn", "done", "payload", "pool", "reused", "timeout", "timer")

    def __init__(self, pool: UpstreamPool, payload: bytes, timeout: float, done: OnDone) -> None:
        self.pool = pool
        self.payload = payload
        self.timeout = timeout
        self.done = done
        self.attempt = 0
        self.conn: _Connection | None = None
        self.reused = False
        self.timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self.pool.idle:
            self.reused = True
            self._send(self.pool.idle.pop())
        else:
            self.reused = False
            asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        try:
            conn = await self.pool.connect()
        except ConnectionRefusedError as exc:
            self.done(None, exc)
            return
        self._send(conn)

    def _send(self, conn: _Connection) -> None:
        self.conn = conn
        self.timer = asyncio.get_running_loop().call_later(self.timeout, self._expire)
        conn.send(self.payload, self._finished)

    def _expire(self) -> None:
        """The upstream took longer than the gateway's timeout."""
        conn = self.conn
        if conn is not None and conn.on_done is not None:
            conn.on_done = None
            conn.close()
            self.done(None, TimeoutError())

    def _finished(self, result: Result | None, exc: BaseException | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        conn = self.conn
        assert conn is not None
        if exc is not None:
            conn.close()
            # An idle connection the upstream had just closed: nothing was processed; retry once.
            if self.reused and not conn.got_bytes and self.attempt == 0:
                self.attempt = 1
                self.start()
                return
            self.done(None, exc)
            return
        if not conn.closed and len(self.pool.idle) < self.pool.max_idle:
            self.pool.idle.append(conn)
        self.done(result, None)


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

    async def connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _Connection(self), self.host, self.port)
        except OSError as exc:
            raise ConnectionRefusedError(str(exc)) from exc
        return conn

    def encode(self, method: str, target: str, headers: Sequence[tuple[bytes, bytes]], body: bytes | None) -> bytes:
        head = [f"{method} {target} HTTP/1.1\r\n".encode("latin-1"), b"host: ", self.host_header, b"\r\n"]
        for k, v in headers:
            head += [k, b": ", v, b"\r\n"]
        head.append(b"content-length: %d\r\n\r\n" % len(body or b""))
        if body:
            head.append(body)
        return b"".join(head)

    def start(self, payload: bytes, timeout: float, done: OnDone) -> None:
        """Send an encoded request; `done(result, None)` or `done(None, error)` is called exactly once.

        Errors: ConnectionRefusedError (cannot connect), TimeoutError, UpstreamError.
        """
        _Exchange(self, payload, timeout, done).start()

    async def request(
        self, method: str, target: str, headers: Sequence[tuple[bytes, bytes]], body: bytes | None,
        timeout: float,  # noqa: ASYNC109 - one deadline per upstream round trip
    ) -> Result:
        waiter: asyncio.Future[Result] = asyncio.get_running_loop().create_future()

        def done(result: Result | None, exc: BaseException | None) -> None:
            if waiter.done():
                return
            if exc is not None:
                waiter.set_exception(exc)
            else:
                assert result is not None
                waiter.set_result(result)

        self.start(self.encode(method, target, headers, body), timeout, done)
        return await waiter

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()
