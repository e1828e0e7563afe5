"""An upstream answering with absurd numbers, end to end: never a 500, the last good data stays.

The answer is a failed attempt of that provider (counted, shown in /health); readers keep seeing
the last good box; a cold start with nothing but absurd data shows the polite placeholder.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from service.settings import EngineSettings, Settings
from service.web.app import create_app
from service.web.keys import ENGINE
from service.widgets import BUILTIN_WIDGETS
from tests.providers.test_absurd_numbers import openmeteo_text, serve_text, tgju_currency
from tests.support.clock import FakeClock
from tests.support.fixtures import fixture_text
from tests.support.prices import html_page, serve_tgju

FORECAST = "/v1/forecast"


def only(widget: str, upstream, sources: dict[str, Any], **options: Any) -> Settings:
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != widget}
    return Settings(
        engine=EngineSettings(background=False, retry_base_seconds=0.05, cold_wait_seconds=60),
        widgets={widget: {"refresh_seconds": 0.3, **options}, **others},
        providers={
            name: {"url": upstream.url(""), "timeout_seconds": 30, **extra} for name, extra in sources.items()
        },
    )


async def refresh_after_expiry(client, clock: FakeClock, widget: str) -> None:
    await clock.advance(0.35)
    task = client.app[ENGINE].refreshers[widget].trigger()
    assert task is not None
    await task


async def assert_every_page_answers(client, widget: str) -> None:
    for path in (f"/widgets/{widget}.json", f"/widgets/{widget}.html", f"/embed/{widget}", "/"):
        response = await client.get(path)
        text = await response.text()
        assert response.status == 200, (path, text[:300])
        assert "Traceback" not in text


async def assert_failure_reported(client, widget: str, provider: str) -> None:
    health = await (await client.get("/health")).json()
    check = health["checks"][f"{widget}:dataAge"][0]
    assert check["consecutiveFailures"] >= 1
    assert check["lastError"] and provider in check["lastError"]
    assert len(check["lastError"]) < 1000  # no 5000-digit number copied into it
    metrics = await (await client.get("/metrics")).text()
    counted = re.findall(
        rf'sidebar_upstream_errors_total\{{provider="{provider}",reason="\w+"\}} (\S+)', metrics
    )
    assert sum(float(value) for value in counted) >= 1


@pytest.mark.parametrize("price", ["1e400", "9" * 5000, "NaN", "-0", "1,000,000,000,000,000,000"])
async def test_prices_keep_the_last_good_dollar_when_tgju_turns_absurd(
    aiohttp_client, upstream, clock, price
):
    serve_tgju(upstream)
    client = await aiohttp_client(
        create_app(only("prices", upstream, {"tgju": {}}, items=["price_dollar_rl"]), clock=clock)
    )
    first = await (await client.get("/widgets/prices.json")).json()
    assert first["data"]["items"][0]["price"] == 1_052_300
    upstream.on("/currency", html_page(tgju_currency(price=price)))

    await refresh_after_expiry(client, clock, "prices")

    body = await (await client.get("/widgets/prices.json")).json()
    assert body["status"] in ("fresh", "stale")
    assert body["data"]["items"][0]["price"] == 1_052_300
    html = await (await client.get("/widgets/prices.html")).text()
    assert '<bdi dir="ltr">۱۰۵٬۲۳۰</bdi>' in html
    await assert_every_page_answers(client, "prices")
    await assert_failure_reported(client, "prices", "tgju")


async def test_prices_cold_start_with_only_absurd_data_is_a_503_and_a_placeholder(
    aiohttp_client, upstream, clock
):
    serve_tgju(upstream)
    upstream.on("/currency", html_page(tgju_currency(price="1e400")))
    client = await aiohttp_client(
        create_app(only("prices", upstream, {"tgju": {}}, items=["price_dollar_rl"]), clock=clock)
    )

    response = await client.get("/widgets/prices.json")

    assert response.status == 503
    body = json.loads(await response.text())
    assert body["status"] == "unavailable" and body["data"] is None
    assert 0 < len(body["error"]) < 500 and "Traceback" not in body["error"]
    fragment = await client.get("/widgets/prices.html")
    assert fragment.status == 200
    assert 'data-status="unavailable"' in await fragment.text()
    for path in ("/embed/prices", "/"):
        assert (await client.get(path)).status == 200
    health = await (await client.get("/health")).json()
    assert health["checks"]["prices:dataAge"][0]["consecutiveFailures"] >= 1


@pytest.mark.parametrize(
    ("section", "field", "index", "raw"),
    [
        ("current", "weather_code", None, "5000"),
        ("current", "weather_code", None, "1" + "0" * 4000),
        ("daily", "weather_code", 0, "-3"),
        ("", "latitude", None, "NaN"),
        ("current", "time", None, "1e400"),
    ],
)
async def test_weather_keeps_the_last_good_forecast_when_open_meteo_turns_absurd(
    aiohttp_client, upstream, clock, section, field, index, raw
):
    upstream.json(FORECAST, json.loads(fixture_text("openmeteo_forecast.json")))
    client = await aiohttp_client(
        create_app(only("weather", upstream, {"openmeteo": {}}, providers=["openmeteo"]), clock=clock)
    )
    first = await (await client.get("/widgets/weather.json")).json()
    serve_text(upstream, FORECAST, openmeteo_text(section, field, raw, index))

    await refresh_after_expiry(client, clock, "weather")

    body = await (await client.get("/widgets/weather.json")).json()
    assert body["status"] in ("fresh", "stale")
    assert body["data"] == first["data"]
    await assert_every_page_answers(client, "weather")
    await assert_failure_reported(client, "weather", "openmeteo")


async def test_weather_cold_start_with_only_absurd_data_is_a_503_and_a_placeholder(
    aiohttp_client, upstream, clock
):
    serve_text(upstream, FORECAST, openmeteo_text("current", "weather_code", "5000"))
    client = await aiohttp_client(
        create_app(only("weather", upstream, {"openmeteo": {}}, providers=["openmeteo"]), clock=clock)
    )

    response = await client.get("/widgets/weather.json")

    assert response.status == 503
    assert 0 < len((await response.json())["error"]) < 500
    fragment = await client.get("/widgets/weather.html")
    assert fragment.status == 200 and 'data-status="unavailable"' in await fragment.text()
    assert (await client.get("/embed/weather")).status == 200
