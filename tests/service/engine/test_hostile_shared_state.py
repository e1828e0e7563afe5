"""What other releases, a corrupt Redis or a hostile upstream leave behind is survived.

Shared state and snapshots in Redis are read as untrusted input: anything this release could not
have written is a miss, never a 500, a frozen widget or a silenced provider. Validators an
upstream sends are stored only when they are plain ASCII and carry no secret.
"""

from __future__ import annotations

import asyncio
import json
import time
from email.utils import formatdate

import redis.asyncio as redis_client
from aiohttp import web

from service.engine.snapshot import Snapshot
from service.settings import EngineSettings, Settings
from service.web.app import create_app
from service.web.keys import ENGINE
from tests.conftest import OTHER_WIDGETS
from tests.support.prices import item, serve_tgju
from tests.support.waiting import eventually, record_calls

PREFIX = "sidebar:"


async def _redis(server):
    return redis_client.from_url(server.url)


def _snapshot_doc(widget="probe", source="probe", fetched_at=None, data=None, **extra):
    snap = Snapshot.create(
        widget,
        source,
        fetched_at if fetched_at is not None else time.time(),
        data if data is not None else {"value": 1, "label": "ok"},
    )
    doc = json.loads(snap.to_bytes())
    doc.update(extra)
    return doc


async def _put_snapshot(server, doc, widget="probe"):
    r = await _redis(server)
    await r.set(f"{PREFIX}snapshot:{widget}", json.dumps(doc).encode())
    await r.set(f"{PREFIX}snapshot:{widget}:version", repr(float(doc["fetched_at"])))
    await r.aclose()


def _prices_settings(upstream, redis_url, refresh_seconds=0.3):
    widgets = {name: {"enabled": False} for name in OTHER_WIDGETS}
    widgets["prices"] = {"enabled": True, "refresh_seconds": refresh_seconds}
    return Settings(
        redis_url=redis_url,
        engine=EngineSettings(background=False, retry_base_seconds=0.05, cold_wait_seconds=5),
        widgets=widgets,
        # The fake upstream answers at once: the timeout only bounds a test that goes wrong.
        providers={"tgju": {"url": upstream.url(""), "timeout_seconds": 30}},
    )


# ---------------------------------------------------------------------------------------------
# Shared refresh state (state:<widget>) written by "another release" / corrupted
# ---------------------------------------------------------------------------------------------


async def test_foreign_shared_state_shape_does_not_stop_refreshes_forever(
    aiohttp_client, upstream, probe_settings, redis_server
):
    """A state key of the wrong shape (another release) must be a miss, not a permanent outage."""
    upstream.json("/probe", {"value": 1, "label": "good"})
    r = await _redis(redis_server)
    await r.set(f"{PREFIX}state:probe", b'{"providers": {"probe": 5}}')
    await r.aclose()
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url)))
    for _ in range(3):
        response = await client.get("/widgets/probe.json")
        await asyncio.sleep(0.2)
    assert upstream.hits["/probe"] >= 1, "the upstream was never asked: every refresh crashes"
    assert response.status == 200, await response.text()


async def test_shared_state_with_wrong_types_never_500s_a_widget(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.json("/probe", {"value": 1, "label": "good"})
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url, refresh_seconds=0.3)))
    assert (await client.get("/widgets/probe.json")).status == 200
    r = await _redis(redis_server)
    await r.set(f"{PREFIX}state:probe", b'{"providers": {"probe": {"retry_at": "soon"}}}')
    await r.aclose()
    await asyncio.sleep(0.4)  # stale: the next request triggers a refresh that adopts the state
    statuses = []
    for _ in range(8):  # over more than one wall second: past the hot path's prepared answer
        statuses.append((await client.get("/widgets/probe.json")).status)
        await asyncio.sleep(0.2)
    assert set(statuses) == {200}, statuses


async def test_shared_state_with_huge_retry_at_does_not_break_health_or_silence_forever(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.json("/probe", {"value": 1, "label": "good"})
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url, refresh_seconds=0.3)))
    assert (await client.get("/widgets/probe.json")).status == 200
    r = await _redis(redis_server)
    await r.set(
        f"{PREFIX}state:probe",
        b'{"providers": {"probe": {"consecutive_failures": 1, "retry_at": 1e300}}}',
    )
    await r.aclose()
    await asyncio.sleep(0.4)  # stale: the next request triggers a refresh that adopts the state
    await client.get("/widgets/probe.json")
    await eventually(
        lambda: not client.app[ENGINE].flight.running("probe"), message="the refresh never ended"
    )
    health = await client.get("/health")
    assert health.status != 500, await health.text()


