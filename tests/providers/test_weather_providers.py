"""Open-Meteo and MET Norway: their real structures in, one Persian vocabulary and Tehran time out."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from aiohttp import web

from providers.base import ProviderConfig
from providers.http import NotModified, UpstreamClient, UpstreamError
from providers.metno import MetNoProvider, apparent_temperature, meaning, parse_compact, wmo_code
from providers.openmeteo import OpenMeteoProvider, parse_forecast
from service.persian import TEHRAN
from service.settings import HttpSettings
from service.web.rendering import create_environment
from service.widgets.weather import CONDITIONS, WeatherOptions, condition
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
            timeout_seconds=30,
            api_key=api_key,
            user_agent=user_agent,
            http_user_agent="sidebar-test/1 (+https://example.org; ops@example.org)",
            widget_options=FAMENIN,
        )
    )
    client = UpstreamClient(HttpSettings(), FakeClock(now).time)
    await client.start()
    try:
        session = client.session(timeout_seconds=30, validators=validators)
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
    assert wmo_code("snowshowers_day") == 86  # WMO 86: moderate or heavy snow showers, not slight
    # WMO 95 is a slight or moderate thunderstorm with rain or snow, 97 a heavy one.
    assert wmo_code("heavyrainandthunder") == 97 and wmo_code("lightssnowshowersandthunder_night") == 95
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


# -- Weather in Persian words: every MET symbol, every WMO code --------------------------------

#: MET Norway's published legend (metno/weathericons, legend.csv): every symbol the API sends,
#: without its _day / _night / _polartwilight suffix; two of them misspelt by MET itself.
MET_LEGEND = (
    "clearsky", "fair", "partlycloudy", "cloudy", "fog",
    "lightrain", "rain", "heavyrain",
    "lightrainandthunder", "rainandthunder", "heavyrainandthunder",
    "lightrainshowers", "rainshowers", "heavyrainshowers",
    "lightrainshowersandthunder", "rainshowersandthunder", "heavyrainshowersandthunder",
    "lightsleet", "sleet", "heavysleet",
    "lightsleetandthunder", "sleetandthunder", "heavysleetandthunder",
    "lightsleetshowers", "sleetshowers", "heavysleetshowers",
    "lightssleetshowersandthunder", "sleetshowersandthunder", "heavysleetshowersandthunder",
    "lightsnow", "snow", "heavysnow",
    "lightsnowandthunder", "snowandthunder", "heavysnowandthunder",
    "lightsnowshowers", "snowshowers", "heavysnowshowers",
    "lightssnowshowersandthunder", "snowshowersandthunder", "heavysnowshowersandthunder",
)  # fmt: skip
SUFFIXES = ("", "_day", "_night", "_polartwilight")
SKY_WORDS = {
    "clearsky": "صاف",
    "fair": "عمدتاً صاف",
    "partlycloudy": "نیمه‌ابری",
    "cloudy": "ابری",
    "fog": "مه",
}
SKY_ICONS = {"clearsky": "clear", "fair": "clear", "partlycloudy": "partly", "cloudy": "cloud", "fog": "fog"}
#: What falls, in words, and the icon it gets.
KINDS = {
    "rain": ("باران", "rain"),
    "rainshowers": ("رگبار", "rain"),
    "sleet": ("برف و باران", "snow"),
    "sleetshowers": ("رگبار برف و باران", "snow"),
    "snow": ("برف", "snow"),
    "snowshowers": ("رگبار برف", "snow"),
}
LIGHT_WORDS, HEAVY_WORDS = (" سبک",), (" سنگین", " شدید")
WITH_THUNDER = " با رعد و برق"


def read_stem(stem: str) -> tuple[str, str, bool]:
    """``heavysleetshowersandthunder`` → ("heavy", "sleetshowers", True), MET's typo undone."""
    base = stem.replace("lightss", "lights")
    thunder = base.endswith("andthunder")
    base = base.removesuffix("andthunder")
    for intensity in ("light", "heavy", ""):
        if base.startswith(intensity) and base[len(intensity) :] in KINDS:
            return intensity, base[len(intensity) :], thunder
    raise AssertionError(f"not a precipitation symbol: {stem}")


