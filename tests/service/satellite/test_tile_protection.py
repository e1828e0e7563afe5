"""The tile source is protected: budgets for misses, a memory of failures, validation, identity."""

from __future__ import annotations

import asyncio
import io
import ipaddress
import json
import struct
import zlib

import pytest
import redis.asyncio as redis
from aiohttp import web
from multidict import CIMultiDict
from PIL import Image

from service.satellite.budget import OverBudget, client_id
from service.satellite.composite import NEUTRAL, compose
from service.satellite.routes import SATELLITE
from service.satellite.tile_math import pixel_box, tile_range
from service.settings import ConfigError
from service.web.app import create_app
from service.web.keys import ENGINE
from service.widgets.satellite import FAMENIN_BBOX, SatelliteOptions
from tests.service.satellite.test_satellite import satellite_settings
from tests.support.tiles import FakeTiles, jpeg, tile_colour

Z = 12
X_MIN, Y_MIN, X_MAX, Y_MAX = tile_range(FAMENIN_BBOX, Z)
#: Distinct tiles inside the county box, in the order a crawler would walk them.
WALK = [(x, y) for y in range(Y_MIN, Y_MAX + 1) for x in range(X_MIN, X_MAX + 1)]


@pytest.fixture
def tiles(upstream) -> FakeTiles:
    return FakeTiles(upstream)


def tile_path(x: int, y: int, z: int = Z) -> str:
    return f"/tiles/{z}/{x}/{y}.jpg"


async def at_start_of_a_minute(client, clock) -> None:
    """Budgets count per minute of the shared clock: start a test where none ends mid-way."""
    now = client.app[ENGINE].clock.time()
    await clock.advance(60 - now % 60 + 1)


async def test_one_client_walking_the_box_gets_429_with_retry_after_past_its_budget(
    aiohttp_client, tiles, clock
):
    settings = satellite_settings(tiles, client_misses_per_minute=5)
    client = await aiohttp_client(create_app(settings, clock=clock))
    await at_start_of_a_minute(client, clock)

    statuses = [(await client.get(tile_path(x, y))).status for x, y in WALK[:5]]
    refused = await client.get(tile_path(*WALK[5]))

    assert statuses == [200] * 5
    assert refused.status == 429
    assert "error" in await refused.json()
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert tiles.at_zoom(Z) == 5
    # Tiles already cached are never limited.
    assert {(await client.get(tile_path(x, y))).status for x, y in WALK[:5]} == {200}
    metrics = await (await client.get("/metrics")).text()
    assert 'sidebar_tiles_held_back_total{reason="client"} 1.0' in metrics
    await clock.advance(60)  # a new minute, a new budget
    assert (await client.get(tile_path(*WALK[5]))).status == 200


async def test_clients_behind_a_trusted_proxy_have_a_budget_each_and_others_cannot_claim_one(
    aiohttp_client, tiles, clock
):
    settings = satellite_settings(tiles, client_misses_per_minute=2)
    settings.trusted_proxies = [ipaddress.ip_network("127.0.0.1")]
    proxied = await aiohttp_client(create_app(settings, clock=clock))
    direct = await aiohttp_client(
        create_app(satellite_settings(tiles, client_misses_per_minute=2), clock=clock)
    )
    await at_start_of_a_minute(proxied, clock)

    async def statuses(client, tiles_: list[tuple[int, int]], forwarded_for: str) -> list[int]:
        headers = {"X-Forwarded-For": forwarded_for}
        return [(await client.get(tile_path(x, y), headers=headers)).status for x, y in tiles_]

    assert await statuses(proxied, WALK[0:3], "203.0.113.7, 127.0.0.1") == [200, 200, 429]
    assert await statuses(proxied, WALK[3:5], "198.51.100.9") == [200, 200]
    # Without a trusted proxy the header is the client's own invention: one peer, one budget.
    assert await statuses(direct, WALK[10:13], "203.0.113.1") == [200, 200, 429]
    assert await statuses(direct, WALK[13:14], "203.0.113.2") == [429]


