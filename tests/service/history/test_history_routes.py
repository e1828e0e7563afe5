"""``history.json`` answers like every widget answer: CORS for the asking origin, ``Vary``, 304s."""

from __future__ import annotations

import pytest

from service.settings import EmbedSettings
from service.web.app import create_app
from tests.service.history.test_price_history import settings
from tests.support.prices import serve_tgju

URL = "/widgets/prices/history.json?item=sekee&range=30d"
BLOG = "https://blog.example.ir"


@pytest.mark.parametrize(
    ("origins", "origin", "allowed", "vary"),
    [
        (["*"], None, "*", None),
        (["*"], BLOG, "*", None),
        ([BLOG], BLOG, BLOG, "Origin"),
        ([BLOG], "https://other.example", None, "Origin"),
        ([BLOG], None, None, "Origin"),
    ],
)
async def test_history_carries_the_cors_of_the_widget_answers_on_200_and_304(
    aiohttp_client, upstream, clock, origins, origin, allowed, vary
):
    serve_tgju(upstream)
    app_settings = settings(upstream).model_copy(update={"embed": EmbedSettings(allowed_origins=origins)})
    client = await aiohttp_client(create_app(app_settings, clock=clock))
    asking = {"Origin": origin} if origin else {}

    widget = await client.get("/widgets/prices.json", headers=asking)
    first = await client.get(URL, headers=asking)
    unchanged = await client.get(URL, headers={**asking, "If-None-Match": first.headers["ETag"]})
    by_date = await client.get(URL, headers={**asking, "If-Modified-Since": first.headers["Last-Modified"]})

    assert (widget.status, first.status, unchanged.status, by_date.status) == (200, 200, 304, 304)
    for response in (widget, first, unchanged, by_date):
        assert response.headers.get("Access-Control-Allow-Origin") == allowed
        assert response.headers.get("Vary") == vary
    exposed = "Access-Control-Expose-Headers"
    expected = "ETag, Date, Age" if allowed else None
    assert first.headers.get(exposed) == widget.headers.get(exposed) == expected


@pytest.mark.parametrize(
    ("origins", "origin", "allowed"),
    [
        (["*"], BLOG, "*"),
        ([BLOG], BLOG, BLOG),
        ([BLOG], "https://other.example", None),
    ],
)
async def test_history_answers_a_preflight_as_the_widget_answers_do(
    aiohttp_client, upstream, clock, origins, origin, allowed
):
    serve_tgju(upstream)
    app_settings = settings(upstream).model_copy(update={"embed": EmbedSettings(allowed_origins=origins)})
    client = await aiohttp_client(create_app(app_settings, clock=clock))
    asking = {
        "Origin": origin,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "if-none-match",
    }

    widget = await client.options("/widgets/prices.json", headers=asking)
    history = await client.options(URL, headers=asking)

    assert (widget.status, history.status) == (204, 204)
    assert history.headers.get("Access-Control-Allow-Origin") == allowed
    for name in ("Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Vary"):
        assert history.headers.get(name) == widget.headers.get(name), name
    assert "GET" in history.headers["Access-Control-Allow-Methods"]
    assert "If-None-Match" in history.headers["Access-Control-Allow-Headers"]
