"""/livez, /readyz and /health (application/health+json)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as redis
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from cache.base import CacheFull
from cache.memory import MemoryCache
from service.engine.clock import SystemClock
from service.web import health
from service.web.app import create_app
from service.web.keys import ENGINE
from tests.cache.test_redis import fill_until_refused
from tests.service.history.test_price_history import refresh_at, serve_dollar_at
from tests.service.history.test_price_history import settings as prices_settings
from tests.support.redis_server import RedisServer


async def test_livez_checks_nothing_but_the_process(aiohttp_client, upstream, probe_settings):
    upstream.fail("/probe", 500)
    client = await aiohttp_client(create_app(probe_settings()))
    assert (await client.get("/livez")).status == 200


async def test_readyz_on_memory_is_ready(aiohttp_client, upstream, probe_settings):
    client = await aiohttp_client(create_app(probe_settings()))
    response = await client.get("/readyz")
    assert response.status == 200 and (await response.json())["status"] == "pass"


async def test_health_passes_with_fresh_data_and_reports_its_age(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url)))
    await client.get("/widgets/probe.json")

    response = await client.get("/health")

    assert response.status == 200
    assert response.content_type == "application/health+json"
    body = await response.json()
    assert body["status"] == "pass"
    age = body["checks"]["probe:dataAge"][0]
    assert age["status"] == "pass" and age["observedUnit"] == "s" and 0 <= age["observedValue"] < 5
    assert age["consecutiveFailures"] == 0 and age["lastSuccess"] is not None
    redis = body["checks"]["redis:responseTime"][0]
    assert redis["status"] == "pass" and redis["observedUnit"] == "ms" and redis["observedValue"] >= 0


async def test_health_fails_when_an_enabled_widget_never_had_data(aiohttp_client, upstream, probe_settings):
    upstream.fail("/probe", 500)
    client = await aiohttp_client(create_app(probe_settings(cold_wait_seconds=0)))
    await client.app[ENGINE].refreshers["probe"].trigger()

    response = await client.get("/health")

    assert response.status == 503
    body = await response.json()
    assert body["status"] == "fail"
    check = body["checks"]["probe:dataAge"][0]
    assert check["status"] == "fail" and "observedValue" not in check
    assert check["consecutiveFailures"] == 1 and "HTTP 500" in check["lastError"]


async def test_health_warns_when_data_is_stale_after_failures(
    aiohttp_client, upstream, probe_settings, clock
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings(refresh_seconds=60), clock=clock))
    await client.get("/widgets/probe.json")
    upstream.fail("/probe", 500)
    await clock.advance(61)
    await client.app[ENGINE].refreshers["probe"].trigger()

    body = await (await client.get("/health")).json()

    assert body["status"] == "warn"
    check = body["checks"]["probe:dataAge"][0]
    assert check["status"] == "warn" and check["observedValue"] >= 0.3
    assert "HTTP 500" in check["output"]


async def readyz_directly(app: web.Application) -> tuple[int, dict[str, Any]]:
    """Call /readyz's handler without the network (before start-up, or while shutting down)."""
    response = await health.readyz(make_mocked_request("GET", "/readyz", app=app))
    assert isinstance(response, web.Response) and response.body is not None
    return response.status, json.loads(bytes(response.body))


async def test_readyz_stays_ready_while_redis_is_down_and_data_is_served_from_memory(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.json("/probe", {"value": 7, "label": "هفت"})
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url)))
    assert (await client.get("/widgets/probe.json")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "pass"

    redis_server.kill()

    served = await client.get("/widgets/probe.json")
    assert served.status == 200 and (await served.json())["data"]["value"] == 7
    health_response = await client.get("/health")
    body = await health_response.json()
    assert health_response.status == 200 and body["status"] == "warn"
    assert body["checks"]["redis:responseTime"][0]["status"] == "warn"
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert await ready.json() == {"status": "pass", "cache": "unreachable"}


async def test_readyz_is_503_before_start_up_has_finished(probe_settings):
    app = create_app(probe_settings())

    status, body = await readyz_directly(app)

    assert status == 503 and body == {"status": "fail", "reason": "starting"}


async def test_readyz_is_503_once_shutdown_begins(aiohttp_client, upstream, probe_settings):
    upstream.json("/probe", {"value": 1, "label": "x"})
    app = create_app(probe_settings())
    during_shutdown: list[tuple[int, dict[str, Any]]] = []

    async def ask_readyz(app: web.Application) -> None:
        during_shutdown.append(await readyz_directly(app))

    app.on_shutdown.append(ask_readyz)  # after the app's own hook: shutdown has begun
    client = await aiohttp_client(app)
    assert (await client.get("/readyz")).status == 200

    await client.close()

    assert during_shutdown == [(503, {"status": "fail", "reason": "shutting down", "cache": "reachable"})]


def _nulls(value: Any, where: str = "") -> list[str]:
    if value is None:
        return [where]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _nulls(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in _nulls(item, f"{where}[{i}]")]
    return []


async def test_health_keeps_to_the_drafts_vocabulary_and_omits_empty_keys(
    aiohttp_client, upstream, probe_settings, redis_server
):
    """draft-inadarei-api-health-check: componentType is component, datastore, system or a URI."""
    upstream.fail("/probe", 500)
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url, cold_wait_seconds=0)))
    await client.app[ENGINE].refreshers["probe"].trigger()

    body = await (await client.get("/health")).json()

    assert _nulls(body) == []
    types = {check["componentType"] for checks in body["checks"].values() for check in checks}
    assert types == {"component", "datastore"}
    probe = body["checks"]["probe:dataAge"][0]
    assert probe["componentId"] == "probe" and "observedValue" not in probe and "source" not in probe


