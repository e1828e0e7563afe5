"""Open-Meteo and MET Norway: their real structures in, one Persian vocabulary and Tehran time out."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from aiohttp import web

from providers.base import ProviderConfig
from providers.http import NotModified, UpstreamClient, UpstreamError
from providers.metno import MetNoProvider, apparent_temperature, parse_compact, wmo_code
from providers.openmeteo import OpenMeteoProvider, parse_forecast
from service.persian import TEHRAN
from service.settings import HttpSettings
from service.widgets.weather import WeatherOptions, condition
from tests.support.clock import FakeClock
from tests.support.fixtures import fixture_text
from tests.support.weather import METNO_CAPTURED, OPENMETEO_CAPTURED

FAMENIN = WeatherOptions()
#: The moment Open-Meteo's fixture was answered, as the clock its parser is given.
OPENMETEO_NOW = datetime.fromtimestamp(OPENMETEO_CAPTURED, UTC)


def openmeteo_fixture(name: str = "openmeteo_forecast.json") -> dict:
    return json.loads(fixture_text(name))


def metno_fixture() -> dict:
    return json.loads(fixture_text("metno_compact.json"))


# -- Open-Meteo ------------------------------------------------------------------------------


def test_openmeteo_current_and_daily_in_tehran_time_with_negative_temperatures():
    data = parse_forecast(openmeteo_fixture(), FAMENIN, OPENMETEO_NOW)

    now = data.current
    assert now.temperature_c == -3.4 and now.apparent_temperature_c == -7.9
    assert (now.humidity_percent, now.wind_kmh, now.wind_direction_deg) == (81, 11.2, 302)
    assert (now.condition_code, now.condition, now.is_day) == (71, "برف سبک", True)
    # "2026-11-26T07:45" is local time without an offset: it is Tehran time, not UTC.
    assert now.observed_at.isoformat() == "2026-11-26T07:45:00+03:30"
    assert [d.date for d in data.daily][:2] == [date(2026, 11, 26), date(2026, 11, 27)]
    first = data.daily[0]
    assert (first.min_c, first.max_c, first.precipitation_probability) == (-6.3, 2.1, 72)
    assert first.jalali_date == "1405-09-05" and first.weekday == "پنج‌شنبه"
    assert data.daily[5].condition == "رعد و برق"
    assert data.daily[6].precipitation_probability is None  # null upstream
    assert data.location.name == "فامنین"


def test_openmeteo_nulls_become_unknown_values_not_failures():
    payload = openmeteo_fixture()
    payload["current"].update({"temperature_2m": None, "apparent_temperature": None, "weather_code": None})
    payload["daily"]["temperature_2m_min"][2] = None

    data = parse_forecast(payload, FAMENIN, OPENMETEO_NOW)

    assert data.current.temperature_c is None and data.current.condition is None
    assert data.daily[2].min_c is None and data.daily[2].max_c == 7.8


def test_openmeteo_legacy_field_names_and_unixtime():
    data = parse_forecast(openmeteo_fixture("openmeteo_legacy.json"), FAMENIN, OPENMETEO_NOW)

    assert data.current.temperature_c == 4.5 and data.current.wind_kmh == 7.6
    assert data.current.condition == "نیمه‌ابری" and data.current.is_day is False
    assert data.current.observed_at == datetime(2026, 11, 26, 10, 15, tzinfo=TEHRAN)
    assert data.current.humidity_percent is None
    assert [d.date for d in data.daily] == [date(2026, 11, 26), date(2026, 11, 27), date(2026, 11, 28)]
    assert data.daily[1].condition == "رگبار سبک"  # WMO 80: slight showers


def test_a_forecast_for_the_wrong_place_is_rejected():
    payload = openmeteo_fixture()
    payload["latitude"], payload["longitude"] = 52.52, 13.41  # Berlin
    with pytest.raises(UpstreamError) as caught:
        parse_forecast(payload, FAMENIN, OPENMETEO_NOW)
    assert caught.value.reason == "validation"


def test_out_of_range_values_fail_validation():
    payload = openmeteo_fixture()
    payload["current"]["relative_humidity_2m"] = 140
    with pytest.raises(ValueError, match="humidity_percent"):
        parse_forecast(payload, FAMENIN, OPENMETEO_NOW)
    payload = openmeteo_fixture()
    payload["daily"]["temperature_2m_max"][0] = 71.0
    with pytest.raises(ValueError, match="max_c"):
        parse_forecast(payload, FAMENIN, OPENMETEO_NOW)


def test_days_must_be_consecutive():
    payload = openmeteo_fixture()
    payload["daily"]["time"][3] = "2026-12-09"
    with pytest.raises(ValueError, match="not consecutive"):
        parse_forecast(payload, FAMENIN, OPENMETEO_NOW)


async def fetch(
    provider_cls, upstream, *, api_key=None, user_agent=None, validators=None, url=None, now=METNO_CAPTURED
):
    """One fetch by ``provider_cls`` on a clock at ``now`` (when MET's fixture was answered)."""
    provider = provider_cls(
        ProviderConfig(
            url=url or upstream.url(""),
            timeout_seconds=2,
            api_key=api_key,
            user_agent=user_agent,
            http_user_agent="sidebar-test/1 (+https://example.org; ops@example.org)",
            widget_options=FAMENIN,
        )
    )
    client = UpstreamClient(HttpSettings(), FakeClock(now).time)
    await client.start()
    try:
        session = client.session(timeout_seconds=2, validators=validators)
        result = await provider.fetch(session)
        return result, session.new_validators
    finally:
        await client.close()


async def test_openmeteo_asks_for_exactly_what_the_widget_shows(upstream):
    upstream.json("/v1/forecast", openmeteo_fixture())
    await fetch(OpenMeteoProvider, upstream)
    query = upstream.requests[0].query
    assert (query["latitude"], query["longitude"], query["timezone"]) == ("35.1160", "48.9730", "Asia/Tehran")
    assert query["wind_speed_unit"] == "kmh"
    assert set(query["current"].split(",")) == {
        "temperature_2m",
        "apparent_temperature",
        "relative_humidity_2m",
        "wind_speed_10m",
        "wind_direction_10m",
        "weather_code",
        "is_day",
    }
    assert "apikey" not in query


async def test_openmeteo_with_an_api_key_passes_it(upstream):
    upstream.json("/v1/forecast", openmeteo_fixture())
    await fetch(OpenMeteoProvider, upstream, api_key="commercial")
    assert upstream.requests[0].query["apikey"] == "commercial"


async def test_openmeteo_error_object_is_reported_with_its_reason(upstream):
    upstream.json(
        "/v1/forecast", {"error": True, "reason": "Latitude must be in range of -90 to 90°."}, status=400
    )
    with pytest.raises(UpstreamError, match="Latitude must be in range"):
        await fetch(OpenMeteoProvider, upstream)


async def test_openmeteo_429_carries_retry_after(upstream):
    upstream.json(
        "/v1/forecast",
        {"error": True, "reason": "Daily API request limit exceeded."},
        status=429,
        headers={"Retry-After": "3600"},
    )
    with pytest.raises(UpstreamError) as caught:
        await fetch(OpenMeteoProvider, upstream)
    assert caught.value.retry_after == 3600 and "limit exceeded" in str(caught.value)


# -- MET Norway ------------------------------------------------------------------------------


def test_metno_symbols_map_onto_wmo_codes():
    assert wmo_code("clearsky_day") == 0 and wmo_code("clearsky_night") == 0
    assert wmo_code("partlycloudy_polartwilight") == 2
    assert wmo_code("lightsnow") == 71 and wmo_code("heavyrainshowers_day") == 82
    assert wmo_code("heavyrainandthunder") == 95 and wmo_code("lightssnowshowersandthunder_night") == 95
    assert wmo_code(None) is None and wmo_code("unheard_of") is None


def test_metno_current_is_the_latest_step_not_in_the_future_in_km_h_and_tehran_time():
    now = datetime(2026, 11, 26, 6, 20, tzinfo=UTC)
    data = parse_compact(metno_fixture(), FAMENIN, now=now)

    current = data.current
    assert current.observed_at.isoformat() == "2026-11-26T09:30:00+03:30"  # the 06:00Z step
    assert current.wind_kmh == round(3.1 * 3.6, 1)
    assert current.apparent_temperature_c == apparent_temperature(current.temperature_c, 74.2, 3.1)
    assert current.condition_code is not None and current.condition


def test_metno_days_are_tehran_days_even_where_the_utc_date_differs():
    payload = metno_fixture()
    now = datetime(2026, 11, 26, 6, 20, tzinfo=UTC)
    steps = payload["properties"]["timeseries"]
    # 20:00Z on the 26th is 23:30 in Tehran (still the 26th); 21:00Z is 00:30 on the 27th.
    for step in steps:
        if step["time"] == "2026-11-26T20:00:00Z":
            step["data"]["instant"]["details"]["air_temperature"] = -11.5
        if step["time"] == "2026-11-26T21:00:00Z":
            step["data"]["instant"]["details"]["air_temperature"] = -14.5

    data = parse_compact(payload, FAMENIN, now=now)

    by_date = {d.date: d for d in data.daily}
    assert by_date[date(2026, 11, 26)].min_c == -11.5
    assert by_date[date(2026, 11, 27)].min_c == -14.5
    assert [d.date for d in data.daily][0] == date(2026, 11, 26)
    assert len(data.daily) == 7
    assert all(d.precipitation_probability is None for d in data.daily)


async def test_metno_sends_rounded_coordinates_altitude_and_an_identifying_agent(upstream):
    upstream.json("/weatherapi/locationforecast/2.0/compact", metno_fixture())
    await fetch(MetNoProvider, upstream, user_agent="famenin-news/1.0 ops@example.org")
    request = upstream.requests[0]
    assert (request.query["lat"], request.query["lon"], request.query["altitude"]) == (
        "35.116",
        "48.973",
        "1640",
    )
    assert request.headers["User-Agent"] == "famenin-news/1.0 ops@example.org"


async def test_metno_honours_expires_and_if_modified_since(upstream):
    body = json.dumps(metno_fixture())
    last_modified = "Thu, 26 Nov 2026 03:41:12 GMT"

    async def handler(request: web.Request) -> web.Response:
        if request.headers.get("If-Modified-Since") == last_modified:
            return web.Response(status=304)
        return web.Response(
            text=body,
            content_type="application/json",
            headers={"Last-Modified": last_modified, "Expires": "Thu, 26 Nov 2099 04:10:00 GMT"},
        )

    upstream.on("/weatherapi/locationforecast/2.0/compact", handler)
    _, validators = await fetch(MetNoProvider, upstream)
    assert upstream.hits["/weatherapi/locationforecast/2.0/compact"] == 1

    # Expires is in the future: no request at all, the data we hold stays current.
    with pytest.raises(NotModified):
        await fetch(MetNoProvider, upstream, validators=validators)
    assert upstream.hits["/weatherapi/locationforecast/2.0/compact"] == 1

    # Once it has passed, a conditional request; the 304 keeps our data.
    expired = {url: {**held, "expires": "0"} for url, held in validators.items()}
    with pytest.raises(NotModified):
        await fetch(MetNoProvider, upstream, validators=expired)
    assert upstream.hits["/weatherapi/locationforecast/2.0/compact"] == 2
    assert upstream.requests[-1].headers["If-Modified-Since"] == last_modified


def test_metno_refuses_an_empty_user_agent():
    def provider(agent):
        return MetNoProvider(
            ProviderConfig(url=None, timeout_seconds=1, user_agent=agent, http_user_agent="x")
        )

    assert "identifying user_agent" in provider("").config_error()
    assert "names no contact" in provider("my-widget").config_error()
    assert provider("famenin-news/1.0 (+https://avayefamenin.ir)").config_error() is None
    assert provider("famenin-news/1.0 ops@avayefamenin.ir").config_error() is None


@pytest.mark.parametrize(
    ("symbol", "reads"),
    [
        ("lightsleet", "برف و باران سبک"),
        ("sleet", "برف و باران"),
        ("heavysleet", "برف و باران"),
        ("lightsleetshowers", "رگبار برف و باران سبک"),
        ("sleetshowers_day", "رگبار برف و باران"),
        ("heavysleetshowers_night", "رگبار برف و باران"),
        ("lightrain", "باران سبک"),
        ("heavyrain", "باران سنگین"),
        ("heavysnow", "برف سنگین"),
    ],
)
def test_met_sleet_is_rain_and_snow_mixed_and_rain_and_snow_carry_their_intensity(symbol, reads):
    code = wmo_code(symbol)
    assert condition(code) == reads
    assert "یخ‌زده" not in condition(code)  # sleet is not freezing rain


@pytest.mark.parametrize(
    "change",
    [
        {"timezone": "GMT", "utc_offset_seconds": 0},  # a mirror that ignored the zone asked for
        {"timezone": "Europe/Berlin", "utc_offset_seconds": 3600},
        {"utc_offset_seconds": 3600},  # the name right, the offset of another zone
        {"utc_offset_seconds": "12600"},
    ],
)
def test_an_open_meteo_answer_in_another_zone_is_refused(change):
    payload = {**json.loads(fixture_text("openmeteo_forecast.json")), **change}
    with pytest.raises(UpstreamError) as caught:
        parse_forecast(payload, WeatherOptions(), OPENMETEO_NOW)
    assert caught.value.reason == "validation"


def test_metno_today_without_its_early_hours_is_marked_partial_and_later_days_are_whole():
    payload = metno_fixture()
    steps = payload["properties"]["timeseries"]
    payload["properties"]["timeseries"] = [s for s in steps if s["time"] >= "2026-11-26T08:00:00Z"]

    data = parse_compact(payload, FAMENIN, now=datetime(2026, 11, 26, 8, 20, tzinfo=UTC))

    assert data.daily[0].date == date(2026, 11, 26) and data.daily[0].partial  # from 11:30 local
    assert not any(d.partial for d in data.daily[1:-1])  # hourly and six-hourly days are whole


def test_a_partial_day_keeps_what_the_last_good_data_saw_of_it():
    from service.widgets.weather import reconcile

    earlier = {"daily": [{"date": "2026-11-26", "min_c": -9.0, "max_c": 1.0, "partial": False}]}
    new = {
        "daily": [
            {"date": "2026-11-26", "min_c": -3.0, "max_c": 2.5, "partial": True},
            {"date": "2026-11-27", "min_c": -5.0, "max_c": 0.0, "partial": False},
        ]
    }

    merged, problems = reconcile(new, earlier, WeatherOptions())

    assert problems == []
    assert merged["daily"][0] == {"date": "2026-11-26", "min_c": -9.0, "max_c": 2.5, "partial": False}
    assert merged["daily"][1] == new["daily"][1]
    assert reconcile(new, None, WeatherOptions())[0]["daily"][0]["partial"] is True  # said so


def _met_series_for(daily: dict[str, list], days: int) -> dict:
    """A MET compact answer describing the same days an Open-Meteo answer describes: hourly
    instants over each whole Tehran day, coldest before dawn and warmest mid-afternoon, with the
    day's symbol in its daytime hours (the shape of the captured MET samples)."""
    symbols = {0: "clearsky_day", 2: "partlycloudy_day", 3: "cloudy", 71: "lightsnow"}
    steps = []
    for index in range(days):
        on = date.fromisoformat(daily["time"][index])
        low, high = daily["temperature_2m_min"][index], daily["temperature_2m_max"][index]
        for hour in range(24):
            local = datetime(on.year, on.month, on.day, hour, 30, tzinfo=TEHRAN)
            # Coldest at 05:30, warmest at 14:30, in between on a straight line.
            distance = min(abs(hour - 5), 24 - abs(hour - 5)) / 9 if hour != 14 else 1.0
            temperature = round(low + (high - low) * min(distance, 1.0), 1)
            symbol = symbols[daily["weather_code"][index]] if 6 <= hour < 18 else "cloudy"
            steps.append(
                {
                    "time": local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "data": {
                        "instant": {
                            "details": {
                                "air_temperature": temperature,
                                "relative_humidity": 70.0,
                                "wind_speed": 2.0,
                            }
                        },
                        "next_1_hours": {
                            "summary": {"symbol_code": symbol},
                            "details": {"precipitation_amount": 0.0},
                        },
                    },
                }
            )
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [48.973, 35.116, 1640]},
        "properties": {"meta": {"updated_at": steps[0]["time"]}, "timeseries": steps},
    }


def test_both_providers_fed_the_same_weather_show_the_same_rows():
    forecast = json.loads(fixture_text("openmeteo_forecast.json"))
    days = 3
    met = parse_compact(
        _met_series_for(forecast["daily"], days),
        FAMENIN,
        now=datetime(2026, 11, 26, 0, 0, tzinfo=TEHRAN).astimezone(UTC),
    )
    om = parse_forecast(forecast, FAMENIN, OPENMETEO_NOW)

    def rows(data):
        return [
            (d.date, d.jalali_date, d.weekday, d.min_c, d.max_c, d.condition_code, d.condition, d.partial)
            for d in data.daily[:days]
        ]

    assert rows(met) == rows(om)
