"""The app's start-up and shutdown around the engine: nothing opened is left behind, and nothing
that hangs while closing keeps the process from ending.

Processes are checked gone with psutil, upstream connections closed from the socket table.
"""

from __future__ import annotations

import asyncio
import logging

import psutil
import pytest
from aiohttp.test_utils import TestClient, TestServer

from providers.http import UpstreamClient
from service.engine.engine import Engine
from service.satellite.routes import SATELLITE
from service.web import app as app_module
from service.web.app import CLEANUP_CEILING_SECONDS, create_app
from service.web.keys import ENGINE
from tests.service.satellite.test_satellite import satellite_settings
from tests.support.clock import FakeClock, settle
from tests.support.parse_workers import worker_pid
from tests.support.tiles import FakeTiles
from tests.support.upstream import FakeUpstream
from tests.support.waiting import eventually


@pytest.fixture
def tiles(upstream: FakeUpstream) -> FakeTiles:
    return FakeTiles(upstream)


def alive(pids: set[int]) -> set[int]:
    """Which of ``pids`` are still running children of this process."""
    children = psutil.Process().children(recursive=True)
    return {
        p.pid for p in children if p.pid in pids and p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    }


def connections_to(port: int) -> list[object]:
    return [
        c
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    ]


async def open_everything(app, upstream: FakeUpstream) -> tuple[UpstreamClient, set[int]]:
    """What a running service has open: parsing and drawing processes, a kept-alive connection."""
    client: UpstreamClient = app[ENGINE].refreshers["satellite"].upstream
    pids = {await client.parse(worker_pid), await app[SATELLITE].drawing.run(worker_pid)}
    upstream.json("/keepalive", {"ok": True})
    session = client.session(timeout_seconds=30, pool="tiles")
    assert await session.get_json(upstream.url("/keepalive")) == {"ok": True}
    assert alive(pids) == pids and connections_to(upstream.server.port)
    return client, pids


async def test_a_start_up_that_fails_after_the_pools_opened_closes_them(monkeypatch, upstream, tiles):
    app = create_app(satellite_settings(tiles))
    opened: list[set[int]] = []

    async def start_then_fail(engine: Engine) -> None:
        _, pids = await open_everything(app, upstream)
        opened.append(pids)
        raise RuntimeError("a later start-up step failed")

    monkeypatch.setattr(Engine, "start", start_then_fail)
    server = TestServer(app)
    with pytest.raises(RuntimeError, match="a later start-up step failed"):
        await server.start_server()

    (pids,) = opened
    await eventually(lambda: not alive(pids), message=lambda: f"still running: {alive(pids)}")
    await eventually(lambda: not connections_to(upstream.server.port), message="a connection is left open")
    await server.close()


async def test_a_clean_up_step_that_hangs_cannot_hold_shutdown_and_the_rest_still_closes(
    monkeypatch, upstream, tiles, caplog
):
    clock = FakeClock()
    stuck, release = asyncio.Event(), asyncio.Event()

    async def stop_swallowing_cancellation(engine: Engine) -> None:
        stuck.set()
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue

    monkeypatch.setattr(Engine, "stop", stop_swallowing_cancellation)
    app = create_app(satellite_settings(tiles), clock=clock)
    client = TestClient(TestServer(app))
    await client.start_server()
    _, pids = await open_everything(app, upstream)

    with caplog.at_level(logging.WARNING, logger="service.engine.tasks"):
        closing = asyncio.ensure_future(client.close())
        await stuck.wait()
        await settle()
        assert not closing.done()  # the stuck stop is waited for, up to the ceiling
        await clock.advance(CLEANUP_CEILING_SECONDS)
        await eventually(closing.done, message="shutdown never ended")

    assert closing.exception() is None
    await eventually(lambda: not alive(pids), message=lambda: f"still running: {alive(pids)}")
    await eventually(lambda: not connections_to(upstream.server.port), message="a connection is left open")
    assert any("engine did not finish" in r.getMessage() for r in caplog.records)
    release.set()
    await settle()


def test_the_clean_up_ceiling_leaves_room_before_a_supervisor_kills():
    from service.workers import KILL_MARGIN_SECONDS

    assert 0 < app_module.CLEANUP_CEILING_SECONDS < KILL_MARGIN_SECONDS
