"""Several processes on one Redis: one fetch per refresh, shared snapshots, outages survived.

Each "process" is a separate app with its own cache client, HTTP session and engine; they share
nothing but the Redis server, exactly as replicas behind a load balancer do.
"""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as redis_client

from cache.redis import RedisCache
from service.engine.snapshot import Snapshot
from service.web.app import create_app
from service.web.keys import ENGINE
from tests.support.waiting import eventually, record_calls


async def _bodies(client, n):
    responses = await asyncio.gather(*(client.get("/widgets/probe.json") for _ in range(n)))
    return [await r.json() for r in responses]


async def test_two_instances_make_one_upstream_call_per_refresh(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.json("/probe", {"value": 1, "label": "shared"})
    # Long enough for a burst of requests on a busy machine to end well inside one interval.
    settings = probe_settings(redis_url=redis_server.url, refresh_seconds=2)
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))
    engines = [a.app[ENGINE], b.app[ENGINE]]

    upstream.gate.clear()
    cold = asyncio.gather(_bodies(a, 50), _bodies(b, 50))
    # Both instances refreshing at once, one of them holding the fetch (the other on its lock).
    await eventually(lambda: all(engine.flight.running("probe") for engine in engines))
    upstream.gate.set()
    first_a, first_b = await cold
    assert upstream.hits["/probe"] == 1
    assert {x["data"]["label"] for x in first_a + first_b} == {"shared"}

    def expired() -> bool:
        refresher = a.app[ENGINE].refreshers["probe"]
        return not refresher.is_fresh(refresher.store.local("probe"), refresher.now())

    await eventually(expired, every=0.1)
    await asyncio.gather(_bodies(a, 50), _bodies(b, 50))
    await eventually(lambda: not any(engine.flight.running("probe") for engine in engines))
    assert upstream.hits["/probe"] == 2


async def test_background_schedules_of_two_instances_do_not_double_fetch(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    settings = probe_settings(
        redis_url=redis_server.url, refresh_seconds=0.4, background=True, jitter_fraction=0.3
    )
    await aiohttp_client(create_app(settings))
    await aiohttp_client(create_app(settings))

    await asyncio.sleep(2.1)

    # One instance alone would fetch at start-up and every 0.28–0.4 s: at most 8 in 2.1 s.
    # Two uncoordinated instances would fetch up to twice that.
    assert 3 <= upstream.hits["/probe"] <= 8


async def test_a_write_reaches_every_replica_without_it_asking(
    aiohttp_client, upstream, probe_settings, redis_server
):
    """b serves no request and has no schedule: only the write's announcement (pub/sub) can bring
    it the new data, and it must, without b fetching or being asked."""
    upstream.json("/probe", {"value": 1, "label": "before"})
    settings = probe_settings(redis_url=redis_server.url, refresh_seconds=0.3)
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))
    await a.get("/widgets/probe.json")
    assert (await (await b.get("/widgets/probe.json")).json())["data"]["label"] == "before"

    await asyncio.sleep(0.35)
    upstream.json("/probe", {"value": 2, "label": "after"})
    await a.app[ENGINE].refreshers["probe"].trigger()
    await eventually(
        lambda: b.app[ENGINE].store.local("probe").data["label"] == "after",
        every=0.01,
        message="replica b never saw the write",
    )

    assert (await (await b.get("/widgets/probe.json")).json())["data"]["label"] == "after"
    assert upstream.hits["/probe"] == 2


class CountingCache(RedisCache):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.gets = 0

    async def get(self, key: str) -> bytes | None:
        self.gets += 1
        return await super().get(key)


async def test_hot_reads_do_not_touch_redis(aiohttp_client, upstream, probe_settings, redis_server):
    upstream.json("/probe", {"value": 1, "label": "x"})
    cache = CountingCache(redis_server.url)
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url), cache=cache))
    await client.get("/widgets/probe.json")
    gets_after_first = cache.gets

    for _ in range(200):
        assert (await client.get("/widgets/probe.json")).status == 200
    await client.get("/widgets/probe.html")

    assert cache.gets == gets_after_first
    await cache.close()


