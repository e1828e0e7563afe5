"""Tiles on demand: in-process copies, then the shared cache, then one upstream fetch.

Fresh tiles are served from memory; a missing tile is fetched exactly once however many requests
and processes ask (``SingleFlight``), and only within the upstream budget (``TileBudget``); a
failed fetch serves the expired copy when there is one. The source's "no imagery" placeholder and
anything that is not an image are never cached as imagery (a "no tile" marker keeps us from
asking again at once). A tile whose fetch failed is remembered as failed, in every replica, for
a time that doubles with each failure: a broken tile costs one upstream request per step however
many readers ask for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TypeGuard

from cache.base import FUTURE_TOLERANCE_SECONDS, Cache, CacheUnavailable
from providers.http import UpstreamClient, UpstreamError
from providers.tiles import NoTile, XyzTileProvider
from service.engine.clock import Clock, SystemClock
from service.engine.single_flight import SingleFlight
from service.engine.tasks import Tasks
from service.metrics import Metrics
from service.satellite.budget import OverBudget, TileBudget

NO_TILE_SECONDS = 86400.0
#: A failed tile is not asked for again for this long, doubled with each failure in a row.
FAILED_TILE_SECONDS = 10.0
MAX_FAILED_TILE_SECONDS = 600.0
#: Failure records kept in this process (the shared cache keeps the others).
MAX_LOCAL_FAILURES = 4096
#: Failures in a row counted at most: the wait stops doubling long before (``MAX_FAILED_TILE_SECONDS``).
MAX_FAILURES_COUNTED = 32
MAX_REASON_CHARS = 500

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tile:
    data: bytes
    content_type: str
    fetched_at: float
    etag: str
    #: Served past its lifetime because the source failed.
    stale: bool = False


class LocalTiles:
    """Decoded tiles in this process, least recently used dropped first past ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self._entries: OrderedDict[str, Tile | float] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes

    def get(self, key: str) -> Tile | float | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: Tile | float) -> None:
        self._drop(key)
        self._entries[key] = entry
        self._bytes += len(entry.data) if isinstance(entry, Tile) else 0
        while self._bytes > self._max_bytes and len(self._entries) > 1:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if isinstance(entry, Tile):
            self._bytes -= len(entry.data)


class TileUnavailable(Exception):
    """The source failed and no copy of the tile exists."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        #: When a new attempt may be made (the failed tile's backoff), if known.
        self.retry_after = retry_after


@dataclass(frozen=True)
class Failure:
    """The tile's last fetches failed: ``failures`` in a row, not asked again before ``retry_at``."""

    failures: int
    retry_at: float
    reason: str

    def encode(self) -> bytes:
        return json.dumps(
            {"failures": self.failures, "retry_at": self.retry_at, "reason": self.reason}
        ).encode()

    @staticmethod
    def decode(raw: bytes) -> Failure | None:
        """The record, or None for anything this release would not have written (no failure)."""
        try:
            head = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than decoders go
            return None
        if not isinstance(head, dict):
            return None
        failures, retry_at, reason = head.get("failures"), head.get("retry_at"), head.get("reason")
        if not (isinstance(failures, int) and not isinstance(failures, bool) and failures >= 1):
            return None
        if not (_number(retry_at) and isinstance(reason, str)):
            return None
        # The count only doubles a wait capped long before this: a larger one would be a number
        # too large to compute with, not a longer wait.
        return Failure(min(failures, MAX_FAILURES_COUNTED), float(retry_at), reason[:MAX_REASON_CHARS])


#: What a tile's JSON head may name: the images ``fetch_tile`` accepts.
IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})


