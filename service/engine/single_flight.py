"""One producer per key: across coroutines (a shared future) and across processes (a cache lock).

Like nginx's ``proxy_cache_lock``, but shared through Redis, so two hosts do not fetch twice.
The lock holder re-reads the cache before producing (someone may just have finished); the
others poll the cache until the value appears or the lock's lifetime runs out.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from cache.base import Cache, CacheUnavailable

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self, cache: Cache, *, lock_seconds: float, poll_seconds: float = 0.05) -> None:
        self._cache = cache
        self._lock_seconds = lock_seconds
        self._poll_seconds = poll_seconds
        self._inflight: dict[str, asyncio.Future[T | None]] = {}

    async def run(
        self, key: str, read: Callable[[], Awaitable[T | None]], produce: Callable[[], Awaitable[T]]
    ) -> T | None:
        """``read()`` the value, or have exactly one caller ``produce()`` it.

        Returns None only when another process held the lock for its whole lifetime and wrote
        nothing (it failed or died); the caller decides what to serve then.
        """
        waiting = self._inflight.get(key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[T | None] = asyncio.get_running_loop().create_future()
        # Mark the outcome retrieved, so a failure nobody else awaited is not reported as lost.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._inflight[key] = future
        try:
            value = await self._across_processes(key, read, produce)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._inflight[key]

    async def _across_processes(
        self, key: str, read: Callable[[], Awaitable[T | None]], produce: Callable[[], Awaitable[T]]
    ) -> T | None:
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
            deadline = time.monotonic() + self._lock_seconds
            while time.monotonic() < deadline:
                value = await read()
                if value is not None:
                    return value
                await asyncio.sleep(self._poll_seconds)
            return await read()
        try:
            value = await read()  # again: the previous holder may have just finished
            if value is not None:
                return value
            return await produce()
        finally:
            try:
                await self._cache.release_lock(lock, token)
            except CacheUnavailable:
                pass  # it expires by itself