async def test_a_client_within_its_budget_is_not_refused_for_sharing_a_fetch_with_one_past_it(
    aiohttp_client, tiles, clock
):
    client = await aiohttp_client(
        create_app(satellite_settings(tiles, client_misses_per_minute=1), clock=clock)
    )
    await at_start_of_a_minute(client, clock)
    cache = client.app[SATELLITE].tiles
    await cache.get(Z, *WALK[0], client="crawler")

    # Both ask for the same new tile at once: the crawler's request starts the one fetch.
    crawler, reader = await asyncio.gather(
        cache.get(Z, *WALK[1], client="crawler"),
        cache.get(Z, *WALK[1], client="reader"),
        return_exceptions=True,
    )

    assert isinstance(crawler, OverBudget) and crawler.budget == "client"
    assert not isinstance(reader, BaseException) and reader is not None and not reader.stale
    assert tiles.hits(Z, *WALK[1]) == 1


def test_a_client_is_its_address_its_ipv6_network_or_the_hop_its_trusted_proxies_name():
    proxies = [ipaddress.ip_network("10.0.0.0/8")]

    assert client_id("10.1.2.3", "203.0.113.7, 10.1.2.3", proxies) == client_id("203.0.113.7", None, [])
    assert client_id("192.0.2.1", "203.0.113.7", proxies) == client_id("192.0.2.1", None, [])
    assert client_id("10.1.2.3", "not an address", proxies) == client_id("10.1.2.3", None, [])
    # A proxy that appends keeps what the client wrote on the left: the hop it added counts.
    assert client_id("10.1.2.3", "198.51.100.9, 203.0.113.7", proxies) == client_id("203.0.113.7", None, [])
    # Through two trusted proxies, the hop before them.
    assert client_id("10.1.2.3", "203.0.113.7, 10.9.9.9", proxies) == client_id("203.0.113.7", None, [])
    assert client_id("2001:db8::1", None, []) == client_id("2001:db8::ffff:2", None, [])
    assert client_id("2001:db8:0:1::1", None, []) != client_id("2001:db8::1", None, [])
    assert "203.0.113.7" not in client_id("203.0.113.7", None, [])


def test_a_client_cannot_choose_its_id_by_sending_its_own_x_forwarded_for_through_the_proxy():
    # A proxy appends the address it saw to whatever the client sent: only the hops written by
    # trusted proxies are believed, read from the right, so the client is the last untrusted hop.
    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    real = client_id("203.0.113.7", None, [])

    assert client_id("10.1.2.3", "198.51.100.1, 203.0.113.7", proxies) == real
    assert client_id("10.1.2.3", "not an address, 203.0.113.7", proxies) == real
    # Behind two trusted proxies, both of their hops are skipped.
    assert client_id("10.1.2.3", "198.51.100.1, 203.0.113.7, 10.9.9.9", proxies) == real


def test_a_trusted_proxy_is_recognised_when_a_dual_stack_socket_reports_it_ipv4_mapped():
    proxies = [ipaddress.ip_network("10.0.0.0/8")]

    assert client_id("::ffff:10.1.2.3", "203.0.113.7", proxies) == client_id("203.0.113.7", None, [])
    assert client_id("10.1.2.3", "198.51.100.1, ::ffff:10.9.9.9", proxies) == client_id(
        "198.51.100.1", None, []
    )


def test_a_forwarded_hop_with_a_port_still_names_its_client():
    # Some proxies (Azure's among them) write the client's port too: without it being understood,
    # every reader would count as the proxy, and share one budget.
    proxies = [ipaddress.ip_network("10.0.0.0/8")]

    assert client_id("10.1.2.3", "203.0.113.7:4711", proxies) == client_id("203.0.113.7", None, [])
    assert client_id("10.1.2.3", "[2001:db8::1]:4711", proxies) == client_id("2001:db8::1", None, [])
    assert client_id("10.1.2.3", "203.0.113.7:port", proxies) == client_id("10.1.2.3", None, [])


