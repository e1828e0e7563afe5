"""Background tasks with an owner: every task the engine starts is cancelled and awaited at shutdown.

A task nobody holds can be garbage-collected mid-flight, and one nobody awaits at shutdown ends as
"Task was destroyed but it is pending". Everything the engine runs in the background goes through
one ``Tasks``, so stopping it leaves nothing behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Tasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
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
        if not task.cancelled():
            # Whoever cares awaited it; this only keeps asyncio from calling the error "lost".
            task.exception()

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel everything still running and wait until it has all finished."""
        self.closed = True
        while self._tasks:
            pending = list(self._tasks)
            for task in pending:
                task.cancel()
            # A cancellation can be swallowed on its way (a client library turning it into its own
            # error, caught as an outage): cancel again until every task ends, never wait forever.
            await asyncio.wait(pending, timeout=0.1)