def icon_kind(code: int) -> str:
    """The icon the fragment draws for a WMO code (the template's own macro, rendered)."""
    icons = create_environment().get_template("widgets/_weather_icons.html").module
    return str(icons.icon(code, True, "", 24)).split("sw-icon-", 1)[1].split('"')[0].split()[0]


def test_the_legend_is_all_41_of_mets_symbols_and_each_reads_as_its_own_condition():
    assert len(set(MET_LEGEND)) == 41
    words = {meaning(stem).words for stem in MET_LEGEND}
    assert len(words) == 41  # no two conditions read alike


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("stem", MET_LEGEND)
def test_every_met_symbol_says_its_kind_intensity_and_thunder(stem, suffix):
    said = meaning(stem + suffix)
    assert said is not None and said.code in CONDITIONS and wmo_code(stem + suffix) == said.code
    if stem in SKY_WORDS:
        assert said.words == SKY_WORDS[stem] and icon_kind(said.code) == SKY_ICONS[stem]
        return
    intensity, kind, thunder = read_stem(stem)
    rest = said.words.removesuffix(WITH_THUNDER)
    assert (rest != said.words) == thunder and "رعد" not in rest
    ending = next((w for w in LIGHT_WORDS + HEAVY_WORDS if rest.endswith(w)), "")
    # Moderate is the bare word, as MET's legend says "Rain" between "Light rain" and "Heavy rain".
    assert ending in {"light": LIGHT_WORDS, "heavy": HEAVY_WORDS, "": ("",)}[intensity]
    assert rest.removesuffix(ending) == KINDS[kind][0]
    if thunder:
        assert said.code == (97 if intensity == "heavy" else 95) and icon_kind(said.code) == "thunder"
    else:
        assert icon_kind(said.code) == KINDS[kind][1]


def test_where_one_wmo_code_stands_for_one_met_symbol_both_providers_say_the_same_words():
    by_code: dict[int, list[str]] = {}
    for stem in MET_LEGEND:
        by_code.setdefault(meaning(stem).code, []).append(stem)
    alone = {code: stems[0] for code, stems in by_code.items() if len(stems) == 1}
    assert len(alone) >= 15
    for code, stem in alone.items():
        assert meaning(stem).words == condition(code), stem


def test_rime_fog_is_not_plain_fog():
    assert condition(48) == "مه یخ‌زده" and condition(45) == "مه"


#: Open-Meteo's documented codes with an intensity: slight, and dense / heavy / violent.
SLIGHT_CODES = (51, 56, 61, 66, 71, 80, 85)
HEAVY_CODES = (55, 57, 65, 67, 75, 82, 86, 99)


@pytest.mark.parametrize(
    "code", [0, 1, 2, 3, 45, 48, 53, 63, 73, 77, 81, 95, 96, *SLIGHT_CODES, *HEAVY_CODES]
)
def test_every_wmo_code_open_meteo_sends_has_words_that_keep_its_intensity(code):
    words = condition(code)
    assert words
    assert any(words.endswith(w) for w in LIGHT_WORDS) == (code in SLIGHT_CODES)
    assert any(words.endswith(w) for w in HEAVY_WORDS) == (code in HEAVY_CODES)


# -- MET's six-hour extremes -------------------------------------------------------------------

#: When MET gave ``metno_complete.json`` (19:50 in Tehran): hourly steps to the 27th's end
#: (UTC), then six-hourly ones at 00, 06, 12 and 18 UTC (03:30, 09:30, 15:30, 21:30 in Tehran).
COMPLETE_NOW = datetime(2026, 11, 26, 16, 20, tzinfo=UTC)


def metno_complete() -> dict:
    """MET's ``complete`` answer: ``next_6_hours.details`` carries ``air_temperature_min`` and
    ``air_temperature_max`` (the ``compact`` answer does not)."""
    return json.loads(fixture_text("metno_complete.json"))


def without_extremes(payload: dict) -> dict:
    for step in payload["properties"]["timeseries"]:
        details = step["data"].get("next_6_hours", {}).get("details", {})
        details.pop("air_temperature_min", None)
        details.pop("air_temperature_max", None)
    return payload


