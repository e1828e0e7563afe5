"""Every configured price, or a visible reason: items the first provider lacks come from the next."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.settings import EngineSettings, Settings
from service.web.app import create_app
from service.web.keys import ENGINE
from service.widgets import BUILTIN_WIDGETS
from tests.support.fixtures import fixture_text
from tests.support.prices import html_page, serve_tgju
from tests.support.waiting import CEILING_SECONDS

ITEMS = ["price_dollar_rl", "sekee", "ons"]


def chain_settings(upstream, providers: dict[str, dict[str, Any]]) -> Settings:
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "prices"}
    return Settings(
        engine=EngineSettings(background=False, retry_base_seconds=0.05, cold_wait_seconds=CEILING_SECONDS),
        widgets={"prices": {"refresh_seconds": 300, "items": ITEMS}, **others},
        providers={
            name: {"url": upstream.url(""), "timeout_seconds": 30, **extra}
            for name, extra in providers.items()
        },
    )


def serve_brsapi(upstream) -> None:
    text = fixture_text("brsapi_gold_currency.json")

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="application/json")

    upstream.on("/Api/Market/Gold_Currency.php", handler)


async def test_an_item_tgju_lacks_is_filled_by_the_next_provider_with_its_source(
    aiohttp_client, upstream, clock
):
    # The market pages as they really are (no ounce) and no home page: BrsApi has XAUUSD.
    serve_tgju(upstream, home=False)
    serve_brsapi(upstream)
    client = await aiohttp_client(
        create_app(chain_settings(upstream, {"tgju": {}, "brsapi": {"api_key": "k"}}), clock=clock)
    )

    body = await (await client.get("/widgets/prices.json")).json()

    items = {item["key"]: item for item in body["data"]["items"]}
    assert list(items) == ITEMS and body["data"]["missing"] == []
    assert [items[key]["source"] for key in ITEMS] == ["tgju", "tgju", "brsapi"]
    assert items["ons"]["price"] == 4012 and items["ons"]["unit"] == "USD"
    assert items["sekee"]["price"] == 1_066_500_000  # tgju's own, not overwritten by BrsApi
    assert upstream.hits["/Api/Market/Gold_Currency.php"] == 1
    assert "BrsApi" in body["attribution"] and "tgju" in body["attribution"]


async def test_the_next_provider_is_not_asked_when_nothing_is_missing(aiohttp_client, upstream, clock):
    serve_tgju(upstream)  # with the home page's info bar, which carries the ounce
    serve_brsapi(upstream)
    client = await aiohttp_client(
        create_app(chain_settings(upstream, {"tgju": {}, "brsapi": {"api_key": "k"}}), clock=clock)
    )

    body = await (await client.get("/widgets/prices.json")).json()

    assert {item["source"] for item in body["data"]["items"]} == {"tgju"}
    assert upstream.hits["/Api/Market/Gold_Currency.php"] == 0


async def test_an_item_no_provider_supplies_is_listed_counted_and_warned(aiohttp_client, upstream):
    serve_tgju(upstream, home=False)
    client = await aiohttp_client(create_app(chain_settings(upstream, {"tgju": {}})))

    body = await (await client.get("/widgets/prices.json")).json()
    assert [item["key"] for item in body["data"]["items"]] == ["price_dollar_rl", "sekee"]
    assert body["data"]["missing"] == ["ons"]

    health = await (await client.get("/health")).json()
    check = health["checks"]["prices:dataAge"][0]
    assert health["status"] == "warn" and check["status"] == "warn"
    assert check["missingItems"] == ["ons"] and "ons" in check["output"]

    metrics = await (await client.get("/metrics")).text()
    assert 'sidebar_widget_missing_items{widget="prices"} 1.0' in metrics


async def test_items_query_keeps_the_missing_list_to_the_asked_keys(aiohttp_client, upstream):
    serve_tgju(upstream, home=False)
    client = await aiohttp_client(create_app(chain_settings(upstream, {"tgju": {}})))

    asked = await (await client.get("/widgets/prices.json?items=sekee")).json()
    with_ounce = await (await client.get("/widgets/prices.json?items=ons,sekee")).json()

    assert asked["data"]["missing"] == []
    assert with_ounce["data"]["missing"] == ["ons"]


async def test_a_jump_another_provider_agrees_with_is_shown_at_once(aiohttp_client, upstream, clock):
    serve_tgju(upstream, home=False)
    serve_brsapi(upstream)
    client = await aiohttp_client(
        create_app(chain_settings(upstream, {"tgju": {}, "brsapi": {"api_key": "k"}}), clock=clock)
    )
    assert (await client.get("/widgets/prices.json")).status == 200

    # The dollar quintuples on tgju; BrsApi (in Toman) sees the same market.
    jumped = (
        fixture_text("tgju_currency.html")
        .replace("1,052,300", "5,261,500")
        .replace("<td>1,047,100</td>", "<td>5,235,500</td>")
        .replace("<td>1,055,000</td>", "<td>5,275,000</td>")
    )
    upstream.on("/currency", html_page(jumped))
    agreeing = fixture_text("brsapi_gold_currency.json").replace('"price": 105230', '"price": 526150')

    async def brsapi(request: web.Request) -> web.Response:
        return web.Response(text=agreeing, content_type="application/json")

    upstream.on("/Api/Market/Gold_Currency.php", brsapi)
    await clock.advance(301)
    await client.app[ENGINE].refreshers["prices"].trigger()

    body = await (await client.get("/widgets/prices.json")).json()
    dollar = next(i for i in body["data"]["items"] if i["key"] == "price_dollar_rl")
    assert dollar["price"] == 5_261_500 and dollar["stale"] is False and dollar["source"] == "tgju"
    assert "price_dollar_rl" not in body["data"]["pending"]


async def test_a_jump_no_other_provider_confirms_is_held_back(aiohttp_client, upstream, clock):
    serve_tgju(upstream, home=False)
    serve_brsapi(upstream)
    client = await aiohttp_client(
        create_app(chain_settings(upstream, {"tgju": {}, "brsapi": {"api_key": "k"}}), clock=clock)
    )
    assert (await client.get("/widgets/prices.json")).status == 200
    jumped = (
        fixture_text("tgju_currency.html")
        .replace("1,052,300", "5,261,500")
        .replace("<td>1,047,100</td>", "<td>5,235,500</td>")
        .replace("<td>1,055,000</td>", "<td>5,275,000</td>")
    )
    upstream.on("/currency", html_page(jumped))
    await clock.advance(301)
    await client.app[ENGINE].refreshers["prices"].trigger()

    body = await (await client.get("/widgets/prices.json")).json()
    dollar = next(i for i in body["data"]["items"] if i["key"] == "price_dollar_rl")
    assert dollar["price"] == 1_052_300 and dollar["stale"] is True  # BrsApi still says 105,230 Toman
    assert "price_dollar_rl" in body["data"]["pending"]
