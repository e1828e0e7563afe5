"""Absurd numbers from upstreams (thousands of digits, 1e400, NaN, -0, negatives) are refused.

Each provider must turn them into a clean rejection (an item's problem, an ``UpstreamError`` or a
pydantic ``ValidationError``), never a value that overflows later while rendering or encoding.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from aiohttp import web
from pydantic import ValidationError

from providers.brsapi import BrsApiProvider
from providers.http import UpstreamError
from providers.metno import MetNoProvider
from providers.navasan import NavasanProvider
from providers.openmeteo import OpenMeteoProvider
from providers.text import parse_decimal
from providers.tgju import TgjuProvider, parse_info_bar, parse_page
from service.persian import TEHRAN
from service.widgets.prices import PriceItem
from service.widgets.satellite import SatelliteData
from service.widgets.weather import WeatherData
from tests.providers.test_weather_providers import fetch as fetch_weather
from tests.support.fixtures import fixture_text
from tests.support.prices import fetch_once, html_page, serve_tgju
from tests.support.weather import METNO_CAPTURED, metno_document

HUGE = "9" * 5000
#: Texts no upstream quantity can be; each must be refused wherever a number is read.
ABSURD = [HUGE, "1e400", "-1e400", "NaN", "Infinity", "1" + "0" * 30]

# -- the parsing helper ----------------------------------------------------------------------


@pytest.mark.parametrize("text", [*ABSURD, "1e18", "۱" * 40, "1,000,000,000,000,000,000"])
def test_parse_decimal_refuses_absurd_magnitudes(text):
    with pytest.raises(ValueError):
        parse_decimal(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,864,000", Decimal(1864000)),
        ("۴٬۰۱۲٫۶۵", Decimal("4012.65")),
        ("-0", Decimal(0)),
        ("1e-400", Decimal("1e-400")),
    ],
)
def test_parse_decimal_keeps_ordinary_numbers_and_drops_the_sign_of_zero(text, value):
    parsed = parse_decimal(text)
    assert parsed == value and not parsed.is_signed()


# -- the model -------------------------------------------------------------------------------


def price_item(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "key": "price_dollar_rl",
        "title": "دلار آمریکا",
        "price": 1_052_300,
        "unit": "IRR",
        "change": 4_710,
        "change_percent": 0.45,
        "direction": "up",
    }
    return {**base, **changes}


@pytest.mark.parametrize(
    "changes",
    [
        {"price": 10**15},
        {"price": 10**5000},
        {"price": 0},
        {"price": -1_052_300},
        {"change": 10**400},
        {"change": -(10**15)},
        {"change_percent": float("inf")},
        {"change_percent": float("nan")},
        {"change_percent": 1e6},
        {"low": 10**20},
        {"high": 10**20},
        {"key": "ons", "unit": "USD", "price": 10**9, "change": 0},
    ],
    ids=lambda changes: ",".join(changes),
)
def test_price_item_bounds_every_number(changes):
    with pytest.raises(ValidationError):
        PriceItem.model_validate(price_item(**changes))


def test_price_item_accepts_the_largest_real_prices_and_normalises_negative_zero():
    coin = PriceItem.model_validate(price_item(key="sekee", price=1_066_500_000, change_percent=-0.0))
    ounce = PriceItem.model_validate(price_item(key="ons", unit="USD", price=4013, change=-8))
    assert coin.price == 1_066_500_000 and str(coin.change_percent) == "0.0"
    assert ounce.price == 4013


# -- tgju ------------------------------------------------------------------------------------

DOLLAR_ROW = (
    '<td class="nf">1,052,300</td>\n'
    '\t\t\t\t<td class="nf"><span class="high">(0.45%) 4,710</span></td>\n'
    "\t\t\t\t<td>1,047,100</td>\n"
    "\t\t\t\t<td>1,055,000</td>"
)


def tgju_currency(price: str = "1,052,300", change: str = "(0.45%) 4,710") -> str:
    """The currency page with the dollar row's numbers replaced; no low/high to cross-check."""
    page = fixture_text("tgju_currency.html")
    assert DOLLAR_ROW in page
    change_cell = f'<td class="nf"><span class="high">{change}</span></td>'
    row = f'<td class="nf">{price}</td>{change_cell}<td></td><td></td>'
    return page.replace(DOLLAR_ROW, row)


NOW = datetime(2026, 11, 26, 10, 30, tzinfo=TEHRAN)


