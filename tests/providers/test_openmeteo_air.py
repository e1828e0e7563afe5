"""Open-Meteo's air-quality answer: the US AQI now with its Persian category, PM2.5 and PM10, and
the worst index of each three hours ahead; a broken, absurd, misplaced or old answer is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError

from providers.base import ProviderConfig
from providers.http import UpstreamClient, UpstreamError
from providers.openmeteo_air import OpenMeteoAirProvider, parse_air_quality
from service.persian import TEHRAN
from service.settings import HttpSettings
from service.widgets.weather import WeatherOptions
from tests.support.air import AIR_CAPTURED, PATH, hour_index, openmeteo_air_document
from tests.support.clock import FakeClock

FAMENIN = WeatherOptions()
NOW = datetime.fromtimestamp(AIR_CAPTURED, UTC)


def document(**current: Any) -> dict[str, Any]:
    return openmeteo_air_document(AIR_CAPTURED, **current)


def parse(payload: Any, now: datetime = NOW):
    return parse_air_quality(payload, FAMENIN, now)


async def fetch(upstream, *, place: WeatherOptions = FAMENIN, now: float = AIR_CAPTURED):
    provider = OpenMeteoAirProvider(
        ProviderConfig(
            url=upstream.url(""), timeout_seconds=30, place=place, http_user_agent="sidebar-test/1"
        )
    )
    client = UpstreamClient(HttpSettings(), FakeClock(now).time)
    await client.start()
    try:
        return await provider.fetch(client.session(timeout_seconds=30))
    finally:
        await client.close()


def serve_text(upstream, body: str, status: int = 200) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, text=body, content_type="application/json")

    upstream.on(PATH, handler)


# -- A normal answer ----------------------------------------------------------------------------


async def test_it_asks_for_the_index_and_particles_now_and_the_hourly_index_at_the_place(upstream):
    hamedan = WeatherOptions(name="همدان", latitude=34.7983, longitude=48.5148)
    payload = document()
    payload["latitude"], payload["longitude"] = 34.8, 48.6
    upstream.json(PATH, payload)

    data = await fetch(upstream, place=hamedan)

    query = upstream.requests[0].query
    assert (query["latitude"], query["longitude"], query["timezone"]) == ("34.7983", "48.5148", "Asia/Tehran")
    assert set(query["current"].split(",")) == {"us_aqi", "pm2_5", "pm10"}
    assert query["hourly"] == "us_aqi" and query["forecast_days"] == "2"
    assert "apikey" not in query
    assert data.location.name == "همدان"


async def test_the_reading_has_its_category_particles_and_tehran_time(upstream):
    upstream.json(PATH, document())

    data = await fetch(upstream)

    now = data.current
    assert (now.us_aqi, now.level, now.category) == (118, "sensitive", "ناسالم برای گروه‌های حساس")
    assert (now.pm2_5, now.pm10, now.beyond_index) == (41.3, 68.9, False)
    # "2026-11-26T07:00" carries no offset: it is Tehran time, as asked for.
    assert now.observed_at == datetime(2026, 11, 26, 7, 0, tzinfo=TEHRAN)
    assert data.location.name == "فامنین"


def test_the_forecast_is_the_worst_hour_of_each_three_from_the_next_hour_on():
    data = parse(document())

    blocks = [(b.starts_at.hour, b.ends_at.hour, b.us_aqi, b.level) for b in data.forecast]
    assert blocks[:4] == [
        (8, 11, 127, "sensitive"),  # 08:00 124, 09:00 127, 10:00 121
        (11, 14, 104, "sensitive"),
        (14, 17, 81, "moderate"),
        (17, 20, 139, "sensitive"),
    ]
    assert len(blocks) == 8 and blocks[-1][:2] == (5, 8)  # 24 hours, into the next morning
    assert data.forecast[4].category == "ناسالم" and data.forecast[4].category_short == "ناسالم"


def test_a_quarter_hour_reading_is_kept_as_it_is_and_the_forecast_starts_at_the_next_hour():
    data = parse(document(time="2026-11-26T07:45", interval=900))

    assert data.current.observed_at == datetime(2026, 11, 26, 7, 45, tzinfo=TEHRAN)
    assert data.forecast[0].starts_at == datetime(2026, 11, 26, 8, 0, tzinfo=TEHRAN)


def test_late_in_the_day_the_forecast_still_reaches_a_day_ahead():
    late = datetime(2026, 11, 26, 23, 40, tzinfo=TEHRAN)
    data = parse(openmeteo_air_document(late.timestamp()), late.astimezone(UTC))

    assert data.current.observed_at.hour == 23
    assert [b.starts_at.isoformat() for b in data.forecast[:1]] == ["2026-11-27T00:00:00+03:30"]
    assert len(data.forecast) == 8


def test_the_forecast_stops_where_the_hours_do():
    payload = document()
    keep = hour_index(payload, 7)  # the reading's hour and six more: two whole blocks
    payload["hourly"] = {name: values[: keep + 1] for name, values in payload["hourly"].items()}

    assert len(parse(payload).forecast) == 2


@pytest.mark.parametrize(("raw", "shown"), [(50.4, 50), (50.5, 51), (100.49, 100), (0, 0), (500, 500)])
def test_an_index_is_rounded_half_up_to_a_whole_number(raw, shown):
    assert parse(document(us_aqi=raw)).current.us_aqi == shown


# -- Nulls --------------------------------------------------------------------------------------


def test_missing_hours_count_as_unknown_and_a_block_without_any_has_no_index():
    payload = document()
    values = payload["hourly"]["us_aqi"]
    values[hour_index(payload, 2)] = None  # 09:00, the worst of its block, missing
    for hour in (4, 5, 6):
        values[hour_index(payload, hour)] = None

    data = parse(payload)

    assert data.forecast[0].us_aqi == 124  # 08:00 and 10:00 remain: the worst of them
    empty = data.forecast[1]
    assert (empty.us_aqi, empty.level, empty.category) == (None, None, None)


def test_missing_particles_are_unknown_but_a_missing_index_now_is_no_reading():
    data = parse(document(pm2_5=None, pm10=None))
    assert (data.current.pm2_5, data.current.pm10) == (None, None)

    with pytest.raises(UpstreamError, match="no current index") as caught:
        parse(document(us_aqi=None))
    assert caught.value.reason == "validation"


# -- Absurd numbers -----------------------------------------------------------------------------


def test_above_500_the_index_is_held_at_the_scales_end_and_said_to_be_beyond_it():
    now = parse(document(us_aqi=742)).current

    assert (now.us_aqi, now.beyond_index, now.level, now.category) == (500, True, "hazardous", "خطرناک")


@pytest.mark.parametrize("value", [-1, -0.6, 20_001, 1e9, True, "118", [118]])
def test_an_absurd_or_mistyped_index_is_refused(value):
    with pytest.raises(UpstreamError) as caught:
        parse(document(us_aqi=value))
    assert caught.value.reason in ("validation", "changed")


@pytest.mark.parametrize("value", [-0.1, 20_000.5, 1e300])
def test_absurd_particles_are_refused(value):
    with pytest.raises(ValidationError):
        parse(document(pm2_5=value))


def test_an_absurd_hour_ahead_is_refused_too():
    payload = document()
    payload["hourly"]["us_aqi"][hour_index(payload, 3)] = -40
    with pytest.raises(UpstreamError, match=r"hourly\.us_aqi\[\d+\] -40 is out of range"):
        parse(payload)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e400"])
async def test_not_a_finite_number_on_the_wire_is_refused(upstream, literal):
    body = json.dumps(document()).replace('"us_aqi": 118', f'"us_aqi": {literal}', 1)
    assert literal in body
    serve_text(upstream, body)

    with pytest.raises(UpstreamError) as caught:
        await fetch(upstream)
    assert caught.value.reason == "validation"


# -- Stale, misplaced, changed ------------------------------------------------------------------


@pytest.mark.parametrize("hours", [-4, -3.5, 1.5, 26])
def test_a_reading_far_from_the_hour_now_is_refused(hours):
    reading = (datetime.fromtimestamp(AIR_CAPTURED, TEHRAN) + timedelta(hours=hours)).replace(tzinfo=None)
    payload = document(time=reading.strftime("%Y-%m-%dT%H:00"))

    with pytest.raises(UpstreamError, match="not the hour now") as caught:
        parse(payload)
    assert caught.value.reason == "validation"


def test_a_reading_two_hours_old_is_still_the_reading():
    reading = (datetime.fromtimestamp(AIR_CAPTURED, TEHRAN) - timedelta(hours=2)).replace(tzinfo=None)

    data = parse(document(time=reading.strftime("%Y-%m-%dT%H:00")))

    assert data.current.observed_at.hour == 5


def test_an_answer_in_another_zone_is_refused():
    payload = document()
    payload.update(timezone="GMT", timezone_abbreviation="GMT", utc_offset_seconds=0)
    with pytest.raises(UpstreamError, match="zone") as caught:
        parse(payload)
    assert caught.value.reason == "validation"


def test_an_answer_for_another_place_is_refused():
    payload = document()
    payload["latitude"], payload["longitude"] = 52.549995, 13.450001  # Berlin
    with pytest.raises(UpstreamError, match="not the place asked for"):
        parse(payload)


@pytest.mark.parametrize(
    ("block", "name", "unit"),
    [
        ("current_units", "us_aqi", "EAQI"),
        ("current_units", "pm10", "ng/m³"),
        ("hourly_units", "us_aqi", "EAQI"),
    ],
)
def test_another_index_or_unit_is_a_changed_format(block, name, unit):
    payload = document()
    payload[block][name] = unit
    with pytest.raises(UpstreamError, match=f"{block}.{name}") as caught:
        parse(payload)
    assert caught.value.reason == "changed"


def test_hourly_columns_of_different_lengths_are_a_changed_format():
    payload = document()
    payload["hourly"]["us_aqi"].pop()
    with pytest.raises(ValueError, match="48 times for 47 values"):
        parse(payload)


async def test_a_changed_answer_is_reported_as_such(upstream):
    upstream.json(PATH, {"data": [1, 2, 3]})

    with pytest.raises(UpstreamError) as caught:
        await fetch(upstream)
    assert caught.value.reason == "changed"


# -- Open-Meteo's error body --------------------------------------------------------------------


async def test_the_upstreams_reason_for_a_400_is_kept(upstream):
    reason = "Cannot initialize AirQualityVariable from invalid String value us_aqii for key current"
    upstream.json(PATH, {"error": True, "reason": reason}, status=400)

    with pytest.raises(UpstreamError) as caught:
        await fetch(upstream)
    assert caught.value.reason == "status"
    assert f"HTTP 400: {reason}" in str(caught.value)


async def test_an_error_body_with_200_is_no_data(upstream):
    upstream.json(PATH, {"error": True, "reason": "Latitude must be in range of -90 to 90°."})

    with pytest.raises(UpstreamError, match="Latitude must be in range") as caught:
        await fetch(upstream)
    assert caught.value.reason == "upstream"
