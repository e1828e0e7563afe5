"""The prices box in Debian's Chromium, in a news site's sidebar column 300 px and 280 px wide, light
and dark: nothing wider than the column, each item's name on one line, and a box with the default
items far shorter than the 917 px it used to take."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, Page

from service.settings import WidgetSettings
from service.web.app import create_app
from service.widgets.prices import DEFAULT_ITEMS
from tests.support.browser import BROWSER_LOOP, start_host_page
from tests.support.clock import FakeClock
from tests.support.fed_service import fed_settings
from tests.support.upstream import FakeUpstream, fake_upstream

pytest_plugins = ["tests.support.browser_plugin"]
pytestmark = BROWSER_LOOP

#: The embed page's height at 300 px with the default items before names got short and the unit
#: moved to the column head (the gallery's iframe snippet said 917).
OLD_EMBED_HEIGHT = 917

#: A Persian news site's sidebar: its own font and a generous line height, which the box must not
#: inherit into wrapping. The fragment is included server-side, the embed page framed below it.
HOST_PAGE = """<!DOCTYPE html>
<html lang="fa" dir="rtl"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>host</title>
<style>
body {{ margin: 0; font: 16px/2 Tahoma, sans-serif; }}
.column {{ width: {width}px; }}
iframe {{ display: block; width: 100%; height: 1000px; border: 0; margin-top: 16px; }}
</style></head>
<body><aside class="column">
{fragment}
<iframe id="embed" title="prices" src="{embed}"></iframe>
</aside></body></html>
"""

#: What fitting means, measured on one box: the box, every row and every cell no wider than what
#: holds it, and each item's name on one line (its lines' extent about one line-height).
MEASURE = """
(box) => {
  const outer = box.getBoundingClientRect();
  const rows = [...box.querySelectorAll('tr[data-key]')].map((row) => {
    const rect = row.getBoundingClientRect();
    const name = row.querySelector('.sw-name');
    const lines = [...name.getClientRects()];
    return {
      key: row.dataset.key,
      name: name.textContent,
      scroll: row.scrollWidth,
      client: row.clientWidth,
      inside: rect.left >= outer.left && rect.right <= outer.right,
      cells: [...row.cells].filter((cell) => cell.scrollWidth > cell.clientWidth).length,
      nameHeight: Math.max(...lines.map((r) => r.bottom)) - Math.min(...lines.map((r) => r.top)),
      lineHeight: parseFloat(getComputedStyle(name).lineHeight),
    };
  });
  return {
    column: box.parentElement.getBoundingClientRect().width,
    width: outer.width,
    scroll: box.scrollWidth,
    client: box.clientWidth,
    rows,
  };
}
"""


@pytest_asyncio.fixture(loop_scope="session")
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as fake:
        yield fake


@pytest_asyncio.fixture(loop_scope="session")
async def service(upstream: FakeUpstream, clock: FakeClock) -> AsyncIterator[TestClient[Any, Any]]:
    """The fed service showing the prices box with its default items, its first fetch done."""
    settings = fed_settings(upstream, now=clock.time())
    settings.widgets["prices"] = WidgetSettings()  # the default items, not fed_settings' three
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings, clock=clock)))
    await client.start_server()
    assert (await client.get("/widgets/prices.json")).status == 200
    yield client
    await client.close()


async def open_in_column(browser: Browser, service: TestClient[Any, Any], width: int, query: str) -> Page:
    """A host page whose sidebar column is ``width`` px wide, holding the fragment and the embed."""
    fragment = await (await service.get(f"/widgets/prices.html?{query}")).text()
    embed = str(service.make_url(f"/embed/prices?{query}"))
    host = await start_host_page(HOST_PAGE.format(width=width, fragment=fragment, embed=embed))
    context = await browser.new_context(viewport={"width": 800, "height": 1400}, device_scale_factor=2)
    tab = await context.new_page()
    try:
        await tab.goto(str(host.make_url("/")))
        await tab.frame_locator("#embed").locator(".sw-widget").wait_for()
    finally:
        await host.close()  # the page is loaded: nothing more is asked of the host
    return tab


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", [300, 280])
async def test_the_default_box_fits_the_column_with_one_line_per_item(
    service, browser, tmp_path: Path, width: int, theme: str
):
    tab = await open_in_column(browser, service, width, f"theme={theme}")

    included = await tab.locator("aside > .sw-widget").evaluate(MEASURE)
    framed = await tab.frame_locator("#embed").locator(".sw-widget").evaluate(MEASURE)
    shot = tmp_path / f"prices-{width}-{theme}.png"
    await tab.locator("aside").screenshot(path=str(shot))

    assert shot.stat().st_size > 0
    for how, box in (("included", included), ("framed", framed)):
        assert box["width"] <= box["column"] == width, (how, box["width"])
        assert box["scroll"] <= box["client"], (how, "the box overflows", box["scroll"], box["client"])
        assert [row["key"] for row in box["rows"]] == list(DEFAULT_ITEMS)
        for row in box["rows"]:
            assert row["scroll"] <= row["client"] and row["inside"], (how, row)
            assert row["cells"] == 0, (how, "a cell's content is cut", row)
            assert row["nameHeight"] < 1.5 * row["lineHeight"], (how, "a name wraps", row)


async def test_the_default_embed_page_is_far_shorter_than_it_was(service, browser):
    tab = await open_in_column(browser, service, 300, "")

    # The body's own height: the document's is never less than the frame it is in.
    height = (
        await tab.frame_locator("#embed")
        .locator("body")
        .evaluate("(body) => Math.ceil(body.getBoundingClientRect().height)")
    )

    assert height < 0.7 * OLD_EMBED_HEIGHT, height


TICKER_BOX = """
(box) => ({
  height: box.getBoundingClientRect().height,
  scroll: box.scrollWidth,
  client: box.clientWidth,
  line: parseFloat(getComputedStyle(box.querySelector('.sw-ticker')).lineHeight),
})
"""


@pytest.mark.parametrize("width", [300, 280])
async def test_the_ticker_is_one_line_in_the_column(service, browser, width: int):
    tab = await open_in_column(browser, service, width, "layout=ticker")

    included = await tab.locator("aside > .sw-widget").evaluate(TICKER_BOX)

    # One line of text inside the box's padding and border: no title line above it, no footer below.
    assert included["height"] < 2 * included["line"], included
    assert included["scroll"] <= included["client"], included
