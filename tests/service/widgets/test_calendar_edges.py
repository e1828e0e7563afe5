"""The prayer and date widgets at the calendar's edges: hostile dates and queries, odd places and
zones, daylight-saving nights, the date line, Fajr crossing 00:00 UTC, and rollovers at midnight."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from providers.calendar import date_data
from service.prayer_times import day_times
from service.settings import ConfigError, EngineSettings, Settings
from service.web.app import create_app
from service.widgets import BUILTIN_WIDGETS
from service.widgets.date import DateOptions
from service.widgets.prayer import PrayerOptions
from tests.support.clock import FakeClock
from tests.support.redis_server import free_port

TEHRAN = ZoneInfo("Asia/Tehran")


def at(wall: str, zone: ZoneInfo = TEHRAN) -> float:
    return datetime.fromisoformat(wall).replace(tzinfo=zone).timestamp()


def only(widget: str, background: bool = False, **options: Any) -> Settings:
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != widget}
    return Settings(engine=EngineSettings(background=background), widgets={widget: options, **others})


def max_age(response) -> int:
    return int(response.headers["Cache-Control"].split("max-age=")[1].split(",")[0])


# ---------------------------------------------------------------- defects (expected to FAIL)


@pytest.mark.parametrize("path", ["/widgets/prayer.json", "/widgets/prayer.html", "/embed/prayer"])
async def test_D1_default_famenin_every_date_in_may_answers(aiohttp_client, path):
    """Default config; 2026-05-19 is in range (1925..2099) and valid. Fajr crosses 00:00 UTC that day."""
    client = await aiohttp_client(create_app(only("prayer"), clock=FakeClock(at("2026-01-10T10:00:00"))))
    response = await client.get(f"{path}?date=2026-05-19")
    assert response.status == 200, (response.status, await response.text())


async def test_D1b_default_famenin_starts_fresh_in_the_week_fajr_crosses_utc_midnight(aiohttp_client):
    """Any start (deploy, restart, no Redis) between 13 and 19 May: no data at all for the whole day."""
    client = await aiohttp_client(create_app(only("prayer"), clock=FakeClock(at("2026-05-15T10:00:00"))))
    response = await client.get("/widgets/prayer.json")
    assert response.status == 200, await response.text()


async def test_D1c_default_famenin_running_service_shows_today_through_may(aiohttp_client):
    clock = FakeClock(at("2026-05-12T10:00:00"))
    client = await aiohttp_client(create_app(only("prayer", background=True), clock=clock))
    first = await (await client.get("/widgets/prayer.json")).json()
    assert first["data"]["days"][0]["date"] == "2026-05-12"
    await clock.advance(at("2026-05-16T10:00:00") - clock.time())
    body = await (await client.get("/widgets/prayer.json")).json()
    assert body["data"]["days"][0]["date"] == "2026-05-16", (body["status"], body["data"]["days"][0]["date"])


async def test_D2_a_town_whose_isha_falls_after_local_midnight_has_data_all_summer(aiohttp_client):
    """lat 47.2 is inside the README's ±48°; Isha falls after local midnight in June (CEST)."""
    nantes = {
        "name": "Nantes",
        "latitude": 47.2,
        "longitude": -1.55,
        "elevation": 20,
        "timezone": "Europe/Paris",
    }
    client = await aiohttp_client(
        create_app(
            only("prayer", **nantes), clock=FakeClock(at("2025-06-20T10:00:00", ZoneInfo("Europe/Paris")))
        )
    )
    response = await client.get("/widgets/prayer.json")
    assert response.status == 200, await response.text()


def test_D3_timezone_that_does_not_fit_the_longitude_is_refused_at_start_up():
    """Famenin's coordinates with America/New_York: create_app accepts it, the widget is 503 forever."""
    with pytest.raises(ConfigError):
        create_app(only("prayer", timezone="America/New_York"))


async def test_D4_date_line_town_skipped_day_is_a_400_not_a_500(aiohttp_client):
    apia = {
        "name": "Apia",
        "latitude": -13.83,
        "longitude": -171.76,
        "elevation": 2,
        "timezone": "Pacific/Apia",
    }
    client = await aiohttp_client(
        create_app(
            only("prayer", **apia), clock=FakeClock(at("2026-01-10T10:00:00", ZoneInfo("Pacific/Apia")))
        )
    )
    for day in ("2011-12-29", "2011-12-30"):
        response = await client.get(f"/widgets/prayer.json?date={day}")
        assert response.status in (200, 400), (day, response.status, await response.text())


def test_D5_midnight_on_a_dst_night_is_measured_in_elapsed_time():
    """Tehran observed DST until 2022; date=2021-09-21 is a valid reader query."""
    place = PrayerOptions(latitude=35.6944, longitude=51.4215, timezone="Asia/Tehran").place
    today = day_times(place, date(2021, 9, 21))
    tomorrow = day_times(place, date(2021, 9, 22))
    true_mid = (today["sunset"].timestamp() + tomorrow["fajr"].timestamp()) / 2
    assert abs(today["midnight"].timestamp() - true_mid) < 90, (
        today["midnight"],
        datetime.fromtimestamp(true_mid, TEHRAN),
    )


