"""The air-quality box (کیفیت هوا): the US AQI now, its Persian category, PM2.5 and PM10, and
the worst index of each of the next few three-hour blocks, for the weather's place.

Iran's Department of Environment reports on the same 0–500 scale and breakpoints as the US EPA.
The category travels with every index (JSON and HTML alike), so colour is never the only sign.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from service.widgets.base import QueryError, WidgetSpec
from service.widgets.weather import Location

LevelKey = Literal["good", "moderate", "sensitive", "unhealthy", "very_unhealthy", "hazardous"]


@dataclass(frozen=True)
class Level:
    key: LevelKey
    #: The highest index in this category (the lowest is one above the previous category's).
    upto: int
    name: str
    #: For the narrow forecast cells.
    short: str


LEVELS: tuple[Level, ...] = (
    Level("good", 50, "پاک", "پاک"),
    Level("moderate", 100, "قابل قبول", "قابل قبول"),
    Level("sensitive", 150, "ناسالم برای گروه‌های حساس", "ناسالم برای حساس‌ها"),
    Level("unhealthy", 200, "ناسالم", "ناسالم"),
    Level("very_unhealthy", 300, "بسیار ناسالم", "بسیار ناسالم"),
    Level("hazardous", 500, "خطرناک", "خطرناک"),
)
#: Where the index ends. Above it (a dust storm) EPA speaks of "beyond the AQI": shown as 500+.
MAX_AQI = 500
#: No dust storm on record puts 20 mg of particles in a cubic metre of a model grid cell: a value
#: above this is junk, not weather.
MAX_PM = 20_000.0
BLOCK_HOURS = 3
MAX_FORECAST_HOURS = 24
MAX_BLOCKS = MAX_FORECAST_HOURS // BLOCK_HOURS
#: The next twelve hours in four blocks: this afternoon, evening and night at a glance, one row.
DEFAULT_FORECAST_HOURS = 12

_FINITE = ConfigDict(allow_inf_nan=False)


def level_of(aqi: int | None) -> Level | None:
    if aqi is None:
        return None
    return next(level for level in LEVELS if aqi <= level.upto)


class Index(BaseModel):
    """A US AQI with its category, which must be the index's: junk from a cache cannot mix them."""

    model_config = _FINITE

    us_aqi: int | None = Field(default=None, ge=0, le=MAX_AQI)
    #: The upstream's index was above 500, where the scale ends: ``us_aqi`` is then 500.
    beyond_index: bool = False
    level: LevelKey | None = None
    category: str | None = None
    #: The category's shorter wording, for narrow places.
    category_short: str | None = None

    @model_validator(mode="after")
    def _category_is_the_index(self) -> Index:
        level = level_of(self.us_aqi)
        expected = (level.key, level.name, level.short) if level else (None, None, None)
        if (self.level, self.category, self.category_short) != expected:
            raise ValueError(f"category does not match the index {self.us_aqi}")
        if self.beyond_index and self.us_aqi != MAX_AQI:
            raise ValueError("only an index at the scale's end can be beyond it")
        return self


def index_fields(aqi: int | None, *, beyond: bool = False) -> dict[str, Any]:
    """The fields of an ``Index`` for a whole-number index already within 0–500."""
    level = level_of(aqi)
    return {
        "us_aqi": aqi,
        "beyond_index": beyond,
        "level": level.key if level else None,
        "category": level.name if level else None,
        "category_short": level.short if level else None,
    }


class Reading(Index):
    """The index now: without it the box has nothing to say, so it is required here."""

    us_aqi: int = Field(ge=0, le=MAX_AQI)
    #: The start of the hour (or quarter-hour) the reading is for, in the place's zone.
    observed_at: AwareDatetime
    pm2_5: float | None = Field(default=None, ge=0, le=MAX_PM)
    pm10: float | None = Field(default=None, ge=0, le=MAX_PM)


class Block(Index):
    """The worst hour of a few hours ahead; no index when the source had none for any of them."""

    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _one_block(self) -> Block:
        if self.ends_at - self.starts_at != timedelta(hours=BLOCK_HOURS):
            raise ValueError(f"a block is {BLOCK_HOURS} hours")
        return self


class AirData(BaseModel):
    model_config = _FINITE

    location: Location
    current: Reading
    #: Consecutive blocks from the hour after the reading's.
    forecast: list[Block] = Field(default_factory=list, max_length=MAX_BLOCKS)

    @model_validator(mode="after")
    def _blocks_follow_the_reading(self) -> AirData:
        if self.forecast and not self.current.observed_at < self.forecast[0].starts_at:
            raise ValueError("the forecast starts before the reading")
        for before, after in zip(self.forecast, self.forecast[1:], strict=False):
            if after.starts_at != before.ends_at:
                raise ValueError(f"blocks not consecutive: {before.ends_at} then {after.starts_at}")
        return self


class AirOptions(BaseModel):
    """``[widgets.air]``: how far ahead the box looks. The place is the weather's."""

    model_config = ConfigDict(extra="forbid")

    #: Hours of forecast in the box, in three-hour blocks; 0 shows the index now alone.
    forecast_hours: int = Field(default=DEFAULT_FORECAST_HOURS, ge=0, le=MAX_FORECAST_HOURS)

    @field_validator("forecast_hours")
    @classmethod
    def _whole_blocks(cls, value: int) -> int:
        if value % BLOCK_HOURS:
            raise ValueError(f"must be a multiple of {BLOCK_HOURS}")
        return value


FORECAST_HOURS_RULE = f"forecast_hours: must be 0 or a multiple of {BLOCK_HOURS} up to {MAX_FORECAST_HOURS}"


def parse_query(query: Mapping[str, str], options: BaseModel) -> dict[str, Any]:
    if "forecast_hours" not in query:
        return {}
    raw = query["forecast_hours"]
    # ASCII and short before int(): "۱۲" and "²" are digits to isdigit() but not what a URL means.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 2):
        raise QueryError(FORECAST_HOURS_RULE)
    hours = int(raw)
    if hours > MAX_FORECAST_HOURS or hours % BLOCK_HOURS:
        raise QueryError(FORECAST_HOURS_RULE)
    return {"forecast_hours": hours}


def select(data: dict[str, Any], view: dict[str, Any], options: BaseModel) -> dict[str, Any]:
    assert isinstance(options, AirOptions)
    blocks = view.get("forecast_hours", options.forecast_hours) // BLOCK_HOURS
    forecast = data.get("forecast", [])
    return data if len(forecast) <= blocks else {**data, "forecast": forecast[:blocks]}


AIR = WidgetSpec(
    name="air",
    title="کیفیت هوا",
    data_model=AirData,
    default_providers=("openmeteo_air",),
    # The index is hourly: a refresh each half hour shows a new hour's index within 30 minutes.
    default_refresh_seconds=1800,
    options_model=AirOptions,
    template="widgets/air.html",
    parse_query=parse_query,
    select=select,
    place_of="weather",
)
