"""Hostile requests never cause a 500: odd Host headers and hostile query strings on every route.

Sent over raw sockets: HTTP clients normalise the Host header and the query string, and the point
is what the service does with bytes a client library would never send.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from service.engine.clock import SystemClock
from service.settings import EngineSettings, Settings
from service.web.app import create_app
from tests.support.air import openmeteo_air_document
from tests.support.fixtures import fixture_text
from tests.support.prices import serve_tgju
from tests.support.tiles import FakeTiles
from tests.support.upstream import fake_upstream

#: Every test here only reads: they share one service (and its loop), started once.
pytestmark = pytest.mark.asyncio(loop_scope="module")

Z, X, Y = 12, 2605, 1620  # a tile inside the county box

WIDGETS = ("prices", "weather", "air", "satellite", "links")
ROUTES = [
    "/",
    "/widgets",
    *(f"/widgets/{name}.{fmt}" for name in WIDGETS for fmt in ("json", "html")),
    *(f"/embed/{name}" for name in WIDGETS),
    "/embed.js",
    "/embed/satellite/map",
    "/widgets/satellite.jpg",
    f"/tiles/{Z}/{X}/{Y}.jpg",
    "/health",
    "/readyz",
    "/livez",
    "/metrics",
    "/no/such/page",
]


def every_widget(upstream, tiles: FakeTiles) -> Settings:
    """The widgets with upstreams on, each against the fake upstream.

    The fake answers at once, but on a busy machine a first fetch (a parsing process starting, the
    pages parsed in it) can take seconds: the timeouts and the cold wait only bound a test gone
    wrong, so that every widget holds data before the hostile requests start.
    """
    return Settings(
        engine=EngineSettings(background=False, cold_wait_seconds=60),
        widgets={"weather": {"providers": ["openmeteo"]}},
        providers={
            "tgju": {"url": upstream.url(""), "timeout_seconds": 30},
            "openmeteo": {"url": upstream.url(""), "timeout_seconds": 30},
            "openmeteo_air": {"url": upstream.url(""), "timeout_seconds": 30},
            "tiles": {"url": tiles.template, "timeout_seconds": 30},
        },
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[TestServer]:
    """The service with every widget holding data, so any 5xx below is the request's doing."""
    async with fake_upstream() as upstream:
        serve_tgju(upstream)
        upstream.json("/v1/forecast", json.loads(fixture_text("openmeteo_forecast.json")))
        # Air readings must be of the hour now: dated by the clock the service runs on.
        upstream.json("/v1/air-quality", openmeteo_air_document(SystemClock().time()))
        service = TestServer(create_app(every_widget(upstream, FakeTiles(upstream))), host="127.0.0.1")
        async with TestClient(service) as client:
            for path in ROUTES:
                await client.get(path)
            for name in WIDGETS:
                response = await client.get(f"/widgets/{name}.json")
                assert response.status == 200, (name, await response.text())
            assert (await client.get("/health")).status == 200
            yield service


async def raw_get(server, target: bytes, host: bytes | None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request written byte for byte; the status, headers and body of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        head = b"GET " + target + b" HTTP/1.1\r\n"
        if host is not None:
            head += b"Host: " + host + b"\r\n"
        writer.write(head + b"Connection: close\r\n\r\n")
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    header_block, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


ODD_HOSTS = [
    None,
    b"",
    b":::",
    b"a" * 4000,
    b"a" * 10000,
    "فامنین.ایران".encode(),
    b"\xff\xfe\x80",
    b"host:99999",
    b"host:-1",
    b"[::1",
    b"[::1]:80x",
    b"a b",
    b"evil.example/<script>",
]


@pytest.mark.parametrize("host", ODD_HOSTS, ids=lambda h: repr(h)[:24])
async def test_an_odd_host_header_never_causes_a_500(server, host):
    for path in ROUTES:
        status, headers, body = await raw_get(server, path.encode(), host)
        assert status < 500, (path, status, body[:300])
        assert b"Traceback" not in body


async def test_an_odd_host_is_not_pasted_into_the_gallery_snippets(server):
    status, _, body = await raw_get(server, b"/", b"evil.example/<script>")
    assert status == 200
    assert b"evil.example" not in body
    assert b"/widgets/links.html" in body  # root-relative snippets instead


async def test_a_plain_host_still_gives_absolute_snippets(server):
    status, _, body = await raw_get(server, b"/", b"widgets.example.org:8080")
    assert status == 200
    assert b"http://widgets.example.org:8080/embed/links" in body


TEN_THOUSAND_KEYS = ",".join(f"k{i}" for i in range(10_000))
HOSTILE_QUERIES: list[str] = [
    "unknown=1",
    "theme=dark&theme=light",
    "items=sekee&items=price_eur",
    "days=3&days=9",
    "theme=%ff",
    "theme=%ff%fe%c0%af",
    "items=%ff,%fe",
    "unit=%80",
    "days=%ff",
    "%ff=%ff",
    "days=1e400",
    "days=" + "9" * 5000,
    "days=%C2%B2",  # "²": a digit to str.isdigit, not to int()
    "days=%D9%A3",  # Arabic-Indic three
    "days=-0",
    "theme=" + "x" * 6000,
    "items=" + TEN_THOUSAND_KEYS[:7000],
    "items=" + TEN_THOUSAND_KEYS,
    "items=" + ",".join(["sekee"] * 1000),
    "&&&==&",
    "theme",
    "q=" + "%00" * 100,
]


def widget_routes() -> list[str]:
    return [path for path in ROUTES if path.startswith(("/widgets/", "/embed/"))] + ["/", "/widgets"]


@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=lambda q: q[:30])
async def test_a_hostile_query_string_is_never_a_500(server, query):
    for path in widget_routes():
        status, headers, body = await raw_get(server, f"{path}?{query}".encode(), b"localhost")
        assert status < 500, (path, status, body[:300])
        assert b"Traceback" not in body
        if 400 <= status < 500 and "json" in headers.get("content-type", ""):
            error: Any = json.loads(body)["error"]
            assert isinstance(error, str) and 0 < len(error) <= 300, (path, len(error))