def _number(value: object) -> TypeGuard[int | float]:
    """A finite JSON number (``json`` reads ``1e999`` as infinity and accepts ``NaN``)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _encode(entry: Tile | float) -> bytes:
    if not isinstance(entry, Tile):
        return json.dumps({"no_tile": True, "fetched_at": entry}).encode() + b"\n"
    tile = entry
    head = {"content_type": tile.content_type, "fetched_at": tile.fetched_at, "etag": tile.etag}
    return json.dumps(head).encode() + b"\n" + tile.data


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


def _when(entry: Tile | float) -> float:
    return entry.fetched_at if isinstance(entry, Tile) else entry


def _decode(raw: bytes) -> Tile | float | None:
    """A tile, the time a "no tile" answer was recorded, or None for anything ``_encode`` would not
    have written (tile entries carry no schema version: every field is checked instead)."""
    head_raw, _, data = raw.partition(b"\n")
    try:
        head = json.loads(head_raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than decoders go
        return None
    if not isinstance(head, dict) or not _number(head.get("fetched_at")):
        return None
    fetched_at = float(head["fetched_at"])
    if head.get("no_tile") is True:
        return fetched_at if not data else None
    # The ETag is the data's own digest: a head over other bytes (or cut-off data) is no tile,
    # and nothing but that digest goes out in the ETag header.
    if head.get("content_type") not in IMAGE_TYPES or head.get("etag") != _etag(data):
        return None
    return Tile(data, head["content_type"], fetched_at, head["etag"])


class TileCache:
    def __init__(
        self,
        source: XyzTileProvider,
        cache: Cache,
        upstream: UpstreamClient,
        metrics: Metrics,
        *,
        ttl_seconds: float,
        local_bytes: int,
        tasks: Tasks,
        clock: Clock | None = None,
        budget: TileBudget | None = None,
    ) -> None:
        self.source = source
        #: Tile ages are shared through Redis: measured on the engine's shared clock.
        self._clock: Clock = clock or SystemClock()
        self._cache = cache
        self._upstream = upstream
        self._metrics = metrics
        self._ttl = ttl_seconds
        # Expired copies are kept (as long again) so a failing source still has something to show.
        self._keep_seconds = ttl_seconds * 2
        self._local = LocalTiles(local_bytes)
        self._failures: OrderedDict[str, Failure] = OrderedDict()
        #: Whether an unreadable shared entry was logged: once per process, not once per tile.
        self._junk_seen = False
        self._budget = budget
        # The template names the imagery: another source or mirror never serves these copies.
        self.identity = source.identity
        self._flight: SingleFlight[Tile | float] = SingleFlight(
            cache, tasks, max_wait_seconds=source.config.timeout_seconds + 5
        )

    def _key(self, z: int, x: int, y: int) -> str:
        return f"tile:{self.source.source_name}:{self.identity}:{z}:{x}:{y}"

    def peek(self, z: int, x: int, y: int) -> Tile | None:
        """A fresh tile already in this process, without any I/O (the hot path)."""
        held = self._local.get(self._key(z, x, y))
        return held if isinstance(held, Tile) and self._fresh_entry(held) else None

    async def get(self, z: int, x: int, y: int, client: str | None = None) -> Tile | None:
        """The tile, or None where the source has no imagery.

        ``TileUnavailable`` when the source fails (or failed a moment ago) and ``OverBudget`` when
        no fetch is allowed now, each only when no expired copy exists. ``client`` is who a fetch
        counts against (None: the service itself, e.g. for the picture).
        """
        key = self._key(z, x, y)
        held = self._local.get(key)
        if held is not None and self._fresh_entry(held):
            return held if isinstance(held, Tile) else None
        failure = self._failures.get(key)
        if self._holds_back(failure):
            self._metrics.tiles_held_back.labels("backoff").inc()
            return self._stale_or_raise(key, failure.reason, failure)
        # A local miss goes to the shared cache and the upstream through one flight per key, so a
        # burst of requests costs one Redis read and at most one upstream fetch.
        try:
            try:
                result = await self._flight.run(
                    key, lambda: self._fetch(key, z, x, y, client), read=lambda: self._shared(key)
                )
            except OverBudget as exc:
                if exc.budget != "client" or exc.client == client:
                    raise
                # The flight we joined was another client's, refused on its budget: not ours.
                result = await self._flight.run(
                    key, lambda: self._fetch(key, z, x, y, client), read=lambda: self._shared(key)
                )
        except UpstreamError as exc:
            return self._stale_or_raise(key, str(exc), self._failures.get(key))
        except OverBudget as exc:
            self._metrics.tiles_held_back.labels(exc.budget).inc()
            stale = self._stale(key)
            if stale is None:
                raise
            return stale
        if result is None:  # another process held the lock and produced nothing
            return self._stale_or_raise(key, "tile source did not answer in time")
        return result if isinstance(result, Tile) else None

    def _holds_back(self, failure: Failure | None) -> TypeGuard[Failure]:
        """Whether ``failure``'s backoff still runs.

        No backoff is ever longer than ``MAX_FAILED_TILE_SECONDS``: one that seems to be has seen
        the shared clock step back (e.g. Redis failed over to a host whose clock lags), and would
        otherwise hold the tile back, and report a ``Retry-After``, for as long as the step.
        """
        if failure is None:
            return False
        return 0 < failure.retry_at - self._clock.time() <= MAX_FAILED_TILE_SECONDS

    def _fresh_entry(self, entry: Tile | float) -> bool:
        age = self._clock.time() - _when(entry)
        return age < (self._ttl if isinstance(entry, Tile) else NO_TILE_SECONDS)

    def _stale(self, key: str) -> Tile | None:
        held = self._local.get(key)
        if isinstance(held, Tile):
            return Tile(held.data, held.content_type, held.fetched_at, held.etag, stale=True)
        return None

    def _stale_or_raise(self, key: str, reason: str, failure: Failure | None = None) -> Tile:
        stale = self._stale(key)
        if stale is not None:
            return stale
        retry_after = None if failure is None else max(1.0, failure.retry_at - self._clock.time())
        raise TileUnavailable(reason, retry_after)

    async def _shared(self, key: str) -> Tile | float | None:
        """The shared copy if fresh; an expired one is kept locally as the fallback."""
        try:
            raw = await self._cache.get(key)
        except CacheUnavailable:
            return None
        if raw is None:
            return None
        entry = _decode(raw)
        if entry is None or _when(entry) > self._clock.time() + FUTURE_TOLERANCE_SECONDS:
            # Not what this release writes (or dated where it would stay fresh for ever): a miss,
            # and the fetch that follows overwrites it.
            if not self._junk_seen:
                self._junk_seen = True
                log.warning("shared tile entry %s is unreadable, fetched again (logged once)", key)
            return None
        if not isinstance(self._local.get(key), Tile) or isinstance(entry, Tile):
            self._local.put(key, entry)
        return entry if self._fresh_entry(entry) else None

    async def _fetch(self, key: str, z: int, x: int, y: int, client: str | None) -> Tile | float:
        # Another replica may have just failed on this tile: its backoff holds here too.
        failure = await self._shared_failure(key)
        if self._holds_back(failure):
            self._remember_failure(key, failure)
            raise UpstreamError("status", failure.reason)
        if self._budget is not None:
            await self._budget.take(client)
        session = self._upstream.session(
            timeout_seconds=self.source.config.timeout_seconds,
            user_agent=self.source.config.user_agent,
            # Its own pool: a flood of misses against a hanging source cannot starve refreshes.
            pool=self.source.id,
            secrets=(self.source.config.api_key or "",),
        )
        started = time.perf_counter()
        now = self._clock.time()
        try:
            image = await self.source.fetch_tile(session, z, x, y)
        except NoTile:
            await self._store(key, now, NO_TILE_SECONDS)
            return now
        except UpstreamError as exc:
            self._metrics.upstream_errors.labels(self.source.id, exc.reason).inc()
            await self._record_failure(key, failure, str(exc), exc.retry_after)
            raise
        finally:
            self._metrics.fetch_duration.labels(self.source.id).observe(time.perf_counter() - started)
        self._failures.pop(key, None)
        tile = Tile(image.data, image.content_type, now, _etag(image.data))
        await self._store(key, tile, self._keep_seconds)
        return tile

    async def _shared_failure(self, key: str) -> Failure | None:
        try:
            raw = await self._cache.get("failed:" + key)
        except CacheUnavailable:
            return self._failures.get(key)
        return None if raw is None else Failure.decode(raw)

    def _remember_failure(self, key: str, failure: Failure) -> None:
        self._failures.pop(key, None)
        self._failures[key] = failure
        while len(self._failures) > MAX_LOCAL_FAILURES:
            self._failures.popitem(last=False)

    async def _record_failure(
        self, key: str, previous: Failure | None, reason: str, retry_after: float | None
    ) -> None:
        failures = min(MAX_FAILURES_COUNTED, (previous.failures if previous is not None else 0) + 1)
        wait = min(MAX_FAILED_TILE_SECONDS, FAILED_TILE_SECONDS * 2 ** (failures - 1))
        if retry_after is not None:  # the source said when to come back: never sooner
            wait = max(wait, min(retry_after, MAX_FAILED_TILE_SECONDS))
        failure = Failure(failures, self._clock.time() + wait, reason)
        self._remember_failure(key, failure)
        try:
            # Kept past its wait, so the next failure in a row doubles the wait again.
            await self._cache.set(
                "failed:" + key, failure.encode(), ttl_seconds=wait + MAX_FAILED_TILE_SECONDS
            )
        except CacheUnavailable:
            pass

    async def _store(self, key: str, entry: Tile | float, ttl: float) -> None:
        self._local.put(key, entry)
        try:
            await self._cache.set(key, _encode(entry), ttl_seconds=ttl)
        except CacheUnavailable:
            pass  # served from memory; the next process will fetch for itself