async def test_restart_with_warm_redis_serves_at_once_without_refetching(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.json("/probe", {"value": 5, "label": "warm"})
    settings = probe_settings(redis_url=redis_server.url, refresh_seconds=60, background=True)
    first = await aiohttp_client(create_app(settings))
    await first.get("/widgets/probe.json")
    await first.close()
    assert upstream.hits["/probe"] == 1

    upstream.gate.clear()  # were the restarted process to fetch, its readers could not be served
    restarted = await aiohttp_client(create_app(settings))
    # A fetch could not finish (the gate is shut): it would show as a second hit and a 503 after
    # cold_wait_seconds, not as this bound, which only stops a hang.
    body = await asyncio.wait_for((await restarted.get("/widgets/probe.json")).json(), timeout=60)
    await asyncio.sleep(0.3)  # a moment for a wrong start-up fetch to show in the count

    assert body["status"] == "fresh" and body["data"]["label"] == "warm"
    assert upstream.hits["/probe"] == 1


async def test_redis_outage_keeps_widgets_served_and_recovers_by_itself(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.json("/probe", {"value": 1, "label": "before outage"})
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url, refresh_seconds=0.3)))
    await client.get("/widgets/probe.json")

    redis_server.kill()

    response = await client.get("/widgets/probe.json")
    assert response.status == 200
    assert (await response.json())["data"]["label"] == "before outage"
    # Still ready: this replica serves from memory, and a load balancer must keep sending to it.
    assert (await client.get("/readyz")).status == 200
    health = await (await client.get("/health")).json()
    assert health["status"] == "warn"
    assert health["checks"]["redis:responseTime"][0]["status"] == "warn"

    # Refreshing carries on into memory while Redis is away.
    await asyncio.sleep(0.35)
    upstream.json("/probe", {"value": 2, "label": "during outage"})
    await client.app[ENGINE].refreshers["probe"].trigger()
    assert (await (await client.get("/widgets/probe.json")).json())["data"]["label"] == "during outage"

    redis_server.start()  # same port

    async def redis_check_passes() -> bool:
        health = await (await client.get("/health")).json()
        return health["checks"]["redis:responseTime"][0]["status"] == "pass"

    await eventually(redis_check_passes, every=0.2, message="did not reconnect to Redis")

    # The listener reconciles: what was fetched during the outage is now in Redis for the others.
    direct = redis_client.Redis.from_url(redis_server.url)

    async def reconciled() -> bool:
        raw = await direct.get("sidebar:snapshot:probe")
        return raw is not None and Snapshot.from_bytes(raw).data["label"] == "during outage"

    await eventually(reconciled, every=0.2, message="snapshot fetched during the outage never reached Redis")
    await direct.aclose()
    assert (await (await client.get("/health")).json())["checks"]["redis:responseTime"][0]["status"] == "pass"


async def test_lock_holder_that_dies_does_not_block_refreshes_forever(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    settings = probe_settings(redis_url=redis_server.url)
    direct = redis_client.Redis.from_url(redis_server.url)
    client = await aiohttp_client(create_app(settings))
    # A process took the lock and died: its lock expires after its own lifetime (3 s here).
    await direct.set("sidebar:lock:probe", "dead-owner", px=3000)

    response = await client.get("/widgets/probe.json")
    assert response.status == 503  # nobody has data; the lock is not ours
    await eventually(
        lambda: not client.app[ENGINE].flight.running("probe"), message="the follower never gave up"
    )

    async def lock_expired() -> bool:
        return not await direct.exists("sidebar:lock:probe")

    await eventually(lock_expired, message="the dead lock never expired")
    response = await client.get("/widgets/probe.json")

    assert response.status == 200
    assert upstream.hits["/probe"] == 1
    await direct.aclose()


async def test_a_replica_stops_backing_off_when_another_one_gets_through(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.fail("/probe", 500)
    settings = probe_settings(redis_url=redis_server.url, retry_base_seconds=60, cold_wait_seconds=0)
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))
    a_refresher = a.app[ENGINE].refreshers["probe"]
    await a_refresher.trigger()
    assert a_refresher.state.consecutive_failures == 1 and a_refresher.retry_at > time.time() + 30
    b_refresher = b.app[ENGINE].refreshers["probe"]
    await b_refresher.trigger()
    assert upstream.hits["/probe"] == 1  # b adopted the shared backoff: it did not ask either
    assert b_refresher.trigger() is None and b_refresher.state.consecutive_failures == 1

    # b ignores the shared backoff only because the test forces it; the upstream has recovered.
    upstream.json("/probe", {"value": 1, "label": "back"})
    await b_refresher.trigger(force=True)

    async def a_cleared() -> bool:
        check = (await (await a.get("/health")).json())["checks"]["probe:dataAge"][0]
        return check["consecutiveFailures"] == 0

    # a hears of it (pub/sub): a's own backoff runs for a minute, so a never asked itself.
    await eventually(a_cleared, message="replica a still reports the failure another replica cleared")
    await a_refresher.trigger(force=True)  # a's next attempt reads the shared state b left
    assert a_refresher.retry_at == 0 and a_refresher.state.providers["probe"].consecutive_failures == 0
    assert (await (await a.get("/widgets/probe.json")).json())["data"]["label"] == "back"


