"""The prayer-times box (اوقات شرعی): the day's times at one place, Iran's official method.

Computed, not fetched: the provider computes today and the coming days once a day, at local
midnight (``next_refresh``), and a reader's ``date=`` outside those days is computed for the
view. Every time is an aware ISO 8601 instant, to the second, in the configured zone.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import jdatetime
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from service.prayer_times import TIME_KEYS, Place, day_times
from service.widgets.base import QueryError, WidgetSpec
from service.widgets.local_day import known_zone, midnight_after

MAX_DAYS = 7
#: Beyond this the sun does not reach 17.7° below the horizon on summer nights: no Fajr exists.
MAX_LATITUDE = 48.0
#: The days a reader may ask for (``date=``): well inside what the solar formulas are good for.
FIRST_DAY = date(1925, 3, 21)  # 1 Farvardin 1304
LAST_DAY = date(2099, 12, 31)

_FINITE = ConfigDict(allow_inf_nan=False)


class PrayerLocation(BaseModel):
    model_config = _FINITE

    name: str = Field(min_length=1, max_length=100)
    latitude: float = Field(ge=-MAX_LATITUDE, le=MAX_LATITUDE)
    longitude: float = Field(ge=-180, le=180)
    elevation: float = Field(ge=-500, le=9000)
    timezone: str = Field(min_length=1, max_length=64)


class PrayerTimes(BaseModel):
    """Aware instants in the configured zone; ``midnight`` is usually on the next calendar day."""

    fajr: datetime
    sunrise: datetime
    dhuhr: datetime
    asr: datetime
    sunset: datetime
    maghrib: datetime
    isha: datetime
    midnight: datetime

    @model_validator(mode="after")
    def _aware_and_in_order(self) -> PrayerTimes:
        moments = [getattr(self, key) for key in TIME_KEYS]
        if any(moment.tzinfo is None for moment in moments):
            raise ValueError("every time needs a time zone")
        for (before, earlier), (after, later) in zip(
            zip(TIME_KEYS, moments, strict=True), zip(TIME_KEYS[1:], moments[1:], strict=True), strict=False
        ):
            if not earlier < later:
                raise ValueError(f"{after} is not after {before}")
        return self


class PrayerDay(BaseModel):
    date: date
    jalali_date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    weekday: str = Field(min_length=1, max_length=20)
    times: PrayerTimes

    @model_validator(mode="after")
    def _on_its_day(self) -> PrayerDay:
        # Fajr to sunset on the day itself (local wall clock), midnight within the next half day.
        for key in ("fajr", "sunrise", "dhuhr", "asr", "sunset"):
            if getattr(self.times, key).date() != self.date:
                raise ValueError(f"{self.date}: {key} falls on another day")
        if self.times.midnight - self.times.sunset > timedelta(hours=14):
            raise ValueError(f"{self.date}: midnight too far after sunset")
        return self


class PrayerData(BaseModel):
    model_config = _FINITE

    location: PrayerLocation
    #: The calculation method: the Institute of Geophysics, University of Tehran.
    method: Literal["tehran"] = "tehran"
    days: list[PrayerDay] = Field(min_length=1, max_length=MAX_DAYS)

    @model_validator(mode="after")
    def _consecutive(self) -> PrayerData:
        for before, after in zip(self.days, self.days[1:], strict=False):
            if after.date - before.date != timedelta(days=1):
                raise ValueError(f"days not consecutive: {before.date} then {after.date}")
        return self


#: How far a configured zone may be from the place's solar time (China's single zone: ~3 h).
MAX_ZONE_DRIFT_HOURS = 4.0


class PrayerOptions(BaseModel):
    """``[widgets.prayer]``: the place (default Famenin), its zone, and what the box shows."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(default="فامنین", min_length=1, max_length=100)
    latitude: float = Field(default=35.116, ge=-MAX_LATITUDE, le=MAX_LATITUDE)
    longitude: float = Field(default=48.973, ge=-180, le=180)
    elevation: float = Field(default=1640, ge=-500, le=9000)
    #: Lower the horizon for sunrise/sunset by the elevation. Off: published tables are sea-level.
    elevation_correction: bool = False
    timezone: str = "Asia/Tehran"
    #: Days in the box when the reader does not ask (``days=``).
    days: int = Field(default=1, ge=1, le=MAX_DAYS)
    #: Also show عصر and عشاء in the box (JSON always has them).
    show_asr_isha: bool = False

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)

    @model_validator(mode="after")
    def _zone_fits_the_place(self) -> PrayerOptions:
        # A zone hours away from the place's solar time puts the day's times on the wrong dates
        # (a town's morning in another zone's evening): an operator's slip, refused at start-up.
        solar_hours = self.longitude / 15
        offsets = [
            (datetime(2026, month, 1, 12, tzinfo=self.zone).utcoffset() or timedelta()).total_seconds() / 3600
            for month in (1, 7)
        ]
        # Modulo a day: across the date line (Samoa, Kiribati) the clock is a whole day off the sun.
        drifts = [abs((offset - solar_hours + 12) % 24 - 12) for offset in offsets]
        if min(drifts) > MAX_ZONE_DRIFT_HOURS:
            raise ValueError(
                f"timezone {self.timezone} is more than {MAX_ZONE_DRIFT_HOURS:g} hours from the solar "
                f"time at longitude {self.longitude}: is it the place's zone?"
            )
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def place(self) -> Place:
        return Place(self.latitude, self.longitude, self.zone, self.elevation, self.elevation_correction)


