"""Prometheus metrics, on a registry of the app's own (so several apps can live in one process).

Under ``serve --workers N`` a scrape reaches one worker, yet must describe the whole service:
every worker writes its counters and histograms to files in one folder (prometheus_client's
multiprocess mode) and the worker that answers sums them. A worker that dies leaves its files, so
the service's counters never go backwards when it is replaced. Data age and missing items are read
at scrape time from the shared store, the same whichever worker answers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from service.engine.clock import Clock

#: prometheus_client's own switch for multiprocess mode: the folder every process writes to.
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


#: How far behind a scrape may be on another worker's request counts.
PUBLISH_SECONDS = 1.0


def share_between_processes(directory: str) -> None:
    """Make this (forked) process write its metrics to ``directory``, for the whole service's totals.

    prometheus_client picks its value storage when it is imported, from the environment; a forked
    worker inherited the parent's choice, so it is made again here, before any metric exists.
    """
    os.environ[MULTIPROCESS_DIR_ENV] = directory
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


class _DataAgeCollector(Collector):
    """Data age is read at scrape time, so it is never a stale number itself."""

    def __init__(self, ages: Callable[[], Iterable[tuple[str, float]]]) -> None:
        self._ages = ages

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "sidebar_widget_data_age_seconds",
            "Age of the data each widget serves (seconds since its last good fetch).",
            labels=["widget"],
        )
        for widget, age in self._ages():
            family.add_metric([widget], age)
        yield family


class _MissingItemsCollector(Collector):
    """Configured items no provider supplies, per widget, read from the served data at scrape time."""

    def __init__(self, counts: Callable[[], Iterable[tuple[str, int]]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "sidebar_widget_missing_items",
            "Configured items of a widget that no provider of its chain supplies.",
            labels=["widget"],
        )
        for widget, count in self._counts():
            family.add_metric([widget], count)
        yield family


_REQUESTS_HELP = "HTTP requests served, by route and status."
_LOOKUPS_HELP = "Snapshot lookups, by where they were answered: local, shared or miss."


class _HotPathCollector(Collector):
    """Request and lookup counts kept in plain dicts: the hot path pays a dict increment, not a lock."""

    def __init__(self, requests: dict[tuple[str, int], int], lookups: dict[str, int]) -> None:
        self._requests = requests
        self._lookups = lookups

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("sidebar_http_requests", _REQUESTS_HELP, labels=["route", "status"])
        for (route, status), count in list(self._requests.items()):
            requests.add_metric([route, str(status)], count)
        yield requests
        lookups = CounterMetricFamily("sidebar_cache_lookups", _LOOKUPS_HELP, labels=["result"])
        for result, count in list(self._lookups.items()):
            lookups.add_metric([result], count)
        yield lookups


class Metrics:
    """The service's metrics; ``registry`` is what /metrics exposes (call ``publish`` first)."""

    def __init__(self) -> None:
        shared_dir = os.environ.get(MULTIPROCESS_DIR_ENV)
        #: Where metric objects live; in multiprocess mode they are exposed through the files instead.
        own = CollectorRegistry(auto_describe=True)
        self.registry = own if shared_dir is None else CollectorRegistry(auto_describe=True)
        if shared_dir is not None:
            MultiProcessCollector(self.registry, path=shared_dir)  # type: ignore[no-untyped-call]
        self._shared = shared_dir is not None
        self.fetch_duration = Histogram(
            "sidebar_upstream_fetch_duration_seconds",
            "Duration of provider fetches, by provider.",
            ["provider"],
            registry=own,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.upstream_errors = Counter(
            "sidebar_upstream_errors_total",
            "Failed provider fetches, by provider and reason.",
            ["provider", "reason"],
            registry=own,
        )
        self.rejected_items = Counter(
            "sidebar_rejected_items_total",
            "Parts of accepted fetches rejected by sanity checks (kept at their last good value).",
            ["widget"],
            registry=own,
        )
        self.engine_errors = Counter(
            "sidebar_engine_errors_total",
            "Unexpected errors of the refresh engine itself (never a provider's failure), by widget.",
            ["widget"],
            registry=own,
        )
        self.not_modified = Counter(
            "sidebar_upstream_not_modified_total",
            "Provider fetches answered 304: the data held is confirmed current.",
            ["provider"],
            registry=own,
        )
        self.tiles_held_back = Counter(
            "sidebar_tiles_held_back_total",
            "Tile misses not fetched upstream: a spent budget (client, upstream) or a failed tile's backoff.",
            ["reason"],
            registry=own,
        )
        self.snapshot_listener_errors = Counter(
            "sidebar_snapshot_listener_errors_total",
            "Failures of work done after a snapshot is stored (e.g. recording price history), by widget.",
            ["widget"],
            registry=own,
        )
        self._requests: dict[tuple[str, int], int] = {}
        self._lookups: dict[str, int] = {"local": 0, "shared": 0, "miss": 0}
        if self._shared:
            # The hot path keeps its plain dict increments; their growth is copied to the shared
            # files by ``publish``, often enough for a scrape and never per request.
            self._requests_total = Counter(
                "sidebar_http_requests", _REQUESTS_HELP, ["route", "status"], registry=own
            )
            self._lookups_total = Counter("sidebar_cache_lookups", _LOOKUPS_HELP, ["result"], registry=own)
            self._published_requests: dict[tuple[str, int], int] = {}
            self._published_lookups: dict[str, int] = {}
        else:
            self.registry.register(_HotPathCollector(self._requests, self._lookups))

    @property
    def shared(self) -> bool:
        """Whether these metrics are summed with other processes' (``serve --workers N``)."""
        return self._shared

    def publish(self) -> None:
        """Copy the hot path's counts since the last call to the shared files (multiprocess mode)."""
        if not self._shared:
            return
        for (route, status), count in list(self._requests.items()):
            done = self._published_requests.get((route, status), 0)
            if count > done:
                self._requests_total.labels(route, str(status)).inc(count - done)
                self._published_requests[(route, status)] = count
        for result, count in list(self._lookups.items()):
            done = self._published_lookups.get(result, 0)
            if count > done:
                self._lookups_total.labels(result).inc(count - done)
                self._published_lookups[result] = count

    def watch_data_age(self, ages: Callable[[], Iterable[tuple[str, float]]]) -> None:
        self.registry.register(_DataAgeCollector(ages))

    def watch_missing_items(self, counts: Callable[[], Iterable[tuple[str, int]]]) -> None:
        self.registry.register(_MissingItemsCollector(counts))

    def count_lookup(self, result: str) -> None:
        self._lookups[result] += 1

    def http_requests_for(self, route: str) -> int:
        return sum(count for (counted, _), count in self._requests.items() if counted == route)

    def count_hot_hit(self, request: tuple[str, int]) -> None:
        """A request answered from a prepared answer: a local lookup and a (route, status) request."""
        self._lookups["local"] += 1
        requests = self._requests
        requests[request] = requests.get(request, 0) + 1

    def count_request(self, route: str, status: int) -> None:
        key = (route, status)
        self._requests[key] = self._requests.get(key, 0) + 1


async def publish_every(metrics: Metrics, clock: Clock, seconds: float = PUBLISH_SECONDS) -> None:
    """Keep the shared files current, so a scrape answered by another worker sees this one's counts."""
    while True:
        await clock.sleep(seconds)
        metrics.publish()
