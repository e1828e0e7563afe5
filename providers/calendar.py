"""Today's date in three calendars and its holidays, computed here (no upstream) on the engine's clock."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

import jdatetime

from providers.base import Provider, ProviderConfig
from service.iran_holidays import official_holidays, warm_up
from service.iran_lunar import IranLunarCalendar
from service.widgets.date import (
    FRIDAY,
    GREGORIAN_MONTHS,
    HIJRI_MONTHS,
    CalendarDate,
    DateData,
    DateOptions,
    DayHoliday,
    HijriDate,
)
from service.widgets.local_day import local_today

if TYPE_CHECKING:
    from providers.http import UpstreamSession


class CalendarProvider(Provider):
    id = "calendar"
    widget = "date"

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        # Configured at start-up: the holiday tables are read then, not in the first refresh.
        warm_up()

    async def fetch(self, http: UpstreamSession) -> DateData:
        options = self.config.widget_options
        if not isinstance(options, DateOptions):
            options = DateOptions()
        return date_data(local_today(http.now(), options.zone), options)


def date_data(today: date, options: DateOptions) -> DateData:
    jalali = jdatetime.date.fromgregorian(date=today)
    calendar = IranLunarCalendar(options.announced_months)
    lunar = calendar.on(today + timedelta(days=options.hijri_adjust_days))
    official = official_holidays(today, lunar, calendar)
    days = [DayHoliday(name=h.name, official=True, estimated=h.estimated) for h in official] + [
        DayHoliday(name=h.title, official=False) for h in options.holidays if h.falls_on(jalali)
    ]
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
        hijri=None
        if lunar is None
        else HijriDate(
            year=lunar.year,
            month=lunar.month,
            day=lunar.day,
            month_name=HIJRI_MONTHS[lunar.month - 1],
            source=lunar.source,
        ),
        hijri_adjust_days=options.hijri_adjust_days,
        gregorian=CalendarDate(
            year=today.year, month=today.month, day=today.day, month_name=GREGORIAN_MONTHS[today.month - 1]
        ),
        holidays=days[:20],
        is_holiday=today.weekday() == FRIDAY or bool(official),
    )
