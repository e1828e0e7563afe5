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

from providers.http import UpstreamClient, UpstreamError
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
        providers={"tiles": {"url": tiles.template, "timeout_seconds": 2}},
    )


async def _until(predicate, timeout: float = 5.0, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(step)


# -- 1. Redis restarted / stalled ---------------------------------------------------------------


async def test_redis_restart_mid_refresh_does_not_let_a_second_replica_fetch(
    aiohttp_client, upstream, probe_settings, redis_server
):
    """README: the holder renews its lock while the fetch runs, so no second fetch starts while
    the first is alive. A Redis restart (same port, empty) drops the lock; the keeper sees
    extend == 0, logs "lost" and stops, so the next replica takes the lock and fetches again."""
    upstream.json("/probe", {"value": 1, "label": "x"})
    settings = probe_settings(redis_url=redis_server.url, lock_seconds=0.6, cold_wait_seconds=0)
    settings.providers["probe"].timeout_seconds = 5
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))

    upstream.gate.clear()
    first = a.app[ENGINE].refreshers["probe"].trigger()
    await _until(lambda: upstream.hits["/probe"] == 1)
    redis_server.kill()
    redis_server.start()  # same port, empty: the lock is gone
    await asyncio.sleep(0.8)  # the holder's keeper has had several turns to renew
    second = b.app[ENGINE].refreshers["probe"].trigger()
    await asyncio.sleep(0.5)
    hits_while_first_alive = upstream.hits["/probe"]
    assert not first.done()
    upstream.gate.set()
    await asyncio.gather(first, second, return_exceptions=True)

    assert hits_while_first_alive == 1, "a second replica fetched while the first fetch was alive"


async def test_stalled_redis_keeps_widgets_ready_and_health_warns(
    aiohttp_client, upstream, probe_settings, redis_server
):
    """Redis that accepts but never answers (SIGSTOP): hot reads, /readyz stay instant; /health warns
    within about its ping timeout."""
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url, refresh_seconds=0.3)))
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
        assert widget_time < 0.5 and readyz_time < 0.2 and health_time < 2.5
        assert health["status"] == "warn"
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    # Recovery by itself.
    deadline = time.monotonic() + 8
    while (await (await client.get("/health")).json())["checks"]["redis:responseTime"][0]["status"] != "pass":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)


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
    deadline = time.monotonic() + 8
    while (await (await client.get("/health")).json())["status"] != "pass":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    direct = redis_client.Redis.from_url(redis_server.url)
    deadline = time.monotonic() + 5
    while await direct.get("sidebar:snapshot:probe") is None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    await direct.aclose()
    assert upstream.hits["/probe"] == 1


async def test_redis_killed_during_a_tile_fetch_serves_the_tile(aiohttp_client, tiles, redis_server):
    tiles.delay = 0.5
    client = await aiohttp_client(create_app(satellite_settings(tiles, redis_url=redis_server.url)))
    pending = asyncio.ensure_future(client.get(f"/tiles/{Z}/{X}/{Y}.jpg"))
    await _until(lambda: tiles.hits(Z, X, Y) == 1)
    redis_server.kill()
    response = await pending
    assert response.status == 200
    redis_server.start()
    again = await client.get(f"/tiles/{Z}/{X}/{Y}.jpg")
    assert again.status == 200 and tiles.hits(Z, X, Y) == 1


# -- 2. single-flight across two apps -------------------------------------------------------------


async def test_tile_follower_learns_of_leader_failure_quickly(aiohttp_client, tiles, redis_server):
    tiles.delay = 0.4
    tiles.fail(Z, X, Y)
    settings = satellite_settings(tiles, redis_url=redis_server.url)
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))
    leader = asyncio.ensure_future(a.get(f"/tiles/{Z}/{X}/{Y}.jpg"))
    await _until(lambda: tiles.hits(Z, X, Y) == 1)
    started = time.monotonic()
    follower = await b.get(f"/tiles/{Z}/{X}/{Y}.jpg")
    waited = time.monotonic() - started
    assert (await leader).status == 502
    assert follower.status == 502
    assert tiles.hits(Z, X, Y) == 1
    assert waited < 0.4 + 0.15


