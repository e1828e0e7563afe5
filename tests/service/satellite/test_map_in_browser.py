"""The map page in a real browser that reaches nothing but the service (a filtered network).

Every request to any other origin is refused by the browser, so the page must get Leaflet, its
styles and every tile from the service itself; it is framed by a host page on another origin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Route

from service.satellite.routes import LEAFLET_PATH
from service.web.app import create_app
from tests.service.satellite.test_satellite import satellite_settings
from tests.support.browser import BROWSER_LOOP
from tests.support.redis_server import free_port
from tests.support.tiles import FakeTiles
from tests.support.upstream import FakeUpstream, fake_upstream

pytest_plugins = ["tests.support.browser_plugin"]
pytestmark = BROWSER_LOOP

MAP_REPORT = """
() => ({
  tiles: [...document.querySelectorAll('img.leaflet-tile')]
    .filter((img) => img.complete && img.naturalWidth === 256).length,
  tileSources: [...document.querySelectorAll('img.leaflet-tile')].map((img) => img.src),
  prefix: document.querySelector('.leaflet-control-attribution').innerHTML,
  attribution: document.querySelector('.leaflet-control-attribution').textContent,
  marker: document.querySelectorAll('path.leaflet-interactive').length,
  leafletStyled: getComputedStyle(document.querySelector('.leaflet-container')).overflow,
})
"""


@pytest_asyncio.fixture(loop_scope="session")
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as fake:
        yield fake


@pytest_asyncio.fixture(loop_scope="session")
async def served(upstream) -> AsyncIterator[tuple[str, str, FakeTiles]]:
    tiles = FakeTiles(upstream)
    service_port, host_port = free_port(), free_port()
    service = f"http://127.0.0.1:{service_port}"
    host = f"http://localhost:{host_port}"
    settings = satellite_settings(tiles)
    settings.embed.allowed_origins = [host]
    server = TestServer(create_app(settings), host="127.0.0.1", port=service_port)
    await server.start_server()

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text=(
                '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">'
                "<title>host</title></head><body>"
                f'<iframe id="map" src="{service}/embed/satellite/map" width="300" height="300"></iframe>'
                "</body></html>"
            ),
            content_type="text/html",
        )

    app = web.Application()
    app.router.add_get("/", page)
    host_server = TestServer(app, host="localhost", port=host_port)
    await host_server.start_server()
    yield service, host, tiles
    await host_server.close()
    await server.close()


async def test_the_framed_map_shows_tiles_with_every_outside_request_blocked(served, tmp_path, browser):
    service, host, tiles = served
    blocked: list[str] = []

    async def only_ours(route: Route) -> None:
        url = route.request.url
        if url.startswith((service + "/", host + "/")):
            await route.continue_()
        else:
            blocked.append(url)
            await route.abort("blockedbyclient")

    context = await browser.new_context(viewport={"width": 400, "height": 400})
    await context.route("**/*", only_ours)
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    await tab.goto(host + "/")
    frame = tab.frame_locator("#map")
    await frame.locator("img.leaflet-tile-loaded").first.wait_for(timeout=30000)
    # Let the rest of the visible tiles land (or fail): every tile Leaflet asked for is done.
    framed = await (await tab.wait_for_selector("#map")).content_frame()
    assert framed is not None
    await framed.wait_for_function(
        "() => [...document.querySelectorAll('img.leaflet-tile')].every((img) => img.complete)",
        timeout=30000,
    )
    report = await frame.locator("html").evaluate(MAP_REPORT)
    await tab.screenshot(path=str(tmp_path / "map.png"))
    await context.close()

    assert blocked == []
    assert errors == []
    assert report["tiles"] >= 2 and tiles.total >= 2
    assert all(src.startswith(service + "/tiles/") for src in report["tileSources"])
    assert report["leafletStyled"] == "hidden"  # leaflet.css arrived too
    # Our own prefix (a plain link) before the source's credit, not Leaflet's default flag.
    assert report["prefix"].startswith('<a href="https://leafletjs.com" lang="en">Leaflet</a>')
    assert "<svg" not in report["prefix"]
    assert "Tiles © Esri" in report["attribution"]
    assert report["marker"] == 1


async def test_the_map_page_is_framable_only_by_the_allowed_origins_and_leaflet_is_ours(served):
    service, host, _ = served
    async with aiohttp.ClientSession() as session:
        async with session.get(service + "/embed/satellite/map") as response:
            csp = response.headers["Content-Security-Policy"]
        async with session.get(f"{service}{LEAFLET_PATH}/leaflet.js") as leaflet_js:
            script = await leaflet_js.read()
            headers = leaflet_js.headers
        async with session.get(f"{service}{LEAFLET_PATH}/../../../etc/passwd") as escape:
            escaped = escape.status

    assert csp == f"frame-ancestors {host}"
    assert headers["Content-Type"].startswith("text/javascript") and b"Leaflet" in script[:300]
    assert "immutable" in headers["Cache-Control"]
    assert escaped == 404
