"""The cache contract, run against both backends: what the engine relies on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from cache import Cache, CacheUnavailable, MemoryCache, open_cache
from cache.redis import RedisCache
from service.engine.clock import SystemClock
from tests.support.waiting import eventually


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        backend: Cache = MemoryCache(SystemClock())
    else:
        server = request.getfixturevalue("redis_server")
        backend = RedisCache(server.url, prefix="test:")
    yield backend
    await backend.close()


async def test_values_round_trip_as_bytes(cache: Cache) -> None:
    assert await cache.get("k") is None
    await cache.set("k", "فامنین".encode())
    assert (await cache.get("k")).decode() == "فامنین"


async def test_values_expire_after_their_ttl(cache: Cache) -> None:
    # A second: the read right after the write must come well within it on a busy machine too.
    await cache.set("k", b"v", ttl_seconds=1)
    assert await cache.get("k") == b"v"
    await asyncio.sleep(1.1)
    assert await cache.get("k") is None


async def test_a_lock_has_one_owner_and_only_the_owner_releases_it(cache: Cache) -> None:
    assert await cache.acquire_lock("l", "alice", 5)
    assert not await cache.acquire_lock("l", "bob", 5)
    assert not await cache.release_lock("l", "bob")
    assert await cache.release_lock("l", "alice")
    assert await cache.acquire_lock("l", "bob", 5)


async def test_a_lock_expires_if_its_owner_dies(cache: Cache) -> None:
    assert await cache.acquire_lock("l", "dead", 0.1)
    await asyncio.sleep(0.15)
    assert await cache.acquire_lock("l", "next", 5)
    assert not await cache.release_lock("l", "dead")


async def test_subscribers_see_published_messages_after_the_ready_marker(cache: Cache) -> None:
    messages = cache.subscribe("ch")
    assert await anext(messages) == ""
    await cache.publish("ch", "links 1.5")
    assert await asyncio.wait_for(anext(messages), 60) == "links 1.5"  # only a bound against hanging
    await messages.aclose()


async def test_ping_reports_a_round_trip_time(cache: Cache) -> None:
    assert 0 <= await cache.ping() < 1


async def test_redis_errors_surface_as_cache_unavailable(redis_server) -> None:
    backend = RedisCache(redis_server.url)
    await backend.set("k", b"v")
    redis_server.kill()
    with pytest.raises(CacheUnavailable):
        await backend.get("k")
    with pytest.raises(CacheUnavailable):
        await backend.acquire_lock("l", "t", 1)
    await backend.close()


async def test_memory_backend_stays_within_its_byte_bound() -> None:
    backend = MemoryCache(SystemClock(), max_bytes=1000)
    for i in range(50):
        await backend.set(f"k{i}", b"x" * 100)
    assert await backend.get("k0") is None  # least recently used went first
    assert await backend.get("k49") == b"x" * 100
    assert sum(len(v) for v, _ in backend._values.values()) <= 1000


def test_url_selects_the_backend() -> None:
    assert isinstance(open_cache(None, clock=SystemClock()), MemoryCache)
    assert isinstance(open_cache("redis://127.0.0.1:6379/0", clock=SystemClock()), RedisCache)
    assert isinstance(open_cache("rediss://example.org:6380/0", clock=SystemClock()), RedisCache)


async def test_only_the_owner_extends_a_lock_and_an_extended_lock_outlives_its_first_ttl(
    cache: Cache,
) -> None:
    # A first lifetime of a second: the extension must come within it on a busy machine too.
    assert await cache.acquire_lock("l", "alice", 1)
    assert not await cache.extend_lock("l", "bob", 5)
    assert await cache.extend_lock("l", "alice", 5)
    await asyncio.sleep(1.2)
    assert await cache.lock_held("l")
    assert not await cache.acquire_lock("l", "bob", 5)
    assert await cache.release_lock("l", "alice")
    assert not await cache.lock_held("l")
    assert not await cache.extend_lock("l", "alice", 5)  # released: nothing to resurrect


async def test_set_if_newer_keeps_the_newest_version_whatever_the_order_of_writes(cache: Cache) -> None:
    heard: list[str] = []
    subscribed = asyncio.Event()

    async def listen() -> None:
        async for message in cache.subscribe("news"):
            if message:
                heard.append(message)
            else:
                subscribed.set()  # the ready marker: announcements from now on are heard

    listener = asyncio.ensure_future(listen())
    await eventually(subscribed.is_set, message="never subscribed")
    try:
        assert await cache.set_if_newer("s", b"v2", 2.0, "news", "s 2")
        assert not await cache.set_if_newer("s", b"v1", 1.0, "news", "s 1")  # late writer
        assert not await cache.set_if_newer("s", b"again", 2.0, "news", "s 2")
        assert await cache.get("s") == b"v2"
        assert await cache.set_if_newer("s", b"v3", 3.5, "news", "s 3.5")
        assert await cache.get("s") == b"v3"
        await eventually(lambda: len(heard) >= 2, message=lambda: f"heard only {heard}")
        assert heard == ["s 2", "s 3.5"]  # only winning writes are announced
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


async def test_a_value_that_vanished_is_written_again_whatever_its_version(cache: Cache) -> None:
    assert await cache.set_if_newer("s", b"v5", 5.0, "news", "s 5")
    await cache.set("s", b"", ttl_seconds=0.05)
    await asyncio.sleep(0.1)  # gone (evicted or expired); the version alone must not block writes
    assert await cache.set_if_newer("s", b"v4", 4.0, "news", "s 4")
    assert await cache.get("s") == b"v4"


async def test_the_server_clock_is_the_wall_clock_of_this_machine(cache: Cache) -> None:
    import time

    assert abs(await cache.server_time() - time.time()) < 5


async def test_a_counter_counts_every_caller_once_and_starts_again_after_it_expires(cache: Cache) -> None:
    # A window of a second: the 20 calls must all fall in it on a busy machine too.
    counted = await asyncio.gather(*(cache.count("window", ttl_seconds=1) for _ in range(20)))

    assert sorted(counted) == list(range(1, 21))
    await asyncio.sleep(1.1)
    assert await cache.count("window", ttl_seconds=1) == 1
    assert await cache.count("other", ttl_seconds=1) == 1


async def test_a_series_returns_its_points_in_time_order_within_the_asked_window(cache: Cache) -> None:
    for at, value in [(300.0, b"3"), (100.0, b"1"), (200.0, b"2")]:
        await cache.series_add("s", at, value, keep_seconds=1e9)

    assert await cache.series_range("s", 0, 1e12) == [(100.0, b"1"), (200.0, b"2"), (300.0, b"3")]
    assert await cache.series_range("s", 150, 300) == [(200.0, b"2"), (300.0, b"3")]
    assert await cache.series_range("nothing", 0, 1e12) == []


async def test_a_point_at_the_same_time_replaces_the_earlier_one(cache: Cache) -> None:
    await cache.series_add("s", 100.0, b"old", keep_seconds=1e9)
    await cache.series_add("s", 100.0, b"new", keep_seconds=1e9)

    assert await cache.series_range("s", 0, 1e12) == [(100.0, b"new")]


async def test_a_bucketed_series_keeps_the_latest_point_of_each_bucket(cache: Cache) -> None:
    hour = 3600.0
    for at, value in [(7200.0, b"a"), (9000.0, b"b"), (10799.0, b"c"), (10800.0, b"d"), (8000.0, b"late")]:
        await cache.series_add("s", at, value, keep_seconds=1e9, bucket_seconds=hour)

    # The late writer's older point does not replace the newer one of its hour.
    assert await cache.series_range("s", 0, 1e12) == [(10799.0, b"c"), (10800.0, b"d")]


async def test_a_series_drops_points_older_than_it_keeps_and_beyond_its_size(cache: Cache) -> None:
    for at in range(1000, 1010):
        await cache.series_add("s", float(at), str(at).encode(), keep_seconds=5, max_points=100)
    assert [at for at, _ in await cache.series_range("s", 0, 1e12)] == [
        1004.0,
        1005.0,
        1006.0,
        1007.0,
        1008.0,
        1009.0,
    ]

    for at in range(2000, 2010):
        await cache.series_add("t", float(at), b"x", keep_seconds=1e9, max_points=3)
    assert [at for at, _ in await cache.series_range("t", 0, 1e12)] == [2007.0, 2008.0, 2009.0]


async def test_the_memory_backend_keeps_a_bounded_number_of_series() -> None:
    cache = MemoryCache(SystemClock(), max_series=2)
    for key in ("a", "b", "c"):
        await cache.series_add(key, 1.0, b"1", keep_seconds=1e9)

    assert await cache.series_range("a", 0, 10) == []
    assert await cache.series_range("c", 0, 10) == [(1.0, b"1")]
