"""The refresh engine, clause by clause, in one process (multi-process clauses: test_replicas.py)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from aiohttp import web

from service.registry import default_registry
from service.web.app import create_app
from service.web.keys import ENGINE
from tests.support.probe import ProbeProvider


def probe_refresher(client):
    return client.app[ENGINE].refreshers["probe"]


async def test_cold_widget_waits_for_the_first_fetch_and_serves_it(aiohttp_client, upstream, probe_settings):
    upstream.json("/probe", {"value": 1, "label": "one"})
    client = await aiohttp_client(create_app(probe_settings()))

    response = await client.get("/widgets/probe.json")

    assert response.status == 200
    body = await response.json()
    assert body["status"] == "fresh"
    assert body["data"] == {"value": 1, "label": "one"}
    assert upstream.hits["/probe"] == 1


async def test_expired_widget_is_served_stale_at_once_while_one_refresh_runs(
    aiohttp_client, upstream, probe_settings
):
    upstream.json("/probe", {"value": 1, "label": "old"})
    client = await aiohttp_client(create_app(probe_settings(refresh_seconds=0.3)))
    assert (await client.get("/widgets/probe.json")).status == 200
    await asyncio.sleep(0.4)
    upstream.json("/probe", {"value": 2, "label": "new"})
    upstream.gate.clear()  # the upstream now hangs until we let it answer

    responses = await asyncio.wait_for(
        asyncio.gather(*(client.get("/widgets/probe.json") for _ in range(500))), timeout=30
    )
    bodies = [await r.json() for r in responses]

    # Every request was answered while the upstream was still holding the refresh.
    assert {b["status"] for b in bodies} == {"stale"}
    assert {b["data"]["label"] for b in bodies} == {"old"}
    assert upstream.hits["/probe"] == 2  # the first fetch, and exactly one refresh
    upstream.gate.set()
    await asyncio.sleep(0.2)
    body = await (await client.get("/widgets/probe.json")).json()
    assert body["status"] == "fresh" and body["data"]["label"] == "new"
    assert upstream.hits["/probe"] == 2


async def test_failed_fetch_keeps_the_last_good_snapshot(aiohttp_client, upstream, probe_settings):
    upstream.json("/probe", {"value": 7, "label": "good"})
    client = await aiohttp_client(create_app(probe_settings(refresh_seconds=0.2)))
    await client.get("/widgets/probe.json")
    await asyncio.sleep(0.3)
    upstream.fail("/probe", 500)

    await probe_refresher(client).trigger()

    body = await (await client.get("/widgets/probe.json")).json()
    assert body["data"] == {"value": 7, "label": "good"}
    assert body["status"] == "stale"
    state = probe_refresher(client).state
    assert state.consecutive_failures == 1
    assert "HTTP 500" in state.last_error


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"value": -5, "label": "negative is invalid"}, "validation"),
        ({"value": 1}, "validation"),
        ("<html>maintenance</html>", "content_type"),
    ],
)
async def test_validation_and_parse_failures_keep_the_old_data(
    aiohttp_client, upstream, probe_settings, payload, reason
):
    upstream.json("/probe", {"value": 3, "label": "kept"})
    client = await aiohttp_client(create_app(probe_settings(refresh_seconds=0.2)))
    await client.get("/widgets/probe.json")
    await asyncio.sleep(0.3)
    if isinstance(payload, str):

        async def html(request):
            return web.Response(text=payload, content_type="text/html")

        upstream.on("/probe", html)
    else:
        upstream.json("/probe", payload)

    await probe_refresher(client).trigger()

    body = await (await client.get("/widgets/probe.json")).json()
    assert body["data"] == {"value": 3, "label": "kept"}
    assert probe_refresher(client).state.last_error_reason == reason
    metrics = await (await client.get("/metrics")).text()
    assert f'sidebar_upstream_errors_total{{provider="probe",reason="{reason}"}} 1.0' in metrics


async def test_timeout_is_a_failure_not_a_hang(aiohttp_client, upstream, probe_settings):
    async def slow(request):
        await asyncio.sleep(5)

    upstream.on("/probe", slow)
    settings = probe_settings(cold_wait_seconds=0.2)
    settings.providers["probe"].timeout_seconds = 0.3
    client = await aiohttp_client(create_app(settings))

    response = await client.get("/widgets/probe.json")
    assert response.status == 503  # cold and the fetch is still running: honest, not hanging
    await asyncio.sleep(0.4)
    assert probe_refresher(client).state.last_error_reason == "timeout"


async def test_failures_back_off_quadratically_capped_at_the_refresh_interval(
    aiohttp_client, upstream, probe_settings
):
    upstream.fail("/probe", 500)
    client = await aiohttp_client(
        create_app(probe_settings(refresh_seconds=30, retry_base_seconds=2, cold_wait_seconds=0))
    )
    refresher = probe_refresher(client)
    delays = []
    for _ in range(5):
        refresher.state.retry_at = 0  # let the test step through attempts without waiting
        await refresher.trigger()
        delays.append(round(refresher.state.retry_at - time.time()))
    assert delays == [2, 8, 18, 30, 30]


async def test_no_attempt_while_backing_off(aiohttp_client, upstream, probe_settings):
    upstream.fail("/probe", 500)
    client = await aiohttp_client(create_app(probe_settings(retry_base_seconds=60, cold_wait_seconds=0)))
    await probe_refresher(client).trigger()
    assert upstream.hits["/probe"] == 1

    for _ in range(20):
        await client.get("/widgets/probe.json")

    assert upstream.hits["/probe"] == 1


async def test_retry_after_is_honoured_even_beyond_the_cap(aiohttp_client, upstream, probe_settings):
    upstream.fail("/probe", 429, headers={"Retry-After": "120"})
    client = await aiohttp_client(
        create_app(probe_settings(refresh_seconds=30, retry_base_seconds=1, cold_wait_seconds=0))
    )
    refresher = probe_refresher(client)
    await refresher.trigger()
    assert refresher.state.retry_at - time.time() == pytest.approx(120, abs=2)


async def test_provider_chain_falls_back_in_order(aiohttp_client, upstream, probe_settings):
    class MirrorProvider(ProbeProvider):
        id = "probe_mirror"
        attribution = "mirror"

    registry = default_registry()
    registry.add_provider(MirrorProvider)
    upstream.fail("/probe", 503)
    upstream.json("/mirror", {"value": 9, "label": "from mirror"})
    settings = probe_settings(
        providers=["probe", "probe_mirror"],
        extra_providers={"probe_mirror": {"url": upstream.url("/mirror")}},
    )
    client = await aiohttp_client(create_app(settings, registry=registry))

    body = await (await client.get("/widgets/probe.json")).json()

    assert body["source"] == "probe_mirror"
    assert body["attribution"] == "mirror"
    assert body["data"]["label"] == "from mirror"
    assert upstream.hits["/probe"] == 1 and upstream.hits["/mirror"] == 1


async def test_logs_once_when_failing_and_once_when_recovering(
    aiohttp_client, upstream, probe_settings, caplog
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings(refresh_seconds=0.1)))
    refresher = probe_refresher(client)
    await client.get("/widgets/probe.json")
    upstream.fail("/probe", 500)
    caplog.set_level(logging.INFO, logger="service.engine.refresher")
    for _ in range(3):
        refresher.state.retry_at = 0
        await refresher.trigger()
    upstream.json("/probe", {"value": 2, "label": "y"})
    refresher.state.retry_at = 0
    await refresher.trigger()

    messages = [r.getMessage() for r in caplog.records if r.name == "service.engine.refresher"]
    assert len([m for m in messages if "failing" in m]) == 1
    assert len([m for m in messages if "recovered" in m]) == 1
    assert "after 3 failed" in next(m for m in messages if "recovered" in m)


async def test_not_modified_renews_the_snapshot_without_new_data(aiohttp_client, upstream, probe_settings):
    seen_conditions = []

    async def conditional(request):
        seen_conditions.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"'})
        return web.json_response({"value": 1, "label": "etagged"}, headers={"ETag": '"v1"'})

    upstream.on("/probe", conditional)
    client = await aiohttp_client(create_app(probe_settings(refresh_seconds=0.2)))
    first = await (await client.get("/widgets/probe.json")).json()
    await asyncio.sleep(0.3)

    await probe_refresher(client).trigger()

    second = await (await client.get("/widgets/probe.json")).json()
    assert seen_conditions == [None, '"v1"']
    assert second["status"] == "fresh"
    assert second["data"] == first["data"]
    assert probe_refresher(client).state.consecutive_failures == 0


async def test_background_schedule_refreshes_without_any_reader(aiohttp_client, upstream, probe_settings):
    upstream.json("/probe", {"value": 1, "label": "x"})
    await aiohttp_client(
        create_app(probe_settings(refresh_seconds=0.3, background=True, jitter_fraction=0.2))
    )

    await asyncio.sleep(1.05)

    # A fetch at start-up, then one per interval (starting up to 20 % early): 4 or 5 in ~1 s.
    assert 2 <= upstream.hits["/probe"] <= 5
