"""Iran's lunar calendar: the days Iran observed, announced months winning, estimates marked."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from hijridate import Gregorian

from service.iran_lunar import IranLunarCalendar, check_announced, month_index, observed_month_starts

DAYS = json.loads((Path(__file__).parent / "fixtures" / "iran_lunar_days.json").read_text())["days"]


def lunar_of(text: str) -> tuple[int, int, int]:
    year, month, day = (int(part) for part in text.split("-"))
    return year, month, day


def umm_al_qura(day: date) -> tuple[int, int, int]:
    lunar = Gregorian(day.year, day.month, day.day).to_hijri()
    return lunar.year, lunar.month, lunar.day


@pytest.mark.parametrize("day", DAYS, ids=lambda d: f"{d['name']}-{d['lunar'][:4]}")
def test_the_major_days_of_1443_to_1447_fall_where_iran_observed_them(day):
    lunar = IranLunarCalendar().on(date.fromisoformat(day["iran"]))
    assert lunar is not None
    assert (lunar.year, lunar.month, lunar.day) == lunar_of(day["lunar"])
    assert lunar.source == "official"


def test_umm_al_qura_alone_would_name_the_wrong_day_on_most_of_them():
    """The reference days are a test of something: the tables miss most of them."""
    wrong = [d for d in DAYS if umm_al_qura(date.fromisoformat(d["iran"])) != lunar_of(d["lunar"])]
    assert len(wrong) == 12


def test_every_day_from_2001_on_follows_the_one_before():
    calendar, day = IranLunarCalendar(), date(2001, 1, 1)
    before = calendar.on(day)
    while day < date(2030, 1, 1):
        day += timedelta(days=1)
        today = calendar.on(day)
        assert today is not None and before is not None
        if today.day == 1:
            assert before.day in (29, 30), (day, before)
            assert month_index(today.year, today.month) == month_index(before.year, before.month) + 1
        else:
            assert (today.year, today.month, today.day) == (before.year, before.month, before.day + 1)
        before = today


def test_the_observed_holidays_never_disagree_about_a_month():
    starts = observed_month_starts()
    assert len(starts) > 200  # 2001-2026, most months of each year
    # Consecutive known starts are whole lunar months apart.
    for index, start in starts.items():
        following = starts.get(index + 1)
        if following is not None:
            assert (following - start).days in (29, 30), (divmod(index, 12), start, following)


def test_a_month_no_holiday_fixes_is_estimated_between_the_known_ones():
    calendar = IranLunarCalendar()
    # Jumada al-Ula 1447: between Rabi' al-Awwal (holidays on the 8th and 17th) and Jumada
    # al-Thani (Fatima on the 3rd), nothing is observed.
    start, known = calendar.month_start(month_index(1447, 5))  # type: ignore[misc]
    following, following_known = calendar.month_start(month_index(1447, 6))  # type: ignore[misc]
    assert not known and following_known
    assert (following - start).days in (29, 30)
    middle = calendar.on(start + timedelta(days=10))
    assert middle is not None and (middle.month, middle.day, middle.source) == (5, 11, "estimated")


def test_past_the_confirmed_years_dates_are_estimated_and_still_whole_months():
    lunar = IranLunarCalendar().on(date(2028, 5, 1))
    assert lunar is not None and lunar.source == "estimated"


def test_an_announced_month_start_wins_and_makes_its_days_official():
    calendar = IranLunarCalendar()
    estimated, _ = calendar.month_start(month_index(1448, 10))  # type: ignore[misc]
    announced = estimated + timedelta(days=1)
    moved = IranLunarCalendar({(1448, 10): announced})
    first = moved.on(announced)
    assert first is not None and (first.month, first.day, first.source) == (10, 1, "official")
    eve = moved.on(announced - timedelta(days=1))
    assert eve is not None and (eve.month, eve.day) == (9, 30)  # Ramadan lasts a day longer
    # A 30th day is official only when the next month's start is known too.
    assert eve.source == "estimated"


def test_an_announcement_far_from_the_tables_is_refused():
    check_announced(1448, 10, date(2027, 3, 10))
    with pytest.raises(ValueError, match="typing slip"):
        check_announced(1448, 10, date(2027, 4, 10))
    with pytest.raises(ValueError, match="no lunar month 13"):
        check_announced(1448, 13, date(2027, 3, 10))


def test_outside_the_tables_there_is_no_lunar_date():
    assert IranLunarCalendar().on(date(2090, 1, 1)) is None
