"""Iran's official holidays, out of the box: solar ones on the Jalali calendar, lunar ones on Iran's
own lunar calendar, in Persian."""

from __future__ import annotations

from datetime import date, timedelta

import jdatetime

from service.iran_holidays import official_holidays
from service.iran_lunar import IranLunarCalendar, month_index

CALENDAR = IranLunarCalendar()


def names_on(day: date, calendar: IranLunarCalendar = CALENDAR) -> list[str]:
    return [holiday.name for holiday in official_holidays(day, calendar.on(day), calendar)]


def jalali(year: int, month: int, day: int) -> date:
    return jdatetime.date(year, month, day).togregorian()


def test_the_solar_holidays_of_1404():
    assert names_on(jalali(1404, 1, 1)) == ["جشن نوروز"]
    assert all(names_on(jalali(1404, 1, day)) for day in (2, 3, 4, 12, 13))
    assert names_on(jalali(1404, 3, 14)) == ["رحلت حضرت امام خمینی"]
    assert names_on(jalali(1404, 3, 15)) == ["قیام ۱۵ خرداد"]  # Persian digits in the name
    assert names_on(jalali(1404, 11, 22)) == ["پیروزی انقلاب اسلامی"]
    assert "روز ملی شدن صنعت نفت ایران" in names_on(jalali(1404, 12, 29))
    assert names_on(jalali(1404, 1, 5)) == []


def test_ashura_and_eid_on_the_days_iran_observed():
    assert names_on(date(2025, 7, 6)) == ["عاشورای حسینی"]
    assert names_on(date(2025, 7, 5)) == ["تاسوعای حسینی"]
    assert names_on(date(2025, 3, 31)) == ["عید سعید فطر"]
    assert names_on(date(2025, 4, 1)) == ["روز جمهوری اسلامی", "تعطیل به مناسبت عید سعید فطر"]
    assert names_on(date(2025, 6, 6)) == ["عید سعید قربان"]
    assert names_on(date(2025, 7, 7)) == []  # Umm al-Qura's Ashura was the 5th: nothing after


def test_imam_reza_is_the_last_day_of_safar_whether_it_is_the_29th_or_the_30th():
    first_of_rabi = CALENDAR.month_start(month_index(1447, 3))
    assert first_of_rabi is not None
    last_of_safar = first_of_rabi[0] - timedelta(days=1)
    assert names_on(last_of_safar) == ["شهادت امام رضا علیه السلام"]


def test_a_lunar_holiday_can_fall_twice_in_one_jalali_year():
    year, found = jalali(1404, 1, 1), []
    while year < jalali(1405, 1, 1):
        if "شهادت حضرت علی علیه السلام" in names_on(year):
            found.append(year)
        year += timedelta(days=1)
    assert found == [date(2025, 3, 22), date(2026, 3, 11)]


def test_an_announced_month_moves_its_holidays_with_it():
    eid = CALENDAR.month_start(month_index(1448, 10))
    assert eid is not None
    later = IranLunarCalendar({(1448, 10): eid[0] + timedelta(days=1)})
    assert "عید سعید فطر" not in names_on(eid[0], later)
    assert "عید سعید فطر" in names_on(eid[0] + timedelta(days=1), later)


def test_a_lunar_holiday_on_an_estimated_date_says_so():
    eid = CALENDAR.month_start(month_index(1449, 10))
    assert eid is not None and not eid[1]
    holidays = official_holidays(eid[0], CALENDAR.on(eid[0]), CALENDAR)
    assert [(h.name, h.estimated) for h in holidays if "فطر" in h.name] == [("عید سعید فطر", True)]