async def test_a_crawler_behind_the_proxy_gets_one_budget_however_it_rewrites_x_forwarded_for(
    aiohttp_client, tiles, clock
):
    settings = satellite_settings(tiles, client_misses_per_minute=2)
    settings.trusted_proxies = [ipaddress.ip_network("127.0.0.1")]
    client = await aiohttp_client(create_app(settings, clock=clock))
    await at_start_of_a_minute(client, clock)

    async def status(x: int, y: int, spoofed: str) -> int:
        # The client's own header first, then the one its proxy added on a line of its own.
        headers = CIMultiDict([("X-Forwarded-For", spoofed), ("X-Forwarded-For", "203.0.113.7")])
        return (await client.get(tile_path(x, y), headers=headers)).status

    statuses = [await status(x, y, f"192.0.2.{n}") for n, (x, y) in enumerate(WALK[:4])]

    assert statuses == [200, 200, 429, 429]
    assert tiles.at_zoom(Z) == 2


async def test_the_upstream_budget_is_shared_by_every_replica_through_redis(
    aiohttp_client, tiles, clock, redis_server
):
    settings = satellite_settings(tiles, redis_url=redis_server.url, upstream_tiles_per_minute=4)
    a = await aiohttp_client(create_app(settings, clock=clock))
    b = await aiohttp_client(create_app(settings, clock=clock))
    await at_start_of_a_minute(a, clock)

    first = [
        (await replica.get(tile_path(x, y))).status
        for replica, (x, y) in zip([a, b, a, b], WALK[:4], strict=True)
    ]
    over = [await a.get(tile_path(*WALK[4])), await b.get(tile_path(*WALK[5]))]

    assert first == [200, 200, 200, 200]
    assert [r.status for r in over] == [429, 429]
    assert tiles.at_zoom(Z) == 4
    # Each replica serves what the other fetched, from the shared cache, whatever the budget.
    assert {(await b.get(tile_path(x, y))).status for x, y in WALK[:4]} == {200}


async def test_over_budget_the_expired_copy_is_served_rather_than_429(aiohttp_client, tiles, clock):
    settings = satellite_settings(tiles, tile_ttl_seconds=120, upstream_tiles_per_minute=2)
    client = await aiohttp_client(create_app(settings, clock=clock))
    await at_start_of_a_minute(client, clock)
    good = await (await client.get(tile_path(*WALK[0]))).read()
    await clock.advance(120)  # expired, and a new minute
    assert (await client.get(tile_path(*WALK[1]))).status == 200
    assert (await client.get(tile_path(*WALK[2]))).status == 200

    response = await client.get(tile_path(*WALK[0]))

    assert response.status == 200 and await response.read() == good
    assert response.headers["Cache-Control"] == "public, max-age=60, s-maxage=60"
    assert tiles.at_zoom(Z) == 3


async def test_fifty_readers_of_a_broken_tile_cost_one_upstream_request_per_backoff_step(
    aiohttp_client, tiles, clock
):
    x, y = WALK[0]
    tiles.fail(Z, x, y)
    client = await aiohttp_client(create_app(satellite_settings(tiles), clock=clock))

    async def fifty() -> set[int]:
        return {r.status for r in await asyncio.gather(*(client.get(tile_path(x, y)) for _ in range(50)))}

    hits = []
    for step in (0, 10, 10, 10, 10, 10, 10):  # backoff: 10 s, 20 s, 40 s...
        await clock.advance(step)
        assert await fifty() == {502}
        hits.append(tiles.hits(Z, x, y))

    assert hits == [1, 2, 2, 3, 3, 3, 3]
    assert 'sidebar_tiles_held_back_total{reason="backoff"}' in await (await client.get("/metrics")).text()
    refused = await client.get(tile_path(x, y))
    assert 1 <= int(refused.headers["Retry-After"]) <= 40
    tiles.special.clear()
    await clock.advance(40)
    assert (await client.get(tile_path(x, y))).status == 200


