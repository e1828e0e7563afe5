"""The date box (امروز): today in the configured zone, in the three calendars a reader uses.

Jalali with weekday and month name; the lunar Hijri date as Iran keeps it (``service.iran_lunar``:
months begun by Iran's announcements, ``official`` or ``estimated``) with the month names of
Iran's official calendar; Gregorian; Iran's official holidays of the day (solar and lunar), the
site's own days added to them, and whether the day is a holiday (Friday is the weekly one).
Refreshed at local midnight (``next_refresh``), so it rolls over without a restart.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal
from zoneinfo import ZoneInfo

import jdatetime
from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.iran_lunar import check_announced
from service.widgets.base import WidgetSpec
from service.widgets.local_day import known_zone, midnight_after

#: As Iran's official calendar spells them (the Institute of Geophysics' تقویم رسمی).
HIJRI_MONTHS = (
    "محرم",
    "صفر",
    "ربیع‌الاول",
    "ربیع‌الثانی",
    "جمادی‌الاولی",
    "جمادی‌الثانیه",
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
MAX_ANNOUNCED_MONTHS = 400
#: Friday, in ``date.weekday()``'s count: Iran's weekly holiday.
FRIDAY = 4


class CalendarDate(BaseModel):
    year: int = Field(ge=1, le=3000)
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)
    month_name: str = Field(min_length=1, max_length=20)


class HijriDate(CalendarDate):
    #: ``official``: the month's start was announced or observed in Iran; ``estimated``: counted.
    source: Literal["official", "estimated"]


class DayHoliday(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    #: An official (public) holiday of Iran; False for a day the site added itself.
    official: bool
    #: A lunar holiday placed on an estimated lunar date.
    estimated: bool = False


class DateData(BaseModel):
    #: Today, Gregorian ISO date, in ``timezone``.
    date: date
    timezone: str = Field(min_length=1, max_length=64)
    weekday: str = Field(min_length=1, max_length=20)
    jalali_date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    jalali: CalendarDate
    #: None outside the Umm al-Qura tables (1343–1500 AH, 1924–2077).
    hijri: HijriDate | None
    hijri_adjust_days: int = Field(ge=-MAX_ADJUST_DAYS, le=MAX_ADJUST_DAYS)
    gregorian: CalendarDate
    #: Iran's official holidays on this day, then the configured ones.
    holidays: list[DayHoliday] = Field(default_factory=list, max_length=20)
    #: A Friday, or an official holiday.
    is_holiday: bool = False


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
    """``[widgets.date]``: the zone "today" is taken in, announced lunar months, extra holidays."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "Asia/Tehran"
    #: Announced first days of lunar months, ``{"1448-10" = 2027-03-10}``: they win over the rest.
    hijri_month_starts: dict[str, date] = Field(default_factory=dict, max_length=MAX_ANNOUNCED_MONTHS)
    #: A last resort moving the whole lunar date; announced month starts are the right tool.
    hijri_adjust_days: int = Field(default=0, ge=-MAX_ADJUST_DAYS, le=MAX_ADJUST_DAYS)
    #: The site's own days, added to Iran's official holidays.
    holidays: list[Holiday] = Field(default_factory=list, max_length=MAX_HOLIDAYS)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)

    @field_validator("hijri_month_starts")
    @classmethod
    def _plausible_months(cls, value: dict[str, date]) -> dict[str, date]:
        for key, start in value.items():
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}", key):
                raise ValueError(f"{key[:20]!r}: a lunar month is written YYYY-MM, e.g. 1448-10")
            check_announced(int(key[:4]), int(key[5:]), start)
        return value

    @property
    def announced_months(self) -> dict[tuple[int, int], date]:
        return {(int(key[:4]), int(key[5:])): start for key, start in self.hijri_month_starts.items()}

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
