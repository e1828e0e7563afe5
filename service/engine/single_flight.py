"""One producer per key: across coroutines (one shared task) and across processes (a cache lock).

Like nginx's ``proxy_cache_lock``, but shared through Redis, so two hosts do not fetch twice. The
same primitive coalesces widget refreshes, tile misses and the satellite picture.

- In this process, callers of one key share one task that the flight owns: a caller that is
  cancelled (its client went away) never cancels the work the others wait for.
- Across processes, the lock holder keeps its lock alive while it works (however long redirects
  and retries take), and releases it the moment it is done. Followers poll the lock every
  ``poll_seconds``: within that long of the holder finishing, or failing, they read the result
  or learn there is none, and the next request tries again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from cache.base import Cache, CacheUnavailable
from service.engine.tasks import Tasks

T = TypeVar("T")

log = logging.getLogger(__name__)

Reader = Callable[[], Awaitable[T | None]]
Producer = Callable[[], Awaitable[T | None]]


class SingleFlight(Generic[T]):
    def __init__(
        self,
        cache: Cache,
        tasks: Tasks,
        *,
        max_wait_seconds: float,
        lock_seconds: float = 10.0,
        poll_seconds: float = 0.05,
    ) -> None:
        self._cache = cache
        self._tasks = tasks
        #: How long a follower waits for another process before giving up on this attempt.
        self._max_wait = max_wait_seconds
        #: The lock's lifetime between renewals: how long a crashed holder blocks the others.
        self._lock_seconds = lock_seconds
        self._poll_seconds = poll_seconds
        self._inflight: dict[str, asyncio.Task[T | None]] = {}

    def running(self, key: str) -> asyncio.Task[T | None] | None:
        return self._inflight.get(key)

    def start(self, key: str, produce: Producer[T], read: Reader[T] | None = None) -> asyncio.Task[T | None]:
        """The task producing ``key``: the one already running in this process, or a new one."""
        task = self._inflight.get(key)
        if task is None:
            task = self._tasks.spawn(self._across_processes(key, produce, read), name=f"single-flight {key}")
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return task

    async def run(self, key: str, produce: Producer[T], read: Reader[T] | None = None) -> T | None:
        """``read()`` the value, or have exactly one caller anywhere ``produce()`` it.

        None when another process held the lock and wrote nothing (it failed, or took longer than
        ``max_wait_seconds``); the caller decides what to serve then.
        """
        return await asyncio.shield(self.start(key, produce, read))

    def _forget(self, key: str, task: asyncio.Task[T | None]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _across_processes(self, key: str, produce: Producer[T], read: Reader[T] | None) -> T | None:
        if read is not None:
            value = await read()
            if value is not None:
                return value
        token = uuid.uuid4().hex
        lock = f"lock:{key}"
        try:
            locked = await self._cache.acquire_lock(lock, token, self._lock_seconds)
        except CacheUnavailable:
            return await produce()  # degraded: coalesced within this process only
        if not locked:
            await self._follow(lock)
            return await read() if read is not None else None
        keeper = asyncio.ensure_future(self._keep_alive(lock, token))
        try:
            if read is not None:
                value = await read()  # again: the previous holder may have just finished
                if value is not None:
                    return value
            return await produce()
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            try:
                await self._cache.release_lock(lock, token)
            except CacheUnavailable:
                pass  # it expires by itself

    async def _keep_alive(self, lock: str, token: str) -> None:
        while True:
            await asyncio.sleep(self._lock_seconds / 3)
            try:
                if await self._cache.extend_lock(lock, token, self._lock_seconds):
                    continue
                # Gone (Redis restarted empty, or it lapsed while unreachable): take it again, so
                # no other process starts the same work while this one is still at it.
                if not await self._cache.acquire_lock(lock, token, self._lock_seconds):
                    log.warning("%s was taken by another process while this one was still working", lock)
                    return
            except CacheUnavailable:
                continue  # try again; if it lapses meanwhile, another process may start too

    async def _follow(self, lock: str) -> None:
        """Wait until the holder lets go of ``lock`` (or ``max_wait_seconds`` pass)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait
        while loop.time() < deadline:
            await asyncio.sleep(self._poll_seconds)
            try:
                if not await self._cache.lock_held(lock):
                    return
            except CacheUnavailable:
                return
