"""Prayer times by the method of the Institute of Geophysics, University of Tehran.

That is Iran's official method, defined on the sun's true (geometric) altitude: Fajr when the
sun's centre is 17.7° below the horizon, Maghrib at 4.5°, Isha at 14°; sunrise and sunset when it
is 0°50′ below (refraction and the sun's radius, by convention); Dhuhr at its transit; and the
religious midnight (نیمه‌شب شرعی) halfway between sunset and Fajr. The sun's position is
PyEphem's (VSOP87 with nutation and aberration), with its refraction turned off, so no angle of the
method is moved by an atmosphere model. Used by the prayer provider (today and the coming days,
once a day) and by the widget for a day a reader asks for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import ephem

FAJR_DEPRESSION = 17.7
MAGHRIB_DEPRESSION = 4.5
ISHA_DEPRESSION = 14.0
#: Sunrise and sunset: the sun's centre 0°50′ below the horizon (34′ refraction, 16′ radius).
HORIZON_DEPRESSION = 50 / 60
#: In order through the day (midnight is after sunset, usually on the next calendar day).
TIME_KEYS = ("fajr", "sunrise", "dhuhr", "asr", "sunset", "maghrib", "isha", "midnight")

#: PyEphem counts days from 1899-12-31 12:00 UTC; this is 1970-01-01 00:00 UTC on its scale.
_UNIX_EPOCH = float(ephem.Date("1970/1/1"))
_EARTH_RADIUS_M = 6_371_000.0
_DAY = timedelta(days=1)


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
    zone = place.zone
    observer = _observer(place)
    sun = ephem.Sun()
    # The day is anchored on its noon: the morning events are the last ones before it, the evening
    # events the first ones after (Isha may fall after local midnight far north in summer; it still
    # belongs to this day's evening).
    noon = _noon_of(observer, sun, on, zone)
    observer.date = noon
    sun.compute(observer)
    noon_altitude = math.degrees(float(sun.alt))
    # Asr (one shadow length plus the noon shadow): the sun's altitude then follows from its
    # altitude at noon, 90° − |latitude − declination|.
    asr_altitude = math.degrees(math.atan(1 / (1 + math.tan(math.radians(90 - noon_altitude)))))
    horizon = -HORIZON_DEPRESSION - _dip(place)

    fajr = _crossing(observer, sun, noon, -FAJR_DEPRESSION, rising=True)
    sunset = _crossing(observer, sun, noon, horizon, rising=False)
    times = {
        "fajr": fajr,
        "sunrise": _crossing(observer, sun, noon, horizon, rising=True),
        "dhuhr": _unix(noon),
        "asr": _crossing(observer, sun, noon, asr_altitude, rising=False),
        "sunset": sunset,
        "maghrib": _crossing(observer, sun, noon, -MAGHRIB_DEPRESSION, rising=False),
        "isha": _crossing(observer, sun, noon, -ISHA_DEPRESSION, rising=False),
        # Published tables take the midpoint between sunset and the same day's Fajr a day later
        # (the Hamadan table to the second shows it: tomorrow's own Fajr would move it ~40 s in
        # March). Elapsed seconds, so a night the zone changes its clock is still halved right.
        "midnight": (sunset + fajr + _DAY.total_seconds()) / 2,
    }
    return {key: _to_second(moment, zone) for key, moment in times.items()}


def _observer(place: Place) -> Any:
    observer = ephem.Observer()
    observer.lat = math.radians(place.latitude)
    observer.lon = math.radians(place.longitude)
    # Sea level and no atmosphere: the method's angles are the sun's true altitude.
    observer.elevation = 0.0
    observer.pressure = 0.0
    return observer


def _dip(place: Place) -> float:
    """Degrees the horizon lies below the horizontal for an observer ``elevation`` metres up."""
    if not place.elevation_correction or place.elevation <= 0:
        return 0.0
    return math.degrees(math.acos(_EARTH_RADIUS_M / (_EARTH_RADIUS_M + place.elevation)))


def _noon_of(observer: Any, sun: Any, day: date, zone: ZoneInfo) -> Any:
    """The sun's transit (an ephem date) that falls on ``day`` in ``zone``."""
    local_noon = datetime(day.year, day.month, day.day, 12, tzinfo=zone).timestamp()
    observer.date = _ephem_date(local_noon - 36 * 3600)
    for _ in range(3):  # a zone up to a day off the sun (across the date line) still finds it
        transit = observer.next_transit(sun)
        if datetime.fromtimestamp(_unix(transit), zone).date() == day:
            return transit
        observer.date = transit + 0.01
    raise ValueError(f"{day} has no noon in {zone.key}")


def _crossing(observer: Any, sun: Any, noon: Any, altitude: float, *, rising: bool) -> float:
    """When the sun's centre crosses ``altitude`` degrees before (rising) or after noon, in epoch s."""
    observer.date = noon
    observer.horizon = math.radians(altitude)
    try:
        moment = (
            observer.previous_rising(sun, use_center=True)
            if rising
            else observer.next_setting(sun, use_center=True)
        )
    except ephem.CircumpolarError:
        raise ValueError(f"the sun does not reach {altitude:.2f}° that day") from None
    seconds = _unix(moment)
    if abs(seconds - _unix(noon)) > _DAY.total_seconds():
        raise ValueError(f"the sun does not reach {altitude:.2f}° that day")
    return seconds


def _unix(moment: Any) -> float:
    return (float(moment) - _UNIX_EPOCH) * 86400


def _ephem_date(epoch_seconds: float) -> Any:
    return ephem.Date(epoch_seconds / 86400 + _UNIX_EPOCH)


def _to_second(epoch_seconds: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(round(epoch_seconds), tz=zone)