async def test_a_unit_is_given_only_with_a_value_it_measures(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.fail("/probe", 500)
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url, cold_wait_seconds=0)))
    await client.app[ENGINE].refreshers["probe"].trigger()
    redis_server.stop()  # no response time to report either

    body = await (await client.get("/health")).json()

    checks = [check for checks in body["checks"].values() for check in checks]
    assert len(checks) == 2
    assert all(("observedUnit" in check) == ("observedValue" in check) for check in checks)


async def test_health_warns_while_redis_refuses_writes_and_passes_once_it_takes_them_again(
    aiohttp_client, upstream, probe_settings, redis_server, clock
):
    # noeviction, or volatile-lru with nothing volatile left: Redis answers pings, refuses writes.
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(
        create_app(probe_settings(redis_url=redis_server.url, refresh_seconds=10), clock=clock)
    )
    assert (await client.get("/widgets/probe.json")).status == 200
    raw = redis.Redis.from_url(redis_server.url)
    try:
        await fill_until_refused(raw)
        await clock.advance(11)
        await client.app[ENGINE].refreshers["probe"].trigger()

        body = await (await client.get("/health")).json()

        assert body["status"] == "warn"
        check = body["checks"]["redis:responseTime"][0]
        assert check["status"] == "warn" and check["output"] == "Redis refuses writes: out of memory"
        assert check["evictionPolicy"] == "noeviction"

        await raw.config_set("maxmemory", "0")
        await clock.advance(11)
        await client.app[ENGINE].refreshers["probe"].trigger()
        body = await (await client.get("/health")).json()
        assert body["checks"]["redis:responseTime"][0]["status"] == "pass" and body["status"] == "pass"
    finally:
        await raw.aclose()


async def test_health_warns_when_redis_may_evict_snapshots_and_history_along_with_caches(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    raw = redis.Redis.from_url(redis_server.url)
    try:
        await raw.config_set("maxmemory-policy", "allkeys-lru")
        client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url)))
        await client.get("/widgets/probe.json")

        check = (await (await client.get("/health")).json())["checks"]["redis:responseTime"][0]
        assert check["status"] == "warn" and check["evictionPolicy"] == "allkeys-lru"
        assert "allkeys-lru may evict snapshots and price history" in check["output"]

        await raw.config_set("maxmemory-policy", "volatile-lru")
        check = (await (await client.get("/health")).json())["checks"]["redis:responseTime"][0]
        assert check["status"] == "pass" and check["evictionPolicy"] == "volatile-lru"
    finally:
        await raw.aclose()


