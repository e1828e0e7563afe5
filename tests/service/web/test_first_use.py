"""What a new user trips on first: a key asked twice, a format that does not exist."""

from __future__ import annotations

import pytest

from service.web.app import create_app
from service.web.keys import ENGINE
from tests.service.widgets.test_prices import prices_settings
from tests.support.prices import serve_tgju


async def test_an_item_asked_twice_is_shown_once_like_the_same_view_without_the_repeat(
    aiohttp_client, upstream
):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(prices_settings(upstream)))
    await client.app[ENGINE].refreshers["prices"].trigger()

    repeated = await client.get("/widgets/prices.json?items=sekee,price_dollar_rl,sekee")
    plain = await client.get("/widgets/prices.json?items=sekee,price_dollar_rl")
    html = await (await client.get("/widgets/prices.html?items=ons,ons,ons")).text()

    assert repeated.status == 200
    assert [i["key"] for i in (await repeated.json())["data"]["items"]] == ["sekee", "price_dollar_rl"]
    assert repeated.headers["ETag"] == plain.headers["ETag"]
    assert html.count('data-key="ons"') == 1


@pytest.mark.parametrize("path", ["/widgets/prices.xml", "/widgets/prices.", "/widgets/prices.json.bak"])
async def test_a_widget_in_a_format_that_does_not_exist_is_404_not_405(aiohttp_client, upstream, path):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(prices_settings(upstream)))

    response = await client.get(path)

    assert response.status == 404 and "Allow" not in response.headers
    assert "error" in await response.json()
    preflight = await client.options("/widgets/prices.json", headers={"Origin": "https://example.org"})
    assert preflight.status == 204
