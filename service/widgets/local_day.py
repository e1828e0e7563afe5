"""The local calendar day: what "today" is in a zone, and when it ends (for daily widgets)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel


def known_zone(name: str) -> str:
    """A pydantic validator body: the zone must exist (``tzdata`` ships them on slim systems)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


def local_today(epoch_seconds: float, zone: ZoneInfo) -> date:
    """The calendar date in ``zone`` at this instant."""
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).astimezone(zone).date()


def midnight_after(fetched_at: float, options: BaseModel) -> float:
    """``WidgetSpec.next_refresh`` for a widget whose options name its zone (``options.zone``)."""
    zone = getattr(options, "zone", None)
    assert isinstance(zone, ZoneInfo)
    return next_local_midnight(fetched_at, zone)


def next_local_midnight(epoch_seconds: float, zone: ZoneInfo) -> float:
    """The first instant of the next local day after ``epoch_seconds`` (epoch seconds).

    Where a zone skips midnight (a DST change at 00:00), zoneinfo maps the missing wall time
    forward; the result is still the start of the new day, and always later than the input.
    """
    tomorrow = local_today(epoch_seconds, zone) + timedelta(days=1)
    start = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=zone).timestamp()
    return start if start > epoch_seconds else epoch_seconds + 3600.0
