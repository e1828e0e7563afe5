"""The ``browser`` fixture: the run's one Chromium (see ``tests.support.browser``).

Loaded by a module of browser tests with ``pytest_plugins = ["tests.support.browser_plugin"]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from playwright.async_api import Browser

from tests.support.browser import SharedChromium


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared_chromium() -> AsyncIterator[SharedChromium]:
    chromium = SharedChromium()
    yield chromium
    await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser(shared_chromium: SharedChromium) -> AsyncIterator[Browser]:
    """The shared Chromium; open pages with ``browser.new_context()`` (or ``new_page()``, which
    makes a context of its own). Whatever the test left open is closed after it."""
    chromium = await shared_chromium.browser()
    yield chromium
    for context in list(chromium.contexts):
        await context.close()