# ---------------------------------------------------------------------------------------------
# Snapshots in Redis: valid JSON, right schema, hostile values
# ---------------------------------------------------------------------------------------------


async def test_snapshot_with_absurd_fetched_at_is_a_miss_not_a_500(
    aiohttp_client, upstream, probe_settings, redis_server
):
    upstream.json("/probe", {"value": 1, "label": "good"})
    await _put_snapshot(redis_server, _snapshot_doc(fetched_at=1e300))
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url)))
    json_answer = await client.get("/widgets/probe.json")
    html_answer = await client.get("/widgets/probe.html")
    health = await client.get("/health")
    assert (json_answer.status, html_answer.status, health.status) == (200, 200, 200), (
        await json_answer.text(),
        await health.text(),
    )


async def test_future_dated_snapshot_does_not_freeze_the_widget(
    aiohttp_client, upstream, probe_settings, redis_server
):
    """A snapshot dated a year ahead (a corrupt value, a wildly skewed old release) is served
    'fresh' forever and no fetch can ever replace it: the CAS refuses every newer fetch."""
    upstream.json("/probe", {"value": 2, "label": "new"})
    await _put_snapshot(
        redis_server, _snapshot_doc(fetched_at=time.time() + 365 * 86400, data={"value": 1, "label": "old"})
    )
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url, refresh_seconds=0.2)))
    await client.get("/widgets/probe.json")
    engine = client.app[ENGINE]
    await asyncio.sleep(0.3)
    await engine.refreshers["probe"].trigger(force=True)
    body = await (await client.get("/widgets/probe.json")).json()
    assert body["data"]["label"] == "new", body


async def test_snapshot_data_violating_widget_model_is_not_served(
    aiohttp_client, upstream, probe_settings, redis_server
):
    """`data` is never validated on decode: out-of-model data is served as is."""
    upstream.json("/probe", {"value": 1, "label": "good"})
    await _put_snapshot(redis_server, _snapshot_doc(data={"value": -(10**40), "label": ["x"] * 3}))
    client = await aiohttp_client(create_app(probe_settings(redis_url=redis_server.url)))
    body = await (await client.get("/widgets/probe.json")).json()
    assert body["data"] != {"value": -(10**40), "label": ["x"] * 3}, body


async def test_prices_snapshot_of_wrong_shape_never_500s(aiohttp_client, upstream, redis_server):
    serve_tgju(upstream)
    await _put_snapshot(
        redis_server,
        _snapshot_doc(widget="prices", source="tgju", data={"items": "garbage"}),
        widget="prices",
    )
    client = await aiohttp_client(create_app(_prices_settings(upstream, redis_server.url, 300)))
    statuses = {
        path: (await client.get(path)).status
        for path in (
            "/widgets/prices.json",
            "/widgets/prices.json?unit=toman",
            "/widgets/prices.html",
            "/embed/prices",
            "/",
        )
    }
    assert set(statuses.values()) == {200}, statuses


async def test_corrupt_held_prices_snapshot_is_replaced_by_the_next_good_fetch(
    aiohttp_client, upstream, redis_server
):
    """A held snapshot whose item has price 0 makes reconcile divide by zero on every fetch:
    every tgju answer is a 'parse' failure, the corrupt snapshot stays forever."""
    serve_tgju(upstream)
    bad = {"items": [{**item("sekee", 0), "title": "x"}]}
    await _put_snapshot(
        redis_server,
        _snapshot_doc(widget="prices", source="tgju", fetched_at=time.time() - 3600, data=bad),
        widget="prices",
    )
    client = await aiohttp_client(create_app(_prices_settings(upstream, redis_server.url, 300)))
    await client.get("/widgets/prices.json")
    refresher = client.app[ENGINE].refreshers["prices"]
    await refresher.trigger(force=True)
    await refresher.trigger(force=True)
    body = await (await client.get("/widgets/prices.json")).json()
    assert upstream.hits["/coin"] >= 1
    assert refresher.state.consecutive_failures == 0, refresher.state.last_error
    assert body["data"]["items"][0]["price"] != 0, body["data"]["items"][:1]


