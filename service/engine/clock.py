"""The engine's sense of time, injected so tests run on a fake clock instead of sleeps.

Two kinds of time matter. Shared timestamps (``fetched_at``, ``retry_at``, freshness) must mean
the same on every replica, so they come from the cache backend's clock (Redis ``TIME``): this
process keeps its offset from it, and a host whose clock is ten minutes off still agrees with the
others on who wrote last and when data turns stale. Waiting uses this process's own monotonic
clock, which only has to move forward.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch, on the clock shared by every replica."""
        ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SharedClock:
    """A local clock corrected by its measured offset from the shared backend's clock."""

    def __init__(self, local: Clock | None = None) -> None:
        self.local = local or SystemClock()
        # Read on every hot request: skip a layer of Python calls when the local clock is the system's.
        self._local_time = time.time if isinstance(self.local, SystemClock) else self.local.time
        #: Backend clock minus local clock, in seconds (0 until the first sync).
        self.offset = 0.0

    def time(self) -> float:
        return self._local_time() + self.offset

    def monotonic(self) -> float:
        return self.local.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self.local.sleep(seconds)

    def synced(self, before: float, server: float, after: float) -> None:
        """Record one round trip: the server read ``server`` between local ``before`` and ``after``."""
        self.offset = server - (before + after) / 2


async def wait_event(clock: Clock, event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` passes on ``clock``; True if the event fired."""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    sleeper = asyncio.ensure_future(clock.sleep(timeout))
    try:
        await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, sleeper):
            task.cancel()
        await asyncio.gather(waiter, sleeper, return_exceptions=True)
    return event.is_set()
