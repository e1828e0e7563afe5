"""Where snapshots live: an in-process copy in front of the shared cache.

Hot reads never leave the process. Every write goes to the local copy and then to the shared
cache, followed by a pub/sub message so other processes reload within milliseconds. If the shared
cache is down, reads and writes carry on locally; when it is back, the listener reconnects and
reconciles both directions (newer wins).

A shared cache that refuses writes (Redis out of memory, with nothing it may evict) is not down: it
answers reads and pings. That state is the cache's own (``Cache.refusing_writes``, logged by it when
it starts and when it ends); the store keeps calling the cache reachable meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from pydantic import BaseModel, ValidationError

from cache.base import FUTURE_TOLERANCE_SECONDS, Cache, CacheFull, CacheUnavailable
from service.engine.clock import SharedClock
from service.engine.snapshot import Snapshot, SnapshotUnreadable
from service.engine.tasks import Tasks
from service.metrics import Metrics

log = logging.getLogger(__name__)

CHANNEL = "snapshots"
#: 2020-01-01: no snapshot of this service was fetched before.
EARLIEST = 1577836800.0


#: Called with a snapshot this process stored: once per snapshot across every process.
WrittenListener = Callable[[Snapshot], Awaitable[None]]


def snapshot_key(widget: str) -> str:
    return f"snapshot:{widget}"


class SnapshotStore:
    def __init__(
        self,
        cache: Cache,
        metrics: Metrics,
        widgets: list[str],
        *,
        clock: SharedClock | None = None,
        tasks: Tasks | None = None,
        models: Mapping[str, type[BaseModel]] | None = None,
    ) -> None:
        self.cache = cache
        #: Each widget's data model: a shared snapshot is only used if its data passes it.
        self._models = dict(models or {})
        self.clock = clock or SharedClock()
        self.tasks = tasks or Tasks()
        self._metrics = metrics
        self._widgets = widgets
        #: Widgets whose shared snapshot could not be read, so it is logged once, not per read.
        self._unreadable: set[str] = set()
        self._local: dict[str, Snapshot] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._written: list[WrittenListener] = []
        #: Widgets whose written-listeners are failing, so a failure is logged once, not per refresh.
        self._listener_failing: set[str] = set()
        self.available = True
        self.last_error: str | None = None
        self.response_time: float | None = None

    def on_change(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    def on_written(self, listener: WrittenListener) -> None:
        """Run ``listener`` after each snapshot this process wrote: once per snapshot across every
        process (the winner of the compare-and-set), never for one adopted from another process or
        carried in memory while the shared cache is down. Its failures never fail the refresh.

        A snapshot the shared cache refused to store (full) is this process's alone, so its listeners
        run: their own writes are refused too, and counted as failures rather than silently skipped.
        """
        self._written.append(listener)

    def local(self, widget: str) -> Snapshot | None:
        """The in-process copy, uncounted (for metrics and health)."""
        return self._local.get(widget)

    def peek(self, widget: str) -> Snapshot | None:
        """The in-process copy: no I/O, the hot path."""
        snapshot = self._local.get(widget)
        if snapshot is not None:
            self._metrics.count_lookup("local")
        return snapshot

    async def load(self, widget: str) -> Snapshot | None:
        """The local copy, else the shared one (kept locally from then on)."""
        snapshot = self.peek(widget)
        if snapshot is not None:
            return snapshot
        snapshot = await self.load_shared(widget)
        self._metrics.count_lookup("shared" if snapshot is not None else "miss")
        return snapshot

    async def load_shared(self, widget: str) -> Snapshot | None:
        """Ask the shared cache (after taking a lock, to see other processes' work)."""
        local = self._local.get(widget)
        if not self.cache.shared:
            return local
        try:
            raw = await self.cache.get(snapshot_key(widget))
        except CacheUnavailable as exc:
            self._failed(exc)
            return local
        self._mark_up()
        shared = self._decode(widget, raw)
        return local if shared is None else self._adopt(shared)

    def _decode(self, widget: str, raw: bytes | None) -> Snapshot | None:
        """The shared snapshot, or None when there is none or it cannot be read (a miss)."""
        if raw is None:
            return None
        try:
            snapshot = Snapshot.from_bytes(raw)
            self._check(widget, snapshot)
        except SnapshotUnreadable as exc:
            if widget not in self._unreadable:
                self._unreadable.add(widget)
                log.warning("shared snapshot of %s is unreadable, treated as missing: %s", widget, exc)
            return None
        self._unreadable.discard(widget)
        return snapshot

    def _check(self, widget: str, snapshot: Snapshot) -> None:
        """Refuse a decodable snapshot that is still not one we could have written."""
        if snapshot.widget != widget:
            raise SnapshotUnreadable(f"holds widget {snapshot.widget!r}")
        if not EARLIEST <= snapshot.fetched_at <= self.clock.time() + FUTURE_TOLERANCE_SECONDS:
            raise SnapshotUnreadable(f"fetched_at {snapshot.fetched_at!r} is not a time it could have been")
        model = self._models.get(widget)
        if model is not None:
            try:
                model.model_validate(snapshot.data)
            except ValidationError as exc:
                raise SnapshotUnreadable(
                    f"data fails the widget's model ({exc.error_count()} error(s))"
                ) from None

    async def save(self, snapshot: Snapshot) -> bool:
        """Keep ``snapshot`` unless a newer one exists; False when the shared cache held a newer one.

        Redis decides (compare-and-set on ``fetched_at``, on the shared clock): a process that
        finishes late never overwrites what another stored after it.
        """
        if not self.cache.shared:
            self._set_local(snapshot)
            await self._notify_written(snapshot)
            return True
        try:
            written = await self._write_if_newer(snapshot)
        except CacheUnavailable as exc:
            self._failed(exc)
            # Carried locally; pushed by the next write or when the listener reconnects (reconcile).
            kept = self._adopt(snapshot)
            if isinstance(exc, CacheFull) and kept is snapshot:
                await self._notify_written(snapshot)
            return True
        self._mark_up()
        if written:
            self._unreadable.discard(snapshot.widget)  # a good value is there now
            self._set_local(snapshot)
            await self._notify_written(snapshot)
            return True
        await self.load_shared(snapshot.widget)  # adopt the newer one
        return False

    async def _notify_written(self, snapshot: Snapshot) -> None:
        widget, failed = snapshot.widget, False
        for listener in self._written:
            try:
                await listener(snapshot)
            except Exception as exc:  # what follows a stored snapshot must never undo its refresh
                failed = True
                self._metrics.snapshot_listener_errors.labels(widget).inc()
                if widget not in self._listener_failing:
                    log.warning("widget %s: work after storing a snapshot failed: %r", widget, exc)
        if failed:
            self._listener_failing.add(widget)
        elif widget in self._listener_failing:
            self._listener_failing.discard(widget)
            log.info("widget %s: work after storing a snapshot works again", widget)

    async def _write_if_newer(self, snapshot: Snapshot) -> bool:
        return await self.cache.set_if_newer(
            snapshot_key(snapshot.widget),
            snapshot.to_bytes(),
            snapshot.fetched_at,
            CHANNEL,
            f"{snapshot.widget} {snapshot.fetched_at!r}",
        )

    async def sync_clock(self) -> None:
        """Measure this host's offset from the shared cache's clock (Redis ``TIME``)."""
        if not self.cache.shared:
            return
        local = self.clock.local
        before = local.time()
        try:
            server = await self.cache.server_time()
        except CacheUnavailable as exc:
            self._failed(exc)
            return
        self.clock.synced(before, server, local.time())

    async def ping(self) -> bool:
        try:
            self.response_time = await self.cache.ping()
        except CacheUnavailable as exc:
            self._failed(exc)
            return False
        self._mark_up()
        return True

    async def listen(self, retry_seconds: float = 1.0) -> None:
        """Follow other processes' writes; reconnect and reconcile after an outage. Runs forever."""
        if not self.cache.shared:
            return
        listener_failing = False
        while True:
            try:
                async for message in self.cache.subscribe(CHANNEL):
                    if message == "":
                        # Subscribed: anything written from now on will be announced, so this is
                        # the moment to catch up on what happened while we were not listening.
                        await self.reconcile()
                        self._mark_up()
                    else:
                        self._on_message(message)
            except CacheUnavailable as exc:
                self._failed(exc)
            except Exception:  # the listener must outlive any surprise, or replicas drift apart
                if not listener_failing:  # once, with its traceback; not every second
                    log.exception("snapshot listener failed; restarting it")
                listener_failing = True
            else:
                listener_failing = False
            await asyncio.sleep(retry_seconds)

    async def reconcile(self) -> None:
        """Newer wins, in both directions: adopt others' writes, push what we fetched while cut off."""
        for widget in self._widgets:
            raw = await self.cache.get(snapshot_key(widget))  # CacheUnavailable: the listener retries
            shared = self._decode(widget, raw)
            local = self._local.get(widget)
            if local is not None and (shared is None or local.fetched_at > shared.fetched_at):
                try:
                    pushed = await self._write_if_newer(local)
                except CacheFull:
                    # Kept here and served; the next write carries it. Failing the whole
                    # reconcile would drop the subscription and retry it every second.
                    continue
                if not pushed:
                    await self.load_shared(widget)
            elif shared is not None:
                self._adopt(shared)

    def _on_message(self, message: str) -> None:
        widget, _, fetched_at = message.partition(" ")
        local = self._local.get(widget)
        try:
            announced = float(fetched_at)
        except ValueError:
            return
        if widget in self._widgets and (local is None or announced > local.fetched_at):
            # Reload off the listener's path so a slow GET does not delay the next message.
            self.tasks.spawn(self.load_shared(widget), name=f"reload {widget}")

    def _adopt(self, shared: Snapshot) -> Snapshot:
        local = self._local.get(shared.widget)
        if local is not None and local.fetched_at >= shared.fetched_at:
            return local
        self._set_local(shared)
        return shared

    def _set_local(self, snapshot: Snapshot) -> None:
        self._local[snapshot.widget] = snapshot
        for listener in self._listeners:
            listener(snapshot.widget)

    def _failed(self, exc: CacheUnavailable) -> None:
        if isinstance(exc, CacheFull):
            self._mark_up()  # it answered: reachable, only refusing writes (the cache's own state)
        else:
            self._mark_down(exc)

    def _mark_down(self, exc: Exception) -> None:
        if self.available:
            log.warning("shared cache unreachable, serving from memory: %s", exc)
        self.available = False
        self.last_error = str(exc) or type(exc).__name__

    def _mark_up(self) -> None:
        if not self.available:
            log.info("shared cache reachable again")
        self.available = True
        self.last_error = None