async def test_out_of_range_held_price_is_not_carried_into_new_snapshots(
    aiohttp_client, upstream, redis_server
):
    """reconcile's output is never re-validated: an absurd held price survives every fetch."""
    serve_tgju(upstream)
    absurd = 10**30
    bad = {"items": [{**item("sekee", absurd), "title": "x"}]}
    await _put_snapshot(
        redis_server,
        _snapshot_doc(widget="prices", source="tgju", fetched_at=time.time() - 3600, data=bad),
        widget="prices",
    )
    client = await aiohttp_client(create_app(_prices_settings(upstream, redis_server.url, 300)))
    await client.get("/widgets/prices.json")
    refresher = client.app[ENGINE].refreshers["prices"]
    await refresher.trigger(force=True)
    snapshot = client.app[ENGINE].store.local("prices")
    assert snapshot.source == "tgju" and snapshot.fetched_at > time.time() - 60
    prices = {item["key"]: item["price"] for item in snapshot.data["items"]}
    assert prices["sekee"] < 10**15, f"new snapshot still holds sekee={prices['sekee']}"


# ---------------------------------------------------------------------------------------------
# Retry-After against a skewed host clock
# ---------------------------------------------------------------------------------------------


class _TenMinutesFast:
    """The host's clock, 10 minutes ahead (the service reads time only from the clock it is given)."""

    def time(self) -> float:
        return time.time() + 600

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


async def test_retry_after_http_date_is_read_on_the_shared_clock(
    aiohttp_client, upstream, probe_settings, redis_server
):
    """This host runs 10 minutes fast; Redis TIME is right. An upstream asks for 5 minutes."""
    upstream.fail("/probe", 503, headers={"Retry-After": formatdate(time.time() + 300, usegmt=True)})
    client = await aiohttp_client(
        create_app(probe_settings(redis_url=redis_server.url), clock=_TenMinutesFast())
    )
    await client.get("/widgets/probe.json")
    refresher = client.app[ENGINE].refreshers["probe"]
    provider = refresher.state.providers["probe"]
    assert provider.consecutive_failures == 1
    assert provider.retry_at - refresher.now() > 200, provider.retry_at - refresher.now()


async def test_unusual_digit_retry_after_is_a_status_failure(aiohttp_client, upstream, probe_settings):
    """'²'.isdigit() is True but float('²') raises: a 503 becomes a 'parse' error."""
    upstream.fail("/probe", 503, headers={"Retry-After": "\u00b2"})
    client = await aiohttp_client(create_app(probe_settings()))
    await client.get("/widgets/probe.json")
    provider = client.app[ENGINE].refreshers["probe"].state.providers["probe"]
    assert provider.last_error_reason == "status", provider.last_error


# ---------------------------------------------------------------------------------------------
# Secrets in stored validators
# ---------------------------------------------------------------------------------------------


async def test_api_key_echoed_in_etag_is_not_stored_in_redis(
    aiohttp_client, upstream, probe_settings, redis_server
):
    secret = "SEKRIT-0123456789"

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {"value": 1, "label": "x"}, headers={"ETag": f'"{request.query.get("apikey", "")}"'}
        )

    upstream.on("/probe", echo)
    settings = probe_settings(
        redis_url=redis_server.url,
        extra_providers={
            "probe": {
                "url": upstream.url("/probe") + f"?apikey={secret}",
                "timeout_seconds": 30,
                "api_key": secret,
            }
        },
    )
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/widgets/probe.json")).status == 200
    r = await _redis(redis_server)
    stored = b"".join([v or b"" for v in [await r.get(k) for k in await r.keys("*")]])
    await r.aclose()
    assert secret.encode() not in stored


# ---------------------------------------------------------------------------------------------
# Hostile clients: Host headers and query strings (expected to hold)
# ---------------------------------------------------------------------------------------------

ODD_HOSTS = [
    "",
    " ",
    ":",
    ":::",
    "[",
    "[]",
    "[:::::]",
    "[::1]:",
    "[::1]:99999",
    "host:0",
    "host:-1",
    "a" * 63 + "." + "b" * 63,
    "a" * 64,
    "xn--",
    "xn--zz",
    "xn--a.com",
    "-a.com",
    "a..b",
    "example.com.",
    "h\u00e9.com",
    "127.0.0.1:65535",
    "[fe80::1%25eth0]",
    "0:0",
    "h" * 300,
]


