"""Prometheus metrics, on a registry of the app's own (so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
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
        self.cache_lookups = Counter(
            "sidebar_cache_lookups_total",
            "Snapshot lookups, by where they were answered: local, shared or miss.",
            ["result"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "sidebar_http_requests_total",
            "HTTP requests served, by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, int], Counter] = {}
        self._lookup_children = {
            result: self.cache_lookups.labels(result) for result in ("local", "shared", "miss")
        }

    def watch_data_age(self, ages: Callable[[], Iterable[tuple[str, float]]]) -> None:
        self.registry.register(_DataAgeCollector(ages))

    def count_lookup(self, result: str) -> None:
        self._lookup_children[result].inc()

    def count_request(self, route: str, status: int) -> None:
        # Children are cached: labels() costs a lock and a dict build on every call.
        child = self._request_children.get((route, status))
        if child is None:
            child = self._request_children[(route, status)] = self.http_requests.labels(route, str(status))
        child.inc()
