"""The ticker and sparklines in Debian's Chromium: one moving line that stops on hover and for
readers who ask for reduced motion, and sparkline rows that fit a 300 px column."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from service.history.sparkline import MIN_SPAN
from service.web.app import create_app
from tests.service.history.test_price_history import refresh_at, serve_dollar_at, settings
from tests.support.browser import BROWSER_LOOP
from tests.support.upstream import FakeUpstream, fake_upstream

pytest_plugins = ["tests.support.browser_plugin"]
pytestmark = BROWSER_LOOP

TICKER = """
() => {
  const box = document.querySelector('.sw-ticker');
  const track = box.querySelector('.sw-ticker-track');
  const style = getComputedStyle(track);
  return {
    animation: style.animationName,
    state: style.animationPlayState,
    x: track.getBoundingClientRect().x,
    overflowX: getComputedStyle(box).overflowX,
    boxHeight: box.getBoundingClientRect().height,
    boxWidth: box.clientWidth,
    trackWidth: track.scrollWidth,
  };
}
"""


@pytest_asyncio.fixture(loop_scope="session")
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as fake:
        yield fake


@pytest_asyncio.fixture(loop_scope="session")
async def prices_client(upstream, clock) -> AsyncIterator[TestClient]:
    """The service with the dollar at 1,050,000 Rial, its first refresh done, on the fake clock."""
    serve_dollar_at(upstream, 1_050_000)
    client = TestClient(TestServer(create_app(settings(upstream), clock=clock)))
    await client.start_server()
    await client.get("/widgets/prices.json")
    yield client
    await client.close()


FITS = """
() => {
  const widget = document.querySelector('.sw-widget');
  const svg = widget.querySelector('svg');
  const r = svg.getBoundingClientRect();
  return {
    overflow: widget.scrollWidth - widget.clientWidth,
    svg: [r.width, r.height],
    lines: widget.querySelectorAll('polyline').length,
  };
}
"""


async def test_the_ticker_moves_stops_on_hover_and_stays_still_for_reduced_motion(
    prices_client, upstream, clock, browser
):
    client = prices_client
    await refresh_at(client, clock, upstream, 1_052_000, after=MIN_SPAN)
    base = str(client.make_url("/"))

    context = await browser.new_context(viewport={"width": 300, "height": 400})
    tab = await context.new_page()

    await tab.goto(base + "embed/prices?layout=ticker")
    moving = await tab.evaluate(TICKER)
    # Until the line has moved at all; which way is asserted below.
    await tab.wait_for_function(
        "(x) => document.querySelector('.sw-ticker-track').getBoundingClientRect().x !== x",
        arg=moving["x"],
        timeout=30000,
    )
    later = await tab.evaluate(TICKER)
    await tab.hover(".sw-ticker")
    hovered = await tab.evaluate(TICKER)
    await tab.emulate_media(reduced_motion="reduce")
    await tab.mouse.move(0, 390)
    still = await tab.evaluate(TICKER)
    await tab.goto(base + "embed/prices?chart=sparkline")
    sparkline = await tab.evaluate(FITS)
    await context.close()

    assert moving["animation"] == "sw-prices-ticker" and moving["state"] == "running"
    assert later["x"] > moving["x"], "the line runs left to right"
    assert moving["trackWidth"] > 2 * moving["boxWidth"] and moving["boxHeight"] < 40  # one line
    assert hovered["state"] == "paused"
    assert still["animation"] == "none" and still["overflowX"] == "auto"
    # Each line spans its item's row, in a 300 px column, without pushing anything out of the box.
    assert sparkline["lines"] == 14 and sparkline["svg"][0] > 150 and sparkline["svg"][1] == 18
    assert sparkline["overflow"] <= 0


async def test_a_keyboard_reader_can_reach_the_ticker_to_stop_it_or_scroll_it(prices_client, browser):
    base = str(prices_client.make_url("/"))

    context = await browser.new_context(viewport={"width": 300, "height": 400})
    tab = await context.new_page()
    await tab.goto(base + "embed/prices?layout=ticker")
    # Hover is not for everyone: without a mouse, moving text must still be stoppable, and
    # under reduced motion the line is scrolled by hand, which takes focus too.
    await tab.keyboard.press("Tab")
    focused = await tab.evaluate(
        "() => ({cls: document.activeElement.className,"
        " name: document.activeElement.getAttribute('aria-label')})"
    )
    stopped = await tab.evaluate(TICKER)
    await context.close()

    assert focused["cls"] == "sw-ticker" and focused["name"]
    assert stopped["state"] == "paused"
