"""In-process backend: the default when no Redis is configured (one process)."""

from __future__ import annotations

import asyncio
import bisect
import math
from collections import OrderedDict
from collections.abc import AsyncIterator

from cache.base import FUTURE_TOLERANCE_SECONDS, BackendClock

#: Past this many live counters, expired ones are swept before the next is added.
MAX_COUNTERS = 10_000


class MemoryCache:
    """A dict with expiry, a byte bound (least recently used go first), locks and local pub/sub."""

    shared = False
    #: Bounded by dropping its least recently used values, never by refusing a write.
    refusing_writes: str | None = None

    def __init__(
        self, clock: BackendClock, max_bytes: int = 256 * 1024 * 1024, max_series: int = 1024
    ) -> None:
        self._clock = clock
        self._values: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._locks: dict[str, tuple[str, float]] = {}
        self._versions: dict[str, float] = {}
        self._subscribers: dict[str, set[asyncio.Queue[str]]] = {}
        self._counters: dict[str, tuple[int, float]] = {}
        #: Time series, each sorted by time; the least recently written go first beyond ``max_series``.
        self._series: OrderedDict[str, list[tuple[float, bytes]]] = OrderedDict()
        self._max_series = max_series

    async def get(self, key: str) -> bytes | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at is not None and expires_at <= self._clock.monotonic():
            self._drop(key)
            return None
        self._values.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        self._drop(key)
        expires_at = None if ttl_seconds is None else self._clock.monotonic() + ttl_seconds
        self._values[key] = (value, expires_at)
        self._bytes += len(value)
        while self._bytes > self._max_bytes and len(self._values) > 1:
            self._drop(next(iter(self._values)))

    def _drop(self, key: str) -> None:
        entry = self._values.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[0])

    async def count(self, key: str, ttl_seconds: float) -> int:
        now = self._clock.monotonic()
        if len(self._counters) > MAX_COUNTERS:
            # Counters are per client and window: dead ones must not pile up between uses.
            self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
        value, expires_at = self._counters.get(key, (0, 0.0))
        if expires_at <= now:
            value, expires_at = 0, now + ttl_seconds
        self._counters[key] = (value + 1, expires_at)
        return value + 1

    async def acquire_lock(self, key: str, token: str, ttl_seconds: float) -> bool:
        now = self._clock.monotonic()
        held = self._locks.get(key)
        if held is not None and held[1] > now:
            return False
        self._locks[key] = (token, now + ttl_seconds)
        return True

    async def release_lock(self, key: str, token: str) -> bool:
        held = self._locks.get(key)
        if held is None or held[0] != token:
            return False
        del self._locks[key]
        return True

    async def extend_lock(self, key: str, token: str, ttl_seconds: float) -> bool:
        held = self._locks.get(key)
        if held is None or held[0] != token or held[1] <= self._clock.monotonic():
            return False
        self._locks[key] = (token, self._clock.monotonic() + ttl_seconds)
        return True

    async def lock_held(self, key: str) -> bool:
        held = self._locks.get(key)
        return held is not None and held[1] > self._clock.monotonic()

    async def set_if_newer(self, key: str, value: bytes, version: float, channel: str, message: str) -> bool:
        stored = self._versions.get(key)
        if (
            stored is not None
            and stored <= self._clock.time() + FUTURE_TOLERANCE_SECONDS
            and stored >= version
            and await self.get(key) is not None
        ):
            return False
        self._versions[key] = version
        await self.set(key, value)
        await self.publish(channel, message)
        return True

    async def series_add(
        self,
        key: str,
        at: float,
        value: bytes,
        *,
        keep_seconds: float,
        bucket_seconds: float = 0.0,
        max_points: int = 10_000,
    ) -> None:
        # Sorted by time, so every step is a binary search and a slice: no pass over the series.
        points = self._series.pop(key, [])
        self._series[key] = points
        if bucket_seconds > 0:
            first = math.floor(at / bucket_seconds) * bucket_seconds
            low = bisect.bisect_left(points, first, key=_time)
            high = bisect.bisect_left(points, first + bucket_seconds, key=_time)
            if high > low and points[high - 1][0] > at:
                return  # a newer point of this bucket is already there
        else:
            low = bisect.bisect_left(points, at, key=_time)
            high = bisect.bisect_right(points, at, key=_time)
        del points[low:high]
        bisect.insort(points, (at, value), key=_time)
        del points[: bisect.bisect_left(points, at - keep_seconds, key=_time)]
        del points[: max(0, len(points) - max_points)]
        while len(self._series) > self._max_series:
            self._series.popitem(last=False)

    async def series_range(self, key: str, start: float, end: float) -> list[tuple[float, bytes]]:
        points = self._series.get(key, [])
        return points[
            bisect.bisect_left(points, start, key=_time) : bisect.bisect_right(points, end, key=_time)
        ]

    async def server_time(self) -> float:
        return self._clock.time()

    async def publish(self, channel: str, message: str) -> None:
        for queue in self._subscribers.get(channel, ()):
            queue.put_nowait(message)

    async def subscribe(self, channel: str) -> AsyncIterator[str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._subscribers.setdefault(channel, set()).add(queue)
        try:
            yield ""
            while True:
                yield await queue.get()
        finally:
            self._subscribers[channel].discard(queue)

    async def ping(self) -> float:
        return 0.0

    async def eviction_policy(self) -> str | None:
        return None

    async def close(self) -> None:
        self._values.clear()
        self._counters.clear()
        self._bytes = 0
        self._series.clear()


def _time(point: tuple[float, bytes]) -> float:
    return point[0]
