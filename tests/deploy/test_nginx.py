"""The shipped nginx configuration, for real, in front of two service processes on one Redis."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from datetime import datetime

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.nginx import Nginx
from tests.support.redis_server import RedisServer
from tests.support.service_process import start_serving_probe
from tests.support.upstream import FakeUpstream


class Deployment:
    def __init__(self, replicas: list[tuple[asyncio.subprocess.Process, int]], nginx: Nginx) -> None:
        self.replicas = replicas
        self.nginx = nginx


@pytest.fixture
async def deployment(upstream: FakeUpstream, redis_server: RedisServer) -> AsyncIterator[Deployment]:
    upstream.json("/probe", {"value": 9, "label": "نه"})
    # Started side by side: each one's start-up is mostly its own imports.
    replicas = list(
        await asyncio.gather(
            *(start_serving_probe(upstream, SIDEBAR_REDIS_URL=redis_server.url) for _ in range(2))
        )
    )
    nginx = Nginx([port for _, port in replicas])
    try:
        nginx.start()
        yield Deployment(replicas, nginx)
    finally:
        nginx.stop()
        for process, _ in replicas:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.communicate(), 30)


async def requests_seen(port: int, route: str) -> int:
    """How many requests for ``route`` one replica answered, from its own /metrics."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "sidebar_http_requests"
            for sample in family.samples
            if sample.labels.get("route") == route
        )
    )


async def test_requests_are_spread_over_both_replicas(deployment: Deployment):
    async with aiohttp.ClientSession() as session:
        for _ in range(10):
            async with session.get(f"{deployment.nginx.url}/livez") as response:
                assert response.status == 200
                assert "X-Cache-Status" not in response.headers  # probes bypass the cache
    seen = [await requests_seen(port, "/livez") for _, port in deployment.replicas]
    # Each replica also answered its own start-up wait for /livez.
    assert all(count > 1 for count in seen), seen
    assert sum(seen) == 10 + len(seen)


async def test_a_second_request_is_answered_from_nginx_cache(deployment: Deployment, upstream: FakeUpstream):
    async with aiohttp.ClientSession() as session:
        answers = []
        for _ in range(3):
            async with session.get(f"{deployment.nginx.url}/widgets/probe.json") as response:
                answers.append((response.status, response.headers["X-Cache-Status"], await response.json()))
    assert [(status, cache) for status, cache, _ in answers] == [(200, "MISS"), (200, "HIT"), (200, "HIT")]
    assert {body["data"]["value"] for _, _, body in answers} == {9}
    assert upstream.hits["/probe"] == 1
    widget_requests = [await requests_seen(port, "/widgets/{name}.json") for _, port in deployment.replicas]
    assert sum(widget_requests) == 1


async def test_no_request_fails_while_a_replica_is_killed(deployment: Deployment):
    statuses: list[int] = []
    async with aiohttp.ClientSession() as session:

        async def ask(count: int) -> None:
            for _ in range(count):
                # Uncached paths, so every one of them goes to a replica.
                for path in ("/livez", "/readyz", "/widgets/probe.json"):
                    async with session.get(f"{deployment.nginx.url}{path}") as response:
                        statuses.append(response.status)

        await ask(5)
        victim, _ = deployment.replicas[0]
        victim.kill()
        await victim.wait()
        await ask(20)
    assert len(statuses) == 75 and set(statuses) == {200}
    # Some of them did go to the dead replica first, and were retried on the other one.
    assert "Connection refused) while connecting to upstream" in deployment.nginx.error_log()
    survivor_port = deployment.replicas[1][1]
    assert await requests_seen(survivor_port, "/readyz") >= 20


async def test_health_and_metrics_answer_internal_networks_only(deployment: Deployment):
    replicas = [port for _, port in deployment.replicas]
    outside = Nginx(replicas, internal="allow 10.0.0.0/8;")  # this test's 127.0.0.1 is not in it
    outside.start()
    try:
        async with aiohttp.ClientSession() as session:
            for base, allowed in ((deployment.nginx.url, True), (outside.url, False)):
                for path in ("/health", "/metrics"):
                    async with session.get(f"{base}{path}") as response:
                        assert (response.status != 403) is allowed, (base, path, response.status)
                async with session.get(f"{base}/livez") as response:
                    assert response.status == 200  # probes stay open to whoever runs them
    finally:
        outside.stop()


async def test_text_is_compressed_and_the_host_keeps_its_port(deployment: Deployment):
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.get(
            f"{deployment.nginx.url}/embed.js", headers={"Accept-Encoding": "gzip"}
        ) as response:
            assert response.status == 200 and response.headers["Content-Encoding"] == "gzip"
            assert "Accept-Encoding" in response.headers["Vary"]
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{deployment.nginx.url}/", headers={"Host": "widgets.example.org:8080"}
        ) as response:
            gallery = await response.text()
    # Snippets pasted from the gallery behind nginx on a non-default port point back to that port.
    assert "http://widgets.example.org:8080/embed.js" in gallery


REFRESH_SECONDS = 2
#: What a reader may see beyond the refresh interval: the replica's refresh itself, and nginx
#: serving its copy while it revalidates in the background (proxy_cache_background_update).
REVALIDATION_DELAY_SECONDS = 2


@pytest.fixture
async def refreshing(upstream: FakeUpstream, redis_server: RedisServer) -> AsyncIterator[Nginx]:
    """Two replicas refreshing the probe every 2 s on their own, behind the shipped nginx."""
    upstream.json("/probe", {"value": 9, "label": "نه"})
    env = {
        "SIDEBAR_REDIS_URL": redis_server.url,
        "SIDEBAR_ENGINE__BACKGROUND": "true",
        "SIDEBAR_WIDGETS__PROBE__REFRESH_SECONDS": str(REFRESH_SECONDS),
    }
    replicas = list(await asyncio.gather(*(start_serving_probe(upstream, **env) for _ in range(2))))
    nginx = Nginx([port for _, port in replicas])
    try:
        nginx.start()
        yield nginx
    finally:
        nginx.stop()
        for process, _ in replicas:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.communicate(), 30)


async def test_a_reader_through_the_cache_never_sees_data_older_than_the_refresh_allows(
    refreshing: Nginx, upstream: FakeUpstream
):
    # The upstream answers the same data at every refresh: only fetched_at moves on. A validator
    # that named the data alone would let nginx revalidate to a 304 and keep its first body.
    seen: list[tuple[float, str]] = []
    async with aiohttp.ClientSession() as session:
        deadline = time.time() + 5 * REFRESH_SECONDS
        while time.time() < deadline:
            async with session.get(f"{refreshing.url}/widgets/probe.json") as response:
                assert response.status == 200
                body = await response.json()
                fetched_at = datetime.fromisoformat(body["fetched_at"].replace("Z", "+00:00")).timestamp()
                seen.append((time.time() - fetched_at, response.headers["X-Cache-Status"]))
            await asyncio.sleep(0.1)

    oldest = max(age for age, _ in seen)
    # fetched_at is written to the second: up to one more second than it says.
    assert oldest <= REFRESH_SECONDS + REVALIDATION_DELAY_SECONDS + 1, seen
    statuses = {status for _, status in seen}
    assert "HIT" in statuses, statuses  # nginx did keep copies: the bound holds through its cache
    assert statuses & {"EXPIRED", "REVALIDATED", "UPDATING", "STALE"}, statuses  # and renewed them
    assert upstream.hits["/probe"] >= 4  # the data really was fetched again meanwhile
