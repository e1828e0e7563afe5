"""The running engine: one refresher per enabled widget, their schedules, the cache listener.

Everything it starts in the background is owned by one ``Tasks`` and stopped with it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from cache.base import Cache
from providers.http import UpstreamClient
from service.engine.clock import Clock, SharedClock
from service.engine.refresher import WidgetRefresher
from service.engine.single_flight import SingleFlight
from service.engine.snapshot import Snapshot
from service.engine.store import SnapshotStore, WrittenListener
from service.engine.tasks import Tasks
from service.metrics import Metrics
from service.settings import EngineSettings
from service.widget_config import ConfiguredWidget

log = logging.getLogger(__name__)

#: How often this process re-measures its offset from the shared clock (Redis TIME).
CLOCK_SYNC_SECONDS = 60.0


class Engine:
    def __init__(
        self,
        widgets: dict[str, ConfiguredWidget],
        cache: Cache,
        upstream: UpstreamClient,
        settings: EngineSettings,
        metrics: Metrics,
        *,
        clock: Clock | None = None,
    ) -> None:
        enabled = [w for w in widgets.values() if w.enabled]
        self.settings = settings
        self.tasks = Tasks()
        self.clock = SharedClock(clock)
        self.store = SnapshotStore(
            cache,
            metrics,
            [w.name for w in enabled],
            clock=self.clock,
            tasks=self.tasks,
            models={w.name: w.spec.data_model for w in enabled},
        )
        longest_chain = max((w.chain_timeout_seconds for w in enabled), default=10.0)
        # A follower waits for another process at most as long as a whole chain may take.
        self.flight: SingleFlight[Snapshot] = SingleFlight(
            cache,
            self.tasks,
            max_wait_seconds=2 * longest_chain + settings.lock_margin_seconds,
            lock_seconds=settings.lock_seconds,
        )
        self.refreshers: dict[str, WidgetRefresher] = {
            w.name: WidgetRefresher(w, self.store, upstream, settings, metrics, self.flight) for w in enabled
        }
        metrics.watch_data_age(self._data_ages)
        metrics.watch_missing_items(self._missing_items)

    def on_new_snapshot(self, listener: WrittenListener) -> None:
        """``listener`` runs once per new snapshot across every process sharing the cache (in the
        process that stored it), e.g. to record history; it can never fail the refresh."""
        self.store.on_written(listener)

    def _data_ages(self) -> Iterator[tuple[str, float]]:
        now = self.clock.time()
        for name in self.refreshers:
            snapshot = self.store.local(name)
            if snapshot is not None:
                yield name, snapshot.age(now)

    def _missing_items(self) -> Iterator[tuple[str, int]]:
        for name in self.refreshers:
            snapshot = self.store.local(name)
            missing = snapshot.data.get("missing") if snapshot is not None else None
            if isinstance(missing, list):
                yield name, len(missing)

    async def start(self) -> None:
        await self.store.sync_clock()
        if self.store.cache.shared:
            self.tasks.spawn(self.store.listen(), name="snapshot listener")
            self.tasks.spawn(self._keep_clock_synced(), name="clock sync")
        if self.settings.background:
            for refresher in self.refreshers.values():
                self.tasks.spawn(refresher.run_schedule(), name=f"schedule {refresher.name}")

    async def _keep_clock_synced(self) -> None:
        while True:
            await self.clock.local.sleep(CLOCK_SYNC_SECONDS)
            with contextlib.suppress(Exception):
                await self.store.sync_clock()

    async def stop(self) -> None:
        await self.tasks.close()
