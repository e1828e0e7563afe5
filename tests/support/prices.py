"""Helpers for prices tests: serve the tgju pages from a fake upstream, run a provider once."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from providers.base import Provider, ProviderConfig
from providers.http import UpstreamClient
from service.settings import HttpSettings
from service.widgets.prices import PricesData, PricesOptions
from tests.support.clock import FakeClock
from tests.support.fixtures import fixture_text
from tests.support.upstream import FakeUpstream


def item(key: str, price: int, unit: str = "IRR") -> dict[str, Any]:
    """One price item as a provider reports it, for tests of what the widget does with it."""
    return {
        "key": key,
        "title": key,
        "price": price,
        "unit": unit,
        "change": 0,
        "change_percent": 0.0,
        "direction": "flat",
        "low": None,
        "high": None,
        "updated_at": None,
    }


TGJU_PAGES = ("currency", "gold-chart", "coin")


def serve_tgju(upstream: FakeUpstream, *, home: bool = True, **replacements: str) -> None:
    """The three market pages and the home page's info bar (the only tgju page with the ounce);
    ``replacements`` maps a page (``home`` for the home page) to another fixture file."""
    for page in TGJU_PAGES:
        html = fixture_text(replacements.get(page, f"tgju_{page}.html"))
        upstream.on(f"/{page}", html_page(html))
    if home:
        upstream.on("/", html_page(fixture_text(replacements.get("home", "tgju_home.html"))))


def html_page(text: str):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="text/html")

    return handler


async def fetch_once(
    provider_cls: type[Provider],
    upstream: FakeUpstream,
    *,
    items: list[str] | None = None,
    api_key: str | None = None,
    timeout: float = 30,
    clock: FakeClock | None = None,
) -> PricesData:
    """One fetch by ``provider_cls`` against the fake upstream, on ``clock`` (a fresh fake clock)."""
    options = PricesOptions(items=items) if items else PricesOptions()
    provider = provider_cls(
        ProviderConfig(url=upstream.url(""), timeout_seconds=timeout, api_key=api_key, widget_options=options)
    )
    client = UpstreamClient(HttpSettings(), (clock or FakeClock()).time)
    await client.start()
    try:
        result = await provider.fetch(client.session(timeout_seconds=timeout))
    finally:
        await client.close()
    assert isinstance(result, PricesData)
    return result
