"""A second computation of the sun, independent of the service's: Skyfield on JPL's DE421.

The service computes prayer times with PyEphem (VSOP87). This one finds the same events with
Skyfield's own root finders on NASA JPL's numerical ephemeris (bundled by ``skyfield-data``, so
nothing is downloaded), as the method defines them: the sun's centre at a true altitude, with no
refraction model. A test that agrees with it to the second agrees with the sky, not with itself.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from skyfield import almanac
from skyfield.api import Loader, wgs84
from skyfield_data import get_skyfield_data_path

from service.prayer_times import FAJR_DEPRESSION, HORIZON_DEPRESSION, ISHA_DEPRESSION, MAGHRIB_DEPRESSION


@dataclass(frozen=True)
class City:
    name: str
    latitude: float
    longitude: float


FAMENIN = City("Famenin", 35.116, 48.973)
TEHRAN_CITY = City("Tehran", 35.6944, 51.4215)
HAMADAN = City("Hamadan", 34.7983, 48.5148)


@cache
def _sky() -> tuple[Any, Any]:
    with warnings.catch_warnings():
        # The bundle's Earth-orientation table has a date after which it warns; the built-in
        # timescale used here does not read that table.
        warnings.simplefilter("ignore", RuntimeWarning)
        path = get_skyfield_data_path()
    load = Loader(path, verbose=False)
    return load.timescale(builtin=True), load("de421.bsp")


def reference_year(city: City, first: date, days: int, zone: ZoneInfo) -> dict[date, dict[str, float]]:
    """Each day's Fajr, sunrise, Dhuhr, sunset, Maghrib, Isha and midnight, in epoch seconds."""
    ts, planets = _sky()
    sun, where = planets["sun"], planets["earth"] + wgs84.latlon(city.latitude, city.longitude)
    # A day's morning events are the ones before its noon, so start a day early and end a day late.
    start = datetime(first.year, first.month, first.day, tzinfo=zone) - timedelta(days=1)
    t0, t1 = ts.from_datetime(start), ts.from_datetime(start + timedelta(days=days + 2))

    def risings(altitude: float) -> list[float]:
        found, fine = almanac.find_risings(where, sun, t0, t1, horizon_degrees=altitude)
        return [_epoch(t) for t, ok in zip(found, fine, strict=True) if ok]

    def settings(altitude: float) -> list[float]:
        found, fine = almanac.find_settings(where, sun, t0, t1, horizon_degrees=altitude)
        return [_epoch(t) for t, ok in zip(found, fine, strict=True) if ok]

    transits = [_epoch(t) for t in almanac.find_transits(where, sun, t0, t1)]
    events = {
        "fajr": risings(-FAJR_DEPRESSION),
        "sunrise": risings(-HORIZON_DEPRESSION),
        "sunset": settings(-HORIZON_DEPRESSION),
        "maghrib": settings(-MAGHRIB_DEPRESSION),
        "isha": settings(-ISHA_DEPRESSION),
    }
    year: dict[date, dict[str, float]] = {}
    for noon in transits:
        day = datetime.fromtimestamp(noon, zone).date()
        if not first <= day < first + timedelta(days=days):
            continue
        times = {"dhuhr": noon}
        for key, moments in events.items():
            before = key in ("fajr", "sunrise")
            times[key] = (
                max(m for m in moments if m < noon) if before else min(m for m in moments if m > noon)
            )
        year[day] = times
    for times in year.values():
        # Halfway to the same day's Fajr a day later, as published tables take it.
        times["midnight"] = (times["sunset"] + times["fajr"] + 86400) / 2
    return year


def reference_asr(city: City, day: date, zone: ZoneInfo, noon: float) -> float:
    """Asr of ``day`` (one shadow length plus the noon shadow), in epoch seconds."""
    ts, planets = _sky()
    sun, where = planets["sun"], planets["earth"] + wgs84.latlon(city.latitude, city.longitude)
    at_noon = ts.from_datetime(datetime.fromtimestamp(noon, UTC))
    noon_altitude = where.at(at_noon).observe(sun).apparent().altaz()[0].degrees
    asr_altitude = math.degrees(math.atan(1 / (1 + math.tan(math.radians(90 - noon_altitude)))))
    later = ts.from_datetime(datetime.fromtimestamp(noon + 86400 / 2, UTC))
    found, fine = almanac.find_settings(where, sun, at_noon, later, horizon_degrees=asr_altitude)
    return next(_epoch(t) for t, ok in zip(found, fine, strict=True) if ok)


def _epoch(moment: Any) -> float:
    return float(moment.utc_datetime().timestamp())
