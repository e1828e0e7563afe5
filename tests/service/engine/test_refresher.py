"""The refresh engine, clause by clause, in one process (multi-process clauses: test_replicas.py).

Time is a fake clock the tests move (``clock.advance``): staleness, backoff and schedules are
checked without sleeping. Upstreams are real local HTTP servers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from service.registry import default_registry
from service.web.app import create_app
from service.web.keys import ENGINE
from service.widgets.local_day import next_local_midnight
from tests.support.clock import FakeClock, settle
from tests.support.probe import ProbeProvider
from tests.support.waiting import eventually


def probe_refresher(client):
    return client.app[ENGINE].refreshers["probe"]


async def metrics_text(client) -> str:
    return await (await client.get("/metrics")).text()


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
    aiohttp_client, upstream, probe_settings, clock
):
    upstream.json("/probe", {"value": 1, "label": "old"})
    client = await aiohttp_client(create_app(probe_settings(refresh_seconds=60), clock=clock))
    assert (await client.get("/widgets/probe.json")).status == 200
    await clock.advance(61)
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
    await probe_refresher(client).trigger()
    body = await (await client.get("/widgets/probe.json")).json()
    assert body["status"] == "fresh" and body["data"]["label"] == "new"
    assert upstream.hits["/probe"] == 2


async def test_failed_fetch_keeps_the_last_good_snapshot(aiohttp_client, upstream, probe_settings, clock):
    upstream.json("/probe", {"value": 7, "label": "good"})
    client = await aiohttp_client(create_app(probe_settings(refresh_seconds=60), clock=clock))
    await client.get("/widgets/probe.json")
    await clock.advance(61)
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
        ('{"value": -5, "label": "negative is invalid"}', "validation"),
        ('{"value": 1}', "validation"),
        ('{"value": ' + "9" * 5000 + ', "label": "thousands of digits"}', "parse"),
        ('{"value": 1e400, "label": "beyond float range"}', "validation"),
        ('{"value": NaN, "label": "not a number"}', "validation"),
        ("<html>maintenance</html>", "content_type"),
    ],
)
async def test_validation_and_parse_failures_keep_the_old_data(
    aiohttp_client, upstream, probe_settings, clock, payload, reason
):
    upstream.json("/probe", {"value": 3, "label": "kept"})
    client = await aiohttp_client(create_app(probe_settings(refresh_seconds=60), clock=clock))
    await client.get("/widgets/probe.json")
    await clock.advance(61)

    async def answer(request):
        kind = "text/html" if payload.startswith("<") else "application/json"
        return web.Response(text=payload, content_type=kind)

    upstream.on("/probe", answer)

    await probe_refresher(client).trigger()

    body = await (await client.get("/widgets/probe.json")).json()
    assert body["data"] == {"value": 3, "label": "kept"}
    state = probe_refresher(client).state
    assert state.last_error_reason == reason
    assert state.providers["probe"].consecutive_failures == 1
    assert f'sidebar_upstream_errors_total{{provider="probe",reason="{reason}"}} 1.0' in await metrics_text(
        client
    )


def _probe_registry(**changes):
    registry = default_registry()
    registry.widgets["probe"] = dataclasses.replace(registry.widgets["probe"], **changes)
    return registry


@pytest.mark.parametrize(
    "reconcile",
    [
        pytest.param(lambda new, old, options: 1 / 0, id="reconcile raises"),
        pytest.param(lambda new, old, options: ({**new, "value": math.nan}, []), id="NaN cannot be stored"),
        pytest.param(
            lambda new, old, options: ({**new, "value": 10**5000}, []), id="an int too long to write"
        ),
    ],
)
async def test_anything_raised_between_answer_and_snapshot_is_a_failed_attempt_of_that_provider(
    aiohttp_client, upstream, probe_settings, clock, reconcile
):
    upstream.json("/probe", {"value": 1, "label": "good"})
    good = _probe_registry()
    client = await aiohttp_client(create_app(probe_settings(refresh_seconds=60), clock=clock, registry=good))
    await client.get("/widgets/probe.json")
    refresher = probe_refresher(client)
    refresher.widget = dataclasses.replace(
        refresher.widget, spec=dataclasses.replace(refresher.widget.spec, reconcile=reconcile)
    )
    await clock.advance(61)

    await refresher.trigger()

    assert refresher.state.consecutive_failures == 1
    assert refresher.state.providers["probe"].retry_at > clock.time()  # backed off, not crash-looping
    health = await (await client.get("/health")).json()
    check = health["checks"]["probe:dataAge"][0]
    assert check["consecutiveFailures"] == 1
    assert refresher.state.last_error_reason in {"parse", "validation"} and check["lastError"]
    for path in ("/widgets/probe.json", "/widgets/probe.html", "/embed/probe", "/"):
        assert (await client.get(path)).status == 200, path
    body = await (await client.get("/widgets/probe.json")).json()
    assert body["data"] == {"value": 1, "label": "good"} and body["status"] == "stale"
    assert "sidebar_engine_errors_total" not in (await metrics_text(client)).replace(
        "# HELP sidebar_engine_errors_total", ""
    ).replace("# TYPE sidebar_engine_errors_total", "")


async def test_timeout_is_a_failure_not_a_hang(aiohttp_client, upstream, probe_settings):
    async def slow(request):
        await asyncio.sleep(5)

    upstream.on("/probe", slow)
    settings = probe_settings(cold_wait_seconds=0.2)
    settings.providers["probe"].timeout_seconds = 0.3
    client = await aiohttp_client(create_app(settings))

    response = await client.get("/widgets/probe.json")
    assert response.status == 503  # cold and the fetch is still running: honest, not hanging
    await probe_refresher(client).trigger()
    assert probe_refresher(client).state.last_error_reason == "timeout"


async def test_failures_back_off_quadratically_capped_at_the_refresh_interval(
    aiohttp_client, upstream, probe_settings, clock
):
    upstream.fail("/probe", 500)
    client = await aiohttp_client(
        create_app(probe_settings(refresh_seconds=30, retry_base_seconds=2, cold_wait_seconds=0), clock=clock)
    )
    refresher = probe_refresher(client)
    delays = []
    for _ in range(5):
        await refresher.trigger()
        delay = refresher.retry_at - clock.time()
        delays.append(round(delay))
        assert refresher.trigger() is None  # nothing is asked before the delay is over
        await clock.advance(delay)
    assert delays == [2, 8, 18, 30, 30]
    assert upstream.hits["/probe"] == 5


async def test_no_attempt_while_backing_off(aiohttp_client, upstream, probe_settings, clock):
    upstream.fail("/probe", 500)
    client = await aiohttp_client(
        create_app(probe_settings(retry_base_seconds=60, cold_wait_seconds=0), clock=clock)
    )
    await probe_refresher(client).trigger()
    assert upstream.hits["/probe"] == 1

    for _ in range(20):
        await client.get("/widgets/probe.json")
    await clock.advance(59)
    await client.get("/widgets/probe.json")
    assert upstream.hits["/probe"] == 1

    await clock.advance(2)
    await client.get("/widgets/probe.json")
    await settle()
    assert upstream.hits["/probe"] == 2


async def test_retry_after_is_honoured_beyond_the_interval_but_capped(
    aiohttp_client, upstream, probe_settings, clock
):
    upstream.fail("/probe", 429, headers={"Retry-After": "120"})
    client = await aiohttp_client(
        create_app(probe_settings(refresh_seconds=30, retry_base_seconds=1, cold_wait_seconds=0), clock=clock)
    )
    refresher = probe_refresher(client)
    await refresher.trigger()
    assert refresher.retry_at - clock.time() == pytest.approx(120)

    upstream.fail("/probe", 429, headers={"Retry-After": str(365 * 86400)})  # a year
    await clock.advance(120)
    await refresher.trigger()
    assert refresher.retry_at - clock.time() == pytest.approx(3600)  # [engine] max_retry_after_seconds


async def test_cache_control_never_promises_longer_than_one_interval(
    aiohttp_client, upstream, probe_settings, clock
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings(refresh_seconds=30), clock=clock))
    await client.get("/widgets/probe.json")
    upstream.fail("/probe", 503, headers={"Retry-After": "3000"})
    await clock.advance(31)
    await probe_refresher(client).trigger()  # backs off for 3000 s

    header = (await client.get("/widgets/probe.json")).headers["Cache-Control"]

    assert "max-age=30," in header


class MirrorProvider(ProbeProvider):
    id = "probe_mirror"
    attribution = "mirror"


def _chain_app(upstream, probe_settings, clock, **settings):
    registry = default_registry()
    registry.add_provider(MirrorProvider)
    config = probe_settings(
        providers=["probe", "probe_mirror"],
        extra_providers={"probe_mirror": {"url": upstream.url("/mirror")}},
        **settings,
    )
    return create_app(config, registry=registry, clock=clock)


async def test_provider_chain_falls_back_in_order(aiohttp_client, upstream, probe_settings, clock):
    upstream.fail("/probe", 503)
    upstream.json("/mirror", {"value": 9, "label": "from mirror"})
    client = await aiohttp_client(_chain_app(upstream, probe_settings, clock))

    body = await (await client.get("/widgets/probe.json")).json()

    assert body["source"] == "probe_mirror"
    assert body["attribution"] == "mirror"
    assert body["data"]["label"] == "from mirror"
    assert upstream.hits["/probe"] == 1 and upstream.hits["/mirror"] == 1


async def test_a_provider_backing_off_is_skipped_and_the_chain_goes_on(
    aiohttp_client, upstream, probe_settings, clock
):
    upstream.fail("/probe", 429, headers={"Retry-After": "600"})
    upstream.json("/mirror", {"value": 9, "label": "from mirror"})
    client = await aiohttp_client(_chain_app(upstream, probe_settings, clock, refresh_seconds=60))
    await client.get("/widgets/probe.json")
    assert (upstream.hits["/probe"], upstream.hits["/mirror"]) == (1, 1)

    for _ in range(3):  # three intervals, all within the first provider's Retry-After
        await clock.advance(61)
        await probe_refresher(client).trigger()

    assert (upstream.hits["/probe"], upstream.hits["/mirror"]) == (1, 4)
    state = probe_refresher(client).state
    assert state.consecutive_failures == 0  # the widget is fine: its chain delivered every time
    assert state.providers["probe"].consecutive_failures == 1
    assert state.providers["probe_mirror"].consecutive_failures == 0
    check = (await (await client.get("/health")).json())["checks"]["probe:dataAge"][0]
    assert check["status"] == "warn" and check["consecutiveFailures"] == 0
    assert check["failingProviders"]["probe"]["consecutiveFailures"] == 1
    assert "HTTP 429" in check["failingProviders"]["probe"]["lastError"]
    assert "probe_mirror" not in check["failingProviders"]

    await clock.advance(61 * 7)  # past the Retry-After: the first provider is asked again
    upstream.json("/probe", {"value": 1, "label": "first again"})
    await probe_refresher(client).trigger()
    body = await (await client.get("/widgets/probe.json")).json()
    assert body["source"] == "probe" and upstream.hits["/probe"] == 2
    assert probe_refresher(client).state.providers["probe"].last_error is None


async def test_logs_once_when_failing_and_once_when_recovering_and_the_error_clears(
    aiohttp_client, upstream, probe_settings, clock, caplog
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings(refresh_seconds=60), clock=clock))
    refresher = probe_refresher(client)
    await client.get("/widgets/probe.json")
    upstream.fail("/probe", 500)
    caplog.set_level(logging.INFO, logger="service.engine.refresher")
    for _ in range(3):
        await clock.advance(61)
        await refresher.trigger()
    health = await (await client.get("/health")).json()
    assert health["checks"]["probe:dataAge"][0]["lastError"]
    upstream.json("/probe", {"value": 2, "label": "y"})
    await clock.advance(61)
    await refresher.trigger()

    messages = [r.getMessage() for r in caplog.records if r.name == "service.engine.refresher"]
    assert len([m for m in messages if "widget probe failing" in m]) == 1
    assert len([m for m in messages if "widget probe recovered" in m]) == 1
    assert "after 3 failed" in next(m for m in messages if "widget probe recovered" in m)
    check = (await (await client.get("/health")).json())["checks"]["probe:dataAge"][0]
    assert check["consecutiveFailures"] == 0
    assert "lastError" not in check


async def test_not_modified_renews_the_snapshot_and_counts_as_a_success(
    aiohttp_client, upstream, probe_settings, clock
):
    seen_conditions = []
    broken = False

    async def conditional(request):
        seen_conditions.append(request.headers.get("If-None-Match"))
        if broken:
            return web.Response(status=500)
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"'})
        return web.json_response({"value": 1, "label": "etagged"}, headers={"ETag": '"v1"'})

    upstream.on("/probe", conditional)
    client = await aiohttp_client(create_app(probe_settings(refresh_seconds=60), clock=clock))
    first = await (await client.get("/widgets/probe.json")).json()
    broken = True
    await clock.advance(61)
    await probe_refresher(client).trigger()
    assert probe_refresher(client).state.consecutive_failures == 1
    broken = False
    await clock.advance(61)

    await probe_refresher(client).trigger()

    second = await (await client.get("/widgets/probe.json")).json()
    assert seen_conditions == [None, '"v1"', '"v1"']
    assert second["status"] == "fresh"
    assert second["data"] == first["data"]
    assert second["fetched_at"] > first["fetched_at"]
    state = probe_refresher(client).state
    assert state.consecutive_failures == 0 and state.providers["probe"].consecutive_failures == 0
    assert 'sidebar_upstream_not_modified_total{provider="probe"} 1.0' in await metrics_text(client)


async def test_background_schedule_refreshes_without_any_reader(
    aiohttp_client, upstream, probe_settings, clock
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(
        create_app(probe_settings(refresh_seconds=60, background=True, jitter_fraction=0.2), clock=clock)
    )
    refresher = probe_refresher(client)

    def settled(hits: int):
        # The fetch landed and the schedule is waiting on the clock again.
        return lambda: (
            upstream.hits["/probe"] == hits
            and refresher.store.local("probe") is not None
            and (refresher._flight.running("probe") is None and clock.sleepers > 0)
        )

    await _until(settled(1))
    for expected in (2, 3, 4):
        await clock.advance(60)
        await _until(settled(expected))

    # One fetch at start-up, then one per interval (starting up to 20 % early), never more.
    await clock.advance(1)
    await settle()
    assert upstream.hits["/probe"] == 4


async def test_the_schedule_loop_survives_engine_errors_logging_once(
    aiohttp_client, upstream, probe_settings, clock, caplog, monkeypatch
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(
        create_app(probe_settings(refresh_seconds=60, background=True, jitter_fraction=0), clock=clock)
    )
    refresher = probe_refresher(client)
    await _until(lambda: refresher.store.local("probe") is not None and clock.sleepers > 0)
    store = client.app[ENGINE].store
    real_peek = store.peek

    def broken_peek(widget):
        raise RuntimeError("a bug in the engine")

    caplog.set_level(logging.INFO, logger="service.engine.refresher")
    monkeypatch.setattr(store, "peek", broken_peek)
    for _ in range(5):
        await clock.advance(1)  # the loop steps at least once a second

    schedule = next(t for t in asyncio.all_tasks() if t.get_name() == "schedule probe")
    assert not schedule.done()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    text = await metrics_text(client)
    count = float(text.split('sidebar_engine_errors_total{widget="probe"} ')[1].split()[0])
    assert count >= 3

    monkeypatch.setattr(store, "peek", real_peek)
    await clock.advance(61)
    await _until(lambda: any("engine errors stopped" in r.getMessage() for r in caplog.records))
    assert upstream.hits["/probe"] == 2
    assert len([r for r in caplog.records if "engine errors stopped" in r.getMessage()]) == 1


async def _until(condition) -> None:
    """Wait for real I/O (a fetch to a local server) that a clock advance set off."""
    await eventually(condition, every=0.005)


async def test_a_cancelled_request_never_cancels_the_refresh_others_wait_for(
    aiohttp_client, upstream, probe_settings
):
    upstream.json("/probe", {"value": 5, "label": "kept going"})
    upstream.gate.clear()
    settings = probe_settings(cold_wait_seconds=60)
    settings.providers["probe"].timeout_seconds = 60  # the gate holds the fetch, not a timeout
    client = await aiohttp_client(create_app(settings))
    refresher = probe_refresher(client)
    waiting = 0
    real_current = refresher.current

    async def current():
        nonlocal waiting
        waiting += 1
        return await real_current()

    refresher.current = current
    first = asyncio.ensure_future(client.get("/widgets/probe.json"))
    await _until(lambda: upstream.hits["/probe"] == 1)
    second = asyncio.ensure_future(client.get("/widgets/probe.json"))
    await _until(lambda: waiting == 2)  # the second request waits on the same refresh
    first.cancel()  # the client that started the refresh goes away

    upstream.gate.set()
    response = await asyncio.wait_for(second, 60)

    assert response.status == 200
    assert (await response.json())["data"]["label"] == "kept going"
    assert upstream.hits["/probe"] == 1


async def test_fake_clock_moves_only_when_told(clock: FakeClock):
    start = clock.time()
    sleeper = asyncio.ensure_future(clock.sleep(10))
    await settle()
    await clock.advance(9.9)
    assert not sleeper.done()
    await clock.advance(0.1)
    assert sleeper.done() and clock.time() == start + 10


async def test_a_widget_with_a_calendar_schedule_is_fresh_until_local_midnight_and_refreshes_after_it(
    aiohttp_client, upstream, probe_settings
):
    tehran = ZoneInfo("Asia/Tehran")
    clock = FakeClock(datetime(2026, 11, 26, 23, 0, tzinfo=tehran).timestamp())
    upstream.json("/probe", {"value": 1, "label": "today"})
    registry = default_registry()
    registry.widgets["probe"] = dataclasses.replace(
        registry.widgets["probe"],
        next_refresh=lambda fetched_at, options: next_local_midnight(fetched_at, tehran),
    )
    app = create_app(probe_settings(refresh_seconds=60, background=True), registry=registry, clock=clock)
    client = await aiohttp_client(app)
    await clock.advance(1)
    store = client.app[ENGINE].store
    await _until(lambda: store.local("probe") is not None and clock.sleepers > 0)
    assert upstream.hits["/probe"] == 1

    # An hour, far past the 60 s interval: still fresh, no refresh, clients told to wait for midnight.
    await clock.advance(3600 - 1 - 2)
    response = await client.get("/widgets/probe.json")
    assert (await response.json())["status"] == "fresh"
    assert "max-age=2," in response.headers["Cache-Control"]
    assert upstream.hits["/probe"] == 1

    upstream.json("/probe", {"value": 2, "label": "tomorrow"})
    await clock.advance(3)  # 00:00:01
    await _until(lambda: store.local("probe").data["label"] == "tomorrow")

    assert upstream.hits["/probe"] == 2
    body = await (await client.get("/widgets/probe.json")).json()
    assert body["status"] == "fresh" and body["data"]["label"] == "tomorrow"