def test_D6_holiday_in_persian_digits_is_a_configuration_error_not_silently_never_shown():
    with pytest.raises(ValidationError):
        DateOptions.model_validate({"holidays": [{"date": "۰۱-۰۱", "title": "عید نوروز"}]})


async def test_D7_next_prayer_highlight_is_the_same_for_every_request_of_a_minute(aiohttp_client):
    """Tehran maghrib 2024-11-27 is 17:11:57 (shown ۱۷:۱۲). Same minute, same ETag, different answers."""
    place = {"name": "تهران", "latitude": 35.6944, "longitude": 51.4215, "elevation": 1190}
    bodies = []
    for second in ("17:11:30", "17:11:58"):
        clock = FakeClock(at(f"2024-11-27T{second}"))
        client = await aiohttp_client(create_app(only("prayer", **place), clock=clock))
        r = await client.get("/widgets/prayer.html")
        bodies.append((r.headers["ETag"], "sw-is-next" in (await r.text()).split("</style>")[-1]))
    (etag_a, next_a), (etag_b, next_b) = bodies
    assert not (etag_a == etag_b and next_a != next_b), bodies


# ---------------------------------------------------------------- held up (expected to PASS)


@pytest.mark.parametrize(
    "query",
    [
        "date=1404-12-30",
        "date=2023-02-29",
        "date=0001-01-01",
        "date=9999-12-31",
        "date=0000-00-00",
        "date=1303-12-29",
        "date=2100-01-01",
        "days=0",
        "days=8",
        "days=007",
        "days=-1",
        "days=+1",
        "days=%EF%BC%97",
        "days=%D9%A7",
        "date=2024-11-27&date=2024-11-27",
        "date=",
        "days=",
        "date=2024-11-27T00:00",
        "date=%202024-11-27",
        "date=2024-11-27%00",
        "days=7%00",
        "date=" + "9" * 100000,
    ],
)
async def test_H_bad_queries_are_400(aiohttp_client, query):
    client = await aiohttp_client(create_app(only("prayer"), clock=FakeClock(at("2026-01-10T10:00:00"))))
    for path in ("/widgets/prayer.json", "/widgets/prayer.html", "/embed/prayer"):
        response = await client.get(f"{path}?{query}")
        assert response.status in (400, 414, 431), (path, query, response.status)


@pytest.mark.parametrize(
    "query,first",
    [
        ("date=1403-12-30", "2025-03-20"),
        ("date=2024-02-29", "2024-02-29"),
        ("days=07", None),
        ("date=1304-01-01&days=7", "1925-03-21"),
        ("date=2099-12-31&days=7", "2099-12-31"),
        ("date=1478-10-10", "2099-12-30"),
    ],
)
async def test_H_edge_dates_work(aiohttp_client, query, first):
    client = await aiohttp_client(create_app(only("prayer"), clock=FakeClock(at("2026-01-10T10:00:00"))))
    for path in ("/widgets/prayer.json", "/widgets/prayer.html", "/embed/prayer"):
        response = await client.get(f"{path}?{query}")
        assert response.status == 200, (path, query, await response.text())
    body = await (await client.get(f"/widgets/prayer.json?{query}")).json()
    if first:
        assert body["data"]["days"][0]["date"] == first


@pytest.mark.parametrize(
    "option",
    [
        {"latitude": 66.5},
        {"latitude": -70},
        {"timezone": "Asia/Famenin"},
        {"timezone": ""},
        {"timezone": "../../etc/passwd"},
        {"elevation": -501},
        {"longitude": 181},
        {"days": 0},
    ],
)
def test_H_prayer_bad_config_stops_start_up(option):
    with pytest.raises(ConfigError):
        create_app(only("prayer", **option))


@pytest.mark.parametrize(
    "holiday",
    [
        {"date": "1404-12-30", "title": "x"},
        {"date": "13-01", "title": "x"},
        {"date": "00-00", "title": "x"},
        {"date": "12-31", "title": "x"},
        {"date": "nowruz", "title": "x"},
        {"date": "01-01"},
        {"date": "0000-01-01", "title": "x"},
        {"date": "1-1", "title": "x"},
        {"date": "01-01", "title": ""},
    ],
)
def test_H_bad_holidays_stop_start_up(holiday):
    with pytest.raises(ConfigError):
        create_app(only("date", holidays=[holiday]))


