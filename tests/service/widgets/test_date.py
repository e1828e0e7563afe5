"""The date widget: today in three calendars, on the engine's clock, turning at local midnight."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from providers.calendar import date_data
from service.settings import ConfigError, EngineSettings, Settings, load_settings
from service.web.app import create_app
from service.widgets import BUILTIN_WIDGETS
from service.widgets.date import DateOptions
from tests.support.clock import FakeClock

TEHRAN = ZoneInfo("Asia/Tehran")


def at(wall: str, zone: ZoneInfo = TEHRAN) -> float:
    return datetime.fromisoformat(wall).replace(tzinfo=zone).timestamp()


def date_settings(*, background: bool = False, **options: Any) -> Settings:
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "date"}
    return Settings(engine=EngineSettings(background=background), widgets={"date": options, **others})


async def test_today_in_three_calendars(aiohttp_client):
    clock = FakeClock(at("2026-11-26T09:00:00"))
    client = await aiohttp_client(create_app(date_settings(), clock=clock))

    body = await (await client.get("/widgets/date.json")).json()
    html = await (await client.get("/widgets/date.html")).text()

    data = body["data"]
    assert data["date"] == "2026-11-26" and data["timezone"] == "Asia/Tehran"
    assert data["jalali_date"] == "1405-09-05" and data["weekday"] == "پنج‌شنبه"
    assert data["jalali"] == {"year": 1405, "month": 9, "day": 5, "month_name": "آذر"}
    # 3 Jumada II 1448 was Iran's Fatima holiday on 13 November 2026: the month began on the 11th.
    assert data["hijri"] == {
        "year": 1448,
        "month": 6,
        "day": 16,
        "month_name": "جمادی‌الثانیه",
        "source": "official",
    }
    assert data["gregorian"] == {"year": 2026, "month": 11, "day": 26, "month_name": "نوامبر"}
    assert data["holidays"] == [] and data["is_holiday"] is False
    assert "پنج‌شنبه ۵ آذر ۱۴۰۵" in html
    assert "۱۶ جمادی‌الثانیه ۱۴۴۸" in html and "۲۶ نوامبر ۲۰۲۶" in html


def test_known_dates():
    options = DateOptions()
    nowruz = date_data(date(2025, 3, 21), options)
    assert (nowruz.jalali_date, nowruz.weekday) == ("1404-01-01", "جمعه")
    # 1 Ramadan 1446 was 1 March 2025 in the Umm al-Qura tables, and 2 March in Iran.
    ramadan = date_data(date(2025, 3, 2), options)
    assert ramadan.hijri is not None and (ramadan.hijri.day, ramadan.hijri.month_name) == (1, "رمضان")
    sha_ban = date_data(date(2025, 3, 1), options).hijri
    assert sha_ban is not None and (sha_ban.day, sha_ban.month_name) == (30, "شعبان")


def test_hijri_adjust_days_moves_the_lunar_date_only():
    behind = date_data(date(2025, 3, 2), DateOptions(hijri_adjust_days=-1))
    assert behind.hijri is not None and (behind.hijri.day, behind.hijri.month_name) == (30, "شعبان")
    assert behind.jalali_date == "1403-12-12" and behind.hijri_adjust_days == -1


def test_outside_the_hijri_tables_there_is_no_hijri_date():
    assert date_data(date(2090, 1, 1), DateOptions()).hijri is None


async def test_holidays_show_on_their_day(aiohttp_client):
    holidays = [
        {"date": "01-01", "title": "عید نوروز"},
        {"date": "1405-09-05", "title": "روز آزمون"},
        {"date": "1404-09-05", "title": "پارسال"},
    ]
    clock = FakeClock(at("2026-11-26T09:00:00"))
    client = await aiohttp_client(create_app(date_settings(holidays=holidays), clock=clock))

    body = await (await client.get("/widgets/date.json")).json()
    html = await (await client.get("/widgets/date.html")).text()

    assert body["data"]["holidays"] == [{"name": "روز آزمون", "official": False, "estimated": False}]
    assert body["data"]["is_holiday"] is False  # a site's own day is not a day off
    assert '<li class="sw-local">روز آزمون</li>' in html and "پارسال" not in html
    # Nowruz 1405 was also Eid al-Fitr 1447 in Iran: both official, then the site's own title.
    nowruz = date_data(date(2026, 3, 21), DateOptions.model_validate({"holidays": holidays}))
    assert [(h.name, h.official) for h in nowruz.holidays] == [
        ("جشن نوروز", True),
        ("عید سعید فطر", True),
        ("عید نوروز", False),
    ]
    assert nowruz.is_holiday


async def test_rolls_over_at_local_midnight_without_a_restart(aiohttp_client):
    clock = FakeClock(at("2026-11-26T23:59:30"))
    client = await aiohttp_client(create_app(date_settings(background=True), clock=clock))
    response = await client.get("/widgets/date.json")
    before = await response.json()
    assert before["data"]["jalali_date"] == "1405-09-05"
    # Clients may keep it until midnight, not longer.
    assert "max-age=30," in response.headers["Cache-Control"]

    await clock.advance(31)

    after = await (await client.get("/widgets/date.json")).json()
    assert after["status"] == "fresh"
    assert after["data"]["jalali_date"] == "1405-09-06" and after["data"]["weekday"] == "جمعه"


async def test_today_is_taken_in_the_configured_zone(aiohttp_client):
    # 22:00 UTC on the 26th is already the 27th in Tehran, still the 26th in London.
    clock = FakeClock(datetime(2026, 11, 26, 22, 0, tzinfo=ZoneInfo("UTC")).timestamp())
    london = await aiohttp_client(create_app(date_settings(timezone="Europe/London"), clock=clock))
    tehran = await aiohttp_client(create_app(date_settings(), clock=clock))

    assert (await (await london.get("/widgets/date.json")).json())["data"]["date"] == "2026-11-26"
    assert (await (await tehran.get("/widgets/date.json")).json())["data"]["date"] == "2026-11-27"


@pytest.mark.parametrize(
    "option",
    [
        {"hijri_adjust_days": 3},
        {"timezone": "Nowhere/Town"},
        {"holidays": [{"date": "13-40", "title": "x"}]},
        {"holidays": [{"date": "1403-12-31", "title": "x"}]},
        {"holidays": [{"date": "01-01", "title": ""}]},
        {"hijri_month_starts": {"1448-10": "2027-04-10"}},  # a month off: a typing slip
        {"hijri_month_starts": {"1448-13": "2027-03-10"}},
        {"hijri_month_starts": {"1448/10": "2027-03-10"}},
        {"hijri_month_starts": {"1448-10": "tomorrow"}},
    ],
)
def test_bad_settings_stop_start_up(option):
    with pytest.raises(ConfigError):
        create_app(date_settings(**option))


async def test_an_announced_month_start_is_read_from_the_environment(aiohttp_client, monkeypatch):
    # Say Iran sights the Shawwal 1448 crescent a day later than the counted estimate.
    monkeypatch.setenv("SIDEBAR_WIDGETS__DATE__HIJRI_MONTH_STARTS", '{"1448-10": "2027-03-11"}')
    monkeypatch.setenv("SIDEBAR_ENGINE__BACKGROUND", "false")
    clock = FakeClock(at("2027-03-11T09:00:00"))
    client = await aiohttp_client(create_app(load_settings(), clock=clock))

    data = (await (await client.get("/widgets/date.json")).json())["data"]

    assert data["hijri"] == {
        "year": 1448,
        "month": 10,
        "day": 1,
        "month_name": "شوال",
        "source": "official",
    }
    assert {"name": "عید سعید فطر", "official": True, "estimated": False} in data["holidays"]
    assert data["is_holiday"] is True


async def test_friday_is_the_weekly_holiday_in_json_and_in_the_box(aiohttp_client):
    clock = FakeClock(at("2026-11-27T09:00:00"))  # a Friday, no other holiday
    client = await aiohttp_client(create_app(date_settings(), clock=clock))

    data = (await (await client.get("/widgets/date.json")).json())["data"]
    html = await (await client.get("/widgets/date.html")).text()

    assert data["weekday"] == "جمعه" and data["holidays"] == [] and data["is_holiday"] is True
    assert 'class="sw-jalali sw-off"' in html
