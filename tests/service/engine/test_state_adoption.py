"""Another replica's refresh state is adopted without losing what a refresh running here counted.

When another process stores a snapshot, this one reloads the shared refresh state (which providers
failed or recovered there). A refresh of the same widget may be running here at that moment,
counting its providers' failures as it goes: those counts must survive the reload.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as redis_client
from aiohttp import web

from service.engine.backoff import RefreshState
from service.engine.snapshot import Snapshot
from service.registry import default_registry
from service.web.app import create_app
from service.web.keys import ENGINE
from tests.support.probe import ProbeProvider
from tests.support.waiting import eventually, record_calls

PREFIX = "sidebar:"


class MirrorProvider(ProbeProvider):
    id = "probe_mirror"
    attribution = "mirror"


def chain_app(upstream, probe_settings, redis_url):
    registry = default_registry()
    registry.add_provider(MirrorProvider)
    settings = probe_settings(
        redis_url=redis_url,
        providers=["probe", "probe_mirror"],
        extra_providers={"probe_mirror": {"url": upstream.url("/mirror")}},
    )
    return create_app(settings, registry=registry)


async def test_a_refresh_in_flight_keeps_its_failure_counts_when_another_replica_writes(
    aiohttp_client, upstream, probe_settings, redis_server
):
    release = asyncio.Event()

    async def mirror_fails_when_released(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=503, text="mirror down")

    upstream.fail("/probe", 503)
    upstream.on("/mirror", mirror_fails_when_released)
    here = await aiohttp_client(chain_app(upstream, probe_settings, redis_server.url))
    other = await aiohttp_client(chain_app(upstream, probe_settings, redis_server.url))
    refresher = here.app[ENGINE].refreshers["probe"]
    adoptions = record_calls(refresher, "_adopt_shared_state")

    refresh = refresher.trigger()
    assert refresh is not None
    # The first provider has failed (and been counted); the second one's answer is on its way.
    await eventually(lambda: upstream.hits["/mirror"] == 1)
    assert refresher.state.providers["probe"].consecutive_failures == 1

    # Meanwhile the other replica stores a newer snapshot, with its own view of the providers.
    r = redis_client.from_url(redis_server.url)
    now = other.app[ENGINE].clock.time()
    await r.set(f"{PREFIX}state:probe", RefreshState(last_success=now).to_bytes())
    await r.aclose()
    await other.app[ENGINE].store.save(Snapshot.create("probe", "probe", now + 1, {"value": 2, "label": "b"}))
    await eventually(lambda: adoptions, message="this replica never reloaded the shared state")

    release.set()
    await asyncio.shield(refresh)

    providers = refresher.state.providers
    assert providers["probe"].consecutive_failures == 1
    assert providers["probe_mirror"].consecutive_failures == 1
    r = redis_client.from_url(redis_server.url)
    shared = RefreshState.from_bytes(await r.get(f"{PREFIX}state:probe"))
    await r.aclose()
    assert shared.providers["probe"].consecutive_failures == 1
    assert shared.providers["probe_mirror"].consecutive_failures == 1


async def test_with_no_refresh_running_the_other_replicas_state_is_adopted(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.json("/probe", {"value": 1, "label": "a"})
    here = await aiohttp_client(chain_app(upstream, probe_settings, redis_server.url))
    other = await aiohttp_client(chain_app(upstream, probe_settings, redis_server.url))
    refresher = here.app[ENGINE].refreshers["probe"]
    adoptions = record_calls(refresher, "_adopt_shared_state")

    r = redis_client.from_url(redis_server.url)
    now = other.app[ENGINE].clock.time()
    theirs = RefreshState(last_success=now)
    theirs.provider("probe").failed(now, "status", "status: HTTP 503 there", 30)
    await r.set(f"{PREFIX}state:probe", theirs.to_bytes())
    await r.aclose()
    await other.app[ENGINE].store.save(Snapshot.create("probe", "probe", now + 1, {"value": 2, "label": "b"}))
    await eventually(lambda: adoptions, message="this replica never reloaded the shared state")

    assert refresher.state.providers["probe"].last_error == "status: HTTP 503 there"