async def test_follower_in_other_app_learns_within_about_100ms(
    aiohttp_client, upstream, probe_settings, redis_server
):
    """A follower in another process learns the leader is done at its next poll of the lock (every
    50 ms): "about 100 ms" is a poll or two, whatever the machine's speed. It must not wait out its
    own ceiling (the chain's timeouts, a minute here) nor fetch itself."""
    upstream.json("/probe", {"value": 1, "label": "x"})
    settings = probe_settings(redis_url=redis_server.url, cold_wait_seconds=120)
    settings.providers["probe"].timeout_seconds = 30
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))
    releases = record_calls(a.app[ENGINE].store.cache, "release_lock")
    polls = record_calls(b.app[ENGINE].store.cache, "lock_held")
    upstream.gate.clear()
    leader = asyncio.ensure_future(a.get("/widgets/probe.json"))
    await eventually(lambda: upstream.hits["/probe"] == 1)
    follower = asyncio.ensure_future(b.get("/widgets/probe.json"))
    await eventually(lambda: len(polls) >= 2, message="the follower never waited on the leader's lock")
    upstream.gate.set()
    response = await asyncio.wait_for(follower, 60)
    assert response.status == 200
    assert (await leader).status == 200
    assert upstream.hits["/probe"] == 1
    assert [c.result for c in releases] == [True]
    polls_after_release = [c for c in polls if c.started >= releases[0].finished]
    assert polls[-1].result is False and len(polls_after_release) <= 1, polls


async def test_cancelled_leader_does_not_hang_follower_in_other_app(
    aiohttp_client, upstream, probe_settings, redis_server
):
    """The leader's replica shuts down mid-fetch: it lets go of its lock, and the follower learns
    at its next poll, not when its own wait (a minute here) or the lock's lifetime runs out."""
    upstream.json("/probe", {"value": 1, "label": "x"})
    settings = probe_settings(redis_url=redis_server.url, cold_wait_seconds=120)
    settings.providers["probe"].timeout_seconds = 30
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))
    releases = record_calls(a.app[ENGINE].store.cache, "release_lock")
    polls = record_calls(b.app[ENGINE].store.cache, "lock_held")
    upstream.gate.clear()
    leader = asyncio.ensure_future(a.get("/widgets/probe.json"))
    await eventually(lambda: upstream.hits["/probe"] == 1)
    follower = asyncio.ensure_future(b.get("/widgets/probe.json"))
    await eventually(lambda: polls, message="the follower never waited on the leader's lock")
    leader.cancel()
    await a.close()  # the leading replica shuts down mid-fetch
    response = await asyncio.wait_for(follower, 60)
    assert response.status in (200, 503)
    assert [c.result for c in releases] == [True]  # let go on shutdown; it did not lapse
    polls_after_release = [c for c in polls if c.started >= releases[0].finished]
    assert polls[-1].result is False and len(polls_after_release) <= 1, polls
    upstream.gate.set()


# ---------------------------------------------------------------------------------------------
# A hostile upstream's validators (raw bytes in ETag)
# ---------------------------------------------------------------------------------------------


async def _raw_server(answer: bytes):
    async def handle(reader, writer):
        try:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            writer.write(answer)
            await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_non_utf8_etag_from_upstream_does_not_stop_data_landing(
    aiohttp_client, upstream, probe_settings, redis_server
):
    body = b'{"value": 1, "label": "x"}'
    server = await _raw_server(
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: "\xff\xfe"\r\n'
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )
    port = server.sockets[0].getsockname()[1]
    settings = probe_settings(
        redis_url=redis_server.url,
        extra_providers={"probe": {"url": f"http://127.0.0.1:{port}/probe", "timeout_seconds": 30}},
    )
    client = await aiohttp_client(create_app(settings))
    try:
        first = await client.get("/widgets/probe.json")
        health = await (await client.get("/health")).json()
        assert first.status == 200, (await first.text(), health)
        r = await _redis(redis_server)
        await eventually(lambda: r.get(f"{PREFIX}snapshot:probe"), message="the snapshot never reached Redis")
        await r.aclose()
    finally:
        server.close()
        await server.wait_closed()
