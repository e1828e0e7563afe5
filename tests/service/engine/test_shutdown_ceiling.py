"""Shutdown always ends: a task or a clean-up step that will not stop is logged once and left behind.

The ceilings run on an injected fake clock, so these tests move time by hand and never wait on it.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from service.engine.tasks import LAST_CHANCE_SECONDS, RECANCEL_SECONDS, Cleanup, Tasks
from tests.support.clock import FakeClock, settle
from tests.support.waiting import eventually

CEILING = 5.0


def swallowing_every_cancellation(running: asyncio.Event, release: asyncio.Event):
    """A task that catches every cancellation and carries on, until the test releases it."""

    async def stubborn() -> None:
        running.set()
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue

    return stubborn()


async def run_clock_past(clock: FakeClock, seconds: float, until: asyncio.Future[object]) -> None:
    """Move the fake clock forward in small steps (the re-cancel interval) until ``until`` is done."""
    moved = 0.0
    while not until.done() and moved <= seconds + 1:
        await clock.advance(RECANCEL_SECONDS)
        moved += RECANCEL_SECONDS
    await settle()


async def test_close_gives_up_on_a_task_that_swallows_every_cancellation_and_logs_it_once(caplog):
    clock = FakeClock()
    tasks = Tasks(close_ceiling_seconds=CEILING, clock=clock)
    running, release = asyncio.Event(), asyncio.Event()
    stubborn = tasks.spawn(swallowing_every_cancellation(running, release), name="stubborn upstream call")
    await running.wait()

    with caplog.at_level(logging.WARNING, logger="service.engine.tasks"):
        closing = asyncio.ensure_future(tasks.close())
        await settle()
        assert not closing.done()  # it does wait for the task, up to the ceiling
        await run_clock_past(clock, CEILING, closing)
        await eventually(closing.done, message="close() never returned")
        again = asyncio.ensure_future(tasks.close())  # a second close does not wait or log again
        await eventually(again.done, message="a second close() waited again")

    assert closing.result() is None
    assert not stubborn.done()
    assert tasks.abandoned == {stubborn}
    warnings = [r for r in caplog.records if "stubborn upstream call" in r.getMessage()]
    assert len(warnings) == 1
    release.set()
    await stubborn
    assert len(tasks) == 0 and not tasks.abandoned


async def test_close_returns_as_soon_as_well_behaved_tasks_end_without_waiting_for_the_ceiling(caplog):
    clock = FakeClock()  # never advanced: a wait on the ceiling would never end
    tasks = Tasks(close_ceiling_seconds=CEILING, clock=clock)
    started = asyncio.Event()

    async def polite() -> None:
        started.set()
        await asyncio.Event().wait()

    task = tasks.spawn(polite(), name="polite")
    await started.wait()
    with caplog.at_level(logging.WARNING, logger="service.engine.tasks"):
        await eventually(asyncio.ensure_future(tasks.close()).done, message="close() waited")
    assert task.cancelled() and len(tasks) == 0
    assert caplog.records == []


async def test_a_stuck_clean_up_step_is_left_behind_and_the_later_steps_still_run(caplog):
    clock = FakeClock()
    cleanup = Cleanup(ceiling_seconds=CEILING, clock=clock)
    closed: list[str] = []
    stuck_running, release = asyncio.Event(), asyncio.Event()

    async def close_pool() -> None:
        closed.append("pool")

    async def stop_engine() -> None:
        await swallowing_every_cancellation(stuck_running, release)

    async def close_cache() -> None:
        closed.append("cache")

    cleanup.add("cache", close_cache)
    cleanup.add("pool", close_pool)
    cleanup.add("engine", stop_engine)  # registered last: stopped first

    with caplog.at_level(logging.WARNING, logger="service.engine.tasks"):
        running = asyncio.ensure_future(cleanup.run())
        await stuck_running.wait()
        await settle()
        assert not running.done() and closed == []
        await clock.advance(CEILING)
        await eventually(running.done, message="the clean-up never ended")

    assert closed == ["pool", "cache"]
    assert [r.getMessage() for r in caplog.records if "engine" in r.getMessage()] == [
        f"shutdown: engine did not finish within its {CEILING:g} s and is left behind"
    ]
    release.set()
    await asyncio.gather(*cleanup.abandoned)


async def test_steps_after_an_overrun_get_only_a_last_chance_each():
    clock = FakeClock()
    cleanup = Cleanup(ceiling_seconds=CEILING, clock=clock)
    waits: list[float] = []
    entered = asyncio.Event()

    async def hang() -> None:
        waits.append(clock.monotonic())
        entered.set()
        await asyncio.Event().wait()  # ends when cancelled

    cleanup.add("second", hang)
    cleanup.add("first", hang)
    running = asyncio.ensure_future(cleanup.run())
    await entered.wait()
    await clock.advance(CEILING)
    await eventually(lambda: len(waits) == 2, message="the second step never started")
    await clock.advance(LAST_CHANCE_SECONDS)
    await eventually(running.done, message="the clean-up never ended")
    assert waits[1] - waits[0] == pytest.approx(CEILING)


async def test_a_failing_clean_up_step_is_logged_and_the_others_still_run(caplog):
    cleanup = Cleanup(ceiling_seconds=CEILING, clock=FakeClock())
    closed: list[str] = []

    async def broken() -> None:
        raise OSError("socket already gone")

    async def fine() -> None:
        closed.append("fine")

    cleanup.add("fine", fine)
    cleanup.add("broken", broken)
    with caplog.at_level(logging.WARNING, logger="service.engine.tasks"):
        await cleanup.run()
    assert closed == ["fine"]
    assert any("broken failed: socket already gone" in r.getMessage() for r in caplog.records)
