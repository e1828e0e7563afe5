"""Junk in Redis is a miss, never a 500.

Whatever bytes sit under the service's keys (another release's, a hand-typed ``SET``, a corrupt
restore), every reader treats what it cannot have written itself as absent: a tile is fetched
again, a snapshot refetched, a history point skipped, and a lock that would never expire is given
an expiry (and logged, once) instead of stopping a widget's refreshes for ever.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
import redis.asyncio as redis_client

from cache.redis import RedisCache
from service.engine.snapshot import Snapshot
from service.history.series import DAY, HOURLY, RAW, series_key
from service.settings import EngineSettings, Settings
from service.web.app import create_app
from service.widgets import BUILTIN_WIDGETS
from tests.conftest import OTHER_WIDGETS
from tests.support.prices import serve_tgju
from tests.support.tiles import FakeTiles, jpeg, tile_colour
from tests.support.waiting import CEILING_SECONDS, eventually

PREFIX = "sidebar:"
#: Deeper than any JSON decoder's recursion limit.
DEEP = 100_000


def _strict_json(body: bytes) -> Any:
    """JSON as RFC 8259 has it: ``Infinity`` and ``NaN`` are refused, as browsers refuse them."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(body, parse_constant=refuse)


# ---------------------------------------------------------------------------------------------
# Tiles: tile entries carry no schema version, so every field is checked on the way in
# ---------------------------------------------------------------------------------------------

Z, X, Y = 12, 2605, 1620  # inside the county box at z12


def _tile_settings(tiles: FakeTiles, redis_url: str) -> Settings:
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "satellite"}
    return Settings(
        redis_url=redis_url,
        engine=EngineSettings(background=False, cold_wait_seconds=CEILING_SECONDS),
        widgets={"satellite": {}, **others},
        providers={"tiles": {"url": tiles.template, "timeout_seconds": 30}},
    )


def _head(**fields: Any) -> bytes:
    return json.dumps(fields).encode() + b"\n"


GOOD = jpeg(tile_colour(Z, X, Y))
NOW = time.time()

JUNK_TILES = {
    "other bytes": b"not a tile at all",
    "a bare JPEG": GOOD,
    "deeply nested JSON": b"[" * DEEP,
    "a head that is not an object": b"[1, 2]\n" + GOOD,
    "a head missing its fields": _head(content_type="image/jpeg") + GOOD,
    "a head of the wrong types": _head(content_type=5, fetched_at=NOW, etag=None) + GOOD,
    "an HTML page as a tile": _head(content_type="text/html", fetched_at=NOW, etag="x") + b"<script>",
    "an ETag that breaks the header": _head(content_type="image/jpeg", fetched_at=NOW, etag="a\r\nb") + GOOD,
    "data that is not the ETag's": _head(content_type="image/jpeg", fetched_at=NOW, etag="0" * 20) + GOOD,
    "a tile dated far ahead": _head(content_type="image/jpeg", fetched_at=1e300, etag="x") + GOOD,
    "a tile dated NaN": b'{"content_type": "image/jpeg", "fetched_at": NaN, "etag": "x"}\n' + GOOD,
    "a no-tile marker of the wrong type": _head(no_tile=True, fetched_at="yesterday"),
    "a no-tile marker dated far ahead": _head(no_tile=True, fetched_at=1e300),
}


@pytest.fixture
def tiles(upstream) -> FakeTiles:
    return FakeTiles(upstream)


@pytest.mark.parametrize("junk", JUNK_TILES.values(), ids=JUNK_TILES.keys())
async def test_a_tile_entry_overwritten_with_junk_is_fetched_again(aiohttp_client, tiles, redis_server, junk):
    settings = _tile_settings(tiles, redis_server.url)
    first = await aiohttp_client(create_app(settings))
    assert (await first.get(f"/tiles/{Z}/{X}/{Y}.jpg")).status == 200
    r = redis_client.from_url(redis_server.url)
    [key] = await r.keys(f"{PREFIX}tile:*")
    await r.set(key, junk)

    replica = await aiohttp_client(create_app(settings))  # nothing in its memory: it reads Redis
    response = await replica.get(f"/tiles/{Z}/{X}/{Y}.jpg")

    assert response.status == 200, await response.text()
    assert response.content_type == "image/jpeg" and await response.read() == GOOD
    assert tiles.hits(Z, X, Y) == 2
    assert await r.get(key) != junk, "the junk was not replaced by the good tile"
    await r.aclose()


