"""Embeds as a webmaster pastes them from the gallery, with no ``public_url`` configured.

The service is reached at ``127.0.0.1``, the host page at ``localhost`` (another origin), which
answers only its own page: a URL in an embed that resolved against the host would be a 404 there.
The service runs at the moment the weather fixtures were captured, whatever the day: the boxes
show the same data, and so the same heights, on every run.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, FrameLocator, Locator, Page

from service.settings import Settings
from service.web.app import create_app
from tests.support.air import openmeteo_air_document
from tests.support.browser import BROWSER_LOOP
from tests.support.clock import FakeClock
from tests.support.feed import FEED_PATH, RSS, feed_text, serve_feed
from tests.support.prices import serve_tgju
from tests.support.redis_server import free_port
from tests.support.tiles import FakeTiles
from tests.support.upstream import FakeUpstream, fake_upstream
from tests.support.waiting import eventually
from tests.support.weather import OPENMETEO_CAPTURED, openmeteo_document

pytest_plugins = ["tests.support.browser_plugin"]
pytestmark = BROWSER_LOOP

WIDGETS = ("weather", "air", "prices", "satellite", "prayer", "date", "links", "news")


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
    upstream.json("/v1/forecast", openmeteo_document(OPENMETEO_CAPTURED))  # dated at the service's now
    upstream.json("/v1/air-quality", openmeteo_air_document(OPENMETEO_CAPTURED))
    serve_feed(upstream, feed_text(RSS, OPENMETEO_CAPTURED))
    tiles = FakeTiles(upstream)
    port = free_port()
    settings = Settings(
        engine={"background": False},
        widgets={"news": {"enabled": True}},
        providers={
            "tgju": {"url": upstream.url("")},
            "openmeteo": {"url": upstream.url("")},
            "metno": {"url": upstream.url("")},
            "openmeteo_air": {"url": upstream.url("")},
            "tiles": {"url": tiles.template},
            "feed": {"url": upstream.url(FEED_PATH)},
        },
    )
    assert settings.public_url == ""
    server = TestServer(
        create_app(settings, clock=FakeClock(OPENMETEO_CAPTURED)), host="127.0.0.1", port=port
    )
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


async def gallery_page(tab: Page, service: str) -> str:
    return await (await tab.request.get(service + "/")).text()


def codes_in(page: str) -> list[str]:
    return [html.unescape(code) for code in re.findall(r"<pre><code>(.*?)</code></pre>", page, re.S)]


async def gallery_snippets(tab: Page, service: str) -> dict[str, dict[str, str]]:
    """Each widget's snippets as the gallery shows them to copy."""
    text = await gallery_page(tab, service)
    found: dict[str, dict[str, str]] = {}
    for name, body in re.findall(r'<section class="gl-widget" id="(\w+)"[^>]*>(.*?)</section>', text, re.S):
        php, iframe, script = codes_in(body)
        found[name] = {"php": php, "iframe": iframe, "script": script}
    return found


async def all_boxes_snippet(tab: Page, service: str) -> str:
    section = re.search(
        r'<section class="gl-all" id="all-widgets".*?</section>', await gallery_page(tab, service), re.S
    )
    assert section is not None
    [code] = codes_in(section.group(0))
    return code


async def boxes_ready(tab: Page) -> None:
    await tab.wait_for_function(
        "() => [...document.querySelectorAll('[data-sidebar-widget]')]"
        ".every((d) => d.getAttribute('data-sidebar-widget-state') === 'ready')",
        timeout=30000,
    )


async def gaps_between_boxes(tab: Page) -> list[float]:
    return await tab.evaluate(
        "() => { const r = [...document.querySelectorAll('[data-sidebar-widget]')]"
        ".map((d) => d.getBoundingClientRect());"
        " return r.slice(1).map((below, i) => below.top - r[i].bottom); }"
    )


async def test_a_pasted_script_embed_shows_the_picture_and_links_without_public_url(service, host, tab):
    snippets = await gallery_snippets(tab, service)
    # Stacked in the column as a webmaster would paste them, one after another.
    divs = "\n".join(snippets[name]["script"].split("\n")[0] for name in WIDGETS)
    host.page = page_with(divs + f'\n<script async src="{service}/embed.js"></script>')

    await tab.goto(host.url)
    await boxes_ready(tab)
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

    assert picture == {"src": f"{service}/widgets/satellite.jpg", "width": 1020}
    assert links and all(link == f"{service}/embed/satellite/map" for link in links)
    assert host.asked == ["/"]  # nothing was looked for on the host page's origin
    assert await gaps_between_boxes(tab) == [16] * (len(WIDGETS) - 1)