async def test_cancelled_tile_leader_does_not_cancel_followers(aiohttp_client, tiles, redis_server):
    tiles.delay = 0.5
    settings = satellite_settings(tiles, redis_url=redis_server.url)
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))
    leader = asyncio.ensure_future(a.get(f"/tiles/{Z}/{X}/{Y}.jpg"))
    await _until(lambda: tiles.hits(Z, X, Y) == 1)
    same_app = asyncio.ensure_future(a.get(f"/tiles/{Z}/{X}/{Y}.jpg"))
    other_app = asyncio.ensure_future(b.get(f"/tiles/{Z}/{X}/{Y}.jpg"))
    await asyncio.sleep(0.05)
    leader.cancel()  # the client goes away
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
    upstream_client: UpstreamClient = composites._parse.__self__  # the app's UpstreamClient
    original = composites._parse

    async def parse_then_kill(fn, *args, **kwargs):
        running = asyncio.ensure_future(original(fn, *args, **kwargs))
        await _until(lambda: bool(upstream_client.parsing.processes()), step=0.001)
        for pid in upstream_client.parsing.processes():
            os.kill(pid, signal.SIGKILL)
        return await running

    composites._parse = parse_then_kill
    assert (await client.get("/widgets/satellite.json")).status == 200
    await asyncio.sleep(0.3)  # the background build (it fails the same way, logged)

    response = await client.get("/widgets/satellite.jpg")

    assert response.status != 500, await response.text()
    composites._parse = original
    assert (await client.get("/widgets/satellite.jpg")).status == 200  # the next build recovers


async def test_parse_after_close_is_a_parse_failure():
    client = UpstreamClient(HttpSettings(parse_workers=1))
    await client.start()
    session = client.session(timeout_seconds=5, pool="test")
    await session.parse(worker_pid)
    await client.close()
    with pytest.raises(UpstreamError) as raised:
        await session.parse(worker_pid)
    assert raised.value.reason == "parse"


async def test_many_concurrent_parses_with_a_worker_killed_never_hang(tmp_path):
    client = UpstreamClient(HttpSettings(parse_workers=2))
    await client.start()
    try:
        session = client.session(timeout_seconds=5, pool="test")
        signal_file = tmp_path / "busy"
        parses = [
            asyncio.ensure_future(session.parse(wait_in_worker, str(signal_file), 0.3)) for _ in range(50)
        ]
        await _until(signal_file.exists)
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

    deadline = time.monotonic() + 1
    while True:
        check = (await (await a.get("/health")).json())["checks"]["probe:dataAge"][0]
        if check["consecutiveFailures"] == 0:
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    check = (await (await a.get("/health")).json())["checks"]["probe:dataAge"][0]
    assert "lastError" not in check
    assert "failingProviders" not in check and check["status"] == "pass", check


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
    assert len(reps.hot) <= MAX_PREPARED_VIEWS


# -- 4. shutdown ------------------------------------------------------------------------------------


async def test_shutdown_with_picture_parse_and_tile_fetch_in_flight_leaves_nothing(tiles, tmp_path, caplog):
    import gc

    import psutil
    from aiohttp.test_utils import TestClient, TestServer

    loop = asyncio.get_running_loop()
    problems: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: problems.append(context))
    app = create_app(satellite_settings(tiles))
    client = TestClient(TestServer(app))
    await client.start_server()
    assert (await client.get("/widgets/satellite.json")).status == 200
    await asyncio.sleep(0.5)  # background picture built; the pool's worker exists
    satellite = app[SATELLITE]
    composites = satellite.composites
    upstream_client: UpstreamClient = composites._parse.__self__
    original = composites._parse
    busy = tmp_path / "busy"

    async def slow_parse(fn, *args, **kwargs):
        await original(wait_in_worker, str(busy), 60)
        return await original(fn, *args, **kwargs)

    composites._parse = slow_parse
    refresher = app[ENGINE].refreshers["satellite"]
    await refresher.trigger(force=True)  # new snapshot: a background build starts, parses "forever"
    tiles.delay = 30
    pending_tile = asyncio.ensure_future(client.get(f"/tiles/{Z}/{X + 1}/{Y}.jpg"))
    await _until(busy.exists)
    await _until(lambda: tiles.hits(Z, X + 1, Y) == 1)
    workers = upstream_client.parsing.processes()
    assert workers

    started = time.monotonic()
    pending_tile.cancel()
    await client.close()
    closing = time.monotonic() - started
    gc.collect()
    await asyncio.sleep(0.1)

    assert closing < 10
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
