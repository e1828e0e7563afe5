"""Parsing processes: heavy parsing runs outside the serving process, and their failures are
ordinary failed attempts."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

import providers.tgju
from providers.http import UpstreamClient, UpstreamError, UpstreamSession
from providers.parsing import ParsePool
from providers.tgju import TgjuProvider, read_page
from service.persian import TEHRAN
from service.satellite import composite
from service.satellite.composite import stitch
from service.settings import HttpSettings
from service.widgets.satellite import SatelliteOptions
from tests.providers.test_off_loop import HeldTiles, recording
from tests.support.clock import START, FakeClock
from tests.support.parse_workers import crash, wait_in_worker, warn, warn_and_fail, worker_pid
from tests.support.prices import fetch_once, serve_tgju


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    upstream_client = UpstreamClient(HttpSettings(), FakeClock().time)
    await upstream_client.start()
    yield upstream_client
    await upstream_client.close()


def session_of(client: UpstreamClient) -> UpstreamSession:
    return client.session(timeout_seconds=30, pool="test")


def alive(pid: int) -> bool:
    if pid in {child.pid for child in multiprocessing.active_children()}:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_parse_runs_in_another_process(client: UpstreamClient) -> None:
    pid = await session_of(client).parse(worker_pid)

    assert pid != os.getpid()
    assert client.parsing.processes() == (pid,)


async def test_a_crashed_worker_is_a_parse_error_and_the_next_parse_gets_a_new_one(
    client: UpstreamClient,
) -> None:
    session = session_of(client)
    first = await session.parse(worker_pid)

    with pytest.raises(UpstreamError) as raised:
        await session.parse(crash)
    again = await session.parse(worker_pid)

    assert raised.value.reason == "parse"
    assert "worker died" in str(raised.value)
    assert again not in (first, os.getpid())
    assert not alive(first)


async def test_an_upstream_error_raised_in_a_worker_keeps_its_reason(client: UpstreamClient) -> None:
    with pytest.raises(UpstreamError) as raised:
        await session_of(client).parse(
            read_page,
            b"<html><p>maintenance</p></html>",
            "utf-8",
            {"sekee"},
            "coin",
            datetime.fromtimestamp(START, TEHRAN),
        )

    assert raised.value.reason == "changed"
    assert str(raised.value) == "tgju /coin: no market table in the page"


async def test_close_stops_every_worker_even_mid_parse(tmp_path: Path) -> None:
    client = UpstreamClient(HttpSettings(parse_workers=2), FakeClock().time)
    await client.start()
    session = session_of(client)
    signals = [tmp_path / "first", tmp_path / "second"]
    # Long enough that close() returning at all shows busy workers were stopped, not awaited.
    busy = [asyncio.ensure_future(session.parse(wait_in_worker, str(signal), 60)) for signal in signals]
    while not all(signal.exists() for signal in signals):
        await asyncio.sleep(0.01)
    workers = client.parsing.processes()
    assert len(workers) == 2 and os.getpid() not in workers

    await client.close()

    for parse in busy:
        with pytest.raises(UpstreamError):
            await parse
    assert client.parsing.processes() == ()
    assert not any(alive(pid) for pid in workers)


async def test_tgju_pages_are_parsed_in_a_parsing_process(monkeypatch, upstream) -> None:
    in_this_process = recording(monkeypatch, providers.tgju, "parse_page")
    submitted = spy_on_pool(monkeypatch)
    serve_tgju(upstream)

    data = await fetch_once(TgjuProvider, upstream, items=["sekee", "price_dollar_rl"])

    assert {item.key for item in data.items} == {"sekee", "price_dollar_rl"}
    assert submitted == [read_page] * 4  # three market pages and the home page
    assert in_this_process == []  # the patched copy here never ran: the worker's own did


async def test_what_a_worker_logs_is_logged_here(client: UpstreamClient, caplog) -> None:
    session = session_of(client)
    caplog.set_level(logging.INFO)

    pid = await session.parse(warn, "تهران")
    with pytest.raises(ValueError, match="broken"):
        await session.parse(warn_and_fail, "broken")

    records = [r for r in caplog.records if r.name == "tests.parse_workers"]
    assert [r.getMessage() for r in records] == ["from the worker: تهران", "before failing: broken"]
    assert {r.process for r in records} == {pid} and pid != os.getpid()
    assert all(r.levelno == logging.WARNING for r in records)


def spy_on_pool(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The functions handed to parsing processes, in order."""
    submitted: list[object] = []
    run = ParsePool.run

    async def spy(pool, fn, *args, **kwargs):
        submitted.append(fn)
        return await run(pool, fn, *args, **kwargs)

    monkeypatch.setattr(ParsePool, "run", spy)
    return submitted


async def test_the_satellite_picture_is_drawn_in_a_parsing_process(monkeypatch, client) -> None:
    in_this_process = recording(monkeypatch, composite, "tile_image")
    submitted = spy_on_pool(monkeypatch)
    options = SatelliteOptions(marker=None)
    held = HeldTiles(options.zoom, {})

    data = await stitch(held, options, "Esri", parse=client.parse)  # type: ignore[arg-type]

    assert Image.open(io.BytesIO(data)).size == (1020, 802)
    assert submitted == [composite.compose]
    assert in_this_process == []  # not one tile was decoded here


async def test_no_workers_means_a_thread(monkeypatch) -> None:
    threads = recording(monkeypatch, ParsePool, "_executor_for")
    client = UpstreamClient(HttpSettings(parse_workers=0), FakeClock().time)
    await client.start()
    try:
        assert await session_of(client).parse(worker_pid) == os.getpid()
    finally:
        await client.close()
    assert threads == []  # no pool was ever asked for


async def test_a_pool_that_cannot_start_falls_back_to_a_thread(monkeypatch, caplog) -> None:
    def refuse(*args, **kwargs):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", refuse)
    client = UpstreamClient(HttpSettings(), FakeClock().time)
    await client.start()
    try:
        pids = [await session_of(client).parse(worker_pid) for _ in range(2)]
    finally:
        await client.close()
    assert pids == [os.getpid()] * 2
    assert [r.message for r in caplog.records if "parsing in threads" in r.message] != []


def test_the_worker_count_is_a_setting() -> None:
    assert HttpSettings().parse_workers == 1
    assert ParsePool(HttpSettings(parse_workers=3).parse_workers).workers == 3
