"""The cache interface every backend implements.

Values are opaque bytes; callers own serialisation. Backends raise ``CacheUnavailable`` (never a
client-library error) so the engine can treat an outage as a miss and keep serving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

#: A stored version further ahead of the backend's clock than this was written by a host whose
#: clock was wrong (or by hand): it must not block every later write, so it does not count.
FUTURE_TOLERANCE_SECONDS = 300.0


class BackendClock(Protocol):
    """The clock an in-process backend keeps its own time on, as a Redis server keeps its own.

    Given by whoever opens the backend (the service's clock module), so nothing here reads the
    host's clock directly and tests can hand in theirs.
    """

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class CacheUnavailable(Exception):
    """The backend could not be reached; the caller should degrade, not fail."""


class CacheFull(CacheUnavailable):
    """The backend answers but refuses writes: it is out of memory and has nothing it may evict.

    Callers degrade as for an outage (reads still work); /health tells the two apart.
    """


class Cache(Protocol):
    #: True when values are visible to other processes (so locks and pub/sub are meaningful).
    shared: bool
    #: Why the last write was refused (``CacheFull``), until a write goes through again; else None.
    refusing_writes: str | None

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None: ...

    async def count(self, key: str, ttl_seconds: float) -> int:
        """Add one to the counter at ``key`` and return it; a new counter lives ``ttl_seconds``.

        Atomic in the backend, so every replica counting against one key sees one total (rate
        budgets per time window: the window is in the key, the expiry only cleans up).
        """
        ...

    async def acquire_lock(self, key: str, token: str, ttl_seconds: float) -> bool:
        """Take ``key`` if free; it expires after ``ttl_seconds`` in case the owner dies."""
        ...

    async def release_lock(self, key: str, token: str) -> bool:
        """Release ``key`` only if ``token`` still owns it."""
        ...

    async def extend_lock(self, key: str, token: str, ttl_seconds: float) -> bool:
        """Renew ``key``'s lifetime if ``token`` still owns it (a long job keeps its lock alive)."""
        ...

    async def lock_held(self, key: str) -> bool:
        """Whether anyone holds ``key`` (followers poll this to learn the holder finished)."""
        ...

    async def set_if_newer(self, key: str, value: bytes, version: float, channel: str, message: str) -> bool:
        """Store ``value`` only if ``version`` is above the stored one, and announce it on ``channel``.

        Decided by the backend in one step, so a late writer never overwrites newer data. A stored
        version that is not a number, or lies beyond the backend's clock by more than
        ``FUTURE_TOLERANCE_SECONDS``, does not count.
        """
        ...

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
        """Add the point (``at``, ``value``) to the time series ``key`` (a sorted set in Redis).

        With ``bucket_seconds``, the series keeps one point per bucket (aligned on the epoch): the
        latest, so a point older than one already in its bucket is dropped. Points older than
        ``at - keep_seconds`` and all but the newest ``max_points`` are removed in the same step.

        A series is durable: it never carries a backend expiry, which would make it a candidate for
        eviction next to the caches. In Redis, one nobody writes to any more (its unit changed) is
        removed ``keep_seconds`` after its last write, by a later write to any series; in memory,
        the least recently written go first beyond a number of series.
        """
        ...

    async def series_range(self, key: str, start: float, end: float) -> list[tuple[float, bytes]]:
        """The points of ``key`` with ``start <= at <= end``, oldest first."""
        ...

    async def server_time(self) -> float:
        """The backend's clock (seconds since the epoch): the one clock every replica shares."""
        ...

    async def publish(self, channel: str, message: str) -> None: ...

    def subscribe(self, channel: str) -> AsyncIterator[str]:
        """Messages on ``channel`` until the connection drops (then ``CacheUnavailable``).

        The first item is always ``""``: the subscription is in place from that point on. A message
        that is not UTF-8 is nobody's we know: skipped, and the subscription goes on.
        """
        ...

    async def ping(self) -> float:
        """Round-trip time in seconds."""
        ...

    async def eviction_policy(self) -> str | None:
        """The backend's ``maxmemory-policy`` (e.g. ``volatile-lru``), or None when it has none to tell."""
        ...

    async def close(self) -> None: ...
