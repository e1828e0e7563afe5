"""The running engine: one refresher per enabled widget, their schedules, and the cache listener."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

from cache.base import Cache
from providers.http import UpstreamClient
from service.engine.refresher import WidgetRefresher
from service.engine.store import SnapshotStore
from service.metrics import Metrics
from service.settings import EngineSettings
from service.widget_config import ConfiguredWidget


class Engine:
    def __init__(
        self,
        widgets: dict[str, ConfiguredWidget],
        cache: Cache,
        upstream: UpstreamClient,
        settings: EngineSettings,
        metrics: Metrics,
    ) -> None:
        enabled = [w for w in widgets.values() if w.enabled]
        self.settings = settings
        self.store = SnapshotStore(cache, metrics, [w.name for w in enabled])
        self.refreshers: dict[str, WidgetRefresher] = {
            w.name: WidgetRefresher(w, self.store, upstream, settings, metrics) for w in enabled
        }
        self._tasks: list[asyncio.Task[None]] = []
        metrics.watch_data_age(self._data_ages)

    def _data_ages(self) -> Iterator[tuple[str, float]]:
        now = time.time()
        for name in self.refreshers:
            snapshot = self.store.local(name)
            if snapshot is not None:
                yield name, snapshot.age(now)

    async def start(self) -> None:
        self._tasks.append(asyncio.ensure_future(self.store.listen()))
        if self.settings.background:
            for refresher in self.refreshers.values():
                self._tasks.append(asyncio.ensure_future(refresher.run_schedule()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for refresher in self.refreshers.values():
            await refresher.cancel()
