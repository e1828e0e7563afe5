"""What a client does with its socket: half-closing it after asking, or asking in HTTP/0.9.

Raw sockets to the service in-process: no client library half-closes or leaves out the version.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.settings import Settings
from service.web.app import create_app
from service.web.errors import JsonErrorsApplication
from tests.support.upstream import FakeUpstream
from tests.support.waiting import CEILING_SECONDS, eventually

LIVEZ = b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"
#: HTTP/0.9 has no status line nor headers to answer in: refused as the parser's errors are.
TOO_OLD = "HTTP version below 1.0"


@pytest.fixture
async def server(
    upstream: FakeUpstream, probe_settings: Callable[..., Settings]
) -> AsyncIterator[TestServer]:
    service = TestServer(create_app(probe_settings()), host="127.0.0.1")
    await service.start_server()
    yield service
    await service.close()


async def open_to(server: TestServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def read_to_the_end(reader: asyncio.StreamReader) -> bytes:
    """Everything the service sends until it closes the connection (the ceiling only stops a hang)."""
    return await asyncio.wait_for(reader.read(), CEILING_SECONDS)


def statuses(raw: bytes) -> list[int]:
    """The status of each answer in ``raw`` (a body runs straight into the next status line)."""
    return [int(status) for status in re.findall(rb"HTTP/1\.[01] (\d{3}) ", raw)]


def open_connections(server: TestServer) -> int:
    assert server.runner is not None and server.runner.server is not None
    return len(server.runner.server.connections)


async def test_a_client_that_half_closes_after_asking_still_gets_its_answer(server):
    reader, writer = await open_to(server)
    try:
        writer.write(LIVEZ)
        writer.write_eof()  # shutdown(SHUT_WR): done sending, still reading

        answer = await read_to_the_end(reader)
    finally:
        writer.close()

    assert statuses(answer) == [200]
    assert answer.endswith(b'{"status": "pass"}')
    await eventually(lambda: open_connections(server) == 0, message="the connection was left open")


async def test_pipelined_requests_before_a_half_close_are_all_answered_then_the_connection_closes(server):
    reader, writer = await open_to(server)
    try:
        writer.write(LIVEZ + b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n" + LIVEZ)
        writer.write_eof()

        answer = await read_to_the_end(reader)  # returns only once the service closed its side
    finally:
        writer.close()

    assert statuses(answer) == [200, 404, 200]
    await eventually(lambda: open_connections(server) == 0, message="the connection was left open")


async def test_a_half_close_between_requests_closes_the_connection(server):
    reader, writer = await open_to(server)
    try:
        writer.write(LIVEZ)
        head = await asyncio.wait_for(reader.readuntil(b'{"status": "pass"}'), CEILING_SECONDS)
        assert statuses(head) == [200]
        await eventually(lambda: open_connections(server) == 1)

        writer.write_eof()  # idle on keep-alive, then done: nothing more to answer

        assert await read_to_the_end(reader) == b""
    finally:
        writer.close()
    await eventually(lambda: open_connections(server) == 0, message="the connection was left open")


async def test_a_half_close_before_asking_anything_closes_the_connection(server):
    reader, writer = await open_to(server)
    try:
        await eventually(lambda: open_connections(server) == 1)
        writer.write_eof()

        assert await read_to_the_end(reader) == b""
    finally:
        writer.close()
    await eventually(lambda: open_connections(server) == 0, message="the connection was left open")


@pytest.mark.parametrize(
    "request_line",
    [b"GET /\r\n\r\n", b"GET / HTTP/0.9\r\n\r\n", b"GET /livez HTTP/0.9\r\nHost: x\r\n\r\n"],
    ids=["no version", "HTTP/0.9", "HTTP/0.9 with headers"],
)
async def test_a_request_below_http_1_0_is_the_documented_json_400(
    server, request_line: bytes, caplog: pytest.LogCaptureFixture
):
    reader, writer = await open_to(server)
    try:
        with caplog.at_level(logging.INFO, logger="service.web.errors"):
            writer.write(request_line)
            answer = await read_to_the_end(reader)  # and the connection is closed
    finally:
        writer.close()

    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    assert status_line.startswith("HTTP/1.0 400 ")
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert json.loads(body) == {"error": f"malformed request: {TOO_OLD}"}
    logged = [r.getMessage() for r in caplog.records if r.name == "service.web.errors"]
    assert logged == [f"malformed request from 127.0.0.1: {TOO_OLD}"]


async def test_http_1_0_is_still_answered(server):
    reader, writer = await open_to(server)
    try:
        writer.write(b"GET /livez HTTP/1.0\r\n\r\n")
        answer = await read_to_the_end(reader)
    finally:
        writer.close()

    assert answer.startswith(b"HTTP/1.0 200 ") and answer.endswith(b'{"status": "pass"}')


async def test_shutdown_does_not_wait_for_an_answer_owed_to_a_client_that_closed_its_side():
    """A close and a half-close look the same from here: shutdown treats both as gone, as it
    does not wait for a client that disconnected."""
    app = JsonErrorsApplication()
    asked = asyncio.Event()
    finished: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        asked.set()
        await asyncio.Event().wait()  # never answers: only shutdown ends it
        finished.append("answered")
        return web.Response()

    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, shutdown_timeout=3600)  # a wait for the answer would be this long
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = runner.server
    assert server is not None
    port = runner.addresses[0][1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        writer.write_eof()
        await asyncio.wait_for(asyncio.shield(asked.wait()), CEILING_SECONDS)

        await asyncio.wait_for(runner.cleanup(), CEILING_SECONDS)

        assert await read_to_the_end(reader) == b""
    finally:
        writer.close()
    assert finished == [] and not server.connections