JUNK_FAILURES = {
    "other bytes": b"\xff\xfe",
    "deeply nested JSON": b"[" * DEEP,
    "a count beyond float range": b'{"failures": 1e999, "retry_at": 0, "reason": "x"}',
    "a count of the wrong type": b'{"failures": "many", "retry_at": 0, "reason": "x"}',
}


@pytest.mark.parametrize("junk", JUNK_FAILURES.values(), ids=JUNK_FAILURES.keys())
async def test_a_failure_record_of_junk_is_no_failure(aiohttp_client, tiles, redis_server, junk):
    settings = _tile_settings(tiles, redis_server.url)
    first = await aiohttp_client(create_app(settings))
    assert (await first.get(f"/tiles/{Z}/{X}/{Y}.jpg")).status == 200
    r = redis_client.from_url(redis_server.url)
    [key] = await r.keys(f"{PREFIX}tile:*")
    await r.delete(key)
    await r.set(key.replace(PREFIX.encode(), PREFIX.encode() + b"failed:", 1), junk)
    await r.aclose()

    response = await (await aiohttp_client(create_app(settings))).get(f"/tiles/{Z}/{X}/{Y}.jpg")

    assert response.status == 200, await response.text()
    assert tiles.hits(Z, X, Y) == 2


# ---------------------------------------------------------------------------------------------
# Snapshots: JSON too deep to decode, fields that go out in headers
# ---------------------------------------------------------------------------------------------


def _deep_snapshot() -> bytes:
    """A snapshot of this release's schema whose ``data`` nests deeper than any decoder goes."""
    doc = json.loads(
        Snapshot.create("probe", "probe", time.time() - 60, {"value": 1, "label": "x"}).to_bytes()
    )
    doc["data"] = "DATA"
    before, _, after = json.dumps(doc).partition('"DATA"')
    return (before + '{"a":' * DEEP + "1" + "}" * DEEP + after).encode()


def _snapshot_with(**fields: Any) -> bytes:
    """A snapshot of this release's schema and a good ``data``, with other ``fields``."""
    snapshot = Snapshot.create("probe", "probe", time.time() - 60, {"value": 1, "label": "stored"})
    return json.dumps({**json.loads(snapshot.to_bytes()), **fields}).encode()


JUNK_SNAPSHOTS = {
    "a list nested too deep": b"[" * DEEP,
    "data nested too deep": _deep_snapshot(),
    "a digest that breaks the ETag": _snapshot_with(digest="a\r\nb"),
    "a digest of other data": _snapshot_with(digest="0" * 20),
    "validators that are not strings": _snapshot_with(validators={"http://x/": {"etag": 5}}),
    "validators that break a header": _snapshot_with(validators={"http://x/": {"etag": "a\r\nb"}}),
    "an attribution that is not text": _snapshot_with(attribution={"html": "<b>"}),
}


@pytest.mark.parametrize("stored", JUNK_SNAPSHOTS.values(), ids=JUNK_SNAPSHOTS.keys())
async def test_a_snapshot_this_release_could_not_have_written_is_a_miss(
    aiohttp_client, upstream, probe_settings, redis_server, stored
):
    upstream.json("/probe", {"value": 2, "label": "fetched"})
    r = redis_client.from_url(redis_server.url)
    await r.set(f"{PREFIX}snapshot:probe", stored)
    await r.set(f"{PREFIX}snapshot:probe:version", repr(time.time() - 60))
    await r.aclose()
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url)))

    answers = [await client.get(path) for path in ("/widgets/probe.json", "/widgets/probe.html", "/health")]

    assert [a.status for a in answers] == [200, 200, 200], [await a.text() for a in answers]
    assert (await answers[0].json())["data"]["label"] == "fetched"


# ---------------------------------------------------------------------------------------------
# Price history: members of a sorted set
# ---------------------------------------------------------------------------------------------

ITEM = "price_dollar_rl"


def _prices_settings(upstream, redis_url: str) -> Settings:
    widgets: dict[str, Any] = {name: {"enabled": False} for name in OTHER_WIDGETS}
    widgets["prices"] = {"enabled": True, "refresh_seconds": 300}
    return Settings(
        redis_url=redis_url,
        engine=EngineSettings(background=False, retry_base_seconds=0.05, cold_wait_seconds=5),
        widgets=widgets,
        providers={"tgju": {"url": upstream.url(""), "timeout_seconds": 30}},
    )