def test_H_bad_holiday_cli_exit_2_one_line(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEBAR_")}
    env["SIDEBAR_WIDGETS__DATE__HOLIDAYS"] = '[{"date": "12-31", "title": "x"}]'
    out = subprocess.run(
        # A port it could listen on: only the configuration may stop it.
        [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # an empty folder of its own: nothing of this machine or checkout around
    )
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, (out.returncode, out.stderr)


async def test_H_1403_12_30_holiday_in_leap_year(aiohttp_client):
    clock = FakeClock(at("2025-03-20T12:00:00"))
    client = await aiohttp_client(
        create_app(only("date", holidays=[{"date": "12-30", "title": "سی اسفند"}]), clock=clock)
    )
    body = await (await client.get("/widgets/date.json")).json()
    assert body["data"]["jalali_date"] == "1403-12-30"
    assert [h["name"] for h in body["data"]["holidays"] if not h["official"]] == ["سی اسفند"]


@pytest.mark.parametrize("adjust", [-2, -1, 0, 1, 2])
@pytest.mark.parametrize(
    "day", [date(2025, 3, 29), date(2025, 3, 30), date(2025, 3, 31), date(2077, 11, 15), date(1924, 8, 1)]
)
def test_H_hijri_adjust_at_month_ends(adjust, day):
    data = date_data(day, DateOptions(hijri_adjust_days=adjust))
    assert data.jalali_date == date_data(day, DateOptions()).jalali_date


@pytest.mark.parametrize(
    "zone,wall",
    [
        ("Asia/Tehran", "2024-11-27T23:59:59"),
        ("America/Santiago", "2024-09-07T23:59:59"),  # 00:00 skipped
        ("America/Santiago", "2024-04-06T23:59:59"),  # 24:00 -> 23:00: 25-hour day
        ("Asia/Tehran", "2021-03-21T23:59:59"),  # old Iranian DST at midnight
        ("Asia/Tehran", "2021-09-21T23:59:59"),
        ("Europe/Berlin", "2025-03-29T23:59:59"),
        ("Europe/Berlin", "2025-10-25T23:59:59"),
        ("Pacific/Apia", "2011-12-29T23:59:59"),  # the day that never was
        ("Pacific/Kiritimati", "2026-01-01T23:59:59"),
    ],
)
async def test_H_date_rollover_max_age_never_past_midnight(aiohttp_client, zone, wall):
    tz = ZoneInfo(zone)
    start = datetime.fromisoformat(wall).replace(tzinfo=tz).timestamp() - 7200
    clock = FakeClock(start)
    client = await aiohttp_client(create_app(only("date", background=True, timezone=zone), clock=clock))
    seen = []
    for step in [0, 7198, 1, 0.5, 0.5, 1, 3600, 3600]:
        await clock.advance(step)
        now = clock.time()
        local = datetime.fromtimestamp(now, tz)
        r = await client.get("/widgets/date.json")
        body = await r.json()
        nxt = datetime(*(local.date() + timedelta(days=1)).timetuple()[:3], tzinfo=tz).timestamp()
        assert r.status == 200
        assert 0 <= max_age(r) <= max(0, nxt - now) + 1, (local, max_age(r), nxt - now)
        assert body["data"]["date"] == local.date().isoformat(), (local, body["status"], body["data"]["date"])
        seen.append(body["status"])
    assert set(seen) == {"fresh"}, seen


@pytest.mark.parametrize(
    "zone,wall,lat,lon",
    [
        ("Asia/Tehran", "2024-11-27T23:59:59", 35.116, 48.973),
        ("America/Santiago", "2024-09-07T23:59:59", -33.45, -70.66),
        ("America/Santiago", "2024-04-06T23:59:59", -33.45, -70.66),
        ("Asia/Tehran", "2021-09-21T23:59:59", 35.116, 48.973),
    ],
)
async def test_H_prayer_rollover(aiohttp_client, zone, wall, lat, lon):
    tz = ZoneInfo(zone)
    clock = FakeClock(datetime.fromisoformat(wall).replace(tzinfo=tz).timestamp() - 10)
    client = await aiohttp_client(
        create_app(only("prayer", background=True, timezone=zone, latitude=lat, longitude=lon), clock=clock)
    )
    for step in [0, 9, 1, 1, 60, 3600]:
        await clock.advance(step)
        local = datetime.fromtimestamp(clock.time(), tz)
        for kind in ("json", "html"):
            r = await client.get(f"/widgets/prayer.{kind}")
            assert r.status == 200
            assert 0 <= max_age(r) <= (60 if kind == "html" else 86400)
        body = await (await client.get("/widgets/prayer.json")).json()
        assert body["status"] == "fresh" and body["data"]["days"][0]["date"] == local.date().isoformat(), (
            local
        )


@pytest.mark.parametrize("elevation,correction", [(-500, True), (-430, True), (9000, True), (0, False)])
async def test_H_odd_elevations(aiohttp_client, elevation, correction):
    client = await aiohttp_client(
        create_app(
            only(
                "prayer",
                elevation=elevation,
                elevation_correction=correction,
                latitude=31.5,
                longitude=35.5,
                timezone="Asia/Jerusalem",
            ),
            clock=FakeClock(at("2025-06-21T10:00:00")),
        )
    )
    assert (await client.get("/widgets/prayer.json?days=7")).status == 200
