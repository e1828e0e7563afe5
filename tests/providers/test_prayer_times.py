"""Prayer times against tables published in Iran, and against astronomy that needs no library.

The published tables (fixtures/published_prayer_times.json, each with its source) print the
minute, one of them the second. A minute table's "05:24" is the computed time rounded, so the
computed instant must lie within 30 s of it, plus our own error; the goal is one minute overall.
"""

from __future__ import annotations

import json
import math
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from providers.base import ProviderConfig
from providers.prayer import PrayerTimesProvider
from service.persian import clock_time
from service.prayer_times import Place, day_times
from service.widgets.prayer import PrayerData, PrayerOptions, prayer_days

TEHRAN = ZoneInfo("Asia/Tehran")
TABLES = json.loads((Path(__file__).parent / "fixtures" / "published_prayer_times.json").read_text())[
    "tables"
]


def published_instant(on: date, wall: str, key: str) -> datetime:
    parts = [int(p) for p in wall.split(":")] + [0]
    moment = datetime(on.year, on.month, on.day, parts[0], parts[1], parts[2], tzinfo=TEHRAN)
    if key == "midnight" and parts[0] < 12:
        moment += timedelta(days=1)  # after midnight on the clock: the next calendar day
    return moment


@pytest.mark.parametrize("table", TABLES, ids=lambda t: f"{t['city']}-{t['date']}")
def test_within_a_minute_of_the_published_table(table):
    on = date.fromisoformat(table["date"])
    computed = day_times(Place(table["latitude"], table["longitude"], TEHRAN), on)
    for key, wall in table["times"].items():
        expected = published_instant(on, wall, key)
        difference = abs((computed[key] - expected).total_seconds())
        assert difference < 60, f"{table['city']} {on} {key}: {computed[key]} vs published {wall}"
        # What the box prints, to the minute, is the table's minute or its neighbour.
        printed = clock_time(computed[key].isoformat()).translate(_ASCII)
        assert _minute_gap(printed, wall[:5]) <= 1, f"{key}: we print {printed}, the table {wall}"


_ASCII = str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")


def _minute_gap(a: str, b: str) -> int:
    minutes = [int(x[:2]) * 60 + int(x[3:5]) for x in (a, b)]
    gap = abs(minutes[0] - minutes[1])
    return min(gap, 1440 - gap)


def test_the_largest_difference_from_the_published_tables_is_under_a_minute():
    worst = 0.0
    for table in TABLES:
        on = date.fromisoformat(table["date"])
        computed = day_times(Place(table["latitude"], table["longitude"], TEHRAN), on)
        for key, wall in table["times"].items():
            worst = max(worst, abs((computed[key] - published_instant(on, wall, key)).total_seconds()))
    assert worst < 60


def test_published_sunrise_is_a_sea_level_computation():
    # Hamadan lies ~1,850 m up; lowering the horizon for it moves sunrise minutes away from the
    # table, which is why elevation_correction is off by default.
    table = TABLES[0]
    on = date.fromisoformat(table["date"])
    place = Place(table["latitude"], table["longitude"], TEHRAN, 1850, elevation_correction=True)
    corrected = day_times(place, on)
    published = published_instant(on, table["times"]["sunrise"], "sunrise")
    assert (published - corrected["sunrise"]).total_seconds() > 180
    assert corrected["fajr"] == day_times(Place(table["latitude"], table["longitude"], TEHRAN), on)["fajr"]


def test_dhuhr_is_solar_noon_from_the_equation_of_time():
    # Independent of any library: noon = 12:00 − longitude/15 h − equation of time, with the
    # equation of time from the usual approximation (good to ~30 s).
    on = date(2026, 11, 26)
    n = on.timetuple().tm_yday
    b = math.radians(360 / 365 * (n - 81))
    equation_minutes = 9.87 * math.sin(2 * b) - 7.53 * math.cos(b) - 1.5 * math.sin(b)
    longitude = 48.973
    noon_utc_minutes = 720 - 4 * longitude - equation_minutes
    expected = datetime(on.year, on.month, on.day, tzinfo=ZoneInfo("UTC")) + timedelta(
        minutes=noon_utc_minutes
    )
    computed = day_times(Place(35.116, longitude, TEHRAN), on)["dhuhr"]
    assert abs((computed - expected).total_seconds()) < 60


def test_midnight_is_halfway_between_sunset_and_fajr_a_day_later():
    times = day_times(Place(35.116, 48.973, TEHRAN), date(2026, 11, 26))
    before = times["midnight"] - times["sunset"]
    after = times["fajr"] + timedelta(days=1) - times["midnight"]
    assert abs((before - after).total_seconds()) <= 1  # each instant is rounded to the second


def test_early_fajr_east_of_greenwich_is_on_its_own_day():
    # 03:02 in Tehran is 23:32 UTC the day before: the library's UTC date must not shift it.
    for offset in range(3):
        on = date(2024, 6, 19) + timedelta(days=offset)
        times = day_times(Place(35.6944, 51.4215, TEHRAN), on)
        assert times["fajr"].date() == on
        assert times["fajr"].isoformat().startswith(f"{on}T03:0")


def test_a_week_is_cheap_enough_for_the_event_loop():
    options = PrayerOptions()
    prayer_days(options, date(2026, 1, 1), 1)  # warm up
    started = time.perf_counter()
    prayer_days(options, date(2026, 6, 1), 7)
    assert time.perf_counter() - started < 0.05


class _Clock:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


async def test_provider_computes_seven_days_from_today_in_the_configured_zone():
    options = PrayerOptions(name="همدان", latitude=34.7983, longitude=48.5148, elevation=1850)
    provider = PrayerTimesProvider(ProviderConfig(url=None, timeout_seconds=5, widget_options=options))
    # 2024-03-16 21:00 UTC is already 00:30 on the 17th in Tehran.
    now = datetime(2024, 3, 16, 21, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    data = await provider.fetch(_Clock(now))  # type: ignore[arg-type]
    assert isinstance(data, PrayerData)
    assert [str(day.date) for day in data.days][:2] == ["2024-03-17", "2024-03-18"]
    assert len(data.days) == 7
    assert data.days[0].times.fajr.isoformat() == "2024-03-17T05:00:49+03:30"
    assert data.days[0].jalali_date == "1402-12-27"
