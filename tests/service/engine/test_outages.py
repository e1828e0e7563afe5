"""Outages survived: Redis restarted or stalled mid-work, tile and picture flights across apps,
parsing processes killed, shutdown with work in flight, health under failure, bounded caches."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest
import redis.asyncio as redis_client

from cache.redis import RedisCache
from providers.http import UpstreamClient, UpstreamError
from service.engine.clock import SystemClock
from service.satellite.routes import SATELLITE
from service.satellite.tile_math import tile_range
from service.settings import EngineSettings, HttpSettings, Settings
from service.web.app import create_app
from service.web.keys import ENGINE, REPRESENTATIONS
from service.web.routes import MAX_PREPARED_VIEWS
from service.widgets import BUILTIN_WIDGETS
from service.widgets.satellite import FAMENIN_BBOX
from tests.support.parse_workers import wait_in_worker, worker_pid
from tests.support.tiles import FakeTiles
from tests.support.waiting import eventually, record_calls

Z, X, Y = 12, 2605, 1620


@pytest.fixture
def tiles(upstream) -> FakeTiles:
    return FakeTiles(upstream)


def satellite_settings(tiles: FakeTiles, *, redis_url: str | None = None, **options: Any) -> Settings:
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "satellite"}
    return Settings(
        redis_url=redis_url,
        engine=EngineSettings(background=False),
        widgets={"satellite": options, **others},
        # The fake upstream answers at once: the timeout only bounds a test that goes wrong.
        providers={"tiles": {"url": tiles.template, "timeout_seconds": 30}},
    )


# -- 1. Redis restarted / stalled ---------------------------------------------------------------


async def test_redis_restart_mid_refresh_does_not_let_a_second_replica_fetch(
    aiohttp_client, upstream, probe_settings, redis_server
):
    """README: the holder renews its lock while the fetch runs, so no second fetch starts while
    the first is alive. A Redis restart (same port, empty) drops the lock; the keeper sees
    extend == 0 and takes the lock again at its next turn, so the next replica waits on it."""
    upstream.json("/probe", {"value": 1, "label": "x"})
    settings = probe_settings(redis_url=redis_server.url, lock_seconds=1.5, cold_wait_seconds=0)
    settings.providers["probe"].timeout_seconds = 60  # the gate holds the fetch, not a timeout
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))
    b_polls = record_calls(b.app[ENGINE].store.cache, "lock_held")
    direct = redis_client.Redis.from_url(redis_server.url)

    upstream.gate.clear()
    first = a.app[ENGINE].refreshers["probe"].trigger()
    await eventually(lambda: upstream.hits["/probe"] == 1)
    redis_server.kill()
    redis_server.start()  # same port, empty: the lock is gone
    await eventually(
        lambda: direct.exists("sidebar:lock:probe"),
        ignoring=(redis_client.ConnectionError,),
        message="the holder's keeper never took its lock again",
    )
    second = b.app[ENGINE].refreshers["probe"].trigger()
    await eventually(lambda: b_polls, message="the second replica never waited on the lock")
    hits_while_first_alive = upstream.hits["/probe"]
    assert not first.done()
    upstream.gate.set()
    await asyncio.gather(first, second, return_exceptions=True)
    await direct.aclose()

    assert hits_while_first_alive == 1, "a second replica fetched while the first fetch was alive"


async def test_stalled_redis_keeps_widgets_ready_and_health_warns(
    aiohttp_client, upstream, probe_settings, redis_server
):
    """Redis that accepts but never answers (SIGSTOP): hot reads, /readyz stay instant; /health warns
    within about its ping timeout.

    The cache's own timeout is made long (30 s), so anything that waited on the stalled Redis would
    take that long: the bounds below, far under it, hold on a busy machine too."""
    upstream.json("/probe", {"value": 1, "label": "x"})
    cache = RedisCache(redis_server.url, timeout_seconds=30)
    settings = probe_settings(redis_url=redis_server.url, refresh_seconds=0.3)
    client = await aiohttp_client(create_app(settings, cache=cache))
    assert (await client.get("/widgets/probe.json")).status == 200
    redis_server.process.send_signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(0.4)  # stale now: requests start a refresh behind
        started = time.monotonic()
        responses = await asyncio.gather(*(client.get("/widgets/probe.json") for _ in range(20)))
        widget_time = time.monotonic() - started
        assert {r.status for r in responses} == {200}
        started = time.monotonic()
        assert (await client.get("/readyz")).status == 200
        readyz_time = time.monotonic() - started
        started = time.monotonic()
        health = await (await client.get("/health")).json()
        health_time = time.monotonic() - started
        # /health's ping gives up after 1 s (not the cache's 30 s); the others never wait on Redis.
        assert widget_time < 10 and readyz_time < 10 and health_time < 10, (
            widget_time,
            readyz_time,
            health_time,
        )
        assert health["status"] == "warn"
    finally:
        redis_server.process.send_signal(signal.SIGCONT)

    async def redis_check_passes() -> bool:
        health = await (await client.get("/health")).json()
        return health["checks"]["redis:responseTime"][0]["status"] == "pass"

    await eventually(redis_check_passes, every=0.2, message="never recovered from the stall by itself")
    await cache.close()


async def test_redis_unreachable_at_start_up_then_recovers(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    redis_server.kill()
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url)))
    assert (await client.get("/widgets/probe.json")).status == 200
    assert (await client.get("/readyz")).status == 200
    assert (await (await client.get("/health")).json())["status"] == "warn"
    redis_server.start()

    async def health_passes() -> bool:
        return (await (await client.get("/health")).json())["status"] == "pass"

    await eventually(health_passes, every=0.2, message="/health never passed once Redis was up")
    direct = redis_client.Redis.from_url(redis_server.url)
    await eventually(
        lambda: direct.get("sidebar:snapshot:probe"),
        every=0.1,
        message="the snapshot fetched without Redis never reached it",
    )
    await direct.aclose()
    assert upstream.hits["/probe"] == 1


async def test_redis_killed_during_a_tile_fetch_serves_the_tile(aiohttp_client, tiles, redis_server):
    tiles.delay = 0.5
    client = await aiohttp_client(create_app(satellite_settings(tiles, redis_url=redis_server.url)))
    pending = asyncio.ensure_future(client.get(f"/tiles/{Z}/{X}/{Y}.jpg"))
    await eventually(lambda: tiles.hits(Z, X, Y) == 1)
    redis_server.kill()
    response = await pending
    assert response.status == 200
    redis_server.start()
    again = await client.get(f"/tiles/{Z}/{X}/{Y}.jpg")
    assert again.status == 200 and tiles.hits(Z, X, Y) == 1


# -- 2. single-flight across two apps -------------------------------------------------------------


async def test_tile_follower_learns_of_leader_failure_quickly(aiohttp_client, tiles, upstream, redis_server):
    """The follower learns of the failure at its next poll of the leader's lock, not at the end of
    its own wait (the tile timeout + 5 s, 35 s here): checked by what it saw, not by a stopwatch."""
    tiles.fail(Z, X, Y)
    settings = satellite_settings(tiles, redis_url=redis_server.url)
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))
    releases = record_calls(a.app[ENGINE].store.cache, "release_lock")
    polls = record_calls(b.app[ENGINE].store.cache, "lock_held")
    upstream.gate.clear()  # the leader's fetch is held until the follower waits on it
    leader = asyncio.ensure_future(a.get(f"/tiles/{Z}/{X}/{Y}.jpg"))
    await eventually(lambda: tiles.hits(Z, X, Y) == 1)
    follower = asyncio.ensure_future(b.get(f"/tiles/{Z}/{X}/{Y}.jpg"))
    await eventually(lambda: polls, message="the follower never waited on the leader's lock")
    upstream.gate.set()  # the tile fails now
    assert (await leader).status == 502
    assert (await asyncio.wait_for(follower, 60)).status == 502
    assert tiles.hits(Z, X, Y) == 1
    tile_lock = "lock:tile:"
    released = [c for c in releases if c.args[0].startswith(tile_lock) and c.result]
    assert released, "the leader never let go of its lock"
    tile_polls = [c for c in polls if c.args[0].startswith(tile_lock)]
    assert tile_polls[-1].result is False, "the follower gave up waiting instead of seeing the lock go"
    assert len([c for c in tile_polls if c.started >= released[-1].finished]) <= 1  # its next poll


async def test_cancelled_tile_leader_does_not_cancel_followers(aiohttp_client, tiles, upstream, redis_server):
    settings = satellite_settings(tiles, redis_url=redis_server.url)
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))
    polls = record_calls(b.app[ENGINE].store.cache, "lock_held")
    upstream.gate.clear()  # the leader's fetch is held until every follower waits on it
    leader = asyncio.ensure_future(a.get(f"/tiles/{Z}/{X}/{Y}.jpg"))
    await eventually(lambda: tiles.hits(Z, X, Y) == 1)
    same_app = asyncio.ensure_future(a.get(f"/tiles/{Z}/{X}/{Y}.jpg"))
    other_app = asyncio.ensure_future(b.get(f"/tiles/{Z}/{X}/{Y}.jpg"))
    await eventually(lambda: polls, message="the other app never waited on the leader's lock")
    leader.cancel()  # the client goes away
    await asyncio.sleep(0)
    upstream.gate.set()
    assert (await same_app).status == 200
    assert (await other_app).status == 200
    assert tiles.hits(Z, X, Y) == 1


async def test_picture_across_two_apps_is_built_once(aiohttp_client, tiles, redis_server):
    tiles.delay = 0.2
    settings = satellite_settings(tiles, redis_url=redis_server.url)
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))
    assert (await a.get("/widgets/satellite.json")).status == 200
    await asyncio.sleep(0.1)
    responses = await asyncio.gather(*(c.get("/widgets/satellite.jpg") for c in (a, b) for _ in range(10)))
    assert {r.status for r in responses} == {200}
    assert a.app[SATELLITE].composites.builds + b.app[SATELLITE].composites.builds == 1
    assert tiles.at_zoom(11) == 20


# -- 3. the parsing pool --------------------------------------------------------------------------


async def test_picture_when_no_tile_of_it_can_be_had_is_not_a_500(aiohttp_client, tiles):
    """The widget has a snapshot (its probe tile at z8 answers), but every z11 tile of the picture
    fails: compose() raises TileUnavailable in the worker, nothing catches it, 500."""
    x_min, y_min, x_max, y_max = tile_range(FAMENIN_BBOX, 11)
    for x in range(x_min, x_max + 1):
        for y in range(y_min, y_max + 1):
            tiles.fail(11, x, y)
    client = await aiohttp_client(create_app(satellite_settings(tiles)))
    assert (await client.get("/widgets/satellite.json")).status == 200

    response = await client.get("/widgets/satellite.jpg")

    assert response.status == 503, (response.status, await response.text())


async def test_picture_when_the_parse_worker_is_killed_mid_build_is_not_a_500(aiohttp_client, tiles):
    """A parsing worker killed from outside while it draws the picture: promised a failed attempt
    (reason parse), never a 500. The UpstreamError('parse') escapes the picture route."""
    client = await aiohttp_client(create_app(satellite_settings(tiles)))
    satellite = client.app[SATELLITE]
    composites = satellite.composites
    drawing = satellite.drawing.pool  # the picture's own process
    original = composites._parse

    async def parse_then_kill(fn, *args, **kwargs):
        running = asyncio.ensure_future(original(fn, *args, **kwargs))
        await eventually(lambda: bool(drawing.processes()), every=0.001)
        for pid in drawing.processes():
            os.kill(pid, signal.SIGKILL)
        return await running

    composites._parse = parse_then_kill
    assert (await client.get("/widgets/satellite.json")).status == 200

    def background_build_over() -> bool:  # it fails the same way, logged
        building = [t for t in asyncio.all_tasks() if t.get_name() == "satellite picture" and not t.done()]
        return composites.builds >= 1 and not building

    await eventually(background_build_over, message="the background picture build never ended")

    response = await client.get("/widgets/satellite.jpg")

    assert response.status != 500, await response.text()
    composites._parse = original
    assert (await client.get("/widgets/satellite.jpg")).status == 200  # the next build recovers


async def test_parse_after_close_is_a_parse_failure():
    client = UpstreamClient(HttpSettings(parse_workers=1), SystemClock().time)
    await client.start()
    session = client.session(timeout_seconds=30, pool="test")
    await session.parse(worker_pid)
    await client.close()
    with pytest.raises(UpstreamError) as raised:
        await session.parse(worker_pid)
    assert raised.value.reason == "parse"


async def test_many_concurrent_parses_with_a_worker_killed_never_hang(tmp_path):
    client = UpstreamClient(HttpSettings(parse_workers=2), SystemClock().time)
    await client.start()
    try:
        session = client.session(timeout_seconds=30, pool="test")
        signal_file = tmp_path / "busy"
        parses = [
            asyncio.ensure_future(session.parse(wait_in_worker, str(signal_file), 0.3)) for _ in range(50)
        ]
        await eventually(signal_file.exists)
        os.kill(client.parsing.processes()[0], signal.SIGKILL)
        results = await asyncio.wait_for(asyncio.gather(*parses, return_exceptions=True), 30)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors and all(isinstance(e, UpstreamError) and e.reason == "parse" for e in errors)
        # and the pool works again afterwards
        assert await asyncio.wait_for(session.parse(worker_pid), 10) > 0
    finally:
        await client.close()
    assert client.parsing.processes() == ()


# -- 5. health and backoff --------------------------------------------------------------------------


async def test_failing_providers_clear_on_a_replica_when_another_gets_through(
    aiohttp_client, upstream, probe_settings, redis_server
):
    """A replica that hears (pub/sub) of good, fresh data from another replica clears its widget's
    consecutiveFailures and lastError, but keeps the provider listed in failingProviders with
    status warn until its own next attempt (a whole refresh interval later)."""
    upstream.fail("/probe", 500)
    settings = probe_settings(redis_url=redis_server.url, retry_base_seconds=60, cold_wait_seconds=0)
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))
    await a.app[ENGINE].refreshers["probe"].trigger()
    upstream.json("/probe", {"value": 1, "label": "back"})
    await b.app[ENGINE].refreshers["probe"].trigger(force=True)

    check: dict[str, Any] = {}

    async def cleared() -> bool:
        nonlocal check
        check = (await (await a.get("/health")).json())["checks"]["probe:dataAge"][0]
        return (
            check["consecutiveFailures"] == 0
            and "lastError" not in check
            and "failingProviders" not in check
            and check["status"] == "pass"
        )

    # a hears of b's write (pub/sub) with no attempt of its own: retry_base_seconds is a minute.
    await eventually(cleared, message=lambda: f"replica a still reports the failure: {check}")


# -- 6. bounds ----------------------------------------------------------------------------------------


async def test_many_distinct_query_strings_do_not_grow_memory(aiohttp_client, upstream, probe_settings):
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings()))
    assert (await client.get("/widgets/probe.json")).status == 200
    for i in range(3000):
        await client.get(f"/widgets/probe.json?theme=dark&junk{i}={i}")
        await client.get(f"/widgets/probe.html?lang=fa&junk{i}={i}")
    reps = client.app[REPRESENTATIONS]
    assert len(reps._cache) <= reps._max
    # Answers are prepared per query string as sent, within a fixed bound.
    assert len(reps.hot) <= MAX_PREPARED_VIEWS


# -- 4. shutdown ------------------------------------------------------------------------------------


async def test_shutdown_with_picture_parse_and_tile_fetch_in_flight_leaves_nothing(tiles, tmp_path, caplog):
    import gc

    import psutil
    from aiohttp.test_utils import TestClient, TestServer

    loop = asyncio.get_running_loop()
    problems: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: problems.append(context))
    settings = satellite_settings(tiles)
    settings.providers["tiles"].timeout_seconds = 200  # only shutdown may end the fetch below
    app = create_app(settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    assert (await client.get("/widgets/satellite.json")).status == 200
    satellite = app[SATELLITE]
    composites = satellite.composites
    drawing = satellite.drawing.pool
    await eventually(
        lambda: (
            composites.current(app[ENGINE].store.local("satellite")) is not None
            and drawing.processes()
        ),
        message="the background picture was never built",
    )
    original = composites._parse
    busy = tmp_path / "busy"

    async def slow_parse(fn, *args, **kwargs):
        await original(wait_in_worker, str(busy), 120)
        return await original(fn, *args, **kwargs)

    composites._parse = slow_parse
    refresher = app[ENGINE].refreshers["satellite"]
    await refresher.trigger(force=True)  # new snapshot: a background build starts, parses "forever"
    tiles.delay = 120  # shutdown must not wait for either: far beyond the bound below
    pending_tile = asyncio.ensure_future(client.get(f"/tiles/{Z}/{X + 1}/{Y}.jpg"))
    await eventually(busy.exists)
    await eventually(lambda: tiles.hits(Z, X + 1, Y) == 1)
    workers = drawing.processes()
    assert workers

    started = time.monotonic()
    pending_tile.cancel()
    await client.close()
    closing = time.monotonic() - started
    gc.collect()
    await asyncio.sleep(0.1)

    assert closing < 60
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not [t for t in leftover if "single-flight" in t.get_name() or "picture" in t.get_name()], leftover
    assert not problems, problems
    alive = {
        p.pid for p in psutil.Process().children(recursive=True) if p.is_running() and p.status() != "zombie"
    }
    assert not (set(workers) & alive)
    assert "Task was destroyed" not in caplog.text


# -- 5b. schedule under a fake clock --------------------------------------------------------------


async def test_failing_upstream_under_fake_clock_is_backed_off_not_hammered(
    aiohttp_client, upstream, probe_settings, clock
):
    upstream.fail("/probe", 500)
    client = await aiohttp_client(
        create_app(probe_settings(refresh_seconds=60, background=True, retry_base_seconds=1), clock=clock)
    )
    for _ in range(200):  # 100 s, requests every half second
        await client.get("/widgets/probe.json")
        await clock.advance(0.5)
    # backoff 1, 4, 9, 16, 25, 36, 49(capped 60)...: about 7-8 attempts in 100 s
    assert upstream.hits["/probe"] <= 9, upstream.hits["/probe"]
    check = (await (await client.get("/health")).json())["checks"]["probe:dataAge"][0]
    assert check["consecutiveFailures"] == upstream.hits["/probe"]
    assert check["lastError"]
    upstream.json("/probe", {"value": 1, "label": "ok"})
    await clock.advance(61)
    check = (await (await client.get("/health")).json())["checks"]["probe:dataAge"][0]
    assert check["consecutiveFailures"] == 0 and "lastError" not in check and check["status"] == "pass", check
