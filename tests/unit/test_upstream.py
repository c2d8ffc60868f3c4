"""The gateway's upstream client against small raw servers: keep-alive, closes, garbage, silence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gateway.upstream import UpstreamError, UpstreamPool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    return server, port


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = await reader.readexactly(length) if length else b""
    return head + body


@pytest.fixture
async def counting_server() -> AsyncIterator[tuple[int, list[int]]]:
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                req = await read_request(reader)
                body = b"echo:" + req.split(b"\r\n\r\n", 1)[1]
                writer.write(b"HTTP/1.1 201 Created\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s"
                             % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server, port = await serve(handler)
    yield port, connections
    server.close()


async def test_keep_alive_reuses_one_connection(counting_server: tuple[int, list[int]]) -> None:
    port, connections = counting_server
    pool = UpstreamPool("127.0.0.1", port)
    for i in range(5):
        status, headers, body = await pool.request("POST", "/v1/x", [(b"x-a", b"1")], b"n%d" % i, 5)
        assert (status, body) == (201, b"echo:n%d" % i)
        assert (b"content-type", b"text/plain") in headers
    assert len(connections) == 1
    pool.close()


async def test_chunked_and_connection_close() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        second = "hào!".encode()
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                     b"5\r\nxin c\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(second), second))
        await writer.drain()
        writer.close()

    server, port = await serve(handler)
    pool = UpstreamPool("127.0.0.1", port)
    status, _, body = await pool.request("GET", "/", [], None, 5)
    assert status == 200 and body.decode() == "xin chào!"
    await asyncio.sleep(0.05)
    assert pool.idle == []
    status, _, _ = await pool.request("GET", "/", [], None, 5)
    assert status == 200
    server.close()


async def test_idle_connection_closed_by_upstream_is_retried_once() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # closes after one response without saying so

    server, port = await serve(handler)
    pool = UpstreamPool("127.0.0.1", port)
    assert (await pool.request("GET", "/", [], None, 5))[0] == 200
    assert (await pool.request("GET", "/", [], None, 5))[2] == b"ok"
    server.close()


async def test_garbage_refused_and_silence() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    server, port = await serve(garbage)
    with pytest.raises(UpstreamError):
        await UpstreamPool("127.0.0.1", port).request("GET", "/", [], None, 5)
    server.close()
    server, port = await serve(silent)
    with pytest.raises(TimeoutError):
        await UpstreamPool("127.0.0.1", port).request("GET", "/", [], None, 0.2)
    server.close()
    with pytest.raises(ConnectionRefusedError):
        await UpstreamPool("127.0.0.1", port).request("GET", "/", [], None, 1)
