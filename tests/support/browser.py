"""A real Chromium for browser tests: Debian's package, installed by the test setup if missing.

Never a browser downloader: Playwright drives the system Chromium through ``executable_path``.

One Chromium (and one Playwright driver) serves the whole run: starting them costs about a second,
paid once instead of in every browser test. Each test still gets a browser of its own in effect:
it opens its pages in contexts of its own (no cookies, storage or HTTP cache shared), and every
context a test leaves open is closed when it ends. A browser that crashed is started again.

Playwright's objects belong to the event loop they were made on, so the browser tests run on the
session's loop. A module of them loads ``tests.support.browser_plugin`` (``pytest_plugins``) for
the ``browser`` fixture, sets ``pytestmark = BROWSER_LOOP``, and declares its async fixtures with
``loop_scope="session"``, ``upstream`` too (``tests.support.upstream.fake_upstream``): a fixture
on another loop would not be running while the test waits on it.
"""

from __future__ import annotations

import shutil

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Playwright, async_playwright

from tests.support.debian import program
from tests.support.redis_server import free_port

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these, Chromium keeps trying to reach Google's hosts on a closed network.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: ``pytestmark`` of a module of browser tests: they run where the shared browser lives.
BROWSER_LOOP = pytest.mark.asyncio(loop_scope="session")


def chromium_executable() -> str:
    """Debian's chromium, installed with apt-get when absent; raises with the reason otherwise."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or program("chromium")


class SharedChromium:
    """The run's one Chromium, started on first use and again if it is gone."""

    def __init__(self) -> None:
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    async def browser(self) -> Browser:
        if self._browser is None or not self._browser.is_connected():
            if self._playwright is None:
                self._playwright = await async_playwright().start()
            self._browser = await self._playwright.chromium.launch(
                executable_path=chromium_executable(), args=CHROMIUM_ARGS
            )
        return self._browser

    async def close(self) -> None:
        if self._browser is not None and self._browser.is_connected():
            await self._browser.close()
        if self._playwright is not None:
            await self._playwright.stop()
        self._browser = self._playwright = None


async def start_host_page(html: str) -> TestServer:
    """A news site's page, served from ``localhost``: another origin than the service's 127.0.0.1."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    server = TestServer(app, host="localhost", port=free_port())
    await server.start_server()
    return server
