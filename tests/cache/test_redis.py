"""The Redis backend: the sentinels a ``redis+sentinel://`` URL names are the ones asked; junk
(keys of another type, messages that are not text) is a miss, never an outage; series are durable
(no expiry an eviction policy could act on); a full Redis is told from an unreachable one."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as redis

from cache.base import CacheFull, CacheUnavailable
from cache.redis import RedisCache, sentinel_addresses
from tests.support.redis_server import RedisServer, SentinelServer, free_port


@pytest.fixture
def master_behind_sentinel_on_ipv6() -> Iterator[tuple[RedisServer, SentinelServer]]:
    master = RedisServer()
    master.start()
    sentinel = SentinelServer(master, bind="127.0.0.1 ::1")
    try:
        sentinel.start()
        yield master, sentinel
    finally:
        sentinel.stop()
        master.stop()


async def test_a_sentinel_named_by_a_bracketed_ipv6_address_is_reached(
    master_behind_sentinel_on_ipv6: tuple[RedisServer, SentinelServer],
) -> None:
    master, sentinel = master_behind_sentinel_on_ipv6
    # A second, unreachable sentinel: the list is split on commas, not on the address's colons.
    cache = RedisCache(f"redis+sentinel://[::1]:{sentinel.port},[::1]:1/{sentinel.service}/0", prefix="t:")
    try:
        await cache.set("k", "فامنین".encode())
        assert (await cache.get("k")).decode() == "فامنین"
    finally:
        await cache.close()


@pytest.mark.parametrize(
    ("url", "sentinels"),
    [
        ("redis+sentinel://s1,s2:26380/m", [("s1", 26379), ("s2", 26380)]),
        ("redis+sentinel://:pw@[::1]:26381,[fe80::2]/m/1", [("::1", 26381), ("fe80::2", 26379)]),
    ],
)
def test_each_sentinel_is_asked_at_its_host_and_port_default_26379(
    url: str, sentinels: list[tuple[str, int]]
) -> None:
    assert sentinel_addresses(url) == sentinels


async def test_with_every_sentinel_down_an_operation_fails_as_fast_as_a_dead_redis_does() -> None:
    # A dead Redis costs a request milliseconds, and the service serves from memory; sentinels
    # asked again and again with growing pauses would hold every request for seconds instead.
    cache = RedisCache(f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/m/0")
    try:
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(CacheUnavailable):
                await cache.get("k")
            assert time.monotonic() - started < 0.5
    finally:
        await cache.close()


async def test_with_every_sentinel_down_the_reason_names_the_master_not_redis_py_internals() -> None:
    # The reason is logged and shown by /health: one readable line, not every client's repr.
    cache = RedisCache(f"redis+sentinel://:pw@127.0.0.1:{free_port()}/mymaster/0")
    try:
        with pytest.raises(CacheUnavailable) as raised:
            await cache.get("k")
    finally:
        await cache.close()
    assert str(raised.value) == "No master found for 'mymaster'"


async def test_a_burst_through_sentinel_waits_for_a_pooled_connection_like_a_direct_redis_does(
    master_behind_sentinel_on_ipv6: tuple[RedisServer, SentinelServer],
) -> None:
    # More operations at once than the pool has connections: they queue briefly. Failing them
    # instead would count a busy moment as a Redis outage and serve from memory.
    master, sentinel = master_behind_sentinel_on_ipv6
    cache = RedisCache(f"redis+sentinel://127.0.0.1:{sentinel.port}/{sentinel.service}/0", max_connections=2)
    try:
        await cache.set("k", b"v")
        assert await asyncio.gather(*[cache.get("k") for _ in range(50)]) == [b"v"] * 50
    finally:
        await cache.close()


@pytest.fixture
async def cache(redis_server: RedisServer) -> AsyncIterator[RedisCache]:
    backend = RedisCache(redis_server.url, prefix="t:")
    yield backend
    await backend.close()


async def test_a_key_of_another_type_is_junk_a_miss_and_replaced_never_an_outage(
    cache: RedisCache, redis_client: redis.Redis
) -> None:
    # Someone made keys lists by hand: every operation on them answers as for junk values.
    for key in ("value", "series", "counter", "lock", "snapshot", "snapshot:version", "other-series"):
        await redis_client.rpush(f"t:{key}", "x")

    assert await cache.get("value") is None
    assert await cache.series_range("series", 0, 1e12) == []
    assert not await cache.release_lock("lock", "token")
    assert not await cache.extend_lock("lock", "token", 5)
    assert await cache.count("counter", 60) == 1
    assert await cache.set_if_newer("snapshot", b"v", 5.0, "news", "snapshot 5")
    assert await cache.get("snapshot") == b"v"
    await cache.series_add("series", 100.0, b"1", keep_seconds=1e12)
    assert await cache.series_range("series", 0, 1e12) == [(100.0, b"1")]
    await redis_client.set("t:counter", "not a number")
    assert await cache.count("counter", 60) == 1


async def test_a_message_that_is_not_utf8_is_skipped_and_the_subscription_goes_on(
    cache: RedisCache, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    messages = cache.subscribe("ch")
    assert await anext(messages) == ""
    with caplog.at_level(logging.WARNING):
        await redis_client.publish("t:ch", b"\xff\xfe not text")
        await redis_client.publish("t:ch", b"\xc3")
        await cache.publish("ch", "links 1.5")
        # A bound against hanging only: the message arrives within milliseconds.
        assert await asyncio.wait_for(anext(messages), 60) == "links 1.5"
    await messages.aclose()
    assert len([r for r in caplog.records if "not UTF-8" in r.message]) == 1


async def test_a_series_carries_no_expiry_so_no_volatile_policy_can_evict_it(
    cache: RedisCache, redis_client: redis.Redis
) -> None:
    await redis_client.zadd("t:old-release", {"100.0 1": 100.0})
    await redis_client.expire("t:old-release", 3600)  # as the previous release left its series

    await cache.series_add("new", 100.0, b"1", keep_seconds=60)
    await cache.series_add("old-release", 200.0, b"2", keep_seconds=60)
    await cache.series_add("new", 150.0, b"3", keep_seconds=60, bucket_seconds=3600)

    assert await redis_client.ttl("t:new") == -1
    assert await redis_client.ttl("t:old-release") == -1
    assert await redis_client.ttl("t:series-ends") == -1


async def test_a_series_nobody_writes_to_is_removed_by_a_later_write_once_its_span_is_over(
    cache: RedisCache, redis_client: redis.Redis
) -> None:
    await cache.series_add("abandoned", 100.0, b"1", keep_seconds=0.05)
    await cache.series_add("kept", 100.0, b"1", keep_seconds=3600)
    await redis_client.set("t:snapshot:x", b"durable")
    # A junk entry naming a key that is not a series: the sweep must not remove it.
    await redis_client.zadd("t:series-ends", {"t:snapshot:x": 0.0, "elsewhere:series": 0.0})
    await asyncio.sleep(0.1)  # the abandoned series' span runs out on Redis's own clock

    await cache.series_add("written", 100.0, b"1", keep_seconds=3600)

    assert not await redis_client.exists("t:abandoned")
    assert await cache.series_range("kept", 0, 1e12) == [(100.0, b"1")]
    assert await redis_client.get("t:snapshot:x") == b"durable"
    assert await redis_client.zscore("t:series-ends", "t:abandoned") is None


async def fill_until_refused(redis_client: redis.Redis) -> None:
    """noeviction, and a maxmemory below what Redis holds: every write that adds data is refused.

    (Filling up to a maxmemory leaves Redis right at its edge, where a write smaller than the
    last refused one may still fit: below it, the refusal does not depend on sizes.)
    """
    used = int((await redis_client.info("memory"))["used_memory"])
    await redis_client.config_set("maxmemory-policy", "noeviction")
    await redis_client.config_set("maxmemory", str(used // 2))


async def test_a_full_redis_refuses_every_write_as_cache_full_and_says_so_until_one_goes_through(
    cache: RedisCache, redis_client: redis.Redis
) -> None:
    await cache.set("before", b"v")
    await fill_until_refused(redis_client)

    for write in (
        lambda: cache.set("k", b"v"),
        lambda: cache.series_add("s", 100.0, b"1", keep_seconds=60),
        lambda: cache.set_if_newer("snapshot", b"v", 5.0, "news", "snapshot 5"),
        lambda: cache.count("counter", 60),
        lambda: cache.acquire_lock("lock", "token", 5),
    ):
        with pytest.raises(CacheFull):
            await write()
    assert cache.refusing_writes == "Redis refuses writes: out of memory"
    assert await cache.get("before") == b"v" and await cache.ping() >= 0  # reads go on
    assert not await redis_client.exists("t:s")  # the series script was refused whole, not half-run

    await redis_client.config_set("maxmemory", "0")
    await cache.set("k", b"v")
    assert cache.refusing_writes is None


async def test_the_eviction_policy_is_the_servers(cache: RedisCache, redis_client: redis.Redis) -> None:
    await redis_client.config_set("maxmemory-policy", "volatile-lru")
    assert await cache.eviction_policy() == "volatile-lru"
