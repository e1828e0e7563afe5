"""The engine as a whole: it starts what it needs, and stopping it leaves nothing running."""

from __future__ import annotations

import asyncio
import gc
import logging

from service.web.app import create_app
from service.web.keys import ENGINE

ENGINE_TASKS = ("schedule ", "single-flight ", "snapshot listener", "clock sync", "reload ")


def engine_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith(ENGINE_TASKS) and not t.done()]


async def test_every_background_task_is_owned_and_gone_after_shutdown(
    aiohttp_client, upstream, probe_settings, redis_server, caplog
):
    caplog.set_level(logging.ERROR, logger="asyncio")
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(
        create_app(probe_settings(redis_url=redis_server.url, background=True, refresh_seconds=60))
    )
    assert (await client.get("/widgets/probe.json")).status == 200
    upstream.gate.clear()  # a refresh is in flight when the shutdown comes
    client.app[ENGINE].refreshers["probe"].trigger(force=True)
    while upstream.hits["/probe"] < 2:
        await asyncio.sleep(0.01)
    names = {t.get_name() for t in engine_tasks()}
    assert {"schedule probe", "snapshot listener", "clock sync", "single-flight probe"} <= names

    await client.close()
    upstream.gate.set()
    gc.collect()
    await asyncio.sleep(0)

    assert engine_tasks() == []
    assert len(client.app[ENGINE].tasks) == 0
    assert not [r for r in caplog.records if "destroyed but it is pending" in r.getMessage()]


async def test_nothing_new_starts_once_shutdown_began(aiohttp_client, upstream, probe_settings):
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings()))
    engine = client.app[ENGINE]
    await client.close()

    assert engine.tasks.closed
    assert engine_tasks() == []
