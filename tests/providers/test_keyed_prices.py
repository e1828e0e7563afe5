"""BrsApi and navasan: Toman (and thousands of Toman) in, Rial out; key problems named."""

from __future__ import annotations

import pytest
from aiohttp import web

from providers.brsapi import BrsApiProvider
from providers.http import UpstreamError
from providers.navasan import NavasanProvider
from providers.tgju import TgjuProvider
from tests.support.fixtures import fixture_text
from tests.support.prices import fetch_once, serve_tgju


def serve_json_fixture(upstream, path: str, name: str, **kwargs) -> None:
    text = fixture_text(name, **kwargs)

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="application/json")

    upstream.on(path, handler)


def by_key(data):
    return {item.key: item for item in data.items}


async def test_brsapi_toman_becomes_rial(upstream):
    serve_json_fixture(upstream, "/Api/Market/Gold_Currency.php", "brsapi_gold_currency.json")

    data = await fetch_once(BrsApiProvider, upstream, api_key="secret")

    items = by_key(data)
    assert upstream.requests[0].query["key"] == "secret"
    # 105,230 Toman per dollar upstream is 1,052,300 Rial here.
    assert items["price_dollar_rl"].price == 1_052_300 and items["price_dollar_rl"].unit == "IRR"
    assert items["price_dollar_rl"].change == 4_710 and items["price_dollar_rl"].direction == "up"
    assert items["price_eur"].change == -2_590 and items["price_eur"].direction == "down"
    assert items["sekee"].price == 1_066_500_000
    assert items["mesghal"].price == 465_300_000
    assert items["ons"].price == 4012 and items["ons"].unit == "USD"  # whole dollars as BrsApi sends
    assert items["geram18"].updated_at.utcoffset().total_seconds() == 3.5 * 3600


async def test_brsapi_stale_keys_are_rejected_not_published(upstream):
    serve_json_fixture(upstream, "/Api/Market/Gold_Currency.php", "brsapi_gold_currency.json")
    data = await fetch_once(BrsApiProvider, upstream, api_key="k")
    assert "price_try" not in by_key(data)  # last traded in 2013
    assert any(p.startswith("price_try: stale") for p in data.problems)


@pytest.mark.parametrize(
    ("provider", "path"), [(BrsApiProvider, "/Api/Market/Gold_Currency.php"), (NavasanProvider, "/latest/")]
)
async def test_an_html_answer_names_the_key_problem(upstream, provider, path):
    async def login_page(request: web.Request) -> web.Response:
        return web.Response(
            text="<!DOCTYPE html><html><body>کلید نامعتبر</body></html>", content_type="text/html"
        )

    upstream.on(path, login_page)
    with pytest.raises(UpstreamError, match=rf"check \[providers\.{provider.id}\] api_key") as caught:
        await fetch_once(provider, upstream, api_key="wrong")
    assert caught.value.reason == "api_key"


async def test_navasan_thousand_toman_coins_and_toman_currencies_become_rial(upstream):
    serve_json_fixture(upstream, "/latest/", "navasan_latest.json")

    data = await fetch_once(NavasanProvider, upstream, api_key="secret")

    items = by_key(data)
    assert upstream.requests[0].query["api_key"] == "secret"
    assert items["sekee"].price == 1_066_500_000  # "106650" thousand Toman
    assert items["sekee"].change == 5_000_000 and items["sekee"].direction == "up"
    assert items["price_dollar_rl"].price == 1_052_300  # "105230" Toman
    assert items["geram18"].price == 107_412_000  # "10741200" Toman per gram
    assert items["mesghal"].price == 465_300_000
    assert items["sekeb"].change == -2_000_000 and items["sekeb"].change_percent == pytest.approx(
        -0.2, abs=0.01
    )
    assert "gerami" not in items and any(p.startswith("gerami: stale") for p in data.problems)


async def test_every_source_agrees_to_the_rial_on_the_same_market(upstream):
    """The classic bug of this field is a Toman/Rial mix-up: the three sources must agree."""
    serve_tgju(upstream)
    serve_json_fixture(upstream, "/Api/Market/Gold_Currency.php", "brsapi_gold_currency.json")
    serve_json_fixture(upstream, "/latest/", "navasan_latest.json")

    tgju = by_key(await fetch_once(TgjuProvider, upstream))
    brsapi = by_key(await fetch_once(BrsApiProvider, upstream, api_key="k"))
    navasan = by_key(await fetch_once(NavasanProvider, upstream, api_key="k"))

    for key in (
        "price_dollar_rl",
        "price_eur",
        "price_gbp",
        "price_aed",
        "sekee",
        "sekeb",
        "nim",
        "rob",
        "geram18",
        "mesghal",
    ):
        assert tgju[key].price == brsapi[key].price == navasan[key].price, key
    for key in ("geram24", "gerami"):
        assert tgju[key].price == brsapi[key].price, key
