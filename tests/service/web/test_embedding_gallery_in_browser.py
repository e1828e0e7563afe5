"""The gallery's copy buttons in a real browser, where the clipboard works and where it does not.

``navigator.clipboard`` exists only in a secure context: a gallery reached over plain http at a
name other than localhost has none. The browser here reaches the service at 127.0.0.1 (a secure
context), so each test sets up the clipboard it is about: missing, refusing, or working.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from service.settings import Settings
from service.web.app import create_app
from service.widgets import BUILTIN_WIDGETS
from tests.support.browser import BROWSER_LOOP
from tests.support.redis_server import free_port

pytest_plugins = ["tests.support.browser_plugin"]
pytestmark = BROWSER_LOOP

#: The links box alone: its data needs no upstream.
ONLY_LINKS = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "links"}

NO_CLIPBOARD = """
Object.defineProperty(Navigator.prototype, "clipboard", {get() { return undefined; }, configurable: true});
"""
REFUSING_CLIPBOARD = """
Object.defineProperty(Navigator.prototype, "clipboard", {configurable: true, get() {
  return {writeText: () => Promise.reject(new DOMException("denied", "NotAllowedError"))};
}});
"""
#: A clipboard that works, and keeps what was written for the test to read.
WORKING_CLIPBOARD = """
window.copied = [];
Object.defineProperty(Navigator.prototype, "clipboard", {configurable: true, get() {
  return {writeText: (text) => { window.copied.push(text); return Promise.resolve(); }};
}});
"""


@pytest_asyncio.fixture(loop_scope="session")
async def gallery_url() -> AsyncIterator[str]:
    settings = Settings(engine={"background": False}, widgets=ONLY_LINKS)
    server = TestServer(create_app(settings), host="127.0.0.1", port=free_port())
    await server.start_server()
    yield str(server.make_url("/"))
    await server.close()


async def gallery_with(browser: Browser, url: str, clipboard: str) -> tuple[Page, list[str]]:
    context = await browser.new_context()
    await context.add_init_script(clipboard)
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    await tab.goto(url)
    return tab, errors


#: Something came of the click: a selection, or a status said.
ANSWERED = (
    "() => getSelection().toString() !== ''"
    " || [...document.querySelectorAll('[role=status]')].some((s) => s.textContent !== '')"
)


async def copy_the_iframe_snippet(tab: Page) -> dict[str, str]:
    """Click the iframe snippet's copy button; what the snippet says, what is selected, the status."""
    code = tab.locator("pre", has_text="<iframe ")
    button = code.locator("xpath=following-sibling::button[1]")
    await button.click()
    await tab.wait_for_function(ANSWERED, timeout=30000)
    status = button.locator("xpath=following-sibling::*[@role='status'][1]")
    return {
        "code": await code.text_content() or "",
        "selected": await tab.evaluate("() => getSelection().toString()"),
        "status": await status.text_content() or "",
    }


async def test_without_a_clipboard_the_copy_button_selects_the_snippet_and_says_so(browser, gallery_url):
    tab, errors = await gallery_with(browser, gallery_url, NO_CLIPBOARD)
    assert await tab.evaluate("() => navigator.clipboard") is None

    copied = await copy_the_iframe_snippet(tab)

    assert copied["code"].startswith("<iframe ") and copied["selected"] == copied["code"]
    assert "انتخاب شد" in copied["status"] and "Ctrl+C" in copied["status"]
    assert errors == []


async def test_when_the_clipboard_refuses_the_copy_button_selects_the_snippet(browser, gallery_url):
    tab, errors = await gallery_with(browser, gallery_url, REFUSING_CLIPBOARD)

    copied = await copy_the_iframe_snippet(tab)

    assert copied["selected"] == copied["code"] and "انتخاب شد" in copied["status"]
    assert errors == []


async def test_with_a_clipboard_the_copy_button_copies_the_snippet(browser, gallery_url):
    tab, errors = await gallery_with(browser, gallery_url, WORKING_CLIPBOARD)

    copied = await copy_the_iframe_snippet(tab)

    assert await tab.evaluate("() => window.copied") == [copied["code"]]
    assert copied["status"] == "کپی شد." and copied["selected"] == ""
    assert errors == []