def prayer_days(options: PrayerOptions, first: date, count: int) -> list[dict[str, Any]]:
    """``count`` days from ``first``, as the data model's JSON (about 0.3 ms a day not yet asked)."""
    return [_day(options.place, first + timedelta(days=offset)) for offset in range(count)]


@functools.lru_cache(maxsize=4096)
def _day(place: Place, on: date) -> dict[str, Any]:
    """One day's JSON, kept: a reader's ``?date=`` is checked, then selected, then asked again by
    others; each of those is one look-up after the first. Callers only read it."""
    jalali = jdatetime.date.fromgregorian(date=on)
    day = PrayerDay(
        date=on,
        jalali_date=f"{jalali.year:04d}-{jalali.month:02d}-{jalali.day:02d}",
        weekday=jdatetime.date.j_weekdays_fa[jalali.weekday()],
        times=PrayerTimes.model_validate(day_times(place, on)),
    )
    return day.model_dump(mode="json")


def prayer_data(options: PrayerOptions, first: date, count: int = MAX_DAYS) -> PrayerData:
    location = PrayerLocation(
        name=options.name,
        latitude=options.latitude,
        longitude=options.longitude,
        elevation=options.elevation,
        timezone=options.timezone,
    )
    return PrayerData.model_validate({"location": location, "days": prayer_days(options, first, count)})


def _single(query: Mapping[str, str], key: str) -> str | None:
    values = [value for name, value in query.items() if name == key]
    if len(values) > 1:
        raise QueryError(f"{key}: give it once")
    return values[0] if values else None


def parse_day(raw: str) -> date:
    """``2024-11-27`` (Gregorian) or ``1403-09-07`` (Jalali: a year before 1700)."""
    parts = raw.split("-")
    if not (
        raw.isascii()
        and len(parts) == 3
        and [len(p) for p in parts] == [4, 2, 2]
        and all(p.isdigit() for p in parts)
    ):
        raise QueryError("date: must be YYYY-MM-DD, Gregorian (2024-11-27) or Jalali (1403-09-07)")
    year, month, day = (int(p) for p in parts)
    try:
        if year < 1700:
            gregorian: date = jdatetime.date(year, month, day).togregorian()
            on = gregorian
        else:
            on = date(year, month, day)
    except ValueError:
        raise QueryError(f"date: {raw} is not a day of the calendar") from None
    if not FIRST_DAY <= on <= LAST_DAY:
        raise QueryError(f"date: must lie between {FIRST_DAY} and {LAST_DAY}")
    return on


def parse_query(query: Mapping[str, str], options: BaseModel) -> dict[str, Any]:
    view: dict[str, Any] = {}
    raw_date = _single(query, "date")
    if raw_date is not None:
        view["date"] = parse_day(raw_date).isoformat()
    raw_days = _single(query, "days")
    if raw_days is not None:
        # ASCII and short before int(): "²".isdigit() is true, and "1e400" is no whole number.
        if not (raw_days.isascii() and raw_days.isdigit() and len(raw_days) <= 2) or not (
            1 <= int(raw_days) <= MAX_DAYS
        ):
            raise QueryError(f"days: must be a whole number from 1 to {MAX_DAYS}")
        view["days"] = int(raw_days)
    if "date" in view:
        assert isinstance(options, PrayerOptions)
        try:  # checked here, so a day without these times is the reader's 400, not our 500
            prayer_days(options, date.fromisoformat(view["date"]), view.get("days", options.days))
        except ValueError:
            raise QueryError("date: the sun gives no such times there that day") from None
    return view


def select(data: dict[str, Any], view: dict[str, Any], options: BaseModel) -> dict[str, Any]:
    assert isinstance(options, PrayerOptions)
    count = view.get("days", options.days)
    stored = data["days"]
    if "date" not in view:
        return data if len(stored) <= count else {**data, "days": stored[:count]}
    first = date.fromisoformat(view["date"])
    wanted = [(first + timedelta(days=i)).isoformat() for i in range(count)]
    by_date = {day["date"]: day for day in stored}
    if all(day in by_date for day in wanted):
        return {**data, "days": [by_date[day] for day in wanted]}
    return {**data, "days": prayer_days(options, first, count)}


PRAYER = WidgetSpec(
    name="prayer",
    title="اوقات شرعی",
    data_model=PrayerData,
    default_providers=("prayer_times",),
    # Refreshed at local midnight (next_refresh); a day caps max-age and backoff.
    default_refresh_seconds=86400,
    options_model=PrayerOptions,
    template="widgets/prayer.html",
    parse_query=parse_query,
    select=select,
    next_refresh=midnight_after,
    clock_dependent=True,
)
