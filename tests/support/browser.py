"""A real Chromium for browser tests: Debian's package, installed by the test setup if missing.

Never a browser downloader: Playwright drives the system Chromium through ``executable_path``.
"""

from __future__ import annotations

import shutil

from aiohttp import web
from aiohttp.test_utils import TestServer

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


def chromium_executable() -> str:
    """Debian's chromium, installed with apt-get when absent; raises with the reason otherwise."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or program("chromium")


async def start_host_page(html: str) -> TestServer:
    """A news site's page, served from ``localhost``: another origin than the service's 127.0.0.1."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    server = TestServer(app, host="localhost", port=free_port())
    await server.start_server()
    return server
