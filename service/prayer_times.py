"""Prayer times by the method of the Institute of Geophysics, University of Tehran.

That is Iran's official method: Fajr when the sun is 17.7° below the horizon, Maghrib at 4.5°,
Isha at 14°, and the religious midnight (نیمه‌شب شرعی) halfway between sunset and Fajr. The solar
astronomy (NOAA's algorithm: position, equation of time, refraction) is astral's; this module only
applies the method's angles and conventions. Used by the prayer provider (today and the coming
days, once a day) and by the widget for a day a reader asks for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from astral import Observer, SunDirection, sun

FAJR_DEPRESSION = 17.7
MAGHRIB_DEPRESSION = 4.5
ISHA_DEPRESSION = 14.0
#: In order through the day (midnight is after sunset, usually on the next calendar day).
TIME_KEYS = ("fajr", "sunrise", "dhuhr", "asr", "sunset", "maghrib", "isha", "midnight")


@dataclass(frozen=True)
class Place:
    latitude: float
    longitude: float
    zone: ZoneInfo
    #: Metres above sea level; used only when ``elevation_correction`` is set.
    elevation: float = 0.0
    #: Lower the horizon for sunrise and sunset by the observer's height. Iran's published city
    #: tables are sea-level computations, so this is off by default.
    elevation_correction: bool = False


def day_times(place: Place, on: date) -> dict[str, datetime]:
    """The eight times of ``on`` (a local date) at ``place``, aware, rounded to the second.

    Raises ``ValueError`` where the sun does not reach an angle that day (far from the equator),
    or where the local day has no noon (a date skipped by a zone moving across the date line).
    """
    ground = Observer(place.latitude, place.longitude, 0.0)
    horizon = Observer(
        place.latitude, place.longitude, place.elevation if place.elevation_correction else 0.0
    )
    zone = place.zone
    rising, setting = SunDirection.RISING, SunDirection.SETTING

    def at(depression: float, direction: SunDirection) -> Callable[[date], datetime]:
        return lambda d: sun.time_at_elevation(ground, -depression, d, direction, zone)

    # The day is anchored on its noon: the morning events are the ones in the 24 hours before it,
    # the evening events the ones in the 24 hours after (Isha may fall after local midnight far
    # north in summer; it still belongs to this day's evening).
    dhuhr = _noon_of(on, zone, lambda d: sun.noon(ground, d, zone))
    before, after = (_later(dhuhr, -_DAY), dhuhr), (dhuhr, _later(dhuhr, _DAY))
    fajr = _event(at(FAJR_DEPRESSION, rising), on, before)
    sunrise = _event(lambda d: sun.sunrise(horizon, d, zone), on, before)
    sunset = _event(lambda d: sun.sunset(horizon, d, zone), on, after)
    maghrib = _event(at(MAGHRIB_DEPRESSION, setting), on, after)
    isha = _event(at(ISHA_DEPRESSION, setting), on, after)
    # Asr (one shadow length plus the noon shadow): the sun's altitude follows from its altitude
    # at noon, 90° − |latitude − declination|.
    noon_altitude = sun.elevation(ground, dhuhr, with_refraction=False)
    asr_altitude = math.degrees(math.atan(1 / (1 + math.tan(math.radians(90 - noon_altitude)))))
    asr = _event(
        lambda d: sun.time_at_elevation(ground, asr_altitude, d, setting, zone, with_refraction=False),
        on,
        after,
    )
    # Published tables take the midpoint between sunset and the same day's Fajr a day later
    # (tomorrow's own Fajr differs by well under a minute); we print what they print. Elapsed
    # time, not wall-clock arithmetic: on a night a zone changes its clock the two differ by an hour.
    midnight = _midpoint(sunset, _later(fajr, _DAY), zone)
    times = {
        "fajr": fajr,
        "sunrise": sunrise,
        "dhuhr": dhuhr,
        "asr": asr,
        "sunset": sunset,
        "maghrib": maghrib,
        "isha": isha,
        "midnight": midnight,
    }
    return {key: _to_second(moment, zone) for key, moment in times.items()}


_DAY = timedelta(days=1)


def _noon_of(day: date, zone: ZoneInfo, compute: Callable[[date], datetime]) -> datetime:
    for candidate in (day, day - _DAY, day + _DAY):
        moment = compute(candidate).astimezone(zone)
        if moment.date() == day:
            return moment
    raise ValueError(f"{day} has no noon in {zone.key}")


def _event(compute: Callable[[date], datetime], day: date, window: tuple[datetime, datetime]) -> datetime:
    """The one event (once a day) inside ``window``, a 24-hour span around ``day``'s noon.

    astral works on UTC dates and returns one event per UTC date, so on the day an event crosses
    00:00 UTC (Fajr in Iran each May) the one we need is returned for no date at all. The sun's
    daily drift is smooth, so it is then the midpoint of the same event a day before and after.
    """
    moments: set[datetime] = set()
    for offset in range(-2, 3):
        try:
            moments.add(compute(day + offset * _DAY))
        except ValueError:
            continue  # the sun does not reach that angle on that date
    low, high = window
    inside = [m for m in moments if low <= m < high]
    if inside:
        return min(inside)
    earlier = [m for m in moments if _later(low, -_DAY) <= m < _later(high, -_DAY)]
    later = [m for m in moments if _later(low, _DAY) <= m < _later(high, _DAY)]
    if earlier and later:
        return _midpoint(min(earlier), min(later), low.tzinfo)
    raise ValueError(f"no such event on {day}")


def _later(moment: datetime, by: timedelta) -> datetime:
    """``moment`` plus ``by`` of elapsed time (aware arithmetic is wall-clock, off by DST hours)."""
    return datetime.fromtimestamp(moment.timestamp() + by.total_seconds(), tz=moment.tzinfo)


def _midpoint(first: datetime, second: datetime, zone: Any) -> datetime:
    return datetime.fromtimestamp((first.timestamp() + second.timestamp()) / 2, tz=zone)


def _to_second(moment: datetime, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(round(moment.timestamp()), tz=zone)
