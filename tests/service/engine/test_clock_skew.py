"""A replica whose host clock is ten minutes off agrees with the others: Redis TIME is the clock.

Two real ``serve`` processes on one Redis, one of them under libfaketime.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import aiohttp

from tests.support.faketime import faketime_env
from tests.support.service_process import start_serving_probe


async def _get(port: int, path: str = "/widgets/probe.json") -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}{path}") as response:
            assert response.status == 200, await response.text()
            return await response.json()


def _age(body: dict) -> float:
    """The data's age on this (correct) host clock, from the envelope's fetched_at."""
    return time.time() - datetime.fromisoformat(body["fetched_at"]).timestamp()


async def _until_label(port: int, label: str) -> dict:
    """Poll until the replica serves ``label`` (a bound against hanging, not a timing assertion)."""
    for _ in range(100):
        body = await _get(port)
        if body["data"]["label"] == label:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"replica on {port} never served {label!r}")


async def test_a_skewed_replica_changes_neither_freshness_nor_who_wins(upstream, redis_server):
    upstream.json("/probe", {"value": 1, "label": "first"})
    common = {"SIDEBAR_REDIS_URL": redis_server.url, "SIDEBAR_WIDGETS__PROBE__REFRESH_SECONDS": "2"}
    # Started side by side: each one's start-up is mostly its own imports.
    (ahead, ahead_port), (right, right_port) = await asyncio.gather(
        start_serving_probe(upstream, **common, **faketime_env("+10m")),
        start_serving_probe(upstream, **common),
    )
    try:
        # The replica ten minutes ahead fetches first: its timestamps come from Redis, not its host.
        first = await _get(ahead_port)
        assert first["status"] == "fresh" and _age(first) <= 2
        seen_right = await _get(right_port)
        assert seen_right["fetched_at"] == first["fetched_at"]
        assert seen_right["status"] == "fresh" and _age(seen_right) <= 2
        assert upstream.hits["/probe"] == 1

        # After one interval the correct replica finds the data stale (on its host clock the
        # skewed write would look ten minutes young) and its newer write wins over the earlier one.
        upstream.json("/probe", {"value": 2, "label": "second"})
        await asyncio.sleep(2.5)
        stale = await _get(right_port)
        assert stale["status"] == "stale" and stale["data"]["label"] == "first"
        second = await _until_label(right_port, "second")
        assert second["status"] == "fresh"
        seen_ahead = await _until_label(ahead_port, "second")
        assert seen_ahead["fetched_at"] == second["fetched_at"]
        assert seen_ahead["status"] == "fresh" and _age(seen_ahead) <= 2
        check = (await _get(ahead_port, "/health"))["checks"]["probe:dataAge"][0]
        assert check["observedValue"] < 3  # its own idea of the data's age is the shared one
        assert upstream.hits["/probe"] == 2
    finally:
        for process in (ahead, right):
            process.terminate()
            await process.wait()
