"""Work after a stored snapshot (e.g. recording history): once per snapshot across every process
sharing the cache, and never able to fail the refresh that stored it."""

from __future__ import annotations

import logging

from cache.memory import MemoryCache
from cache.redis import RedisCache
from service.engine.clock import SystemClock
from service.engine.snapshot import Snapshot
from service.engine.store import SnapshotStore
from service.metrics import Metrics


def snapshot(fetched_at: float, value: int = 1) -> Snapshot:
    return Snapshot.create("probe", "probe", fetched_at, {"value": value, "label": "x"})


async def test_only_the_process_whose_write_wins_runs_the_listener(redis_server):
    caches = [RedisCache(redis_server.url), RedisCache(redis_server.url)]
    stores = [SnapshotStore(cache, Metrics(), ["probe"]) for cache in caches]
    heard: list[tuple[int, float]] = []
    for index, store in enumerate(stores):

        async def listener(written: Snapshot, index: int = index) -> None:
            heard.append((index, written.fetched_at))

        store.on_written(listener)
    now = await caches[0].server_time()

    await stores[0].save(snapshot(now))
    await stores[1].save(snapshot(now))  # the same refresh, finished by both
    await stores[1].save(snapshot(now - 5))  # a late writer with older data
    await stores[1].save(snapshot(now + 1))

    assert heard == [(0, now), (1, now + 1)]
    for cache in caches:
        await cache.close()


async def test_a_failing_listener_never_fails_the_save_and_is_logged_once_then_its_recovery(caplog):
    metrics = Metrics()
    store = SnapshotStore(MemoryCache(SystemClock()), metrics, ["probe"])
    failing = True
    later: list[float] = []

    async def flaky(written: Snapshot) -> None:
        if failing:
            raise ConnectionError("history store down")

    async def next_one(written: Snapshot) -> None:
        later.append(written.fetched_at)

    store.on_written(flaky)
    store.on_written(next_one)
    with caplog.at_level(logging.INFO):
        assert await store.save(snapshot(1_795_000_000.0))
        assert await store.save(snapshot(1_795_000_060.0))
        failing = False
        assert await store.save(snapshot(1_795_000_120.0))

    assert store.local("probe") == snapshot(1_795_000_120.0)
    assert later == [1_795_000_000.0, 1_795_000_060.0, 1_795_000_120.0]  # the others still run
    messages = [r.getMessage() for r in caplog.records if "after storing a snapshot" in r.getMessage()]
    assert len(messages) == 2 and "failed" in messages[0] and "works again" in messages[1]
    assert metrics.snapshot_listener_errors.labels("probe")._value.get() == 2
