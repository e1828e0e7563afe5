"""The Redis backend's URLs: the sentinels a ``redis+sentinel://`` URL names are the ones asked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from cache.base import CacheUnavailable
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
