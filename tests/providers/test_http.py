"""The shared upstream client: the guards every provider gets for free."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from providers.http import NotModified, UpstreamClient, UpstreamError, parse_retry_after
from service.settings import HttpSettings
from tests.support.clock import START, FakeClock


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    upstream_client = UpstreamClient(
        HttpSettings(user_agent="sidebar-test/1 (ops@example.org)", max_response_bytes=1_000_000),
        FakeClock().time,
    )
    await upstream_client.start()
    yield upstream_client
    await upstream_client.close()


async def test_sends_the_configured_user_agent_and_a_per_provider_override(client, upstream) -> None:
    upstream.json("/x", {"ok": True})
    await client.session(timeout_seconds=30).get_json(upstream.url("/x"))
    await client.session(timeout_seconds=30, user_agent="Mozilla/5.0 test").get_json(upstream.url("/x"))
    agents = [r.headers["User-Agent"] for r in upstream.requests]
    assert agents == ["sidebar-test/1 (ops@example.org)", "Mozilla/5.0 test"]


async def test_a_body_over_the_limit_is_refused_while_streaming(client, upstream) -> None:
    sent = {"bytes": 0}

    async def fifty_megabytes(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # chunked: no Content-Length to refuse up front
        await response.prepare(request)
        chunk = b"x" * 65536
        try:
            for _ in range(800):
                await response.write(chunk)
                sent["bytes"] += len(chunk)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    upstream.on("/big", fifty_megabytes)
    with pytest.raises(UpstreamError) as caught:
        await client.session(timeout_seconds=10).get(upstream.url("/big"))
    assert caught.value.reason == "too_large"
    await asyncio.sleep(0.2)
    assert sent["bytes"] < 20 * 1024 * 1024  # the client hung up long before 50 MB


async def test_a_declared_oversize_body_is_refused_before_reading(client, upstream) -> None:
    async def declared(request: web.Request) -> web.Response:
        return web.Response(body=b"y" * 2_000_000)

    upstream.on("/declared", declared)
    with pytest.raises(UpstreamError, match="limit") as caught:
        await client.session(timeout_seconds=30).get(upstream.url("/declared"))
    assert caught.value.reason == "too_large"


async def test_follows_a_redirect_on_the_same_host(client, upstream) -> None:
    upstream.on("/old", lambda r: _redirect("/new"))
    upstream.json("/new", {"moved": True})
    assert await client.session(timeout_seconds=30).get_json(upstream.url("/old")) == {"moved": True}


async def test_refuses_a_redirect_to_another_host(client, upstream) -> None:
    other_host = upstream.url("/new").replace("127.0.0.1", "localhost")
    upstream.on("/old", lambda r: _redirect(other_host))
    with pytest.raises(UpstreamError) as caught:
        await client.session(timeout_seconds=30).get(upstream.url("/old"))
    assert caught.value.reason == "redirect"
    assert upstream.hits["/new"] == 0


async def _redirect(location: str) -> web.Response:
    raise web.HTTPFound(location)


async def test_times_out(client, upstream) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response()

    upstream.on("/slow", slow)
    with pytest.raises(UpstreamError) as caught:
        await client.session(timeout_seconds=0.2).get(upstream.url("/slow"))
    assert caught.value.reason == "timeout"


async def test_connection_refused_is_a_connect_error(client) -> None:
    from tests.support.redis_server import free_port

    with pytest.raises(UpstreamError) as caught:
        await client.session(timeout_seconds=30).get(f"http://127.0.0.1:{free_port()}/")
    assert caught.value.reason == "connect"


async def test_error_status_carries_retry_after(client, upstream) -> None:
    upstream.fail("/limited", 429, headers={"Retry-After": "42"})
    with pytest.raises(UpstreamError) as caught:
        await client.session(timeout_seconds=30).get(upstream.url("/limited"))
    assert caught.value.reason == "status"
    assert caught.value.retry_after == 42


async def test_html_where_json_was_expected_is_named(client, upstream) -> None:
    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<!DOCTYPE html><title>login</title>", content_type="text/html")

    upstream.on("/api", html)
    with pytest.raises(UpstreamError, match="got HTML") as caught:
        await client.session(timeout_seconds=30).get_json(upstream.url("/api"))
    assert caught.value.reason == "content_type"


async def test_conditional_requests_use_the_validators_held(client, upstream) -> None:
    async def etagged(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == '"abc"':
            return web.Response(status=304)
        return web.json_response(
            {"v": 1}, headers={"ETag": '"abc"', "Last-Modified": "Wed, 25 Nov 2026 10:00:00 GMT"}
        )

    upstream.on("/c", etagged)
    first = client.session(timeout_seconds=30)
    await first.get_json(upstream.url("/c"))
    validators = first.new_validators
    assert validators == {
        upstream.url("/c"): {"etag": '"abc"', "last_modified": "Wed, 25 Nov 2026 10:00:00 GMT"}
    }

    with pytest.raises(NotModified):
        await client.session(timeout_seconds=30, validators=validators).get(upstream.url("/c"))
    assert upstream.requests[-1].headers["If-Modified-Since"] == "Wed, 25 Nov 2026 10:00:00 GMT"


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("120", START) == 120
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", START) == 0  # in the past: no wait
    assert parse_retry_after("soon", START) is None
    assert parse_retry_after(None, START) is None
