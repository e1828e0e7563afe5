"""The prayer-times widget end to end: computed on the engine's clock, Persian JSON and fragment out."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import service.widgets.prayer as prayer_widget
from service.settings import ConfigError, EngineSettings, Settings
from service.web.app import create_app
from service.widgets import BUILTIN_WIDGETS
from tests.support.clock import FakeClock

TEHRAN = ZoneInfo("Asia/Tehran")
KEYS = ["fajr", "sunrise", "dhuhr", "asr", "sunset", "maghrib", "isha", "midnight"]
ISO_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+03:30$")


def at(wall: str) -> float:
    """Epoch seconds of a Tehran wall-clock time."""
    return datetime.fromisoformat(wall).replace(tzinfo=TEHRAN).timestamp()


def prayer_settings(**prayer: Any) -> Settings:
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "prayer"}
    return Settings(engine=EngineSettings(background=False), widgets={"prayer": prayer, **others})


TEHRAN_PLACE = {"name": "تهران", "latitude": 35.6944, "longitude": 51.4215, "elevation": 1190}


async def test_json_has_the_days_with_every_time_in_iso_with_seconds(aiohttp_client):
    clock = FakeClock(at("2024-11-27T10:00:00"))
    client = await aiohttp_client(create_app(prayer_settings(**TEHRAN_PLACE), clock=clock))

    body = await (await client.get("/widgets/prayer.json")).json()

    assert body["status"] == "fresh" and body["source"] == "prayer_times"
    data = body["data"]
    assert data["location"]["name"] == "تهران" and data["method"] == "tehran"
    assert len(data["days"]) == 1  # the configured default
    day = data["days"][0]
    assert day["date"] == "2024-11-27" and day["jalali_date"] == "1403-09-07"
    assert day["weekday"] == "چهارشنبه"
    assert list(day["times"]) == KEYS
    assert all(ISO_SECONDS.match(value) for value in day["times"].values())
    assert day["times"]["maghrib"] == "2024-11-27T17:11:31+03:30"  # todaytime.ir prints 17:12


async def test_days_and_a_gregorian_or_jalali_date(aiohttp_client):
    clock = FakeClock(at("2024-11-27T10:00:00"))
    client = await aiohttp_client(create_app(prayer_settings(**TEHRAN_PLACE), clock=clock))

    week = (await (await client.get("/widgets/prayer.json?days=7")).json())["data"]["days"]
    jalali = (await (await client.get("/widgets/prayer.json?date=1403-09-07")).json())["data"]["days"]
    gregorian = (await (await client.get("/widgets/prayer.json?date=2024-11-27")).json())["data"]["days"]
    later = (await (await client.get("/widgets/prayer.json?date=1404-01-01&days=2")).json())["data"]["days"]

    assert [d["date"] for d in week] == [
        f"2024-{m}" for m in ("11-27", "11-28", "11-29", "11-30", "12-01", "12-02", "12-03")
    ]
    assert jalali == gregorian == week[:1]
    assert [d["date"] for d in later] == ["2025-03-21", "2025-03-22"]  # computed for the reader
    assert later[0]["jalali_date"] == "1404-01-01"


@pytest.mark.parametrize(
    "query",
    [
        "days=0",
        "days=8",
        "days=1e400",
        "days=" + "9" * 5000,
        "days=%C2%B2",
        "days=1&days=2",
        "date=1403-13-40",
        "date=2024-02-30",
        "date=%C2%B2",
        "date=%DB%B1%DB%B4%DB%B0%DB%B3-%DB%B0%DB%B9-%DB%B0%DB%B7",  # Persian digits
        "date=2024-11-27&date=2024-11-28",
        "date=24-11-27",
        "date=1800-01-01",
        "date=" + "1" * 5000,
    ],
)
async def test_anything_else_is_400(aiohttp_client, query):
    client = await aiohttp_client(create_app(prayer_settings()))

    for kind in ("json", "html"):
        response = await client.get(f"/widgets/prayer.{kind}?{query}")
        assert response.status == 400, query


async def test_fragment_is_persian_to_the_minute_with_the_next_call_to_prayer_highlighted(aiohttp_client):
    clock = FakeClock(at("2024-11-27T16:00:00"))
    client = await aiohttp_client(create_app(prayer_settings(**TEHRAN_PLACE), clock=clock))

    response = await client.get("/widgets/prayer.html")
    html = await response.text()

    assert html.startswith('<div class="sw-widget sw-prayer') and 'dir="rtl" lang="fa"' in html
    assert "اوقات شرعی به افق تهران" in html
    assert 'اذان بعدی: مغرب <bdi dir="ltr">۱۷:۱۲</bdi>' in html
    assert re.search(r'<tr data-time="maghrib" class="sw-is-next">', html)
    for label, time in [
        ("اذان صبح", "۰۵:۲۴"),
        ("طلوع آفتاب", "۰۶:۵۲"),
        ("اذان ظهر", "۱۱:۵۲"),
        ("نیمه‌شب شرعی", "۲۳:۰۸"),
    ]:
        assert re.search(rf"{label}</th>\s*<td[^>]*><bdi dir=\"ltr\">{time}</bdi>", html), label
    assert not re.search(
        r"[0-9]", re.sub(r"<[^>]*>|\{[^}]*\}|data-date=\"[^\"]*\"", "", html.split("</style>")[-1])
    )
    # The highlight follows the clock: after maghrib there is none left today.
    max_age = int(response.headers["Cache-Control"].split("max-age=")[1].split(",")[0])
    assert max_age <= 60
    await clock.advance(at("2024-11-27T17:15:00") - clock.time())
    later = await (await client.get("/widgets/prayer.html")).text()
    assert "sw-is-next" not in later.split("</style>")[-1]
    week = await (await client.get("/widgets/prayer.html?days=2")).text()
    assert 'اذان بعدی: صبح <bdi dir="ltr">' in week
    assert re.search(
        r'<tr data-date="2024-11-28">\s*<th[^>]*>[^<]*</th>\s*<td data-time="fajr" class="sw-is-next">', week
    )


async def test_asr_and_isha_are_shown_when_configured(aiohttp_client):
    client = await aiohttp_client(create_app(prayer_settings(show_asr_isha=True)))

    html = await (await client.get("/widgets/prayer.html")).text()

    assert "عصر" in html and "عشاء" in html


async def test_the_day_turns_at_local_midnight_without_a_restart(aiohttp_client):
    clock = FakeClock(at("2024-11-27T23:59:50"))
    settings = prayer_settings(**TEHRAN_PLACE)
    settings = settings.model_copy(update={"engine": EngineSettings(background=True)})
    client = await aiohttp_client(create_app(settings, clock=clock))
    before = await (await client.get("/widgets/prayer.json")).json()
    assert before["data"]["days"][0]["date"] == "2024-11-27"

    await clock.advance(20)

    after = await (await client.get("/widgets/prayer.json")).json()
    assert after["status"] == "fresh"
    assert after["data"]["days"][0]["date"] == "2024-11-28"


@pytest.mark.parametrize(
    "option", [{"latitude": 60}, {"timezone": "Mars/Olympus"}, {"days": 8}, {"elevation": float("nan")}]
)
def test_bad_settings_stop_start_up(option):
    with pytest.raises(ConfigError):
        create_app(prayer_settings(**option))


async def test_a_day_a_reader_asks_for_is_computed_once_however_often_it_is_asked(
    aiohttp_client, monkeypatch
):
    computed: list[object] = []
    original = prayer_widget.day_times

    def counting(place, on):
        computed.append(on)
        return original(place, on)

    monkeypatch.setattr(prayer_widget, "day_times", counting)
    prayer_widget._day.cache_clear()
    clock = FakeClock(at("2024-11-27T10:00:00"))
    client = await aiohttp_client(create_app(prayer_settings(**TEHRAN_PLACE), clock=clock))
    await client.get("/widgets/prayer.json")
    stored = len(computed)  # the refresh's week

    first = await client.get("/widgets/prayer.json?date=2031-01-01&days=7")
    again = await client.get("/widgets/prayer.html?date=2031-01-03&days=5")

    assert first.status == 200 and again.status == 200
    # Checked and then selected, in JSON and in HTML: each of the seven days once.
    assert len(computed) - stored == 7