#: (seconds before the snapshot, member): what this release never writes (``<at> <JSON amount>``,
#: a positive amount inside the price model's bounds).
JUNK_POINTS: dict[str, tuple[float, bytes]] = {
    "no separator": (600, b"garbage"),
    "beyond float range": (500, b"1e999"),
    "not a number": (400, b"NaN"),
    "a string": (300, b'"1050000"'),
    "a list": (200, b"[1]"),
    "a boolean": (150, b"true"),
    "negative": (120, b"-5"),
    "not UTF-8": (100, b"\xff\xfe"),
    "nested too deep": (90, b"[" * DEEP),
    "too many digits": (80, b"1" + b"0" * 5000),
    "beyond the model's bound": (70, b"1" + b"0" * 30),
    "zero, a day ago": (DAY + 60, b"0"),
}


@pytest.mark.parametrize("ago, value", JUNK_POINTS.values(), ids=JUNK_POINTS.keys())
async def test_junk_history_points_are_skipped_and_no_number_is_infinite(
    aiohttp_client, upstream, redis_server, ago, value
):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(_prices_settings(upstream, redis_server.url)))
    assert (await client.get("/widgets/prices.json")).status == 200  # records every shown price
    r = redis_client.from_url(redis_server.url)
    for tier in (RAW, HOURLY):
        key = PREFIX + series_key("prices", ITEM, "IRR", None, tier)
        [(_, at)] = await r.zrange(key, 0, -1, withscores=True)
        member = value if value == b"garbage" else repr(at - ago).encode() + b" " + value
        await r.zadd(key, {member: at - ago})
    await r.aclose()

    day = await client.get(f"/widgets/prices/history.json?item={ITEM}&range=1d")
    week = await client.get(f"/widgets/prices/history.json?item={ITEM}&range=7d")
    page = await client.get("/widgets/prices.html?chart=sparkline")

    assert (day.status, week.status, page.status) == (200, 200, 200), await day.text()
    for answer in (day, week):
        body = _strict_json(await answer.read())
        assert len(body["points"]) == 1, body["points"]
        assert body["min"] == body["max"] == body["points"][0][1]
    html = await page.text()
    assert "nan" not in html.lower().replace("nanum", "") and "inf," not in html


# ---------------------------------------------------------------------------------------------
# Locks: one written without expiry
# ---------------------------------------------------------------------------------------------


async def test_a_lock_without_expiry_is_given_one_and_logged_once(
    aiohttp_client, upstream, probe_settings, redis_server, caplog
):
    """``SET sidebar:lock:probe x`` by hand (or by an old release) would hold every refresh of the
    widget back for ever, silently: the next process to want the lock gives it the lock's lifetime,
    says so once, and takes the lock when it lapses."""
    upstream.json("/probe", {"value": 1, "label": "fetched"})
    lock = f"{PREFIX}lock:probe"
    r = redis_client.from_url(redis_server.url)
    await r.set(lock, b"x")
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url, lock_seconds=0.5)))
    caplog.set_level(logging.WARNING)

    await client.get("/widgets/probe.json")

    assert await r.pttl(lock) != -1, "the lock still has no expiry"

    async def served() -> bool:
        return (await client.get("/widgets/probe.json")).status == 200

    await eventually(served, message="the widget never refreshed")
    assert upstream.hits["/probe"] == 1
    notices = [rec for rec in caplog.records if lock.removeprefix(PREFIX) in rec.getMessage()]
    assert len(notices) == 1 and notices[0].levelno == logging.WARNING, [r.getMessage() for r in notices]
    await r.aclose()


async def test_a_lock_held_with_an_expiry_is_left_as_it_is(redis_server):
    """Only a lock that would never expire is touched: a holder's own expiry is its business."""
    cache = RedisCache(redis_server.url)
    r = redis_client.from_url(redis_server.url)
    await r.set(f"{PREFIX}lock:probe", b"another-process", px=60_000)

    taken = await cache.acquire_lock("lock:probe", "me", 0.5)

    assert not taken
    assert await r.pttl(f"{PREFIX}lock:probe") > 30_000
    assert await r.get(f"{PREFIX}lock:probe") == b"another-process"
    await r.aclose()
    await cache.close()
