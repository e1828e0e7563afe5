"""A Redis that refuses writes (full, with nothing it may evict) is reachable, not down.

It answers every read and every ping: the store keeps calling it reachable, the refusal is its own
state (logged once when it starts and once when it ends), and the work after a snapshot it refused
is still tried, so its failure is counted where /health and /metrics look.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from cache.redis import RedisCache
from service.engine.snapshot import Snapshot
from service.engine.store import SnapshotStore
from service.metrics import Metrics
from tests.cache.test_redis import fill_until_refused
from tests.support.redis_server import RedisServer

#: The loggers that speak of the shared cache's state: the store's and the Redis backend's.
CACHE_LOGGERS = ("service.engine.store", "cache.redis")


def snapshot(fetched_at: float, value: int = 1) -> Snapshot:
    return Snapshot.create("probe", "probe", fetched_at, {"value": value, "label": "x"})


@pytest.fixture
async def cache(redis_server: RedisServer) -> AsyncIterator[RedisCache]:
    backend = RedisCache(redis_server.url)
    yield backend
    await backend.close()


def cache_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name in CACHE_LOGGERS]


async def test_a_full_redis_is_logged_once_as_refusing_writes_and_never_as_unreachable(
    cache: RedisCache, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
):
    store = SnapshotStore(cache, Metrics(), ["probe"])
    now = await cache.server_time()
    assert await store.save(snapshot(now))
    await fill_until_refused(redis_client)

    with caplog.at_level(logging.INFO):
        for step in (1, 2, 3):  # writes refused, reads and pings answered, in turn
            assert await store.save(snapshot(now + step))
            loaded = await store.load_shared("probe")
            assert loaded is not None and loaded.fetched_at == now + step  # served from memory
            assert await store.ping()
            assert store.available and store.last_error is None
        await redis_client.config_set("maxmemory", "0")
        assert await store.save(snapshot(now + 4))

    lines = cache_lines(caplog)
    assert len(lines) == 2, lines
    assert "refuses writes" in lines[0] and "accepts writes again" in lines[1]
    assert not [line for line in lines if "reachable" in line]
    shared = Snapshot.from_bytes(await cache.get("snapshot:probe") or b"")
    assert shared.fetched_at == now + 4  # written once Redis takes writes again


async def test_a_lost_connection_is_still_logged_as_unreachable_then_reachable(
    cache: RedisCache, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
):
    store = SnapshotStore(cache, Metrics(), ["probe"])
    now = await cache.server_time()
    assert await store.save(snapshot(now))

    with caplog.at_level(logging.INFO):
        redis_server.kill()
        assert await store.save(snapshot(now + 1))  # kept in memory
        assert not await store.ping()
        assert not store.available and store.last_error
        redis_server.start()
        assert await store.ping()

    lines = cache_lines(caplog)
    assert len(lines) == 2, lines
    assert "unreachable" in lines[0] and "reachable again" in lines[1]
    assert store.available and store.last_error is None


async def test_reconciling_with_a_full_redis_keeps_the_newer_local_snapshot_and_is_no_outage(
    cache: RedisCache, redis_client: redis.Redis
):
    store = SnapshotStore(cache, Metrics(), ["probe"])
    now = await cache.server_time()
    assert await store.save(snapshot(now))
    await fill_until_refused(redis_client)
    assert await store.save(snapshot(now + 1))  # refused: only this process has it

    await store.reconcile()  # what the listener does on (re)subscribing

    assert store.available
    kept = store.local("probe")
    assert kept is not None and kept.fetched_at == now + 1


async def test_the_work_after_a_refused_snapshot_is_tried_and_its_failure_counted(
    cache: RedisCache, redis_client: redis.Redis
):
    metrics = Metrics()
    store = SnapshotStore(cache, metrics, ["probe"])
    tried: list[float] = []

    async def record(written: Snapshot) -> None:  # as price history does: a write of its own
        tried.append(written.fetched_at)
        await cache.series_add("history:probe", written.fetched_at, b"1", keep_seconds=3600)

    store.on_written(record)
    now = await cache.server_time()
    assert await store.save(snapshot(now))
    await fill_until_refused(redis_client)

    assert await store.save(snapshot(now + 1))
    assert await store.save(snapshot(now + 2))
    assert not await store.save(snapshot(now - 5))  # older than the shared copy: nothing to do

    assert tried == [now, now + 1, now + 2]
    assert metrics.snapshot_listener_errors.labels("probe")._value.get() == 2
    await redis_client.config_set("maxmemory", "0")
    assert await store.save(snapshot(now + 3))
    assert tried[-1] == now + 3
    assert metrics.snapshot_listener_errors.labels("probe")._value.get() == 2
    assert len(await cache.series_range("history:probe", now - 60, now + 60)) == 2  # now and now + 3
