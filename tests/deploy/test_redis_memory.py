"""The compose file's Redis memory options against the service's own keys: caches are evicted,
durable data (snapshots, refresh state, price history) never is.

The Redis runs with the memory options docker-compose.yml gives it, read from the file, with
only ``maxmemory`` scaled down so a crawl fills it in seconds.
"""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as redis
from aiohttp import web
from PIL import Image

from service.satellite.tile_math import tile_range
from service.settings import EngineSettings, Settings
from service.web.app import create_app
from service.widgets import BUILTIN_WIDGETS
from service.widgets.satellite import FAMENIN_BBOX
from tests.deploy.test_compose import compose
from tests.service.history.test_price_history import SHORT_REFRESH, refresh_at, serve_dollar_at
from tests.support.redis_server import RedisServer
from tests.support.tiles import FakeTiles
from tests.support.waiting import CEILING_SECONDS

MAXMEMORY = 6 * 1024 * 1024
#: Tile bytes the crawl writes, as a multiple of ``MAXMEMORY``: well past it.
CRAWL_FACTOR = 4
Z = 14
#: A widget with price history, and one with tiles.
RUNNING = {"prices", "satellite"}


def compose_memory_options(maxmemory: int) -> list[str]:
    """The compose file's ``--maxmemory*`` options, with ``maxmemory`` replaced."""
    command: list[str] = compose()["services"]["redis"]["command"]
    options: list[str] = []
    for flag, value in zip(command, command[1:], strict=False):
        if flag.startswith("--maxmemory"):
            options += [flag, str(maxmemory) if flag == "--maxmemory" else value]
    assert "--maxmemory-policy" in options, "the compose file names no eviction policy"
    return options


class ComposeRedis(RedisServer):
    def command(self) -> list[str]:
        return super().command() + compose_memory_options(MAXMEMORY)


@pytest.fixture
def compose_redis() -> Iterator[ComposeRedis]:
    server = ComposeRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def raw(compose_redis: ComposeRedis) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(compose_redis.url)
    yield client
    await client.aclose()


def noisy_jpeg() -> bytes:
    """A tile the size of real imagery (tens of kilobytes), not a flat colour JPEG compresses away."""
    out = io.BytesIO()
    Image.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3)).save(out, format="JPEG", quality=90)
    return out.getvalue()


def settings(upstream: Any, tiles: FakeTiles, redis_url: str, budget: int) -> Settings:
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name not in RUNNING}
    return Settings(
        redis_url=redis_url,
        engine=EngineSettings(background=False, retry_base_seconds=0.05, cold_wait_seconds=CEILING_SECONDS),
        widgets={
            # Short steps: the shared clock is Redis's, re-measured each minute of the test's clock.
            "prices": {"refresh_seconds": SHORT_REFRESH},
            "satellite": {"client_misses_per_minute": budget, "upstream_tiles_per_minute": 2 * budget},
            **others,
        },
        providers={
            "tgju": {"url": upstream.url(""), "timeout_seconds": 30},
            "tiles": {"url": tiles.template, "timeout_seconds": 30},
        },
    )


async def durable_contents(raw: redis.Redis) -> dict[bytes, Any]:
    """Every key with no expiry, with what it holds."""
    found: dict[bytes, Any] = {}
    async for key in raw.scan_iter(count=1000):
        if await raw.ttl(key) != -1:
            continue
        kind = await raw.type(key)
        if kind == b"zset":
            found[key] = await raw.zrange(key, 0, -1, withscores=True)
        elif kind == b"string":
            found[key] = await raw.get(key)
        else:
            found[key] = kind
    return found


async def test_a_tile_crawl_past_maxmemory_evicts_tiles_and_never_history_or_snapshots(
    aiohttp_client, upstream, clock, compose_redis, raw
):
    tiles = FakeTiles(upstream)
    image = noisy_jpeg()
    x_min, y_min, x_max, y_max = tile_range(FAMENIN_BBOX, Z)
    walk = [(x, y) for y in range(y_min, y_max + 1) for x in range(x_min, x_max + 1)]
    needed = CRAWL_FACTOR * MAXMEMORY // len(image) + 1
    assert len(walk) >= needed, "the county box has too few tiles at this zoom for the crawl"
    for x, y in walk[:needed]:
        tiles.special[(Z, x, y)] = lambda: web.Response(body=image, content_type="image/jpeg")
    serve_dollar_at(upstream, 1_050_000)
    # The budget is the crawl: every tile is a miss the budgets allow, none is refused.
    app = create_app(settings(upstream, tiles, compose_redis.url, budget=needed), clock=clock)
    client = await aiohttp_client(app)
    assert (await client.get("/widgets/prices.json")).status == 200
    assert (await client.get("/widgets/satellite.json")).status == 200
    for price in (1_051_000, 1_052_000, 1_053_000):
        await refresh_at(client, clock, upstream, price, after=SHORT_REFRESH + 1)
    before = await durable_contents(raw)
    history_keys = [key for key in before if key.startswith(b"sidebar:history:")]
    assert len(history_keys) == 14 * 3  # every item, every tier
    assert all(len(before[key]) >= 1 for key in history_keys)
    assert {b"sidebar:snapshot:prices", b"sidebar:snapshot:satellite", b"sidebar:state:prices"} <= set(before)

    # One reader walks the deepest zoom, within its miss budget.
    for x, y in walk[:needed]:
        assert (await client.get(f"/tiles/{Z}/{x}/{y}.jpg")).status == 200

    stats = await raw.info("stats")
    assert tiles.at_zoom(Z) == needed and needed * len(image) > CRAWL_FACTOR * MAXMEMORY
    assert stats["evicted_keys"] > 0, "the crawl never filled Redis: the test proves nothing"
    after = await durable_contents(raw)
    assert {key: after.get(key) for key in before} == before
    # Full of tiles, Redis still takes durable writes (by evicting a tile for them).
    await refresh_at(client, clock, upstream, 1_054_000, after=SHORT_REFRESH + 1)
    dollar = await client.get("/widgets/prices/history.json?item=price_dollar_rl&range=1d")
    prices = [price for _, price in (await dollar.json())["points"]]
    assert prices == [1_050_000, 1_051_000, 1_052_000, 1_053_000, 1_054_000]
    final = await durable_contents(raw)
    assert all(final.get(key) for key in history_keys)