async def test_a_shared_clock_stepping_back_does_not_stretch_a_failed_tiles_backoff(
    aiohttp_client, tiles, clock
):
    x, y = WALK[0]
    tiles.fail(Z, x, y)
    client = await aiohttp_client(create_app(satellite_settings(tiles), clock=clock))
    assert (await client.get(tile_path(x, y))).status == 502

    # The shared clock steps back an hour (Redis failed over to a host whose clock lags).
    clock._wall -= 3600
    refused = await client.get(tile_path(x, y))
    tiles.special.clear()
    await clock.advance(600)

    assert refused.status == 502
    assert 1 <= int(refused.headers["Retry-After"]) <= 600
    assert (await client.get(tile_path(x, y))).status == 200


async def test_a_replica_honours_the_backoff_another_replica_recorded(
    aiohttp_client, tiles, clock, redis_server
):
    x, y = WALK[0]
    tiles.fail(Z, x, y)
    settings = satellite_settings(tiles, redis_url=redis_server.url)
    a = await aiohttp_client(create_app(settings, clock=clock))
    b = await aiohttp_client(create_app(settings, clock=clock))

    assert (await a.get(tile_path(x, y))).status == 502
    assert (await b.get(tile_path(x, y))).status == 502

    assert tiles.hits(Z, x, y) == 1