@pytest.mark.parametrize("price", [*ABSURD, "-0", "-1,052,300", "1,000,000,000,000,000"])
def test_tgju_refuses_an_absurd_price_as_that_rows_problem(price):
    items, problems = parse_page(
        tgju_currency(price=price), {"price_dollar_rl", "price_eur"}, page="currency", now=NOW
    )

    assert "price_dollar_rl" not in items
    assert items["price_eur"].price == 1_231_900  # the rest of the page still counts
    assert len(problems) == 1 and problems[0].startswith("price_dollar_rl: ")
    assert len(problems[0]) < 300


@pytest.mark.parametrize("change", ["(5000%) 4,710", "(0.45%) 1" + "0" * 17, "(0.45%) " + HUGE])
def test_tgju_refuses_an_absurd_change(change):
    items, problems = parse_page(tgju_currency(change=change), {"price_dollar_rl"}, page="currency", now=NOW)
    assert items == {} and problems[0].startswith("price_dollar_rl: ")


def test_tgju_refuses_an_ounce_of_a_billion_dollars():
    page = fixture_text("tgju_home.html").replace("4,197.25", "1,000,000,000.5")
    items, problems = parse_info_bar(page, {"ons"})
    assert items == {} and problems[0].startswith("ons: ")


async def test_tgju_with_every_configured_item_absurd_is_a_validation_failure(upstream):
    serve_tgju(upstream)
    upstream.on("/currency", html_page(tgju_currency(price="1e400")))

    with pytest.raises(UpstreamError) as caught:
        await fetch_once(TgjuProvider, upstream, items=["price_dollar_rl"])

    assert caught.value.reason == "validation"
    assert "price_dollar_rl" in str(caught.value)


# -- BrsApi and navasan ----------------------------------------------------------------------


def brsapi_with_dollar(field: str, raw: str) -> str:
    """The BrsApi fixture with one field of the dollar entry replaced by raw JSON text."""
    doc = json.loads(fixture_text("brsapi_gold_currency.json"))
    dollar = next(entry for entry in doc["currency"] if entry["symbol"] == "USD")
    dollar[field] = "@@"
    return json.dumps(doc, ensure_ascii=False).replace('"@@"', raw)


def serve_text(upstream, path: str, text: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="application/json")

    upstream.on(path, handler)


BRSAPI = "/Api/Market/Gold_Currency.php"


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("price", json.dumps(HUGE)),
        ("price", '"1e400"'),
        ("price", "1e400"),
        ("price", "NaN"),
        ("price", '"-0"'),
        ("price", "-105230"),
        ("change_value", '"1e400"'),
        ("change_percent", '"1e400"'),
        ("change_percent", "-Infinity"),
        ("time_unix", '"1e400"'),
        ("time_unix", "1e400"),
        ("time_unix", '"NaN"'),
        ("time_unix", '"not a time"'),
    ],
)
async def test_brsapi_refuses_an_absurd_field_as_that_items_problem(upstream, field, raw):
    serve_text(upstream, BRSAPI, brsapi_with_dollar(field, raw))

    data = await fetch_once(BrsApiProvider, upstream, api_key="k")

    keys = {item.key for item in data.items}
    assert "price_dollar_rl" not in keys and "sekee" in keys
    assert any(problem.startswith("price_dollar_rl: ") for problem in data.problems)


async def test_brsapi_with_every_configured_item_absurd_is_a_validation_failure(upstream):
    serve_text(upstream, BRSAPI, brsapi_with_dollar("price", '"1e400"'))

    with pytest.raises(UpstreamError) as caught:
        await fetch_once(BrsApiProvider, upstream, api_key="k", items=["price_dollar_rl"])

    assert caught.value.reason == "validation"


def navasan_with_usd(field: str, raw: str) -> str:
    doc = json.loads(fixture_text("navasan_latest.json"))
    doc["usd"][field] = "@@"
    return json.dumps(doc, ensure_ascii=False).replace('"@@"', raw)


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("value", json.dumps(HUGE)),
        ("value", '"1e400"'),
        ("value", '"NaN"'),
        ("value", '"-0"'),
        ("value", '"-105230"'),
        ("change", '"1e400"'),
        ("change", "1e400"),
        ("timestamp", '"1e400"'),
        ("timestamp", "1e400"),
        ("timestamp", "NaN"),
    ],
)
async def test_navasan_refuses_an_absurd_field_as_that_items_problem(upstream, field, raw):
    serve_text(upstream, "/latest/", navasan_with_usd(field, raw))

    data = await fetch_once(NavasanProvider, upstream, api_key="k")

    keys = {item.key for item in data.items}
    assert "price_dollar_rl" not in keys and "sekee" in keys
    assert any(problem.startswith("price_dollar_rl: ") for problem in data.problems)


# -- Open-Meteo and MET Norway ---------------------------------------------------------------