async def test_the_all_boxes_snippet_pasted_as_given_stacks_every_box_16_px_apart(service, host, tab):
    code = await all_boxes_snippet(tab, service)
    assert code.count("<script") == 1
    host.page = page_with(code)

    await tab.goto(host.url)
    await boxes_ready(tab)

    shown = await tab.evaluate(
        "() => [...document.querySelectorAll('[data-sidebar-widget]')].map((d) => d.dataset.sidebarWidget)"
    )
    assert sorted(shown) == sorted(WIDGETS)  # in the gallery's order
    assert await gaps_between_boxes(tab) == [16] * (len(WIDGETS) - 1)


#: Counted in the page from its first script on: listeners for window's "message" events.
COUNT_MESSAGE_LISTENERS = """
window.messageListeners = 0;
const addListener = EventTarget.prototype.addEventListener;
EventTarget.prototype.addEventListener = function (type, ...rest) {
  if (this === window && type === "message") window.messageListeners++;
  return addListener.call(this, type, ...rest);
};
"""


async def test_script_snippets_pasted_one_after_another_run_embed_js_once_and_stand_16_px_apart(
    service, host, browser
):
    snippets = await gallery_snippets(await browser.new_page(), service)
    # Each box with its own <script>, as the gallery gives it, and one more copy loaded at once.
    pasted = "\n".join(snippets[name]["script"] for name in WIDGETS)
    host.page = page_with(pasted + f'\n<script src="{service}/embed.js?another-copy"></script>')
    context = await browser.new_context(viewport={"width": 800, "height": 3000})
    await context.add_init_script(COUNT_MESSAGE_LISTENERS)
    tab = await context.new_page()
    fetched: list[str] = []
    errors: list[str] = []
    tab.on("request", lambda r: fetched.append(r.url) if re.search(r"/widgets/\w+\.html", r.url) else None)
    tab.on("pageerror", lambda error: errors.append(str(error)))

    await tab.goto(host.url)
    await boxes_ready(tab)
    widgets_in_each_box = await tab.evaluate(
        "() => [...document.querySelectorAll('[data-sidebar-widget]')]"
        ".map((d) => d.shadowRoot.querySelectorAll('.sw-widget').length)"
    )

    scripts = await tab.evaluate("() => document.querySelectorAll('script[src*=\"embed.js\"]').length")
    assert scripts == len(WIDGETS) + 1
    assert widgets_in_each_box == [1] * len(WIDGETS)
    assert sorted(fetched) == sorted(f"{service}/widgets/{name}.html" for name in WIDGETS)
    assert await tab.evaluate("() => window.messageListeners") == 1
    assert await gaps_between_boxes(tab) == [16] * (len(WIDGETS) - 1)
    assert errors == []


def inside(tab: Page, src: str) -> FrameLocator:
    """The page in the iframe of a snippet pasted as given: the frame is found by its src alone."""
    return tab.frame_locator(f'iframe[src="{src}"]')


async def loaded(tab: Page, src: str) -> None:
    page = inside(tab, src)
    await page.locator(".sw-widget").wait_for(timeout=30000)
    await page.locator("html").evaluate(
        "() => Promise.all([...document.images].map((i) => i.complete ? 0 :"
        " new Promise((done) => { i.onload = i.onerror = done; })))"
    )


@dataclass(frozen=True)
class Fit:
    content: int  # the widget's height: the body's (the document's is never less than its frame)
    frame: float
    cut_off: bool  # some of the widget out of the frame's sight, below or beside


CONTENT = """
() => ({
  height: Math.ceil(document.body.getBoundingClientRect().height),
  cutOff: document.documentElement.scrollHeight > innerHeight
    || document.documentElement.scrollWidth > innerWidth,
})
"""


async def fit(tab: Page, src: str) -> Fit:
    content = await inside(tab, src).locator("html").evaluate(CONTENT)
    frame = await tab.locator(f'iframe[src="{src}"]').evaluate("(f) => f.getBoundingClientRect().height")
    return Fit(content["height"], frame, content["cutOff"])


