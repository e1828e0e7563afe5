"""A parse that never ends (a hostile upstream answer) holds no other source's parse hostage, and
stops burning a CPU as soon as its caller gives up on it."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from providers.feed import read_feed
from providers.http import UpstreamClient
from providers.parsing import ParsePool
from service.settings import HttpSettings
from tests.support.clock import FakeClock
from tests.support.feed import RSS, feed_text
from tests.support.parse_workers import worker_pid
from tests.support.waiting import CEILING_SECONDS, eventually

NOW = 1_790_000_000.0


def spin(started: str, stop: str) -> int:
    """Say (by writing its pid to ``started``) that the parse began, then burn the CPU until
    ``stop`` exists: a pure-Python parse of a pathological answer, as the caller sees it."""
    Path(started).write_text(str(os.getpid()))
    while not Path(stop).exists():
        pass
    return os.getpid()


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Runaway:
    """A spinning parse in ``pool``, and the files that start and (at the end of a test) stop it."""

    def __init__(self, pool: ParsePool, folder: Path) -> None:
        self.started, self.stop = folder / "started", folder / "stop"
        self.pool = pool
        self.task = asyncio.ensure_future(pool.run(spin, str(self.started), str(self.stop)))

    async def pid(self) -> int:
        await eventually(self.started.exists, message="the runaway parse never started")
        return int(await eventually(self.started.read_text))

    async def give_up(self) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[ParsePool]:
    parse_pool = ParsePool(1)
    yield parse_pool
    (tmp_path / "stop").touch()  # whatever a failing test left spinning ends
    await parse_pool.close()


async def test_another_source_parses_while_a_runaway_parse_spins(pool: ParsePool, tmp_path: Path) -> None:
    runaway = Runaway(pool, tmp_path)
    spinning = await runaway.pid()
    feed = feed_text(RSS, NOW).encode()

    news = await asyncio.wait_for(
        pool.run(read_feed, feed, "https://avayefamenin.ir/fa/rss/allnews", NOW), CEILING_SECONDS
    )

    assert len(news.items) == 10
    assert running(spinning)  # parsed beside the runaway, not after it
    assert spinning in pool.processes() and len(pool.processes()) == 2
    await runaway.give_up()


async def test_a_runaway_parse_is_killed_when_its_caller_gives_up(
    pool: ParsePool, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.DEBUG, logger="providers.parsing")
    runaway = Runaway(pool, tmp_path)
    spinning = await runaway.pid()

    await runaway.give_up()

    await eventually(lambda: not running(spinning), message="the runaway still burns its CPU")
    assert spinning not in pool.processes()
    assert any(f"(pid {spinning}) was killed" in r.getMessage() for r in caplog.records)


async def test_a_parse_queued_behind_a_runaway_of_its_own_lane_runs_once_it_is_given_up(
    pool: ParsePool, tmp_path: Path
) -> None:
    runaway = Runaway(pool, tmp_path)
    spinning = await runaway.pid()
    quick = tmp_path / "quick"
    quick.mkdir()
    (quick / "stop").touch()
    queued = asyncio.ensure_future(pool.run(spin, str(quick / "started"), str(quick / "stop")))

    await runaway.give_up()

    assert await asyncio.wait_for(queued, CEILING_SECONDS) != spinning
    assert not running(spinning)


async def test_a_timed_out_session_parse_frees_the_pool_for_the_next_parse(tmp_path: Path) -> None:
    """The engine gives up on a fetch with ``asyncio.wait_for``: that is what kills the runaway."""
    client = UpstreamClient(HttpSettings(parse_workers=1), FakeClock(NOW).time)
    await client.start()
    started, stop = tmp_path / "started", tmp_path / "stop"
    try:
        session = client.session(timeout_seconds=30, pool="feed")
        await session.parse(worker_pid)  # a process ready, so the spin is likely under way in time
        # The spin never ends on its own: the timeout fires, however fast the machine is.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(session.parse(spin, str(started), str(stop)), 0.5)
        spinning = int(started.read_text()) if started.exists() else None

        assert await asyncio.wait_for(session.parse(worker_pid), CEILING_SECONDS) != spinning
        if spinning is not None:
            await eventually(lambda: not running(spinning), message="the runaway still burns its CPU")
        assert len(client.parsing.processes()) == 1
    finally:
        stop.touch()
        await client.close()
