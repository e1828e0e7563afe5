"""Background tasks with an owner: every task the engine starts is cancelled and awaited at shutdown.

A task nobody holds can be garbage-collected mid-flight, and one nobody awaits at shutdown ends as
"Task was destroyed but it is pending". Everything the engine runs in the background goes through
one ``Tasks``, so stopping it leaves nothing behind.

Shutdown has a ceiling, though: a task that swallows every cancellation (a library turning it into
its own error, caught as an outage) would otherwise keep the process from ever exiting. Past the
ceiling it is logged, once, and left behind; ``Cleanup`` bounds a whole shutdown the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from service.engine.clock import Clock, SystemClock

T = TypeVar("T")

log = logging.getLogger(__name__)

#: How long ``Tasks.close`` waits for cancelled tasks to end. A well-behaved task ends within a
#: loop iteration or two; this only has to outlast a clean-up that awaits a socket close.
CLOSE_CEILING_SECONDS = 3.0
#: How often a task that is still running is cancelled again while ``close`` waits.
RECANCEL_SECONDS = 0.1
#: After a clean-up step overran the whole ceiling, each later step still gets this long: closing a
#: connection pool or a process after a stuck step matters more than a strict total.
LAST_CHANCE_SECONDS = 1.0


class Tasks:
    def __init__(
        self, *, close_ceiling_seconds: float = CLOSE_CEILING_SECONDS, clock: Clock | None = None
    ) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Tasks still running after a ``close`` gave up on them: never waited for (or logged) again.
        self._abandoned: set[asyncio.Task[Any]] = set()
        self._ceiling = close_ceiling_seconds
        self._clock: Clock = clock or SystemClock()
        self.closed = False

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        if self.closed:
            coro.close()
            raise RuntimeError(f"cannot start {name!r}: shutting down")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._abandoned.discard(task)
        if not task.cancelled():
            # Whoever cares awaited it; this only keeps asyncio from calling the error "lost".
            task.exception()

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def abandoned(self) -> frozenset[asyncio.Task[Any]]:
        """Tasks that outlived a ``close`` (still held, so they are not garbage-collected)."""
        return frozenset(self._abandoned)

    async def close(self) -> None:
        """Cancel everything still running and wait until it has finished, at most the ceiling.

        A cancellation can be swallowed on its way, so a task still running is cancelled again
        every ``RECANCEL_SECONDS``. One still running at the ceiling is logged and abandoned:
        shutdown goes on without it.
        """
        self.closed = True
        deadline = self._clock.monotonic() + self._ceiling
        while pending := [task for task in self._tasks if task not in self._abandoned]:
            for task in pending:
                task.cancel()
            left = deadline - self._clock.monotonic()
            if left <= 0:
                self._abandon(pending)
                return
            await _first_of(asyncio.wait(pending), self._clock.sleep(min(RECANCEL_SECONDS, left)))

    def _abandon(self, tasks: list[asyncio.Task[Any]]) -> None:
        self._abandoned.update(tasks)
        names = ", ".join(sorted(task.get_name() for task in tasks))
        log.warning(
            "shutdown: %d task(s) ignored cancellation for %g s and are left running: %s",
            len(tasks),
            self._ceiling,
            names,
        )


async def _first_of(*awaitables: Awaitable[Any]) -> None:
    """Wait until the first of ``awaitables`` is done; the others are cancelled (none is a task
    that matters: ``asyncio.wait`` and a sleep)."""
    waiters = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


class Cleanup:
    """Shutdown steps, run in the reverse order of registration and all within one ceiling.

    Registered as each resource is opened, so a start-up that fails half-way closes exactly what
    it had opened. A step that overruns the ceiling is logged and abandoned (cancelled, never
    awaited: it may swallow the cancellation); the steps after it still run, each for at most
    ``LAST_CHANCE_SECONDS``, so one stuck close does not leave sockets and processes behind.
    """

    def __init__(self, *, ceiling_seconds: float, clock: Clock | None = None) -> None:
        self._steps: list[tuple[str, Callable[[], Awaitable[object]]]] = []
        self._ceiling = ceiling_seconds
        self._clock: Clock = clock or SystemClock()
        #: Steps given up on, still held so they are not garbage-collected mid-flight.
        self.abandoned: list[asyncio.Task[object]] = []

    def add(self, name: str, step: Callable[[], Awaitable[object]]) -> None:
        self._steps.append((name, step))

    async def run(self) -> None:
        deadline = self._clock.monotonic() + self._ceiling
        steps, self._steps = list(reversed(self._steps)), []
        for name, step in steps:
            left = max(deadline - self._clock.monotonic(), LAST_CHANCE_SECONDS)
            await self._run_step(name, step, left)

    async def _run_step(self, name: str, step: Callable[[], Awaitable[object]], seconds: float) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(_awaited(step))
        await _first_of(asyncio.wait([task]), self._clock.sleep(seconds))
        if not task.done():
            task.cancel()
            self.abandoned.append(task)
            log.warning("shutdown: %s did not finish within its %g s and is left behind", name, seconds)
        elif not task.cancelled() and task.exception() is not None:
            error = task.exception()
            log.warning("shutdown: %s failed: %s", name, error, exc_info=error)


async def _awaited(step: Callable[[], Awaitable[T]]) -> T:
    return await step()
