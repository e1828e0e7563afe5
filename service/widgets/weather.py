"""The weather box: now and the coming days for one place, in one vocabulary (WMO codes).

Times are converted into the configured zone (Tehran by default) by the providers; dates carry
their Jalali form and Persian weekday (the week starts on Saturday).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jdatetime
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from service.widgets.base import QueryError, WidgetSpec
from service.widgets.local_day import local_today

MAX_DAYS = 7
#: WMO weather interpretation codes (WMO 4677, the subset Open-Meteo and our MET mapping use), in
#: Persian, with the intensity the code carries: slight reads «سبک», heavy «سنگین» or «شدید», and
#: moderate (or a code covering "moderate or heavy") is the bare word, as MET's legend says "Rain"
#: between "Light rain" and "Heavy rain".
CONDITIONS: dict[int, str] = {
    0: "صاف",
    1: "عمدتاً صاف",
    2: "نیمه‌ابری",
    3: "ابری",
    45: "مه",
    # Depositing rime fog: it ices roads and wires, which plain fog does not.
    48: "مه یخ‌زده",
    51: "نم‌نم باران سبک",
    53: "نم‌نم باران",
    55: "نم‌نم باران شدید",
    56: "نم‌نم باران یخ‌زده سبک",
    57: "نم‌نم باران یخ‌زده شدید",
    61: "باران سبک",
    63: "باران",
    65: "باران سنگین",
    66: "باران یخ‌زده سبک",
    67: "باران یخ‌زده سنگین",
    # Rain and snow mixed (MET Norway's "sleet"): not freezing rain.
    68: "برف و باران سبک",
    69: "برف و باران",
    71: "برف سبک",
    73: "برف",
    75: "برف سنگین",
    77: "دانه‌های برف",
    80: "رگبار سبک",
    81: "رگبار",
    82: "رگبار شدید",
    83: "رگبار برف و باران سبک",
    84: "رگبار برف و باران",
    85: "رگبار برف سبک",
    86: "رگبار برف سنگین",
    95: "رعد و برق",
    96: "رعد و برق با تگرگ",
    # Heavy thunderstorm without hail: Open-Meteo never sends it, MET's heavy "…andthunder" does.
    97: "رعد و برق شدید",
    99: "رعد و برق با تگرگ شدید",
}

Celsius = float
#: WMO weather interpretation codes are two digits (0–99).
WmoCode = Annotated[int, Field(ge=0, le=99)]
#: Every number a weather box shows is finite: NaN or infinity would print as "nan°" or leave as
#: invalid JSON (``Infinity``), so they are refused like any other out-of-range value.
_FINITE = ConfigDict(allow_inf_nan=False)


class Location(BaseModel):
    model_config = _FINITE

    name: str = Field(min_length=1)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class Current(BaseModel):
    model_config = _FINITE

    temperature_c: float | None = Field(default=None, ge=-60, le=60)
    apparent_temperature_c: float | None = Field(default=None, ge=-80, le=70)
    humidity_percent: float | None = Field(default=None, ge=0, le=100)
    wind_kmh: float | None = Field(default=None, ge=0, le=500)
    wind_direction_deg: float | None = Field(default=None, ge=0, le=360)
    condition_code: WmoCode | None = None
    condition: str | None = None
    is_day: bool | None = None
    observed_at: datetime

    @field_validator("observed_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("observed_at needs a time zone")
        return value


class Day(BaseModel):
    model_config = _FINITE

    date: date
    jalali_date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    weekday: str = Field(min_length=1, max_length=20)
    min_c: float | None = Field(default=None, ge=-60, le=60)
    max_c: float | None = Field(default=None, ge=-60, le=60)
    condition_code: WmoCode | None = None
    condition: str | None = None
    precipitation_probability: float | None = Field(default=None, ge=0, le=100)
    #: The source covered only part of this local day (MET's compact answer drops the hours that
    #: have passed), so min/max may miss the night's cold: kept from the last good data when it
    #: has the same day, else said so.
    partial: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Day:
        if self.min_c is not None and self.max_c is not None and self.min_c > self.max_c:
            raise ValueError(f"{self.date}: min {self.min_c} above max {self.max_c}")
        return self


class WeatherData(BaseModel):
    model_config = _FINITE

    location: Location
    current: Current
    daily: list[Day] = Field(min_length=1, max_length=16)

    @model_validator(mode="after")
    def _consecutive(self) -> WeatherData:
        for before, after in zip(self.daily, self.daily[1:], strict=False):
            if after.date - before.date != timedelta(days=1):
                raise ValueError(f"days not consecutive: {before.date} then {after.date}")
        return self


class WeatherOptions(BaseModel):
    """``[widgets.weather]``: the place, its zone and how many days to show."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="فامنین", min_length=1)
    latitude: float = Field(default=35.116, ge=-90, le=90)
    longitude: float = Field(default=48.973, ge=-180, le=180)
    elevation: float = Field(default=1640, ge=-500, le=9000)
    timezone: str = "Asia/Tehran"
    days: int = Field(default=5, ge=1, le=MAX_DAYS)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def condition(code: int | None) -> str | None:
    return None if code is None else CONDITIONS.get(code)


