"""Sparklines and the 24-hour change, computed once per snapshot from the raw tier.

The geometry is plain numbers (an SVG ``points`` list); the template turns it into an inline SVG
with Persian accessible text. Time runs left to right, as on every price chart Iranian sites show.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from cache.base import CacheUnavailable
from service.engine.snapshot import Snapshot
from service.history.series import DAY, HOUR, RAW, Amount, Point, PriceHistory

#: The drawing's own coordinates; the template scales it to the row.
WIDTH = 60.0
HEIGHT = 18.0
#: Keeps the stroke inside the box at the lowest and highest points.
PAD = 1.5
#: More points than this are thinned: a 60-unit-wide line cannot show more.
MAX_POINTS = 60
#: A reference price for the 24-hour change may be this much older than 24 hours (refreshes are
#: not exactly on the hour); older than that, the change is unknown rather than a 25-hour one.
REFERENCE_SLACK = HOUR
#: A line is drawn once its prices span this much of the 24-hour axis (an eighth of it, about 30 px
#: of a sidebar row). A new install's first points all sit at the right edge (x ≈ 60): drawn, they
#: are a stray dot or tick for hours, not a trend.
MIN_SPAN = 3 * HOUR

Direction = Literal["up", "down", "flat"]


@dataclass(frozen=True)
class Sparkline:
    #: SVG polyline points ("x,y x,y …"); empty until the prices span ``MIN_SPAN``.
    points: str
    direction: Direction
    first: Amount
    last: Amount
    low: Amount
    high: Amount
    #: Against the price 24 hours before the snapshot; None until the history reaches that far.
    change_24h: Amount | None
    change_24h_percent: float | None

    @property
    def change_24h_direction(self) -> Direction:
        return _direction(self.change_24h or 0)


def _direction(delta: float) -> Direction:
    return "up" if delta > 0 else "down" if delta < 0 else "flat"


def _thin(points: list[Point]) -> list[Point]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / (MAX_POINTS - 1)
    return [points[int(i * step)] for i in range(MAX_POINTS - 1)] + [points[-1]]


def geometry(points: list[Point], start: float, end: float) -> str:
    """The polyline of ``points`` over [start, end], price rising upwards."""
    if len(points) < 2:
        return ""
    prices = [price for _, price in points]
    low, high = min(prices), max(prices)
    span = end - start or 1.0
    spread = high - low
    coords = []
    for at, price in _thin(points):
        x = (at - start) / span * WIDTH
        # A flat line sits in the middle rather than on an edge.
        y = HEIGHT / 2 if spread == 0 else PAD + (high - price) / spread * (HEIGHT - 2 * PAD)
        coords.append(f"{x:.1f},{y:.1f}")
    return " ".join(coords)


def sparkline(points: list[Point], end: float) -> Sparkline | None:
    """The last 24 hours to ``end`` (None when there is neither a line nor a change to show).

    When the price of 24 hours ago is known the line starts from it, so the line's direction, its
    colour and the 24-hour change beside it always agree."""
    start = end - DAY
    reference = [price for at, price in points if end - DAY - REFERENCE_SLACK <= at <= start]
    shown = [(at, price) for at, price in points if at > start]
    if reference:
        shown.insert(0, (start, reference[-1]))
    drawn = len(shown) >= 2 and shown[-1][0] - shown[0][0] >= MIN_SPAN
    if not drawn and not reference:
        # Too short a history for a line and no day-old price for a change: no row (a box just
        # deployed would otherwise carry an empty row, or a dot, under every price).
        return None
    prices = [price for _, price in shown]
    first, last = prices[0], prices[-1]
    change = percent = None
    if reference:
        change = last - first
        change = round(change, 2) if isinstance(change, float) else change
        percent = round(change / first * 100, 2)
    return Sparkline(
        points=geometry(shown, start, end) if drawn else "",
        direction=_direction(last - first),
        first=first,
        last=last,
        low=min(prices),
        high=max(prices),
        change_24h=change,
        change_24h_percent=percent,
    )


async def sparklines(history: PriceHistory, snapshot: Snapshot) -> dict[str, Sparkline]:
    """Every shown item's sparkline for this snapshot (once per snapshot, shared by requests)."""

    async def make() -> dict[str, Sparkline]:
        end = snapshot.fetched_at
        found = {}
        for item in snapshot.data.get("items", []):
            points = await history.points(snapshot, item["key"], RAW, end - DAY - REFERENCE_SLACK)
            line = sparkline(points, end)
            if line is not None:
                found[item["key"]] = line
        return found

    return await history.prepared(snapshot, ("sparklines",), make)


async def fragment_context(history: PriceHistory, snapshot: Snapshot) -> tuple[str, dict[str, object]]:
    """What a ``chart=sparkline`` fragment adds to its template, and a tag for its cache key and
    ETag (a fragment drawn while the history could not be read says so, and is not reused once
    it can)."""

    async def make() -> tuple[str, dict[str, object]]:
        lines = await sparklines(history, snapshot)
        # What is drawn moves with the snapshot's time even when its prices do not (a 304 renewal
        # keeps the data and its digest, while the day's window and its change move on): the tag,
        # part of the ETag, names the lines themselves.
        drawn = hashlib.sha256(repr(lines).encode()).hexdigest()[:10]
        return f"s{drawn}", {"sparklines": lines}

    try:
        return await history.prepared(snapshot, ("fragment",), make)
    except CacheUnavailable:
        return "s0", {"sparklines": {}}
