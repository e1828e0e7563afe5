"""The event loop never parses or decodes: that runs in worker threads (tgju's pages in a parsing
process: see test_parse_pool), with its own limits."""

from __future__ import annotations

import io
import json
import struct
import threading
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

import providers.http
import providers.metno
import providers.openmeteo
import providers.tgju
from providers.brsapi import BrsApiProvider
from providers.metno import MetNoProvider
from providers.openmeteo import OpenMeteoProvider
from service.satellite import composite
from service.satellite.composite import NEUTRAL, stitch
from service.satellite.tile_cache import Tile
from service.satellite.tile_math import pixel_box, tile_range
from service.settings import EngineSettings, Settings
from service.web.app import create_app
from service.widgets import BUILTIN_WIDGETS
from service.widgets.satellite import FAMENIN_BBOX, SatelliteOptions
from tests.providers.test_weather_providers import fetch as fetch_weather
from tests.providers.test_weather_providers import metno_fixture, openmeteo_fixture
from tests.support.fixtures import fixture_text
from tests.support.prices import fetch_once
from tests.support.tiles import FakeTiles, jpeg, tile_colour
from tests.support.waiting import CEILING_SECONDS


def recording(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[threading.Thread]:
    """Wrap ``owner.name`` so each call records the thread it ran in."""
    threads: list[threading.Thread] = []
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return threads


def off_the_loop(threads: list[threading.Thread]) -> bool:
    return bool(threads) and all(thread is not threading.main_thread() for thread in threads)


async def test_json_bodies_are_decoded_in_a_worker_thread(monkeypatch, upstream) -> None:
    threads = recording(monkeypatch, providers.http.UpstreamResponse, "json")
    body = fixture_text("brsapi_gold_currency.json")
    upstream.json("/Api/Market/Gold_Currency.php", json.loads(body))

    data = await fetch_once(BrsApiProvider, upstream, api_key="k", items=["sekee"])

    assert [item.key for item in data.items] == ["sekee"]
    assert off_the_loop(threads)


async def test_weather_answers_are_processed_in_a_worker_thread(monkeypatch, upstream) -> None:
    metno_threads = recording(monkeypatch, providers.metno, "parse_compact")
    openmeteo_threads = recording(monkeypatch, providers.openmeteo, "parse_forecast")
    upstream.json("/weatherapi/locationforecast/2.0/compact", metno_fixture())
    upstream.json("/v1/forecast", openmeteo_fixture())

    await fetch_weather(MetNoProvider, upstream)
    await fetch_weather(OpenMeteoProvider, upstream)

    assert off_the_loop(metno_threads) and off_the_loop(openmeteo_threads)


# -- the satellite picture ----------------------------------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` with a few bytes of data: what a
    decompression bomb looks like before decoding (small on the wire, huge once decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 4096, 9))
        + chunk(b"IEND", b"")
    )


class HeldTiles:
    """Tiles as the tile cache would hand them over (e.g. written to Redis by an older release)."""

    def __init__(self, zoom: int, special: dict[tuple[int, int], bytes]) -> None:
        x_min, y_min, x_max, y_max = tile_range(FAMENIN_BBOX, zoom)
        # Encoded up front: the test watches decoding during the build only.
        self.data = {
            (x, y): special.get((x, y)) or jpeg(tile_colour(zoom, x, y))
            for x in range(x_min, x_max + 1)
            for y in range(y_min, y_max + 1)
        }

    async def get(self, z: int, x: int, y: int) -> Tile:
        return Tile(self.data[(x, y)], "image/jpeg", 0.0, "etag")


@pytest.mark.parametrize(
    "bad", [png_claiming(30_000, 30_000), jpeg((250, 0, 0), size=512)], ids=["bomb", "wrong-size"]
)
async def test_an_oversized_tile_is_refused_not_decoded(monkeypatch, bad: bytes) -> None:
    options = SatelliteOptions(marker=None)
    x_min, y_min, _, _ = tile_range(FAMENIN_BBOX, options.zoom)
    held = HeldTiles(options.zoom, {(x_min + 1, y_min + 1): bad})
    loads = recording(monkeypatch, Image.Image, "load")

    data = await stitch(held, options, "Esri")  # type: ignore[arg-type]
    decoded_during_build = list(loads)

    image = Image.open(io.BytesIO(data)).convert("RGB")
    left, top, _, _ = pixel_box(FAMENIN_BBOX, options.zoom)
    x, y = (x_min + 1) * 256 + 128 - left, (y_min + 1) * 256 + 128 - top
    assert all(abs(a - b) < 8 for a, b in zip(image.getpixel((x, y)), NEUTRAL, strict=True))
    neighbour = image.getpixel(((x_min + 2) * 256 + 128 - left, y))
    expected = tile_colour(options.zoom, x_min + 2, y_min + 1)
    assert all(abs(a - b) < 8 for a, b in zip(neighbour, expected, strict=True))
    assert off_the_loop(decoded_during_build)  # every decode of the build ran in a worker thread


async def test_the_tile_endpoint_refuses_a_bomb_from_the_source(aiohttp_client, upstream) -> None:
    tiles = FakeTiles(upstream)
    z, x, y = 12, 2605, 1620
    bomb = png_claiming(30_000, 30_000)
    tiles.special[(z, x, y)] = lambda: composite_response(bomb)
    tiles.special[(z, x + 1, y)] = lambda: composite_response(jpeg((10, 10, 10), size=512))
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "satellite"}
    settings = Settings(
        engine=EngineSettings(background=False, cold_wait_seconds=CEILING_SECONDS),
        widgets={"satellite": {}, **others},
        providers={"tiles": {"url": tiles.template, "timeout_seconds": 30}},
    )
    client = await aiohttp_client(create_app(settings))

    refused = [await client.get(f"/tiles/{z}/{tx}/{y}.jpg") for tx in (x, x + 1)]
    fine = await client.get(f"/tiles/{z}/{x + 2}/{y}.jpg")

    assert [r.status for r in refused] == [502, 502]
    assert "not 256x256" in (await refused[0].json())["error"]
    assert fine.status == 200


def composite_response(body: bytes):
    from aiohttp import web

    return web.Response(body=body, content_type="image/png" if body.startswith(b"\x89PNG") else "image/jpeg")


def test_compose_is_plain_blocking_code_callable_without_a_loop() -> None:
    options = SatelliteOptions(marker=None)
    x_min, y_min, x_max, y_max = tile_range(FAMENIN_BBOX, options.zoom)
    placed = [
        (x, y, jpeg(tile_colour(options.zoom, x, y)))
        for y in range(y_min, y_max + 1)
        for x in range(x_min, x_max + 1)
    ]
    data = composite.compose(placed, options, "Esri")  # type: ignore[arg-type]
    assert Image.open(io.BytesIO(data)).size == (1020, 802)