def png_declaring(width: int, height: int) -> bytes:
    """A real 256x256 PNG whose header claims another size (a decompression bomb's trick)."""
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (10, 20, 30)).save(out, format="PNG")
    data = bytearray(out.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def bomb() -> bytes:
    """A real one: 30000x30000 pixels of one colour, some kilobytes on the wire."""
    out = io.BytesIO()
    Image.new("1", (30000, 30000), 0).save(out, format="PNG", optimize=True)
    return out.getvalue()


@pytest.mark.parametrize(
    "body, content_type",
    [
        (bomb(), "image/png"),
        (png_declaring(65000, 65000), "image/png"),
        (jpeg((10, 20, 30), size=1), "image/jpeg"),
        (b"\xff\xd8\xff\xe0" + b"not really a jpeg " * 200, "image/jpeg"),
        (jpeg((10, 20, 30))[:600], "image/jpeg"),  # cut off mid-scan
    ],
    ids=["bomb", "lying-header", "1x1", "junk-after-magic", "truncated"],
)
async def test_tiles_that_do_not_decode_to_the_tile_size_are_refused_and_not_cached(
    aiohttp_client, tiles, clock, body, content_type
):
    x, y = WALK[0]
    tiles.special[(Z, x, y)] = lambda: web.Response(body=body, content_type=content_type)
    client = await aiohttp_client(create_app(satellite_settings(tiles), clock=clock))

    refused = await client.get(tile_path(x, y))
    tiles.special.clear()
    await clock.advance(10)
    fixed = await client.get(tile_path(x, y))

    assert refused.status == 502 and "error" in await refused.json()
    assert fixed.status == 200 and Image.open(io.BytesIO(await fixed.read())).size == (256, 256)
    assert tiles.hits(Z, x, y) == 2


def test_a_bad_tile_in_the_cache_becomes_a_neutral_patch_in_the_picture():
    options = SatelliteOptions(marker=None)
    x_min, y_min, x_max, y_max = tile_range(options.bbox, options.zoom)
    placed = [
        (x, y, b"\xff\xd8\xff\xe0junk" if (x, y) == (x_min + 1, y_min + 1) else jpeg(tile_colour(11, x, y)))
        for y in range(y_min, y_max + 1)
        for x in range(x_min, x_max + 1)
    ]

    picture = Image.open(io.BytesIO(compose(placed, options, "Tiles © Esri"))).convert("RGB")

    left, top, _, _ = pixel_box(options.bbox, options.zoom)
    centre = ((x_min + 1) * 256 + 128 - left, (y_min + 1) * 256 + 128 - top)
    assert all(abs(a - b) < 8 for a, b in zip(picture.getpixel(centre), NEUTRAL, strict=True))


async def test_tiles_are_keyed_by_source_and_expire_in_redis(aiohttp_client, tiles, redis_server):
    x, y = WALK[0]
    a = await aiohttp_client(create_app(satellite_settings(tiles, redis_url=redis_server.url)))
    mirror = satellite_settings(tiles, redis_url=redis_server.url)
    mirror.providers["tiles"].url = tiles.template + "?mirror=2"
    b = await aiohttp_client(create_app(mirror))
    c = await aiohttp_client(create_app(satellite_settings(tiles, redis_url=redis_server.url)))

    for replica in (a, b, c):
        assert (await replica.get(tile_path(x, y))).status == 200

    assert tiles.hits(Z, x, y) == 2  # the mirror's imagery is its own; the same source's is shared
    client = redis.Redis.from_url(redis_server.url)
    try:
        keys = [key async for key in client.scan_iter(match="sidebar:tile:*")]
        ttls = [await client.ttl(key) for key in keys]
    finally:
        await client.aclose()
    assert len(keys) == 2 and all(0 < ttl <= 2 * 30 * 86400 for ttl in ttls)


async def test_a_replica_switched_to_a_mirror_never_serves_the_picture_stitched_from_the_old_one(
    aiohttp_client, tiles, redis_server
):
    old = await aiohttp_client(create_app(satellite_settings(tiles, redis_url=redis_server.url)))
    assert (await old.get("/widgets/satellite.jpg")).status == 200
    mirror = satellite_settings(tiles, redis_url=redis_server.url)
    mirror.providers["tiles"].url = tiles.template + "?mirror=2"
    switched = await aiohttp_client(create_app(mirror))

    # Same snapshot in Redis (the widget refreshes daily), but the picture is the mirror's own.
    assert (await switched.get("/widgets/satellite.jpg")).status == 200
    assert switched.app[SATELLITE].composites.builds == 1
    assert tiles.at_zoom(11) == 2 * 20


async def test_tile_urls_name_the_source_so_browsers_and_cdns_drop_the_old_imagery_on_a_switch(
    aiohttp_client, tiles
):
    mirror = satellite_settings(tiles)
    mirror.providers["tiles"].url = tiles.template + "?mirror=2"
    templates = []
    for settings in (satellite_settings(tiles), mirror):
        client = await aiohttp_client(create_app(settings))
        template = (await (await client.get("/widgets/satellite.json")).json())["data"]["tiles"]
        page = await (await client.get("/embed/satellite/map")).text()
        # Browsers keep a tile a day and CDNs a week: a new source must mean new tile URLs.
        assert f"L.tileLayer({json.dumps(template)}" in page
        assert (await client.get(template.format(z=Z, x=WALK[0][0], y=WALK[0][1]))).status == 200
        templates.append(template)

    assert templates[0] != templates[1]
    assert all(template.startswith("/tiles/{z}/{x}/{y}.jpg") for template in templates)


@pytest.mark.parametrize(
    "options, problem",
    [
        ({"zoom": 15}, "tiles"),
        ({"bbox": [40.0, 25.0, 63.0, 40.0], "zoom": 10}, "pixels"),
        ({"leaflet_js_url": "https://cdn.example.org/leaflet.js"}, "set both"),
        # A marker off the Web-Mercator world cannot be drawn, nor described as the picture's centre.
        ({"marker": [48.9, 90.0]}, "marker"),
        ({"marker": [500.0, 35.0]}, "marker"),
        ({"marker": [48.9, float("nan")]}, "marker"),
    ],
)
def test_the_picture_size_is_bounded_when_the_configuration_is_read(tiles, options, problem):
    with pytest.raises(ConfigError, match=problem):
        create_app(satellite_settings(tiles, **options))
