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

    Raises ``ValueError`` where the sun does not reach an angle that day (far from the equator).
    """
    ground = Observer(place.latitude, place.longitude, 0.0)
    horizon = Observer(
        place.latitude, place.longitude, place.elevation if place.elevation_correction else 0.0
    )
    zone = place.zone
    rising, setting = SunDirection.RISING, SunDirection.SETTING

    def at(depression: float, direction: SunDirection) -> Callable[[date], datetime]:
        return lambda d: sun.time_at_elevation(ground, -depression, d, direction, zone)

    fajr = _on(on, zone, at(FAJR_DEPRESSION, rising))
    sunrise = _on(on, zone, lambda d: sun.sunrise(horizon, d, zone))
    dhuhr = _on(on, zone, lambda d: sun.noon(ground, d, zone))
    sunset = _on(on, zone, lambda d: sun.sunset(horizon, d, zone))
    maghrib = _on(on, zone, at(MAGHRIB_DEPRESSION, setting))
    isha = _on(on, zone, at(ISHA_DEPRESSION, setting))
    # Asr (one shadow length plus the noon shadow): the sun's altitude follows from its altitude
    # at noon, 90° − |latitude − declination|.
    noon_altitude = sun.elevation(ground, dhuhr, with_refraction=False)
    asr_altitude = math.degrees(math.atan(1 / (1 + math.tan(math.radians(90 - noon_altitude)))))
    asr = _on(
        on,
        zone,
        lambda d: sun.time_at_elevation(ground, asr_altitude, d, setting, zone, with_refraction=False),
    )
    # Published tables take the midpoint between sunset and the same day's Fajr a day later
    # (tomorrow's own Fajr differs by well under a minute); we print what they print.
    midnight = sunset + (fajr + timedelta(days=1) - sunset) / 2
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


def _on(day: date, zone: ZoneInfo, compute: Callable[[date], datetime]) -> datetime:
    """The event on local ``day``: astral works on UTC dates, so east of Greenwich an early
    event (Fajr at 03:02 in Tehran is 23:32 UTC the day before) may come back a day off."""
    for candidate in (day, day - timedelta(days=1), day + timedelta(days=1)):
        moment = compute(candidate).astimezone(zone)
        if moment.date() == day:
            return moment
    raise ValueError(f"no such event on {day}")


def _to_second(moment: datetime, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(round(moment.timestamp()), tz=zone)
