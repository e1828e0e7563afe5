"""Prometheus metrics, on a registry of the app's own (so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


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


class _HotPathCollector(Collector):
    """Request and lookup counts kept in plain dicts: the hot path pays a dict increment, not a lock."""

    def __init__(self, requests: dict[tuple[str, int], int], lookups: dict[str, int]) -> None:
        self._requests = requests
        self._lookups = lookups

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "sidebar_http_requests", "HTTP requests served, by route and status.", labels=["route", "status"]
        )
        for (route, status), count in list(self._requests.items()):
            requests.add_metric([route, str(status)], count)
        yield requests
        lookups = CounterMetricFamily(
            "sidebar_cache_lookups",
            "Snapshot lookups, by where they were answered: local, shared or miss.",
            labels=["result"],
        )
        for result, count in list(self._lookups.items()):
            lookups.add_metric([result], count)
        yield lookups


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.fetch_duration = Histogram(
            "sidebar_upstream_fetch_duration_seconds",
            "Duration of provider fetches, by provider.",
            ["provider"],
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.upstream_errors = Counter(
            "sidebar_upstream_errors_total",
            "Failed provider fetches, by provider and reason.",
            ["provider", "reason"],
            registry=self.registry,
        )
        self.rejected_items = Counter(
            "sidebar_rejected_items_total",
            "Parts of accepted fetches rejected by sanity checks (kept at their last good value).",
            ["widget"],
            registry=self.registry,
        )
        self.engine_errors = Counter(
            "sidebar_engine_errors_total",
            "Unexpected errors of the refresh engine itself (never a provider's failure), by widget.",
            ["widget"],
            registry=self.registry,
        )
        self.not_modified = Counter(
            "sidebar_upstream_not_modified_total",
            "Provider fetches answered 304: the data held is confirmed current.",
            ["provider"],
            registry=self.registry,
        )
        self.tiles_held_back = Counter(
            "sidebar_tiles_held_back_total",
            "Tile misses not fetched upstream: a spent budget (client, upstream) or a failed tile's backoff.",
            ["reason"],
            registry=self.registry,
        )
        self.snapshot_listener_errors = Counter(
            "sidebar_snapshot_listener_errors_total",
            "Failures of work done after a snapshot is stored (e.g. recording price history), by widget.",
            ["widget"],
            registry=self.registry,
        )
        self._requests: dict[tuple[str, int], int] = {}
        self._lookups: dict[str, int] = {"local": 0, "shared": 0, "miss": 0}
        self.registry.register(_HotPathCollector(self._requests, self._lookups))

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