async def frame_becomes(tab: Page, src: str, wanted: Callable[[Fit], bool]) -> Fit:
    """The frame's fit once ``wanted`` holds: its page reports and embed.js resizes asynchronously."""
    seen: list[Fit] = []

    async def holds() -> Fit | None:
        seen.append(await fit(tab, src))
        return seen[-1] if wanted(seen[-1]) else None

    return await eventually(holds, message=lambda: f"{src}: last {seen[-1:]}")


def exactly_fitted(found: Fit) -> bool:
    return found.frame == found.content and not found.cut_off


async def test_an_iframe_snippet_pasted_as_given_is_sized_to_its_content_and_follows_it(service, host, tab):
    snippets = await gallery_snippets(tab, service)
    assert all(snippets[name]["iframe"].count("embed.js") == 1 for name in WIDGETS)
    host.page = page_with("\n".join(snippets[name]["iframe"] for name in WIDGETS))
    prayer, links = f"{service}/embed/prayer", f"{service}/embed/links"

    await tab.goto(host.url)
    fitted = {}
    for name in WIDGETS:
        await loaded(tab, f"{service}/embed/{name}")
        fitted[name] = await frame_becomes(tab, f"{service}/embed/{name}", exactly_fitted)
    main = inside(tab, prayer).locator("main")
    # Another day's data is taller: the frame follows it, and shrinks back with it.
    await main.evaluate(
        "(m) => m.insertAdjacentHTML('beforeend', '<p id=\"more\" style=\"height:150px\"></p>')"
    )
    taller = await frame_becomes(
        tab, prayer, lambda found: exactly_fitted(found) and found.content > fitted["prayer"].content
    )
    links_meanwhile = await fit(tab, links)
    await main.evaluate("(m) => m.querySelector('#more').remove()")
    back = await frame_becomes(tab, prayer, lambda found: found.frame < taller.frame)

    assert all(found.content > 100 for found in fitted.values()), fitted
    assert taller.content >= fitted["prayer"].content + 150
    assert back == fitted["prayer"]
    assert links_meanwhile == fitted["links"]  # each frame is sized by its own page alone


async def test_frames_that_loaded_before_embed_js_are_sized_when_it_comes(service, host, tab):
    snippets = await gallery_snippets(tab, service)
    frames = [snippets[name]["iframe"].split("\n")[0] for name in ("prayer", "date")]
    host.page = page_with("\n".join(frames))
    await tab.goto(host.url)
    for name in ("prayer", "date"):
        await loaded(tab, f"{service}/embed/{name}")  # its height told to a page with nobody listening
    defaults = [await fit(tab, f"{service}/embed/{name}") for name in ("prayer", "date")]

    await tab.add_script_tag(url=f"{service}/embed.js")

    for name in ("prayer", "date"):
        await frame_becomes(tab, f"{service}/embed/{name}", exactly_fitted)
    assert all(found.frame != found.content for found in defaults)  # the defaults had room to spare


@pytest.mark.parametrize("theme", ["light", "dark"])
async def test_the_gallery_iframe_snippets_fit_each_widget_without_any_script(service, host, tab, theme):
    snippets = await gallery_snippets(tab, service)
    assert set(snippets) == set(WIDGETS)
    # Each frame as pasted where scripts are stripped: nothing resizes the frames.
    frames = "\n".join(
        snippets[name]["iframe"].split("\n")[0].replace(f'/embed/{name}"', f'/embed/{name}?theme={theme}"')
        for name in WIDGETS
    )
    assert "<script" not in frames
    host.page = page_with(frames)

    await tab.goto(host.url)
    measured = {}
    for name in WIDGETS:
        src = f"{service}/embed/{name}?theme={theme}"
        await loaded(tab, src)
        measured[name] = await fit(tab, src)

    for name, found in measured.items():
        # Tall enough to show it all, without a band of empty frame below.
        assert not found.cut_off and found.content <= found.frame <= found.content + 48, (name, found)