FORECAST = "/v1/forecast"
COMPACT = "/weatherapi/locationforecast/2.0/compact"


def openmeteo_text(section: str, field: str, raw: str, index: int | None = None) -> str:
    doc = json.loads(fixture_text("openmeteo_forecast.json"))
    target = doc if section == "" else doc[section]
    if index is None:
        target[field] = "@@"
    else:
        target[field][index] = "@@"
    return json.dumps(doc).replace('"@@"', raw)


@pytest.mark.parametrize(
    ("section", "field", "index", "raw"),
    [
        ("current", "temperature_2m", None, "1e400"),
        ("current", "temperature_2m", None, "NaN"),
        ("current", "relative_humidity_2m", None, "Infinity"),
        ("current", "wind_speed_10m", None, "1" + "0" * 4000),
        ("current", "weather_code", None, "1" + "0" * 4000),
        ("current", "weather_code", None, "5000"),
        ("current", "weather_code", None, "-1"),
        ("current", "time", None, "1e400"),
        ("daily", "weather_code", 3, "100"),
        ("daily", "temperature_2m_max", 2, "1e400"),
        ("daily", "precipitation_probability_max", 1, "NaN"),
        ("daily", "precipitation_probability_max", 1, "-1e400"),
        ("", "latitude", None, "NaN"),
        ("", "longitude", None, "1e400"),
    ],
)
async def test_openmeteo_refuses_an_absurd_number(upstream, section, field, index, raw):
    serve_text(upstream, FORECAST, openmeteo_text(section, field, raw, index))

    with pytest.raises((UpstreamError, ValidationError)):
        await fetch_weather(OpenMeteoProvider, upstream)


async def test_openmeteo_fixture_itself_is_accepted(upstream):
    serve_text(upstream, FORECAST, openmeteo_text("current", "weather_code", "99"))
    data, _ = await fetch_weather(OpenMeteoProvider, upstream)
    assert isinstance(data, WeatherData) and data.current.condition_code == 99


def metno_text(step: int, field: str, raw: str) -> str:
    doc = metno_document(METNO_CAPTURED)
    doc["properties"]["timeseries"][step]["data"]["instant"]["details"][field] = "@@"
    return json.dumps(doc).replace('"@@"', raw)


@pytest.mark.parametrize(
    ("step", "field", "raw"),
    [
        (0, "air_temperature", "1e400"),
        (0, "air_temperature", "-237.71"),  # near Steadman's pole: math.exp would overflow
        (0, "wind_speed", "1e400"),
        (0, "relative_humidity", "NaN"),
        (0, "wind_from_direction", "1" + "0" * 4000),
        (5, "air_temperature", "NaN"),  # min()/max() over the day would skip it silently
        (5, "air_temperature", "-1e400"),
        (5, "air_temperature", '"-0"'),
    ],
)
async def test_metno_refuses_an_absurd_number(upstream, step, field, raw):
    serve_text(upstream, COMPACT, metno_text(step, field, raw))

    with pytest.raises((UpstreamError, ValidationError)):
        await fetch_weather(MetNoProvider, upstream)


async def test_metno_fixture_itself_is_accepted(upstream):
    serve_text(upstream, COMPACT, json.dumps(metno_document(METNO_CAPTURED)))
    data, _ = await fetch_weather(MetNoProvider, upstream)
    assert isinstance(data, WeatherData)
    assert data.current.observed_at <= datetime.fromtimestamp(METNO_CAPTURED, UTC)


# -- the satellite description ---------------------------------------------------------------


def satellite(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "bbox": (48.80, 34.85, 49.50, 35.30),
        "zoom": 11,
        "center": (48.973, 35.116),
        "image": "/widgets/satellite.jpg",
        "tiles": "/tiles/{z}/{x}/{y}.jpg",
        "attribution": "Tiles © Esri",
        "width": 1020,
        "height": 802,
        "source": "esri",
        "map": "/embed/satellite/map",
    }
    return {**base, **changes}


@pytest.mark.parametrize(
    "changes",
    [
        {"width": 10**6},
        {"height": 10**400},
        {"zoom": 99},
        {"center": (float("nan"), 35.1)},
        {"center": (48.9, float("inf"))},
        {"bbox": (48.8, 34.85, 1e400, 35.3)},
        {"bbox": (48.8, -90.0, 49.5, 35.3)},
    ],
    ids=lambda changes: ",".join(changes),
)
def test_satellite_data_bounds_every_number(changes):
    with pytest.raises(ValidationError):
        SatelliteData.model_validate(satellite(**changes))


def test_satellite_data_of_the_county_is_accepted():
    assert SatelliteData.model_validate(satellite()).width == 1020
