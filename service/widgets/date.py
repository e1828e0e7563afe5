"""The date box (امروز): today in the configured zone, in the three calendars a reader uses.

Jalali with weekday and month name, the lunar Hijri date (Umm al-Qura tables, moved by
``hijri_adjust_days`` where Iran's sighting-based calendar differs by a day) with Persian month
names, and Gregorian; plus the configured holidays falling on the day. Refreshed at local
midnight (``next_refresh``), so it rolls over without a restart.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import jdatetime
from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.widgets.base import WidgetSpec
from service.widgets.local_day import known_zone, midnight_after

HIJRI_MONTHS = (
    "محرم",
    "صفر",
    "ربیع‌الاول",
    "ربیع‌الثانی",
    "جمادی‌الاول",
    "جمادی‌الثانی",
    "رجب",
    "شعبان",
    "رمضان",
    "شوال",
    "ذی‌القعده",
    "ذی‌الحجه",
)
GREGORIAN_MONTHS = (
    "ژانویه",
    "فوریه",
    "مارس",
    "آوریل",
    "مه",
    "ژوئن",
    "ژوئیه",
    "اوت",
    "سپتامبر",
    "اکتبر",
    "نوامبر",
    "دسامبر",
)
MAX_HOLIDAYS = 400
MAX_ADJUST_DAYS = 2


class CalendarDate(BaseModel):
    year: int = Field(ge=1, le=3000)
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)
    month_name: str = Field(min_length=1, max_length=20)


class DateData(BaseModel):
    #: Today, Gregorian ISO date, in ``timezone``.
    date: date
    timezone: str = Field(min_length=1, max_length=64)
    weekday: str = Field(min_length=1, max_length=20)
    jalali_date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    jalali: CalendarDate
    #: None outside the Umm al-Qura tables (1343–1500 AH, 1924–2077).
    hijri: CalendarDate | None
    hijri_adjust_days: int = Field(ge=-MAX_ADJUST_DAYS, le=MAX_ADJUST_DAYS)
    gregorian: CalendarDate
    #: Titles of the configured holidays that fall on this day.
    holidays: list[str] = Field(default_factory=list, max_length=20)


class Holiday(BaseModel):
    """A Jalali date, every year (``01-01``) or one year only (``1405-01-13``), with its title."""

    model_config = ConfigDict(extra="forbid")

    # ASCII digits only: "۰۱-۰۱" would pass \d and int() yet never equal the "01-01" it is matched to.
    date: str = Field(pattern=r"^([0-9]{4}-)?[0-9]{2}-[0-9]{2}$")
    title: str = Field(min_length=1, max_length=100)

    @field_validator("date")
    @classmethod
    def _a_jalali_day(cls, value: str) -> str:
        parts = [int(part) for part in value.split("-")]
        year = parts[0] if len(parts) == 3 else 1403  # a leap year: 12-30 is a day
        try:
            jdatetime.date(year, parts[-2], parts[-1])
        except ValueError:
            raise ValueError(f"{value} is not a Jalali day") from None
        return value

    def falls_on(self, jalali: jdatetime.date) -> bool:
        month_day = f"{jalali.month:02d}-{jalali.day:02d}"
        return self.date in (month_day, f"{jalali.year:04d}-{month_day}")


class DateOptions(BaseModel):
    """``[widgets.date]``: the zone "today" is taken in, the Hijri correction, the holidays."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "Asia/Tehran"
    hijri_adjust_days: int = Field(default=0, ge=-MAX_ADJUST_DAYS, le=MAX_ADJUST_DAYS)
    holidays: list[Holiday] = Field(default_factory=list, max_length=MAX_HOLIDAYS)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


DATE = WidgetSpec(
    name="date",
    title="امروز",
    data_model=DateData,
    default_providers=("calendar",),
    default_refresh_seconds=86400,
    options_model=DateOptions,
    template="widgets/date.html",
    next_refresh=midnight_after,
)
