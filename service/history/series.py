"""Where price history lives: one time series per item and tier in the cache (sorted sets in Redis).

Only prices the widget accepted are recorded: an item held back by the guard (shown ``stale`` at its
last good value, the new price waiting in ``pending``) or kept from an earlier fetch is not written
again, and a snapshot renewed by a 304 brings no point. The engine calls ``record`` once per new
snapshot across every process (the one whose compare-and-set won), so two replicas never record
the same refresh twice.

Tiers are downsampled on write, keeping the **last** price of each bucket (a closing price: the
newest point of an hour is what the hour ended on, and the current hour's point is always the
price on screen); points past a tier's span are trimmed by time in the same step:

- ``raw``: every accepted point, 48 hours;
- ``hourly``: one point per hour, 90 days;
- ``daily``: one point per UTC day, 5 years.

Amounts are stored in the item's unit (integer Rial, or US dollars with cents). A series never mixes
units: its key names the unit and, for Rial amounts, the ``unit_change_factor`` applied to the data
(a change of the Rial leaves dollars as they were), so when either changes a new series starts (the
old one expires after its span) instead of converting old points by a factor that is only
approximately right.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from cache.base import Cache
from service.engine.snapshot import Snapshot
from service.engine.tasks import Tasks
from service.widgets.prices import MAX_RIAL, MAX_USD, USD_ITEMS

log = logging.getLogger(__name__)

HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True)
class Tier:
    name: str
    #: One point per bucket of this many seconds (the latest); 0 keeps every point.
    bucket_seconds: float
    keep_seconds: float
    max_points: int


RAW = Tier("raw", 0.0, 2 * DAY, 10_000)
HOURLY = Tier("hourly", HOUR, 90 * DAY, 90 * 24 + 2)
DAILY = Tier("daily", DAY, 5 * 366 * DAY, 5 * 366 + 2)
TIERS = (RAW, HOURLY, DAILY)

#: ``range=`` of the history endpoint: the tier read and how far back.
RANGES: dict[str, tuple[Tier, float]] = {
    "1d": (RAW, DAY),
    "7d": (HOURLY, 7 * DAY),
    "30d": (HOURLY, 30 * DAY),
    "1y": (DAILY, 365 * DAY),
}

Amount = int | float
Point = tuple[float, Amount]
T = TypeVar("T")


def series_key(widget: str, item: str, unit: str, scale: float | None, tier: Tier) -> str:
    # ``unit_change_factor`` is a change of the Rial (to Toman, a redenomination): amounts quoted
    # in dollars keep their unit through it, so their series goes on unbroken.
    generation = unit if scale is None or unit == "USD" else f"{unit}x{scale!r}"
    return f"history:{widget}:{item}:{generation}:{tier.name}"


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def accepted_points(snapshot: Snapshot) -> list[tuple[str, str, float, Amount]]:
    """(key, unit, time, price) of the items this snapshot's own fetch brought and the widget shows."""
    found = []
    for item in snapshot.data.get("items", []):
        fetched_at = item.get("fetched_at")
        if item.get("stale") or not fetched_at:
            continue
        at = _epoch(fetched_at)
        if int(at) != int(snapshot.fetched_at):
            continue  # kept from an earlier fetch (a 304 renewal): recorded when it was fetched
        found.append((item["key"], item["unit"], at, item["price"]))
    return found


def current_unit(snapshot: Snapshot, key: str) -> tuple[str, float | None]:
    """The unit and applied unit change a reader of ``key`` sees now: which series is current."""
    scale = snapshot.data.get("unit_change_applied")
    for item in snapshot.data.get("items", []):
        if item["key"] == key:
            return item["unit"], scale
    return ("USD" if key in USD_ITEMS else "IRR"), scale


@dataclass
class Recording:
    """How recording has gone: what /health shows, since a failure never fails the refresh."""

    consecutive_failures: int = 0
    last_error: str | None = None
    last_success: float | None = None