def step_at(payload: dict, stamp: str) -> dict:
    return next(s["data"] for s in payload["properties"]["timeseries"] if s["time"] == stamp)


def test_six_hourly_days_take_their_min_and_max_from_the_six_hour_extremes():
    data = parse_compact(metno_complete(), FAMENIN, now=COMPLETE_NOW)

    days = {d.date: (d.min_c, d.max_c) for d in data.daily}
    # The dawn low (06:00) and the afternoon high (14:00) fall between six-hourly instants.
    assert days[date(2026, 11, 28)] == (-5.0, 8.0)
    assert days[date(2026, 11, 29)] == (-4.0, 9.0)


def test_without_extremes_the_instants_are_used():
    data = parse_compact(without_extremes(metno_complete()), FAMENIN, now=COMPLETE_NOW)

    days = {d.date: (d.min_c, d.max_c) for d in data.daily}
    assert days[date(2026, 11, 28)] == (-4.5, 7.7)  # 03:30's and 15:30's readings
    assert days[date(2026, 11, 29)] == (-3.3, 8.7)
    assert days[date(2026, 11, 27)] == (-7.0, 4.0)  # hourly: the instants see the day anyway


def test_a_six_hour_period_across_local_midnight_counts_for_neither_day():
    payload = metno_complete()
    # 18:00Z on the 28th is 21:30 in Tehran: its six hours end at 03:30 on the 29th.
    step_at(payload, "2026-11-28T18:00:00Z")["next_6_hours"]["details"]["air_temperature_min"] = -19.0
    step_at(payload, "2026-11-28T18:00:00Z")["next_6_hours"]["details"]["air_temperature_max"] = 19.0

    data = parse_compact(payload, FAMENIN, now=COMPLETE_NOW)

    days = {d.date: (d.min_c, d.max_c) for d in data.daily}
    assert days[date(2026, 11, 28)] == (-5.0, 8.0) and days[date(2026, 11, 29)] == (-4.0, 9.0)


def test_a_six_hour_minimum_above_its_maximum_is_refused():
    payload = metno_complete()
    step_at(payload, "2026-11-28T06:00:00Z")["next_6_hours"]["details"]["air_temperature_min"] = 12.0
    with pytest.raises(UpstreamError) as caught:
        parse_compact(payload, FAMENIN, now=COMPLETE_NOW)
    assert caught.value.reason == "validation"


def test_with_six_hour_extremes_a_day_missing_its_start_or_end_is_still_partial():
    data = parse_compact(metno_complete(), FAMENIN, now=COMPLETE_NOW)

    partial = {d.date: d.partial for d in data.daily}
    assert partial[date(2026, 11, 26)]  # from 19:30 on: the night's low is not in it
    assert not any(partial[date(2026, 11, day)] for day in (27, 28, 29))  # 03:30 (or earlier) to 21:30
    # The last step (09:30) has no six hours after it; the one before covers 03:30 to 09:30 only.
    assert partial[date(2026, 11, 30)]


def test_a_days_condition_is_its_worst_daytime_symbol_with_its_intensity_and_kind():
    data = parse_compact(metno_complete(), FAMENIN, now=COMPLETE_NOW)

    days = {d.date: d for d in data.daily}
    # Sleet in the night, heavy sleet in the day: both WMO 69, the heavier one is the day's.
    assert (days[date(2026, 11, 28)].condition_code, days[date(2026, 11, 28)].condition) == (
        69,
        "برف و باران سنگین",
    )
    # MET's misspelt "lightssnowshowersandthunder_day": thunder, and the snow showers it brings.
    assert (days[date(2026, 11, 29)].condition_code, days[date(2026, 11, 29)].condition) == (
        95,
        "رگبار برف سبک با رعد و برق",
    )


def test_the_current_condition_is_read_from_the_symbol_not_only_its_code():
    payload = metno_complete()
    step_at(payload, "2026-11-26T16:00:00Z")["next_1_hours"]["summary"]["symbol_code"] = (
        "heavysleetshowersandthunder_night"
    )

    current = parse_compact(payload, FAMENIN, now=COMPLETE_NOW).current

    assert current.condition_code == 97 and current.condition == "رگبار برف و باران سنگین با رعد و برق"
    assert current.is_day is False
