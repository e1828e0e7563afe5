"""Today's date in three calendars, computed here (no upstream) on the engine's clock."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

import jdatetime
from hijridate import Gregorian

from providers.base import Provider
from service.widgets.date import GREGORIAN_MONTHS, HIJRI_MONTHS, CalendarDate, DateData, DateOptions
from service.widgets.local_day import local_today

if TYPE_CHECKING:
    from providers.http import UpstreamSession


class CalendarProvider(Provider):
    id = "calendar"
    widget = "date"

    async def fetch(self, http: UpstreamSession) -> DateData:
        options = self.config.widget_options
        if not isinstance(options, DateOptions):
            options = DateOptions()
        return date_data(local_today(http.now(), options.zone), options)


def date_data(today: date, options: DateOptions) -> DateData:
    jalali = jdatetime.date.fromgregorian(date=today)
    return DateData(
        date=today,
        timezone=options.timezone,
        weekday=jdatetime.date.j_weekdays_fa[jalali.weekday()],
        jalali_date=f"{jalali.year:04d}-{jalali.month:02d}-{jalali.day:02d}",
        jalali=CalendarDate(
            year=jalali.year,
            month=jalali.month,
            day=jalali.day,
            month_name=jdatetime.date.j_months_fa[jalali.month - 1],
        ),
        hijri=hijri(today, options.hijri_adjust_days),
        hijri_adjust_days=options.hijri_adjust_days,
        gregorian=CalendarDate(
            year=today.year, month=today.month, day=today.day, month_name=GREGORIAN_MONTHS[today.month - 1]
        ),
        holidays=[holiday.title for holiday in options.holidays if holiday.falls_on(jalali)][:20],
    )


def hijri(today: date, adjust_days: int) -> CalendarDate | None:
    """The Umm al-Qura date, moved by ``adjust_days`` (Iran's calendar follows moon sighting)."""
    shifted = today + timedelta(days=adjust_days)
    try:
        lunar = Gregorian(shifted.year, shifted.month, shifted.day).to_hijri()
    except (ValueError, OverflowError):
        return None  # outside the tables
    return CalendarDate(
        year=lunar.year, month=lunar.month, day=lunar.day, month_name=HIJRI_MONTHS[lunar.month - 1]
    )
