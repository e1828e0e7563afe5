"""What is recorded (accepted prices only, once) and how series keep units apart."""

from __future__ import annotations

import asyncio
from typing import Any

from cache.memory import MemoryCache
from service.engine.clock import SystemClock
from service.engine.snapshot import Snapshot
from service.engine.tasks import Tasks
from service.history.series import DAY, HOUR, HOURLY, RAW, PriceHistory, accepted_points
from service.history.sparkline import MIN_SPAN, geometry, sparkline
from service.widgets.prices import PricesOptions, reconcile
from tests.support.prices import item
from tests.support.waiting import eventually

T0 = 1_795_000_000.0


def snapshot_of(data: dict[str, Any], at: float) -> Snapshot:
    return Snapshot.create("prices", "tgju", at, data)


def test_held_back_and_kept_prices_are_not_recorded_only_accepted_ones():
    options = PricesOptions(items=["sekee", "price_dollar_rl", "price_eur"])
    first, _ = reconcile(
        {"items": [item("sekee", 1_000_000_000), item("price_dollar_rl", 1_000_000)]}, None, options, T0
    )
    # The dollar jumps ×10 (held back, shown stale at its last good value); the coin is gone from
    # this fetch (kept, stale); the euro is new.
    later = {"items": [item("price_dollar_rl", 10_000_000), item("price_eur", 1_200_000)]}
    second, _ = reconcile(later, first, options, T0 + 300)
    assert "price_dollar_rl" in second["pending"]

    assert [(k, p) for k, _, _, p in accepted_points(snapshot_of(first, T0))] == [
        ("sekee", 1_000_000_000),
        ("price_dollar_rl", 1_000_000),
    ]
    assert [(k, p) for k, _, _, p in accepted_points(snapshot_of(second, T0 + 300))] == [
        ("price_eur", 1_200_000)
    ]


def test_a_snapshot_renewed_by_a_304_brings_no_new_point():
    options = PricesOptions(items=["sekee"])
    data, _ = reconcile({"items": [item("sekee", 1_000_000_000)]}, None, options, T0)

    assert accepted_points(snapshot_of(data, T0).renewed(T0 + 300)) == []


