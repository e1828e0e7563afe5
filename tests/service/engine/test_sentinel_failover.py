"""Redis Sentinel: the service keeps answering through a failover and writes to the new master."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator

import aiohttp
import pytest
import redis

from tests.support.redis_server import RedisServer, SentinelServer
from tests.support.service_process import start_serving_probe
from tests.support.upstream import FakeUpstream
from tests.support.waiting import CEILING_SECONDS, eventually


@pytest.fixture
def sentinel_setup() -> Iterator[tuple[RedisServer, RedisServer, SentinelServer]]:
    master = RedisServer()
    master.start()
    replica = RedisServer(replica_of=master)
    replica.start()
    sentinel = SentinelServer(master)
    sentinel.start()
    started = [master, replica, sentinel]
    try:
        asking = redis.Redis(port=sentinel.port)
        # The sentinel finds replicas through the master's INFO, which it reads every 10 s.
        deadline = time.monotonic() + CEILING_SECONDS
        while not asking.sentinel_slaves(sentinel.service):  # type: ignore[no-untyped-call]
            assert time.monotonic() < deadline, "the sentinel never saw the replica"
            time.sleep(0.1)
        yield master, replica, sentinel
    finally:
        for server in started:
            server.stop()


def holds_label(server: RedisServer, label: bytes) -> bool:
    """Does this server hold a stored snapshot carrying ``label``?"""
    client = redis.Redis(port=server.port)
    try:
        return any(label in (client.get(key) or b"") for key in client.keys("sidebar:*"))
    finally:
        client.close()


async def test_the_service_follows_a_failover_without_a_failed_request(
    upstream: FakeUpstream, sentinel_setup: tuple[RedisServer, RedisServer, SentinelServer]
):
    master, replica, sentinel = sentinel_setup
    upstream.json("/probe", {"value": 1, "label": "before-failover"})
    process, port = await start_serving_probe(
        upstream,
        SIDEBAR_REDIS_URL=f"redis+sentinel://127.0.0.1:{sentinel.port}/{sentinel.service}/0",
        SIDEBAR_ENGINE__BACKGROUND="true",
        SIDEBAR_ENGINE__RETRY_BASE_SECONDS="0.2",
        SIDEBAR_WIDGETS__PROBE__REFRESH_SECONDS="0.5",
    )
    statuses: list[int] = []
    labels: list[str] = []
    stop = asyncio.Event()

    async def keep_asking() -> None:
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                async with session.get(f"http://127.0.0.1:{port}/widgets/probe.json") as response:
                    statuses.append(response.status)
                    labels.append((await response.json())["data"]["label"])
                await asyncio.sleep(0.02)

    asker = asyncio.ensure_future(keep_asking())
    try:

        async def in_master() -> bool:
            return holds_label(master, b"before-failover")

        await eventually(in_master, every=0.05, message="the first refresh never stored in the master")

        master.kill()

        async def promoted() -> bool:
            address = redis.Redis(port=sentinel.port).sentinel_get_master_addr_by_name(sentinel.service)  # type: ignore[no-untyped-call]
            return bool(address and int(address[1]) == replica.port)

        await eventually(promoted, every=0.05, message="the sentinel never promoted the replica")
        upstream.json("/probe", {"value": 2, "label": "after-failover"})

        async def in_new_master() -> bool:
            return holds_label(replica, b"after-failover")

        async def served() -> bool:
            return bool(labels) and labels[-1] == "after-failover"

        await eventually(
            in_new_master, every=0.05, message="no refresh after the failover stored in the promoted replica"
        )
        await eventually(served, every=0.05, message="the refreshed data never served")
    finally:
        stop.set()
        await asker
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert statuses and set(statuses) == {200}
    assert process.returncode == 0, err.decode()