class PriceHistory:
    """Records accepted prices and reads them back, each read prepared once per snapshot."""

    def __init__(self, cache: Cache, tasks: Tasks, widget: str = "prices", max_prepared: int = 256) -> None:
        self.cache = cache
        #: Owns the shared preparations, so shutdown cancels and awaits any still running.
        self.tasks = tasks
        self.widget = widget
        self.recording = Recording()
        self._max_prepared = max_prepared
        self._prepared: dict[tuple[Any, ...], asyncio.Future[Any]] = {}
        #: Items whose stored history held junk, so it is logged once per item, not per read.
        self._junk_logged: set[str] = set()

    async def record(self, snapshot: Snapshot) -> None:
        """Add this snapshot's accepted prices to every tier (the engine's written-listener)."""
        if snapshot.widget != self.widget:
            return
        scale = snapshot.data.get("unit_change_applied")
        writes = [
            self.cache.series_add(
                series_key(self.widget, key, unit, scale, tier),
                at,
                json.dumps(price).encode(),
                keep_seconds=tier.keep_seconds,
                bucket_seconds=tier.bucket_seconds,
                max_points=tier.max_points,
            )
            for key, unit, at, price in accepted_points(snapshot)
            for tier in TIERS
        ]
        results = await asyncio.gather(*writes, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            self.recording.consecutive_failures += 1
            self.recording.last_error = str(errors[0]) or type(errors[0]).__name__
            raise errors[0]
        if writes:
            self.recording = Recording(last_success=snapshot.fetched_at)

    async def points(self, snapshot: Snapshot, key: str, tier: Tier, start: float) -> list[Point]:
        """``key``'s points from ``start`` to the snapshot, in the unit the snapshot shows it in.

        Ends on the snapshot's own price when the recording has not landed yet (another process
        may still be writing it), so a chart never disagrees with the price beside it.
        """
        unit, scale = current_unit(snapshot, key)
        raw = await self.cache.series_range(
            series_key(self.widget, key, unit, scale, tier), start, snapshot.fetched_at + 1
        )
        bound = MAX_USD if unit == "USD" else MAX_RIAL
        found: list[Point] = []
        for at, value in raw:
            amount = _amount(value, bound)
            if amount is None:
                self._skipped(key)
            else:
                found.append((at, amount))
        for item_key, item_unit, at, price in accepted_points(snapshot):
            if item_key == key and item_unit == unit and (not found or found[-1][0] < at):
                if tier.bucket_seconds and found and _bucket(found[-1][0], tier) == _bucket(at, tier):
                    found[-1] = (at, price)
                else:
                    found.append((at, price))
        return found

    async def prepared(
        self, snapshot: Snapshot, what: tuple[Any, ...], make: Callable[[], Coroutine[Any, Any, T]]
    ) -> T:
        """``await make()`` once per (snapshot, what), shared by every request asking meanwhile.

        A failure is not kept: the next request for the same snapshot tries again.
        """
        key = (snapshot.digest, snapshot.fetched_at, *what)
        future: asyncio.Future[T] | None = self._prepared.get(key)
        if future is None:
            if self.tasks.closed:  # shutting down: this request alone waits for it, nothing outlives it
                return await make()
            future = self.tasks.spawn(make(), name=f"prepare {what[0] if what else 'history'}")
            self._prepared[key] = future
            future.add_done_callback(lambda done: self._forget_failed(key, done))
            while len(self._prepared) > self._max_prepared:
                del self._prepared[next(iter(self._prepared))]
        return await asyncio.shield(future)

    def _skipped(self, key: str) -> None:
        if key not in self._junk_logged:
            self._junk_logged.add(key)
            log.warning("price history of %s holds points this release never writes; skipped", key)

    def _forget_failed(self, key: tuple[Any, ...], future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            if self._prepared.get(key) is future:
                del self._prepared[key]


def _amount(value: bytes, bound: int) -> Amount | None:
    """A stored price as ``record`` writes it (a JSON number the price model accepts: positive,
    finite, below the unit's bound), or None. Every chart and ``history.json`` number comes
    through here: a stored ``1e999`` or ``NaN`` would reach readers as invalid JSON."""
    try:
        amount = json.loads(value)
    except (ValueError, RecursionError):  # also: not UTF-8, too many digits, nested too deep
        return None
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return None
    return amount if 0 < amount < bound else None  # NaN fails both comparisons


def _bucket(at: float, tier: Tier) -> int:
    return int(at // tier.bucket_seconds)
