"""Where snapshots live: an in-process copy in front of the shared cache.

Hot reads never leave the process. Every write goes to the local copy and then to the shared
cache, followed by a pub/sub message so other processes reload within milliseconds. If the shared
cache is down, reads and writes carry on locally; when it is back, the listener reconnects and
reconciles both directions (newer wins).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from cache.base import Cache, CacheUnavailable
from service.engine.snapshot import Snapshot
from service.metrics import Metrics

log = logging.getLogger(__name__)

CHANNEL = "snapshots"


def snapshot_key(widget: str) -> str:
    return f"snapshot:{widget}"


class SnapshotStore:
    def __init__(self, cache: Cache, metrics: Metrics, widgets: list[str]) -> None:
        self.cache = cache
        self._metrics = metrics
        self._widgets = widgets
        self._local: dict[str, Snapshot] = {}
        self._listeners: list[Callable[[str], None]] = []
        self.available = True
        self.last_error: str | None = None
        self.response_time: float | None = None

    def on_change(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

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
            self._mark_down(exc)
            return local
        self._mark_up()
        if raw is None:
            return local
        shared = Snapshot.from_bytes(raw)
        return self._adopt(shared)

    async def save(self, snapshot: Snapshot) -> None:
        self._set_local(snapshot)
        if not self.cache.shared:
            return
        try:
            await self.cache.set(snapshot_key(snapshot.widget), snapshot.to_bytes())
            await self.cache.publish(CHANNEL, f"{snapshot.widget} {snapshot.fetched_at!r}")
        except CacheUnavailable as exc:
            self._mark_down(exc)
        else:
            self._mark_up()

    async def ping(self) -> bool:
        try:
            self.response_time = await self.cache.ping()
        except CacheUnavailable as exc:
            self._mark_down(exc)
            return False
        self._mark_up()
        return True

    async def listen(self, retry_seconds: float = 1.0) -> None:
        """Follow other processes' writes; reconnect and reconcile after an outage. Runs forever."""
        if not self.cache.shared:
            return
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
                self._mark_down(exc)
            except Exception:  # the listener must outlive any surprise, or replicas drift apart
                log.exception("snapshot listener failed; restarting it")
            await asyncio.sleep(retry_seconds)

    async def reconcile(self) -> None:
        """Newer wins, in both directions: adopt others' writes, push what we fetched while cut off."""
        for widget in self._widgets:
            raw = await self.cache.get(snapshot_key(widget))  # CacheUnavailable: the listener retries
            shared = Snapshot.from_bytes(raw) if raw is not None else None
            local = self._local.get(widget)
            if local is not None and (shared is None or local.fetched_at > shared.fetched_at):
                await self.cache.set(snapshot_key(widget), local.to_bytes())
                await self.cache.publish(CHANNEL, f"{widget} {local.fetched_at!r}")
            elif shared is not None:
                self._adopt(shared)

    def _on_message(self, message: str) -> None:
        widget, _, fetched_at = message.partition(" ")
        local = self._local.get(widget)
        try:
            announced = float(fetched_at)
        except ValueError:
            return
        if local is None or announced > local.fetched_at:
            # Reload off the listener's path so a slow GET does not delay the next message.
            asyncio.ensure_future(self.load_shared(widget))

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