def day(
    on: date,
    *,
    min_c: float | None,
    max_c: float | None,
    code: int | None,
    rain: float | None,
    partial: bool = False,
    words: str | None = None,
) -> Day:
    """A forecast day with its Jalali date and Persian weekday.

    ``words`` is the condition as the source said it, when its code alone would say less (a MET
    symbol names heavy sleet, or the rain a thunderstorm brings; no WMO code does); else the
    code's words.
    """
    jalali = jdatetime.date.fromgregorian(date=on)
    return Day(
        date=on,
        jalali_date=f"{jalali.year:04d}-{jalali.month:02d}-{jalali.day:02d}",
        weekday=jdatetime.date.j_weekdays_fa[jalali.weekday()],
        min_c=min_c,
        max_c=max_c,
        condition_code=code,
        condition=words if words is not None else condition(code),
        precipitation_probability=rain,
        partial=partial,
    )


def reconcile(
    new: dict[str, Any], previous: dict[str, Any] | None, options: BaseModel, now: float | None = None
) -> tuple[dict[str, Any], list[str]]:
    """A partial day takes in what the last good data saw of the same day (its earlier hours)."""
    if previous is None:
        return new, []
    earlier = {row["date"]: row for row in previous.get("daily", [])}
    daily = []
    for row in new["daily"]:
        seen = earlier.get(row["date"])
        if row.get("partial") and seen is not None:
            lows = [v for v in (row["min_c"], seen["min_c"]) if v is not None]
            highs = [v for v in (row["max_c"], seen["max_c"]) if v is not None]
            row = {
                **row,
                "min_c": min(lows) if lows else None,
                "max_c": max(highs) if highs else None,
                # Whole once the data it was merged with covered the day's start.
                "partial": bool(seen.get("partial", False)),
            }
        daily.append(row)
    return {**new, "daily": daily}, []


def parse_query(query: Mapping[str, str], options: BaseModel) -> dict[str, Any]:
    if "days" not in query:
        return {}
    raw = query["days"]
    # ASCII and short before int(): "²" is a digit to isdigit() but not to int(), and int() of
    # thousands of digits raises (Python's 4300-digit limit).
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 2) or not 1 <= int(raw) <= MAX_DAYS:
        raise QueryError(f"days: must be a whole number from 1 to {MAX_DAYS}")
    return {"days": int(raw)}


def select(data: dict[str, Any], view: dict[str, Any], options: BaseModel) -> dict[str, Any]:
    assert isinstance(options, WeatherOptions)
    days = view.get("days", options.days)
    daily = data["daily"]
    if "today" in view:  # never a day that has passed: `days` counts from today
        daily = [day for day in daily if day["date"] >= view["today"]]
    if len(daily) > days:
        daily = daily[:days]
    return data if daily == data["daily"] else {**data, "daily": daily}


def today(now: float, options: BaseModel) -> str:
    """The configured zone's date at ``now`` (ISO), which the forecast's rows are compared with."""
    assert isinstance(options, WeatherOptions)
    return local_today(now, options.zone).isoformat()


WEATHER = WidgetSpec(
    name="weather",
    title="وضع هوا",
    data_model=WeatherData,
    default_providers=("openmeteo", "metno"),
    default_refresh_seconds=900,
    options_model=WeatherOptions,
    template="widgets/weather.html",
    parse_query=parse_query,
    select=select,
    today=today,
    reconcile=reconcile,
)