@pytest.fixture(scope="module")
def policy_redis() -> Iterator[RedisServer]:
    """One server for every policy below: each test sets the policy it is about."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


DURABLE_AT_RISK = "may evict snapshots and price history: use volatile-lru"
LOCKS_AT_RISK = "may evict refresh locks and rate counters before cached tiles: use volatile-lru"
#: Every policy Redis has, and the warning each deserves (None: it passes).
EVICTION_POLICIES = {
    "volatile-lru": None,
    "volatile-lfu": None,
    "noeviction": None,
    "volatile-ttl": LOCKS_AT_RISK,
    "volatile-random": LOCKS_AT_RISK,
    "allkeys-lru": DURABLE_AT_RISK,
    "allkeys-lfu": DURABLE_AT_RISK,
    "allkeys-random": DURABLE_AT_RISK,
}


@pytest.mark.parametrize(
    ("policy", "warning"), [pytest.param(*item, id=item[0]) for item in EVICTION_POLICIES.items()]
)
async def test_only_policies_that_evict_tiles_before_anything_else_pass(
    aiohttp_client, upstream, probe_settings, policy_redis, policy, warning
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    raw = redis.Redis.from_url(policy_redis.url)
    try:
        await raw.config_set("maxmemory-policy", policy)
        client = await aiohttp_client(create_app(probe_settings(redis_url=policy_redis.url)))
        assert (await client.get("/widgets/probe.json")).status == 200

        body = await (await client.get("/health")).json()

        check = body["checks"]["redis:responseTime"][0]
        assert check["evictionPolicy"] == policy
        if warning is None:
            assert check["status"] == "pass" and "output" not in check and body["status"] == "pass"
        else:
            assert check["status"] == "warn" and body["status"] == "warn"
            assert check["output"] == f"maxmemory-policy {policy} {warning}"
    finally:
        await raw.aclose()


async def test_a_snapshot_key_of_another_type_is_junk_not_an_unreachable_redis(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.json("/probe", {"value": 3, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url)))
    assert (await client.get("/widgets/probe.json")).status == 200
    raw = redis.Redis.from_url(redis_server.url)
    try:
        await raw.delete("sidebar:snapshot:probe")
        await raw.rpush("sidebar:snapshot:probe", "someone made this a list")
        store = client.app[ENGINE].store

        kept = await store.load_shared("probe")  # what a reload after an announcement does

        assert kept is not None and kept.data["value"] == 3
        assert store.available and store.last_error is None
        assert await (await client.get("/readyz")).json() == {"status": "pass", "cache": "reachable"}
    finally:
        await raw.aclose()


async def test_a_failing_price_history_shows_in_health_though_the_refresh_succeeds(
    aiohttp_client, upstream, clock
):
    class Full(MemoryCache):
        async def series_add(self, *args: Any, **kwargs: Any) -> None:
            raise CacheFull("Redis refuses writes: out of memory")

    serve_dollar_at(upstream, 1_050_000)
    failing = await aiohttp_client(
        create_app(prices_settings(upstream), clock=clock, cache=Full(SystemClock()))
    )
    working = await aiohttp_client(create_app(prices_settings(upstream), clock=clock))
    assert (await failing.get("/widgets/prices.json")).status == 200
    assert (await working.get("/widgets/prices.json")).status == 200

    failed = (await (await failing.get("/health")).json())["checks"]["prices:historyRecording"][0]
    recorded = (await (await working.get("/health")).json())["checks"]["prices:historyRecording"][0]

    assert failed["status"] == "warn" and failed["consecutiveFailures"] == 1
    assert failed["output"] == "price history not recorded: Redis refuses writes: out of memory"
    assert "lastSuccess" not in failed
    assert recorded["status"] == "pass" and recorded["consecutiveFailures"] == 0
    assert "lastSuccess" in recorded and "output" not in recorded


async def test_price_history_shows_as_not_recorded_while_redis_refuses_writes(
    aiohttp_client, upstream, redis_server, clock
):
    serve_dollar_at(upstream, 1_050_000)
    client = await aiohttp_client(
        create_app(prices_settings(upstream, redis_url=redis_server.url), clock=clock)
    )
    assert (await client.get("/widgets/prices.json")).status == 200
    raw = redis.Redis.from_url(redis_server.url)
    try:
        await fill_until_refused(raw)
        await refresh_at(client, clock, upstream, 1_051_000, after=11)
        await refresh_at(client, clock, upstream, 1_052_000, after=11)

        body = await (await client.get("/health")).json()

        check = body["checks"]["prices:historyRecording"][0]
        assert check["status"] == "warn" and check["consecutiveFailures"] == 2
        assert check["output"] == "price history not recorded: Redis refuses writes: out of memory"
        metrics = await (await client.get("/metrics")).text()
        assert 'sidebar_snapshot_listener_errors_total{widget="prices"} 2.0' in metrics
        # The box itself is served, from memory, at the new price.
        served = await (await client.get("/widgets/prices.json")).json()
        assert served["data"]["items"][0]["price"] == 1_052_000

        await raw.config_set("maxmemory", "0")
        await refresh_at(client, clock, upstream, 1_053_000, after=11)
        check = (await (await client.get("/health")).json())["checks"]["prices:historyRecording"][0]
        assert check["status"] == "pass" and check["consecutiveFailures"] == 0
    finally:
        await raw.aclose()