async def test_a_late_writer_never_overwrites_newer_data(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    settings = probe_settings(redis_url=redis_server.url)
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))
    now = a.app[ENGINE].clock.time()
    newer = Snapshot.create("probe", "probe", now, {"value": 2, "label": "newer"})
    older = Snapshot.create("probe", "probe", now - 30, {"value": 1, "label": "older, written late"})

    assert await a.app[ENGINE].store.save(newer)
    assert not await b.app[ENGINE].store.save(older)  # Redis refused it

    direct = redis_client.Redis.from_url(redis_server.url)
    assert Snapshot.from_bytes(await direct.get("sidebar:snapshot:probe")).data["label"] == "newer"
    await direct.aclose()
    assert b.app[ENGINE].store.local("probe").data["label"] == "newer"  # b adopted the winner
    assert (await (await b.get("/widgets/probe.json")).json())["data"]["label"] == "newer"


async def test_an_unreadable_shared_snapshot_is_a_miss_logged_once_and_replaced(
    aiohttp_client, upstream, probe_settings, redis_server, caplog
):
    upstream.json("/probe", {"value": 4, "label": "fresh fetch"})
    direct = redis_client.Redis.from_url(redis_server.url)
    old_release = b'{"widget":"probe","source":"probe","fetched_at":1,"digest":"x","data":{"value":1}}'
    await direct.set("sidebar:snapshot:probe", old_release)  # no schema: written by an older release
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url)))

    for _ in range(3):
        response = await client.get("/widgets/probe.json")
        assert response.status == 200
        assert (await response.json())["data"]["label"] == "fresh fetch"

    raw = await direct.get("sidebar:snapshot:probe")
    assert Snapshot.from_bytes(raw).data["label"] == "fresh fetch"  # the good fetch replaced it
    await direct.set("sidebar:snapshot:probe", b"\xff\x00 corrupt")
    await client.app[ENGINE].store.load_shared("probe")
    await client.app[ENGINE].store.load_shared("probe")
    warnings = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(warnings) == 2  # once for the old release's value, once for the corrupt one
    assert "schema None" in warnings[0]
    assert (await client.get("/widgets/probe.json")).status == 200
    await direct.aclose()


async def test_the_lock_lives_as_long_as_the_fetch_and_followers_learn_at_once(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.json("/probe", {"value": 1, "label": "slow but sure"})
    # A lifetime of a second, renewed every third of one: only a stall of the event loop longer
    # than two thirds of a second (not a busy machine) could let it lapse.
    settings = probe_settings(redis_url=redis_server.url, lock_seconds=1, cold_wait_seconds=0)
    settings.providers["probe"].timeout_seconds = 30
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))
    renewals = record_calls(a.app[ENGINE].store.cache, "extend_lock")
    releases = record_calls(a.app[ENGINE].store.cache, "release_lock")
    polls = record_calls(b.app[ENGINE].store.cache, "lock_held")
    upstream.gate.clear()  # the upstream holds the fetch far longer than the lock's lifetime
    leader = a.app[ENGINE].refreshers["probe"].trigger()
    await eventually(lambda: upstream.hits["/probe"] == 1)

    # Renewed nine times: the fetch has outlived more than three of the lock's lifetimes.
    await eventually(lambda: len([c for c in renewals if c.result]) >= 9, message="the lock was not renewed")
    follower = b.app[ENGINE].refreshers["probe"].trigger()
    await eventually(lambda: len(polls) >= 2, message="the second replica never waited on the lock")
    assert all(c.result for c in polls)  # still held
    assert upstream.hits["/probe"] == 1 and not follower.done()

    upstream.gate.set()
    await leader
    # At its next poll, not after a lock lifetime or a chain timeout (30 s here).
    snapshot = await asyncio.wait_for(follower, 60)
    assert snapshot is not None and snapshot.data["label"] == "slow but sure"
    assert upstream.hits["/probe"] == 1
    assert [c.result for c in releases] == [True]  # the holder let go; the lock did not lapse
    assert polls[-1].result is False and len([c for c in polls if c.started >= releases[0].finished]) <= 1


async def test_a_leaders_failure_reaches_followers_at_once_and_the_next_request_retries(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.fail("/probe", 500)
    settings = probe_settings(redis_url=redis_server.url, cold_wait_seconds=0)
    settings.providers["probe"].timeout_seconds = 30
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))
    releases = record_calls(a.app[ENGINE].store.cache, "release_lock")
    polls = record_calls(b.app[ENGINE].store.cache, "lock_held")
    upstream.gate.clear()
    leader = a.app[ENGINE].refreshers["probe"].trigger()
    await eventually(lambda: upstream.hits["/probe"] == 1)
    follower = b.app[ENGINE].refreshers["probe"].trigger()
    await eventually(lambda: polls, message="the second replica never waited on the lock")

    upstream.gate.set()
    await leader
    assert await asyncio.wait_for(follower, 60) is None  # no data
    # Learnt at once: at its next poll after the leader let go, not at the end of its own wait.
    assert [c.result for c in releases] == [True]
    assert polls[-1].result is False and len([c for c in polls if c.started >= releases[0].finished]) <= 1
    assert upstream.hits["/probe"] == 1
    assert b.app[ENGINE].refreshers["probe"].state.consecutive_failures == 1  # the shared count
