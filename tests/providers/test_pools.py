"""One connection pool per provider: a hanging upstream exhausts only its own connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from providers.http import UpstreamClient, UpstreamError
from service.satellite.tile_math import tile_range
from service.settings import EngineSettings, HttpSettings, Settings
from service.web.app import create_app
from service.widgets import BUILTIN_WIDGETS
from service.widgets.satellite import FAMENIN_BBOX
from tests.support.clock import FakeClock
from tests.support.tiles import FakeTiles
from tests.support.upstream import FakeUpstream

LIMIT = 4


@pytest.fixture
async def hanging() -> AsyncIterator[FakeUpstream]:
    """An upstream that accepts every request and answers none (until the test ends)."""
    fake = await FakeUpstream().start()
    fake.gate.clear()
    yield fake
    await fake.close()


async def until(condition, what: str) -> None:
    """Wait for something the servers report (not for a length of time); fail if it never comes."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_each_pool_has_its_own_connections(hanging, upstream) -> None:
    upstream.json("/probe", {"value": 1, "label": "ok"})
    client = UpstreamClient(HttpSettings(max_connections_per_provider=LIMIT), FakeClock().time)
    await client.start()
    try:
        stuck = [
            asyncio.ensure_future(
                client.session(timeout_seconds=30, pool="tiles").get(hanging.url(f"/t/{i}"))
            )
            for i in range(LIMIT * 3)
        ]
        await until(lambda: len(hanging.requests) == LIMIT, "the tile pool filled up")

        answer = await client.session(timeout_seconds=30, pool="probe").get_json(upstream.url("/probe"))

        assert answer == {"value": 1, "label": "ok"}
        assert len(hanging.requests) == LIMIT  # the rest wait for the tile pool, not for others
        assert set(client.pools) == {"tiles", "probe"}
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
    finally:
        await client.close()
    assert client.pools == ()


async def test_close_closes_every_pool_it_opened(upstream) -> None:
    upstream.json("/x", {"ok": True})
    client = UpstreamClient(HttpSettings(), FakeClock().time)
    await client.start()
    sessions = [client.session(timeout_seconds=30, pool=name) for name in ("a", "b", "a")]
    for session in sessions:
        await session.get_json(upstream.url("/x"))
    opened = {id(session._session): session._session for session in sessions}
    assert len(opened) == 2
    await client.close()
    assert all(pool.closed for pool in opened.values())
    with pytest.raises(RuntimeError):
        client.session(timeout_seconds=30)


async def test_an_injected_session_serves_every_pool_and_stays_open(upstream) -> None:
    upstream.json("/x", {"ok": True})
    async with aiohttp.ClientSession() as injected:
        client = UpstreamClient(HttpSettings(), FakeClock().time, session=injected)
        await client.start()
        for pool in ("tiles", "probe"):
            assert client.session(timeout_seconds=30, pool=pool)._session is injected
        await client.close()
        assert not injected.closed


async def test_a_pool_waits_only_as_long_as_its_timeout(hanging) -> None:
    client = UpstreamClient(HttpSettings(max_connections_per_provider=1), FakeClock().time)
    await client.start()
    try:
        first = asyncio.ensure_future(client.session(timeout_seconds=30, pool="t").get(hanging.url("/1")))
        await until(lambda: len(hanging.requests) == 1, "the pool's one connection in use")
        with pytest.raises(UpstreamError) as caught:
            await client.session(timeout_seconds=0.1, pool="t").get(hanging.url("/2"))
        assert caught.value.reason == "timeout"
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
    finally:
        await client.close()


async def test_a_flood_of_tile_misses_does_not_hold_up_a_refresh(aiohttp_client, hanging, upstream) -> None:
    """More tile misses than the pool holds, against a source that never answers: prices,
    weather or (here) the probe widget still refresh from their own upstream at once."""
    tiles = FakeTiles(hanging)
    upstream.json("/probe", {"value": 7, "label": "fresh"})
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "satellite"}
    settings = Settings(
        http=HttpSettings(max_connections_per_provider=LIMIT),
        engine=EngineSettings(background=False, cold_wait_seconds=5),
        widgets={**others, "satellite": {}, "probe": {"enabled": True}},
        providers={
            "tiles": {"url": tiles.template, "timeout_seconds": 30},
            "probe": {"url": upstream.url("/probe"), "timeout_seconds": 30},
        },
    )
    client = await aiohttp_client(create_app(settings))
    zoom = 13
    x_min, y_min, x_max, y_max = tile_range(FAMENIN_BBOX, zoom)
    wanted = [(x, y) for x in range(x_min, x_max + 1) for y in range(y_min, y_max + 1)][:120]
    assert len(wanted) == 120  # more than any connector's default limit (100)

    # Browsers of their own: the test client's connector must not be what limits the flood.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as browsers:
        flood = [
            asyncio.ensure_future(browsers.get(client.make_url(f"/tiles/{zoom}/{x}/{y}.jpg")))
            for x, y in wanted
        ]
        await until(lambda: tiles.total >= LIMIT, "tile misses reached the source")

        probe = await client.get("/widgets/probe.json")
        body = await probe.json()

        assert probe.status == 200, body
        assert body["status"] == "fresh" and body["data"] == {"value": 7, "label": "fresh"}
        assert tiles.total == LIMIT  # the tile pool is full; the refresh did not wait for it
        for request in flood:
            request.cancel()
        await asyncio.gather(*flood, return_exceptions=True)