async def test_a_declared_unit_change_starts_a_new_series_instead_of_mixing_units():
    options = PricesOptions(items=["sekee", "rob", "nim"], unit_change_factor=0.1)
    history = PriceHistory(MemoryCache(SystemClock()), Tasks())
    rial = [item("sekee", 1_000_000_000), item("rob", 300_000_000), item("nim", 500_000_000)]
    before, _ = reconcile({"items": rial}, None, options, T0)
    await history.record(snapshot_of(before, T0))
    toman = [{**i, "price": i["price"] // 10} for i in rial]
    after, _ = reconcile({"items": toman}, before, options, T0 + 300)
    assert after["unit_change_applied"] == 0.1 and after["items"][0]["price"] == 100_000_000
    await history.record(snapshot_of(after, T0 + 300))

    old = await history.points(snapshot_of(before, T0), "sekee", RAW, T0 - DAY)
    new = await history.points(snapshot_of(after, T0 + 300), "sekee", RAW, T0 - DAY)

    assert [p for _, p in old] == [1_000_000_000]
    assert [p for _, p in new] == [100_000_000]


async def test_a_rial_unit_change_leaves_the_dollar_series_whole():
    options = PricesOptions(items=["sekee", "rob", "nim", "ons"], unit_change_factor=0.1)
    history = PriceHistory(MemoryCache(SystemClock()), Tasks())
    rial = [item("sekee", 1_000_000_000), item("rob", 300_000_000), item("nim", 500_000_000)]
    ounce = {**item("ons", 4197), "unit": "USD", "price": 4197.25}
    before, _ = reconcile({"items": [*rial, ounce]}, None, options, T0)
    await history.record(snapshot_of(before, T0))
    toman = [{**i, "price": i["price"] // 10} for i in rial]
    after, _ = reconcile({"items": [*toman, {**ounce, "price": 4201.5}]}, before, options, T0 + 300)
    assert after["unit_change_applied"] == 0.1
    await history.record(snapshot_of(after, T0 + 300))

    dollars = await history.points(snapshot_of(after, T0 + 300), "ons", RAW, T0 - DAY)

    # The ounce is quoted in dollars before and after Rial becomes Toman: one unbroken series.
    assert [p for _, p in dollars] == [4197.25, 4201.5]


async def test_a_reader_sees_the_snapshots_own_price_before_its_recording_lands():
    options = PricesOptions(items=["sekee"])
    history = PriceHistory(MemoryCache(SystemClock()), Tasks())
    first, _ = reconcile({"items": [item("sekee", 1_000_000_000)]}, None, options, T0)
    await history.record(snapshot_of(first, T0))
    second, _ = reconcile({"items": [item("sekee", 1_010_000_000)]}, first, options, T0 + 600)

    # Another process stored the second snapshot and is still recording it.
    raw = await history.points(snapshot_of(second, T0 + 600), "sekee", RAW, T0 - DAY)
    hourly = await history.points(snapshot_of(second, T0 + 600), "sekee", HOURLY, T0 - DAY)

    assert [p for _, p in raw] == [1_000_000_000, 1_010_000_000]
    assert [p for _, p in hourly][-1] == 1_010_000_000 and len(hourly) <= 2


async def test_a_preparation_still_running_at_shutdown_is_cancelled_and_awaited_by_its_owner():
    tasks = Tasks()
    history = PriceHistory(MemoryCache(SystemClock()), tasks)
    snapshot = snapshot_of({"items": []}, T0)
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def slow() -> str:
        started.set()
        try:
            await asyncio.Event().wait()  # a read that never answers
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    reader = asyncio.ensure_future(history.prepared(snapshot, ("json",), slow))
    await eventually(started.is_set, message="the preparation never started")

    assert len(tasks) == 1  # held by the owner shutdown waits for, not loose on the loop
    await tasks.close()

    assert cancelled.is_set() and len(tasks) == 0
    await asyncio.wait([reader])
    assert reader.cancelled()


async def test_a_preparation_asked_for_during_shutdown_is_made_by_the_request_itself():
    tasks = Tasks()
    history = PriceHistory(MemoryCache(SystemClock()), tasks)
    await tasks.close()

    async def make() -> str:
        return "made"

    assert await history.prepared(snapshot_of({"items": []}, T0), ("json",), make) == "made"
    assert len(tasks) == 0


def test_the_sparkline_rises_upwards_and_spans_its_day():
    points = [(T0, 100), (T0 + DAY / 2, 150), (T0 + DAY, 200)]

    line = geometry(points, T0, T0 + DAY)

    assert line == "0.0,16.5 30.0,9.0 60.0,1.5"
    assert geometry(points[:1], T0, T0 + DAY) == ""
    flat = sparkline([(T0, 100), (T0 + MIN_SPAN, 100)], T0 + MIN_SPAN)
    assert flat is not None and flat.direction == "flat" and flat.change_24h is None
    assert set(y for _, y in (xy.split(",") for xy in flat.points.split())) == {"9.0"}


def test_a_new_install_draws_no_dot_or_tick_until_its_prices_span_a_few_hours():
    # Every refresh of a service deployed minutes ago sits at the right edge of a 24-hour axis.
    minutes = [(T0 + i * 300, 100 + i) for i in range(12)]  # an hour of five-minute refreshes
    almost = [(T0, 100), (T0 + MIN_SPAN - 1, 101)]
    enough = [(T0, 100), (T0 + HOUR, 102), (T0 + MIN_SPAN, 101)]

    assert MIN_SPAN == 3 * HOUR  # an eighth of the axis: a line, not a mark at its edge
    assert sparkline(minutes, minutes[-1][0]) is None
    assert sparkline(almost, almost[-1][0]) is None
    line = sparkline(enough, enough[-1][0])
    assert line is not None and line.direction == "up" and line.change_24h is None
    xs = [float(xy.split(",")[0]) for xy in line.points.split()]
    assert xs == [52.5, 55.0, 60.0]  # the last three hours of the day's axis, 7.5 of its 60 units


def test_a_day_old_price_draws_the_whole_day_at_once():
    # The price of 24 hours ago is known (a service that was down and came back): the line starts
    # from it at the left edge, however recent the other points are.
    end = T0 + DAY
    line = sparkline([(T0 - 60, 100), (end - 600, 104), (end, 105)], end)

    assert line is not None and line.points.startswith("0.0,") and line.change_24h == 5
