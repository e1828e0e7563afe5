"""Satellite: the tile cache, the region-checked tile endpoint, the picture and the map page."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from PIL import Image

from providers.base import Provider
from service.registry import default_registry
from service.satellite.composite import NEUTRAL
from service.satellite.routes import SATELLITE
from service.satellite.tile_math import composite_size, pixel_box, tile_range
from service.settings import ConfigError, EngineSettings, Settings
from service.web.app import create_app
from service.web.keys import ENGINE
from service.widgets import BUILTIN_WIDGETS
from service.widgets.satellite import FAMENIN_BBOX
from tests.support.tiles import FakeTiles, tile_colour
from tests.support.waiting import CEILING_SECONDS, eventually

Z, X, Y = 12, 2605, 1620  # inside the county box at z12


@pytest.fixture
def tiles(upstream) -> FakeTiles:
    return FakeTiles(upstream)


def satellite_settings(tiles: FakeTiles, *, redis_url: str | None = None, **options: Any) -> Settings:
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "satellite"}
    return Settings(
        redis_url=redis_url,
        engine=EngineSettings(background=False, cold_wait_seconds=CEILING_SECONDS),
        widgets={"satellite": options, **others},
        # The fake upstream answers at once: the timeout only bounds a test that goes wrong.
        providers={"tiles": {"url": tiles.template, "timeout_seconds": 30}},
    )


def test_the_county_box_needs_the_tiles_the_guide_counts():
    counts = {}
    for zoom in (10, 11, 12):
        x_min, y_min, x_max, y_max = tile_range(FAMENIN_BBOX, zoom)
        counts[zoom] = (x_max - x_min + 1) * (y_max - y_min + 1)
    assert counts == {10: 9, 11: 20, 12: 63}
    assert composite_size(FAMENIN_BBOX, 11) == (1020, 802)
    x_min, y_min, x_max, y_max = tile_range(FAMENIN_BBOX, 12)
    assert x_min <= X <= x_max and y_min <= Y <= y_max


async def test_a_tile_is_fetched_once_then_served_from_cache_with_http_caching(aiohttp_client, tiles):
    client = await aiohttp_client(create_app(satellite_settings(tiles)))

    first = await client.get(f"/tiles/{Z}/{X}/{Y}.jpg")
    body = await first.read()
    again = await client.get(f"/tiles/{Z}/{X}/{Y}.jpg")

    assert first.status == 200 and first.content_type == "image/jpeg"
    assert Image.open(io.BytesIO(body)).size == (256, 256)
    assert await again.read() == body
    assert tiles.hits(Z, X, Y) == 1
    cache_control = first.headers["Cache-Control"]
    assert "public" in cache_control and "max-age=86400" in cache_control and "s-maxage=" in cache_control
    revalidated = await client.get(
        f"/tiles/{Z}/{X}/{Y}.jpg", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert revalidated.status == 304


@pytest.mark.parametrize(
    "path",
    [
        f"/tiles/{Z}/{X + 500}/{Y}.jpg",  # outside the box
        f"/tiles/{Z}/0/0.jpg",
        "/tiles/17/83328/51648.jpg",  # beyond max zoom 16
        "/tiles/7/81/50.jpg",  # below min zoom 8
        "/tiles/3/5/3.jpg",
    ],
)
async def test_out_of_region_or_zoom_is_404_without_an_upstream_call(aiohttp_client, tiles, path):
    client = await aiohttp_client(create_app(satellite_settings(tiles)))
    response = await client.get(path)
    assert response.status == 404
    assert "error" in await response.json()
    assert tiles.total == 0


@pytest.mark.parametrize(
    "path",
    [
        "/tiles/12/abc/1620.jpg",
        "/tiles/12/-1/1620.jpg",
        "/tiles/12/2605/1620.png",
        "/tiles/12/2605.jpg",
        "/tiles/999/1/1.jpg",
        "/tiles/12/99999999999999999999/1.jpg",
        "/tiles/12/2605/1620.jpg/../../etc",
    ],
)
async def test_malformed_coordinates_are_4xx_never_500(aiohttp_client, tiles, path):
    client = await aiohttp_client(create_app(satellite_settings(tiles)))
    response = await client.get(path)
    assert 400 <= response.status < 500
    assert "error" in await response.json()
    assert tiles.total == 0


async def test_the_sources_no_data_placeholder_is_never_served_or_cached_as_imagery(aiohttp_client, tiles):
    tiles.placeholder(Z, X, Y)
    client = await aiohttp_client(create_app(satellite_settings(tiles)))

    first = await client.get(f"/tiles/{Z}/{X}/{Y}.jpg")
    second = await client.get(f"/tiles/{Z}/{X}/{Y}.jpg")

    assert first.status == second.status == 404
    assert tiles.hits(Z, X, Y) == 1  # the "no imagery" answer is remembered, not the placeholder


@pytest.mark.parametrize("broken", ["fail", "html"])
async def test_error_bodies_and_non_images_are_not_cached(aiohttp_client, tiles, broken, clock):
    getattr(tiles, broken)(Z, X, Y)
    client = await aiohttp_client(create_app(satellite_settings(tiles), clock=clock))

    first = await client.get(f"/tiles/{Z}/{X}/{Y}.jpg")
    assert first.status == 502 and "tile source unavailable" in (await first.json())["error"]
    tiles.special.clear()
    await clock.advance(10)  # the failed tile's first backoff step
    second = await client.get(f"/tiles/{Z}/{X}/{Y}.jpg")

    assert second.status == 200 and second.content_type == "image/jpeg"
    assert tiles.hits(Z, X, Y) == 2


async def test_an_expired_tile_is_served_when_the_source_fails(aiohttp_client, tiles):
    client = await aiohttp_client(create_app(satellite_settings(tiles, tile_ttl_seconds=1)))
    good = await (await client.get(f"/tiles/{Z}/{X}/{Y}.jpg")).read()
    await asyncio.sleep(1.1)
    tiles.fail(Z, X, Y)

    response = await client.get(f"/tiles/{Z}/{X}/{Y}.jpg")

    assert response.status == 200 and await response.read() == good
    assert response.headers["Cache-Control"] == "public, max-age=60, s-maxage=60"
    assert tiles.hits(Z, X, Y) == 2


async def test_200_concurrent_requests_across_two_instances_make_one_upstream_fetch(
    aiohttp_client, tiles, redis_server
):
    tiles.delay = 0.3
    settings = satellite_settings(tiles, redis_url=redis_server.url)
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))

    responses = await asyncio.gather(
        *(client.get(f"/tiles/{Z}/{X}/{Y}.jpg") for client in (a, b) for _ in range(100))
    )

    assert {r.status for r in responses} == {200}
    assert len({await r.read() for r in responses}) == 1
    assert tiles.hits(Z, X, Y) == 1


async def test_the_picture_has_the_bbox_size_a_marker_and_an_attribution_band(aiohttp_client, tiles):
    client = await aiohttp_client(create_app(satellite_settings(tiles)))

    response = await client.get("/widgets/satellite.jpg")

    assert response.status == 200 and response.content_type == "image/jpeg"
    image = Image.open(io.BytesIO(await response.read())).convert("RGB")
    assert image.size == (1020, 802)
    band = [image.getpixel((x, 801)) for x in range(0, 1020, 50)]
    assert all(sum(pixel) < 3 * 90 for pixel in band)  # darkened band along the bottom edge
    assert any(min(image.getpixel((x, y))) > 200 for x in range(0, 400, 2) for y in range(700, 800))  # text
    assert tiles.at_zoom(11) == 20  # z11 covers the box with 20 tiles, each fetched once
    assert "ETag" in response.headers and "max-age=" in response.headers["Cache-Control"]


async def test_concurrent_picture_requests_stitch_once(aiohttp_client, tiles):
    client = await aiohttp_client(create_app(satellite_settings(tiles)))

    responses = await asyncio.gather(*(client.get("/widgets/satellite.jpg") for _ in range(30)))

    assert {r.status for r in responses} == {200}
    assert client.app[SATELLITE].composites.builds == 1
    assert tiles.at_zoom(11) == 20


async def test_a_missing_tile_becomes_a_neutral_patch(aiohttp_client, tiles):
    x_min, y_min, _, _ = tile_range(FAMENIN_BBOX, 11)
    tiles.fail(11, x_min + 1, y_min + 1)
    client = await aiohttp_client(create_app(satellite_settings(tiles, marker=None)))

    response = await client.get("/widgets/satellite.jpg")

    assert response.status == 200
    image = Image.open(io.BytesIO(await response.read())).convert("RGB")
    left, top, _, _ = pixel_box(FAMENIN_BBOX, 11)
    x = (x_min + 1) * 256 + 128 - left
    y = (y_min + 1) * 256 + 128 - top
    assert all(abs(a - b) < 8 for a, b in zip(image.getpixel((x, y)), NEUTRAL, strict=True))
    neighbour = image.getpixel(((x_min + 2) * 256 + 128 - left, y))
    assert all(abs(a - b) < 8 for a, b in zip(neighbour, tile_colour(11, x_min + 2, y_min + 1), strict=True))


async def test_the_picture_is_built_in_the_background_when_the_widget_refreshes(aiohttp_client, tiles):
    client = await aiohttp_client(create_app(satellite_settings(tiles)))

    refresher = client.app[ENGINE].refreshers["satellite"]
    await refresher.trigger()
    composites = client.app[SATELLITE].composites
    # Nobody asked for the picture: it is built once its snapshot lands.
    await eventually(
        lambda: composites.current(refresher.store.local("satellite")) is not None,
        every=0.05,
        message="the picture was never built in the background",
    )

    response = await client.get("/widgets/satellite.jpg")
    assert response.status == 200
    assert client.app[SATELLITE].composites.builds == 1  # served as built, not built again


async def test_json_and_fragment_describe_the_picture(aiohttp_client, tiles):
    settings = satellite_settings(tiles)
    settings.public_url = "https://widgets.example.org"
    client = await aiohttp_client(create_app(settings))

    body = await (await client.get("/widgets/satellite.json")).json()
    html = await (await client.get("/widgets/satellite.html")).text()

    data = body["data"]
    assert data["bbox"] == list(FAMENIN_BBOX) and data["zoom"] == 11
    assert data["center"] == [48.973, 35.116]
    assert (data["width"], data["height"]) == (1020, 802)
    assert data["image"] == "/widgets/satellite.jpg" and data["tiles"].startswith(
        "/tiles/{z}/{x}/{y}.jpg?source="
    )
    assert data["attribution"].startswith("Tiles © Esri")
    assert body["attribution"] == data["attribution"]
    assert '<img class="sw-picture" src="https://widgets.example.org/widgets/satellite.jpg"' in html
    assert 'width="1020" height="802" loading="lazy" alt="عکس ماهواره‌ای شهرستان فامنین"' in html
    assert 'href="https://widgets.example.org/embed/satellite/map"' in html
    assert "Tiles © Esri" in html and "<script" not in html


async def test_the_map_page_loads_leaflet_from_a_cdn_only_when_one_is_configured(aiohttp_client, tiles):
    cdn = "https://cdn.example.org/leaflet@1.9.4/dist/leaflet"
    settings = satellite_settings(
        tiles, leaflet_js_url=f"{cdn}.js", leaflet_css_url=f"{cdn}.css", max_zoom=15
    )
    client = await aiohttp_client(create_app(settings))

    page = await (await client.get("/embed/satellite/map")).text()

    assert f'<script src="{cdn}.js"></script>' in page
    assert f'<link rel="stylesheet" href="{cdn}.css">' in page
    assert "[48.8, 34.85, 49.5, 35.3]" in page
    assert "minZoom: 8" in page and "maxZoom: 15" in page
    assert '"/tiles/{z}/{x}/{y}.jpg?source=' in page
    assert "Tiles \\u00a9 Esri" in page or "Tiles © Esri" in page


async def test_an_operator_source_is_configuration_only_and_caps_the_zoom(aiohttp_client, tiles):
    settings = satellite_settings(
        tiles,
        source="mine",
        sources={
            "mine": {
                "url": tiles.template,
                "attribution": "© Example",
                "max_zoom": 13,
            }
        },
    )
    settings.providers.pop("tiles")
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/tiles/14/10420/6480.jpg")).status == 404  # beyond the source's zoom 13
    body = await (await client.get("/widgets/satellite.json")).json()
    assert body["data"]["attribution"] == "© Example" and body["data"]["source"] == "mine"


async def test_a_source_that_is_down_leaves_the_widget_unavailable_not_broken(aiohttp_client, tiles):
    tiles.fail_all()
    settings = satellite_settings(tiles)
    settings.engine.cold_wait_seconds = 1
    client = await aiohttp_client(create_app(settings))

    json_response = await client.get("/widgets/satellite.json")
    html = await (await client.get("/widgets/satellite.html")).text()

    assert json_response.status == 503  # the refresh probes the source and fails
    assert 'data-status="unavailable"' in html and "<img" not in html
    assert (await client.get("/widgets/satellite.jpg")).status == 503


async def test_the_picture_survives_the_source_going_down_before_a_rebuild(aiohttp_client, tiles):
    client = await aiohttp_client(create_app(satellite_settings(tiles, tile_ttl_seconds=1)))
    first = await (await client.get("/widgets/satellite.jpg")).read()
    await asyncio.sleep(1.1)  # tiles expire
    refresher = client.app[ENGINE].refreshers["satellite"]
    await refresher.trigger(force=True)  # a new snapshot (the probe still answers) ...
    tiles.fail_all()  # ... then the source goes down before the picture is rebuilt

    response = await client.get("/widgets/satellite.jpg")

    assert response.status == 200
    assert await response.read() == first  # expired tiles, or the last picture, never a grey box


async def test_eox_caps_the_zoom_at_14(aiohttp_client, tiles):
    client = await aiohttp_client(create_app(satellite_settings(tiles, source="eox", max_zoom=16)))
    assert (await client.get("/tiles/15/20840/12960.jpg")).status == 404
    assert (await client.get("/tiles/14/10420/6480.jpg")).status == 200
    body = await (await client.get("/widgets/satellite.json")).json()
    assert body["data"]["attribution"].startswith("Sentinel-2 cloudless")


def test_a_satellite_chain_without_a_tile_source_stops_start_up(tiles):
    class Describer(Provider):
        id = "describer"
        widget = "satellite"

        async def fetch(self, http):
            raise NotImplementedError

    registry = default_registry()
    registry.add_provider(Describer)
    settings = satellite_settings(tiles, providers=["describer"])
    with pytest.raises(ConfigError, match="needs a tile source provider"):
        create_app(settings, registry=registry)