#: Counted in the page: every message window gets (one event's listeners all run in one task: once
#: a message is counted, embed.js has handled it), and every height set on a frame, in order.
RECORD_MESSAGES_AND_HEIGHTS = """
window.messages = 0;
window.heights = [];
addEventListener("message", () => { window.messages++; });
new MutationObserver((records) => records.forEach((r) => window.heights.push(
  [r.target.id || r.target.getAttribute("src"), r.target.style.height]))
).observe(document, {subtree: true, attributes: true, attributeFilter: ["style"]});
"""


async def start_page_at(host_name: str, page: str) -> TestServer:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", answer)
    server = TestServer(app, host=host_name, port=free_port())
    await server.start_server()
    return server


async def test_only_the_services_own_frame_resizes_itself_within_bounds_and_junk_breaks_nothing(
    service, host, browser
):
    # A frame from another origin on the same host name: only the port differs from the service's.
    foreign = await start_page_at("127.0.0.1", "<!DOCTYPE html><title>other</title><p>other</p>")
    snippets = await gallery_snippets(await browser.new_page(), service)
    host.page = page_with(
        snippets["prayer"]["iframe"]
        + f'\n<iframe id="foreign" src="{foreign.make_url("/")}" width="300" height="100"></iframe>'
        + '\n<iframe id="opaque" src="data:text/html,<title>opaque</title>" width="300" height="100">'
        "</iframe>"
    )
    prayer = f"{service}/embed/prayer"
    context = await browser.new_context(viewport={"width": 800, "height": 3000})
    await context.add_init_script(RECORD_MESSAGES_AND_HEIGHTS)
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))

    async def post(sender: Locator, message: object) -> list[list[str]]:
        """``message`` posted to the host page from ``sender``: the heights set on frames since."""
        count, before = await tab.evaluate("() => [window.messages, window.heights.length]")
        await sender.evaluate("(_, m) => parent.postMessage(m, '*')", message)
        await tab.wait_for_function("(n) => window.messages > n", arg=count, timeout=30000)
        return await tab.evaluate("(n) => window.heights.slice(n)", before)

    try:
        await tab.goto(host.url)
        await loaded(tab, prayer)
        fitted = await frame_becomes(tab, prayer, exactly_fitted)
        own = inside(tab, prayer).locator("html")
        resize = {"sidebarWidget": "prayer", "height": 900}
        # From other origins: the foreign frame, an opaque one (origin "null"), the host page itself.
        from_others = [
            await post(tab.frame_locator("#foreign").locator("html"), resize),
            await post(tab.frame_locator("#opaque").locator("html"), resize),
            await post(tab.locator("html"), resize),
        ]
        junk = [None, 5, "height", [], {}, {"height": 900}, {"sidebarWidget": "prayer"}]
        junk += [{"sidebarWidget": "prayer", "height": value} for value in ("900", None, float("nan"))]
        junk += [{"sidebarWidget": "prayer", "height": float("inf")}]
        from_junk = [await post(own, message) for message in junk]
        # Absurd heights from the service's own frame are held to a sane range.
        too_tall = await post(own, {"sidebarWidget": "prayer", "height": 1e9})
        too_short = await post(own, {"sidebarWidget": "prayer", "height": -5})
        after = await fit(tab, prayer)
    finally:
        await context.close()
        await foreign.close()

    assert from_others == [[], [], []] and from_junk == [[]] * len(junk)
    assert too_tall[:1] == [[prayer, "4000px"]] and too_short[:1] == [[prayer, "40px"]]
    assert fitted.frame > 40 and after.content == fitted.content
    assert errors == []


async def test_the_satellite_box_shows_its_attribution_once_on_the_picture(service, tab):
    fragment = await (await tab.request.get(f"{service}/widgets/satellite.html")).text()
    await tab.goto(f"{service}/embed/satellite")
    await tab.wait_for_function("() => document.querySelector('.sw-picture').complete", timeout=30000)
    shown = await tab.evaluate(
        "() => { const credit = document.querySelector('.sw-attribution').getBoundingClientRect();"
        " const picture = document.querySelector('.sw-picture');"
        " return {credit: [credit.width, credit.height], picture: picture.naturalWidth}; }"
    )

    assert fragment.count("Tiles © Esri") == 1  # in the fragment's text once, for screen readers
    assert shown["picture"] == 1020  # the picture, whose bottom band carries the credit for the eye
    assert shown["credit"][0] <= 1 and shown["credit"][1] <= 1, shown  # not printed again under it
