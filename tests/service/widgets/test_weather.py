"""The weather widget end to end: fake Open-Meteo and MET Norway in, Persian JSON and fragment out."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from service.persian import TEHRAN
from service.settings import ConfigError, EngineSettings, Settings
from service.web.app import create_app
from service.web.keys import ENGINE
from service.widgets import BUILTIN_WIDGETS
from service.widgets.weather import day
from tests.support.clock import FakeClock
from tests.support.fixtures import fixture_text
from tests.support.waiting import CEILING_SECONDS
from tests.support.weather import OPENMETEO_CAPTURED, metno_document, metno_now

FORECAST = "/v1/forecast"
COMPACT = "/weatherapi/locationforecast/2.0/compact"
HTTP_DATE = "%a, %d %b %Y %H:%M:%S GMT"


def weather_settings(upstream, providers: list[str] | None = None, **weather: Any) -> Settings:
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "weather"}
    widget: dict[str, Any] = {"refresh_seconds": 0.3, **weather}
    if providers is not None:
        widget["providers"] = providers
    return Settings(
        engine=EngineSettings(background=False, retry_base_seconds=0.05, cold_wait_seconds=CEILING_SECONDS),
        widgets={"weather": widget, **others},
        providers={
            "openmeteo": {"url": upstream.url(""), "timeout_seconds": 30},
            "metno": {
                "url": upstream.url(""),
                "timeout_seconds": 30,
                "user_agent": "famenin-news/1 ops@example.org",
            },
        },
    )


@pytest.fixture
def clock() -> FakeClock:
    """The service runs at the moment the Open-Meteo fixture was answered, on any day."""
    return FakeClock(OPENMETEO_CAPTURED)


def serve_forecast(upstream) -> None:
    upstream.json(FORECAST, json.loads(fixture_text("openmeteo_forecast.json")))


def serve_metno(upstream, now: float, **headers: str) -> None:
    body = metno_now(now)

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="application/json", headers=headers)

    upstream.on(COMPACT, handler)


def test_jalali_dates_and_persian_weekdays_against_known_dates():
    nowruz = day(date(2026, 3, 21), min_c=None, max_c=None, code=None, rain=None)
    assert (nowruz.jalali_date, nowruz.weekday) == ("1405-01-01", "شنبه")
    friday = day(date(2026, 11, 27), min_c=None, max_c=None, code=None, rain=None)
    assert (friday.jalali_date, friday.weekday) == ("1405-09-06", "جمعه")
    last = day(date(2027, 3, 20), min_c=None, max_c=None, code=None, rain=None)
    assert last.jalali_date == "1405-12-29"


async def test_json_has_location_current_and_the_configured_days(aiohttp_client, upstream, clock):
    serve_forecast(upstream)
    client = await aiohttp_client(create_app(weather_settings(upstream), clock=clock))

    body = await (await client.get("/widgets/weather.json")).json()

    assert body["status"] == "fresh" and body["source"] == "openmeteo"
    assert body["attribution"] == "داده‌های هواشناسی: Open-Meteo.com (CC BY 4.0)"
    data = body["data"]
    assert data["location"] == {"name": "فامنین", "latitude": 35.116, "longitude": 48.973}
    assert data["current"]["observed_at"] == "2026-11-26T07:45:00+03:30"
    assert data["current"]["condition"] == "برف سبک" and data["current"]["condition_code"] == 71
    assert len(data["daily"]) == 5
    assert data["daily"][0] == {
        "date": "2026-11-26",
        "jalali_date": "1405-09-05",
        "weekday": "پنج‌شنبه",
        "min_c": -6.3,
        "max_c": 2.1,
        "condition_code": 71,
        "condition": "برف سبک",
        "precipitation_probability": 72.0,
        "partial": False,
    }
    seven = await (await client.get("/widgets/weather.json?days=7")).json()
    assert len(seven["data"]["daily"]) == 7


@pytest.mark.parametrize("days", ["0", "8", "two", "-1", ""])
async def test_days_out_of_range_is_400(aiohttp_client, upstream, days, clock):
    serve_forecast(upstream)
    client = await aiohttp_client(create_app(weather_settings(upstream), clock=clock))
    for fmt in ("json", "html"):
        response = await client.get(f"/widgets/weather.{fmt}?days={days}")
        assert response.status == 400
        assert (await response.json())["error"] == "days: must be a whole number from 1 to 7"


async def test_another_town_is_configuration_only(aiohttp_client, upstream, clock):
    payload = json.loads(fixture_text("openmeteo_forecast.json"))
    payload["latitude"], payload["longitude"] = 34.80, 48.51
    upstream.json(FORECAST, payload)
    settings = weather_settings(upstream, name="همدان", latitude=34.7983, longitude=48.5148, days=3)
    client = await aiohttp_client(create_app(settings, clock=clock))

    body = await (await client.get("/widgets/weather.json")).json()
    html = await (await client.get("/widgets/weather.html")).text()

    assert body["data"]["location"]["name"] == "همدان" and len(body["data"]["daily"]) == 3
    assert upstream.requests[0].query["latitude"] == "34.7983"
    assert "وضع هوای همدان" in html and "فامنین" not in html


async def test_fragment_is_persian_with_icons_bdi_temperatures_and_attribution(
    aiohttp_client, upstream, clock
):
    serve_forecast(upstream)
    client = await aiohttp_client(create_app(weather_settings(upstream), clock=clock))

    html = await (await client.get("/widgets/weather.html")).text()

    assert html.startswith('<div class="sw-widget sw-weather sw-theme-light" dir="rtl" lang="fa"')
    assert "وضع هوای فامنین" in html
    assert '<bdi dir="ltr">−۳°</bdi>' in html  # -3.4 °C now, the minus kept in place
    assert 'دمای محسوس: <bdi dir="ltr">−۸°</bdi>' in html and 'رطوبت: <bdi dir="ltr">۸۱٪</bdi>' in html
    assert "کیلومتر بر ساعت، از شمال‌غرب" in html  # 302°
    assert "sw-icon-snow" in html and 'aria-label="برف سبک"' in html
    assert 'پنج‌شنبه <span class="sw-min">۵ آذر</span>' in html
    assert html.count("<tr data-date=") == 5
    assert 'داده‌های هواشناسی: <bdi dir="ltr" class="sw-latin">Open-Meteo.com (CC BY 4.0)</bdi>' in html
    assert "<script" not in html


async def test_open_meteo_failing_falls_back_to_met_norway(aiohttp_client, upstream, clock):
    upstream.fail(FORECAST, 503)
    serve_metno(upstream, clock.time())
    client = await aiohttp_client(create_app(weather_settings(upstream), clock=clock))

    body = await (await client.get("/widgets/weather.json")).json()

    assert body["status"] == "fresh" and body["source"] == "metno"
    assert body["attribution"] == "داده‌های هواشناسی: MET Norway (CC BY 4.0)"
    assert len(body["data"]["daily"]) == 5
    assert body["data"]["daily"][0]["date"] == datetime.fromtimestamp(clock.time(), TEHRAN).date().isoformat()
    html = await (await client.get("/widgets/weather.html")).text()
    assert 'داده‌های هواشناسی: <bdi dir="ltr" class="sw-latin">MET Norway (CC BY 4.0)</bdi>' in html


async def test_met_norways_symbol_reaches_the_fragment_in_its_own_words(aiohttp_client, upstream, clock):
    answer = metno_document(clock.time())
    first = answer["properties"]["timeseries"][0]["data"]  # the step of "now"
    first["next_1_hours"]["summary"]["symbol_code"] = "heavysleetshowersandthunder_day"
    upstream.fail(FORECAST, 503)
    upstream.json(COMPACT, answer)
    client = await aiohttp_client(create_app(weather_settings(upstream), clock=clock))

    body = await (await client.get("/widgets/weather.json")).json()
    html = await (await client.get("/widgets/weather.html")).text()

    assert body["source"] == "metno" and body["data"]["current"]["condition_code"] == 97
    # Heavy, sleet, showers and thunder: none of it lost on the way to the reader.
    assert '<div class="sw-cond">رگبار برف و باران سنگین با رعد و برق</div>' in html
    assert 'class="sw-icon sw-icon-thunder" width="48"' in html


async def test_429_from_open_meteo_is_honoured_and_the_chain_falls_back(aiohttp_client, upstream, clock):
    upstream.json(
        FORECAST,
        {"error": True, "reason": "Minutely API request limit exceeded"},
        status=429,
        headers={"Retry-After": "120"},
    )
    upstream.fail(COMPACT, 500)
    settings = weather_settings(upstream, refresh_seconds=60)
    settings.engine.cold_wait_seconds = 0
    client = await aiohttp_client(create_app(settings, clock=clock))
    refresher = client.app[ENGINE].refreshers["weather"]

    await refresher.trigger()

    assert refresher.state.providers["openmeteo"].retry_at - clock.time() == pytest.approx(120, abs=2)
    assert "limit exceeded" in refresher.state.last_error
    for _ in range(5):
        await client.get("/widgets/weather.json")
    assert upstream.hits[FORECAST] == 1


async def test_met_norway_is_not_asked_again_before_expires(aiohttp_client, upstream, clock):
    expires = (datetime.fromtimestamp(clock.time(), UTC) + timedelta(hours=1)).strftime(HTTP_DATE)
    updated = (datetime.fromtimestamp(clock.time(), UTC) - timedelta(hours=1)).strftime(HTTP_DATE)
    serve_metno(upstream, clock.time(), Expires=expires, **{"Last-Modified": updated})
    client = await aiohttp_client(create_app(weather_settings(upstream, providers=["metno"]), clock=clock))
    first = await (await client.get("/widgets/weather.json")).json()
    await clock.advance(0.35)

    await client.app[ENGINE].refreshers["weather"].trigger()

    second = await (await client.get("/widgets/weather.json")).json()
    assert upstream.hits[COMPACT] == 1
    assert second["status"] == "fresh" and second["fetched_at"] >= first["fetched_at"]
    assert second["data"] == first["data"]


async def test_an_empty_met_user_agent_stops_start_up(upstream):
    settings = weather_settings(upstream)
    settings.providers["metno"].user_agent = ""
    with pytest.raises(ConfigError, match="providers.metno: MET Norway needs an identifying user_agent"):
        create_app(settings)


async def test_fragment_in_stale_state_shows_its_age(aiohttp_client, upstream, clock):
    serve_forecast(upstream)
    client = await aiohttp_client(create_app(weather_settings(upstream), clock=clock))
    await client.get("/widgets/weather.json")
    upstream.fail(FORECAST, 500)
    upstream.fail(COMPACT, 500)
    await clock.advance(0.35)
    await client.app[ENGINE].refreshers["weather"].trigger()

    html = await (await client.get("/widgets/weather.html")).text()

    assert 'data-status="stale"' in html
    assert re.search(r'class="sw-stale">به‌روزرسانی: .* \((لحظاتی|[۰-۹]+ دقیقه) پیش\)', html)


async def test_the_daily_table_names_its_max_and_min_columns(aiohttp_client, upstream, clock):
    serve_forecast(upstream)
    client = await aiohttp_client(create_app(weather_settings(upstream), clock=clock))
    html = await (await client.get("/widgets/weather.html")).text()
    head = html[html.index("<thead>") : html.index("</thead>")]
    assert head.index("بیشینه") < head.index("کمینه")
    assert "دمای محسوس" in html and "احساسی" not in html


async def test_a_day_that_has_passed_is_never_shown_and_days_count_from_today(aiohttp_client, upstream):
    serve_forecast(upstream)
    clock = FakeClock(datetime(2026, 11, 26, 12, 0, tzinfo=TEHRAN).timestamp())
    client = await aiohttp_client(
        create_app(weather_settings(upstream, refresh_seconds=86400, days=3), clock=clock)
    )
    before = await (await client.get("/widgets/weather.json")).json()
    assert [d["date"] for d in before["data"]["daily"]] == ["2026-11-26", "2026-11-27", "2026-11-28"]
    etag = (await client.get("/widgets/weather.html")).headers["ETag"]

    await clock.advance(12 * 3600 + 600)  # 00:10 the next day, the same snapshot

    after = await (await client.get("/widgets/weather.json")).json()
    assert after["fetched_at"] == before["fetched_at"] and upstream.hits[FORECAST] == 1
    assert [d["date"] for d in after["data"]["daily"]] == ["2026-11-27", "2026-11-28", "2026-11-29"]
    response = await client.get("/widgets/weather.html")
    html = await response.text()
    assert 'data-date="2026-11-26"' not in html and html.count("<tr data-date=") == 3
    assert response.headers["ETag"] != etag  # a cache must not keep yesterday's rows
