"""Owned background tasks: stopping leaves nothing running, whatever a task does with a cancel."""

from __future__ import annotations

import asyncio

from service.engine.tasks import Tasks


async def test_close_ends_a_task_that_swallows_its_first_cancellation():
    tasks = Tasks()
    swallowed = 0

    async def stubborn() -> None:
        # What a client library can do: a cancellation arriving mid-call becomes its own error,
        # which the caller treats as an outage and carries on.
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    task = tasks.spawn(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    await asyncio.wait_for(tasks.close(), 10)
    assert task.cancelled() and swallowed == 1 and len(tasks) == 0
