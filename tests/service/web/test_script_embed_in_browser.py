"""Embeds as a webmaster pastes them from the gallery, with no ``public_url`` configured.

The service is reached at ``127.0.0.1``, the host page at ``localhost`` (another origin), which
answers only its own page: a URL in an embed that resolved against the host would be a 404 there.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from service.engine.clock import SystemClock
from service.settings import Settings
from service.web.app import create_app
from tests.support.browser import BROWSER_LOOP
from tests.support.prices import serve_tgju
from tests.support.redis_server import free_port
from tests.support.tiles import FakeTiles
from tests.support.upstream import FakeUpstream, fake_upstream
from tests.support.weather import openmeteo_document

pytest_plugins = ["tests.support.browser_plugin"]
pytestmark = BROWSER_LOOP

WIDGETS = ("weather", "prices", "satellite", "prayer", "date", "links")


@dataclass
class Host:
    """A page on another origin; it records every path the browser asks it for."""

    url: str = ""
    page: str = ""
    asked: list[str] = field(default_factory=list)


@pytest_asyncio.fixture(loop_scope="session")
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as fake:
        yield fake


@pytest_asyncio.fixture(loop_scope="session")
async def service(upstream) -> AsyncIterator[str]:
    serve_tgju(upstream)
    upstream.json("/v1/forecast", openmeteo_document(SystemClock().time()))  # dated at the service's now
    tiles = FakeTiles(upstream)
    port = free_port()
    settings = Settings(
        engine={"background": False},
        providers={
            "tgju": {"url": upstream.url("")},
            "openmeteo": {"url": upstream.url("")},
            "metno": {"url": upstream.url("")},
            "tiles": {"url": tiles.template},
        },
    )
    assert settings.public_url == ""
    server = TestServer(create_app(settings), host="127.0.0.1", port=port)
    await server.start_server()
    yield f"http://127.0.0.1:{port}"
    await server.close()


@pytest_asyncio.fixture(loop_scope="session")
async def host() -> AsyncIterator[Host]:
    found = Host()

    async def answer(request: web.Request) -> web.Response:
        found.asked.append(request.path_qs)
        if request.path != "/":
            return web.Response(status=404, text="not here")
        return web.Response(text=found.page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    port = free_port()
    server = TestServer(app, host="localhost", port=port)
    await server.start_server()
    found.url = f"http://localhost:{port}/"
    yield found
    await server.close()


@pytest_asyncio.fixture(loop_scope="session")
async def tab(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 800, "height": 3000})
    yield await context.new_page()
    await context.close()


def page_with(body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">'
        "<title>host</title><style>.column{width:300px}iframe{display:block}</style></head>"
        f'<body><div class="column">{body}</div></body></html>'
    )


async def gallery_snippets(tab: Page, service: str) -> dict[str, dict[str, str]]:
    """Each widget's snippets as the gallery shows them to copy."""
    response = await tab.request.get(service + "/")
    text = await response.text()
    found: dict[str, dict[str, str]] = {}
    for section in re.findall(r'<section class="gl-widget" id="(\w+)"[^>]*>(.*?)</section>', text, re.S):
        name, body = section
        codes = [html.unescape(code) for code in re.findall(r"<pre><code>(.*?)</code></pre>", body, re.S)]
        found[name] = {"php": codes[0], "iframe": codes[1], "script": codes[2]}
    return found


async def test_a_pasted_script_embed_shows_the_picture_and_links_without_public_url(service, host, tab):
    snippets = await gallery_snippets(tab, service)
    # Stacked in the column as a webmaster would paste them, one after another.
    divs = "\n".join(snippets[name]["script"].split("\n")[0] for name in WIDGETS)
    host.page = page_with(divs + f'\n<script async src="{service}/embed.js"></script>')

    await tab.goto(host.url)
    await tab.wait_for_function(
        "() => [...document.querySelectorAll('[data-sidebar-widget]')]"
        ".every((d) => d.getAttribute('data-sidebar-widget-state') === 'ready')",
        timeout=30000,
    )
    satellite = tab.locator('[data-sidebar-widget="satellite"]')
    await satellite.locator("img").wait_for(timeout=30000)
    await tab.wait_for_function(
        "() => { const i = document.querySelector('[data-sidebar-widget=\"satellite\"]')"
        ".shadowRoot.querySelector('img'); return i.complete && i.naturalWidth > 0; }",
        timeout=30000,
    )
    picture = await satellite.evaluate(
        "(d) => { const i = d.shadowRoot.querySelector('img'); return {src: i.src, width: i.naturalWidth}; }"
    )
    links = await satellite.evaluate("(d) => [...d.shadowRoot.querySelectorAll('a')].map((a) => a.href)")
    boxes = [
        await tab.locator(f'[data-sidebar-widget="{name}"]').evaluate(
            "(d) => { const r = d.getBoundingClientRect(); return [r.top, r.bottom]; }"
        )
        for name in WIDGETS
    ]

    assert picture == {"src": f"{service}/widgets/satellite.jpg", "width": 1020}
    assert links and all(link == f"{service}/embed/satellite/map" for link in links)
    assert host.asked == ["/"]  # nothing was looked for on the host page's origin
    gaps = [below[0] - above[1] for above, below in zip(boxes, boxes[1:], strict=False)]
    assert all(gap >= 12 for gap in gaps), gaps


async def test_the_gallery_iframe_snippets_fit_each_widget_without_any_script(service, host, tab):
    snippets = await gallery_snippets(tab, service)
    assert set(snippets) == set(WIDGETS)
    # Each snippet as pasted, and no embed.js on the page: nothing resizes the frames.
    frames = "\n".join(
        snippets[name]["iframe"].replace("<iframe ", f'<iframe id="frame-{name}" ', 1) for name in WIDGETS
    )
    host.page = page_with(frames)

    await tab.goto(host.url)
    measured = {}
    for name in WIDGETS:
        frame = tab.frame_locator(f"#frame-{name}")
        await frame.locator(".sw-widget").wait_for(timeout=30000)
        await frame.locator("html").evaluate(
            "() => Promise.all([...document.images].map((i) => i.complete ? 0 :"
            " new Promise((done) => { i.onload = i.onerror = done; })))"
        )
        # The body's own height: the document's is never less than the frame it is in.
        content = await frame.locator("html").evaluate(
            "() => Math.ceil(document.body.getBoundingClientRect().height)"
        )
        given = await tab.locator(f"#frame-{name}").evaluate("(f) => f.getBoundingClientRect().height")
        measured[name] = (content, given)

    for name, (content, given) in measured.items():
        # Tall enough to show it all, without a band of empty frame below.
        assert content <= given <= content + 48, (name, content, given)
