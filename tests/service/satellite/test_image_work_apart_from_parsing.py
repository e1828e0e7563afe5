"""Image work never waits behind a parse: a tile miss and the picture are served while the parsing
process is busy (with a tgju page, say) for as long as it takes.

The parse here does not finish until the app shuts down, so nothing depends on how fast anything
is: a tile check or a picture queued behind it would never be answered.
"""

from __future__ import annotations

import asyncio
import io
import threading

import pytest
from aiohttp import web
from PIL import Image

import providers.tiles
from service.satellite.routes import SATELLITE
from service.web.app import create_app
from service.web.keys import ENGINE
from tests.service.satellite.test_satellite import satellite_settings
from tests.support.parse_workers import wait_in_worker
from tests.support.tiles import FakeTiles
from tests.support.waiting import CEILING_SECONDS, eventually

Z, X, Y = 12, 2605, 1620
#: Longer than any test run: the parse ends when the app closes its parsing processes.
FOREVER_SECONDS = 3600


@pytest.fixture
def tiles(upstream) -> FakeTiles:
    return FakeTiles(upstream)


async def busy_parsing(client, tmp_path) -> asyncio.Future[int]:
    """Occupy the app's one parsing process until shutdown; returns the parse in flight."""
    upstream_client = client.app[ENGINE].refreshers["satellite"].upstream
    assert upstream_client.parsing.workers == 1
    started = tmp_path / "parsing"
    parse = asyncio.ensure_future(upstream_client.parse(wait_in_worker, str(started), FOREVER_SECONDS))
    await eventually(started.exists, message="the parse never started")
    return parse


async def test_a_tile_miss_is_served_while_the_parsing_process_is_busy(aiohttp_client, tiles, tmp_path):
    client = await aiohttp_client(create_app(satellite_settings(tiles)))
    parse = await busy_parsing(client, tmp_path)

    response = await asyncio.wait_for(client.get(f"/tiles/{Z}/{X}/{Y}.jpg"), CEILING_SECONDS)

    assert response.status == 200, await response.text()
    assert tiles.hits(Z, X, Y) == 1
    assert not parse.done()  # still parsing: the tile did not wait for it
    parse.cancel()


async def test_the_picture_is_drawn_while_the_parsing_process_is_busy(aiohttp_client, tiles, tmp_path):
    client = await aiohttp_client(create_app(satellite_settings(tiles)))
    parse = await busy_parsing(client, tmp_path)

    described = await asyncio.wait_for(client.get("/widgets/satellite.json"), CEILING_SECONDS)
    assert described.status == 200
    picture = await asyncio.wait_for(client.get("/widgets/satellite.jpg"), CEILING_SECONDS)

    assert picture.status == 200, await picture.text()
    assert Image.open(io.BytesIO(await picture.read())).size == (1020, 802)
    assert not parse.done()
    assert client.app[SATELLITE].drawing.pool.processes()  # drawn in its own process
    parse.cancel()


async def test_tile_checks_run_in_their_own_threads_and_still_refuse_junk(
    monkeypatch, aiohttp_client, tiles
):
    threads: list[threading.Thread] = []
    check = providers.tiles.tile_problem

    def recorded(data: bytes) -> str | None:
        threads.append(threading.current_thread())
        return check(data)

    monkeypatch.setattr(providers.tiles, "tile_problem", recorded)
    tiles.special[(Z, X + 1, Y)] = lambda: web.Response(
        body=b"\xff\xd8\xff" + b"junk" * 100, content_type="image/jpeg"
    )
    client = await aiohttp_client(create_app(satellite_settings(tiles)))

    good = await client.get(f"/tiles/{Z}/{X}/{Y}.jpg")
    junk = await client.get(f"/tiles/{Z}/{X + 1}/{Y}.jpg")

    assert good.status == 200 and junk.status == 502
    assert threads and all(t.name.startswith("tile-check") for t in threads)
