"""Every widget embedded in a real browser, by script and by iframe, on a hostile host page.

The host page is served from another origin (``localhost`` vs ``127.0.0.1``), sets
``* { color: red !important; font-size: 40px !important }`` and a 300 px column; the service's
upstreams are local fakes. Screenshots (light and dark) land in the test's temporary folder.
axe-core checks the gallery, every embed page and a plain host page of script embeds against
WCAG 2.1 AA, light and dark.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from importlib.resources import files

import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from service.web.app import create_app
from service.web.keys import METRICS
from tests.support.browser import BROWSER_LOOP, start_host_page
from tests.support.clock import FakeClock
from tests.support.fed_service import fed_settings
from tests.support.redis_server import free_port
from tests.support.upstream import FakeUpstream, fake_upstream
from tests.support.validators import WCAG21AA, axe_source
from tests.support.weather import OPENMETEO_CAPTURED

pytest_plugins = ["tests.support.browser_plugin"]
pytestmark = BROWSER_LOOP

WIDGETS = ("weather", "air", "prices", "satellite", "prayer", "date", "links", "news")
EXPECTED_TEXT = {
    "weather": ["وضع هوای فامنین", "برف", "پنج‌شنبه"],
    "air": ["کیفیت هوای فامنین", "ناسالم برای گروه‌های حساس", "۱۱۸"],
    "prices": ["دلار", "۱۰۵٬۲۳۰", "سکه امامی"],
    "satellite": ["عکس ماهواره‌ای شهرستان فامنین", "Tiles © Esri"],
    "prayer": ["اوقات شرعی به افق فامنین", "اذان بعدی", "نیمه‌شب"],
    "date": ["امروز", "۱۴"],  # the Jalali year, in Persian digits
    "links": ["فرمانداری فامنین", "بازی قیام مختار"],
    "news": ["آخرین اخبار", "زاخارووا", "لحظاتی پیش", "دیروز"],
}

HOST_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>host</title>
<style>
* {{ color: red !important; font-size: 40px !important; font-family: serif !important; }}
.column {{ width: 300px; }}
iframe {{ border: 0; display: block; }}
</style></head>
<body><div class="column">
{scripts}
{frames}
</div>
<script async src="{service}/embed.js"></script>
</body></html>
"""


@pytest_asyncio.fixture(loop_scope="session")
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as fake:
        yield fake


@pytest_asyncio.fixture(loop_scope="session")
async def service_url(upstream) -> AsyncIterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The service runs at the moment the weather fixtures were captured, on any day: the boxes then
    # show the same days and weekdays whenever the suite runs.
    settings = fed_settings(upstream, public_url=url, now=OPENMETEO_CAPTURED)
    server = TestServer(
        create_app(settings, clock=FakeClock(OPENMETEO_CAPTURED)), host="127.0.0.1", port=port
    )
    await server.start_server()
    yield url
    await server.close()


@pytest_asyncio.fixture(loop_scope="session")
async def host_url(service_url) -> AsyncIterator[str]:
    scripts = "\n".join(
        f'<div data-sidebar-widget="{name}" data-theme="auto">fallback {name}</div>' for name in WIDGETS
    )
    frames = "\n".join(
        f'<iframe id="frame-{name}" src="{service_url}/embed/{name}?theme=auto" width="300" height="700">'
        "</iframe>"
        for name in WIDGETS
    )
    page = HOST_PAGE.format(scripts=scripts, frames=frames, service=service_url)

    server = await start_host_page(page)
    yield str(server.make_url("/"))
    await server.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(host_url, browser: Browser) -> AsyncIterator[tuple[Page, list[str]]]:
    context = await browser.new_context(viewport={"width": 1000, "height": 6000})
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    await tab.goto(host_url)
    yield tab, errors
    await context.close()


#: Whether an element is inside a box hidden from the eye, for screen readers alone (1 px and
#: clipped): text there may run past the column unseen.
UNSEEN = """
const unseen = (el) => {
  for (let box = el; box; box = box.parentElement) {
    const r = box.getBoundingClientRect();
    if (r.width <= 1 && r.height <= 1 && getComputedStyle(box).overflow === 'hidden') return true;
  }
  return false;
};
"""

SHADOW_REPORT = """
(div) => {
  const root = div.shadowRoot;
  const widget = root.querySelector('.sw-widget');
  const style = getComputedStyle(widget);
  const host = div.getBoundingClientRect();
  let widest = 0;
  UNSEEN
  for (const el of root.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if ((r.width === 0 && r.height === 0) || unseen(el)) continue;
    widest = Math.max(widest, r.right - host.left, host.right - r.left);
  }
  const cell = root.querySelector('th, td, li, a, .sw-temp') || widget;
  return {
    text: root.textContent,
    color: style.color,
    background: style.backgroundColor,
    fontSize: style.fontSize,
    innerColor: getComputedStyle(cell).color,
    innerFontSize: getComputedStyle(cell).fontSize,
    hostWidth: host.width,
    widest: widest,
    overflow: widget.scrollWidth - widget.clientWidth,
    images: Array.from(root.querySelectorAll('img')).map((img) => img.complete ? img.naturalWidth : -1),
    latinLines: Array.from(root.querySelectorAll('.sw-latin')).map((el) => el.getClientRects().length),
  };
}
""".replace("UNSEEN", UNSEEN)

FRAME_REPORT = """
() => { UNSEEN return {
  text: document.body.textContent,
  width: document.documentElement.scrollWidth,
  widest: Math.max(...Array.from(document.querySelectorAll('body *')).filter((el) => !unseen(el))
    .map((el) => el.getBoundingClientRect().right)),
  color: getComputedStyle(document.querySelector('.sw-widget')).color,
  background: getComputedStyle(document.querySelector('.sw-widget')).backgroundColor,
}; }
""".replace("UNSEEN", UNSEEN)


async def test_every_widget_renders_by_script_and_by_iframe_on_a_hostile_page(page, tmp_path):
    tab, errors = page
    await tab.wait_for_function(
        "() => [...document.querySelectorAll('[data-sidebar-widget]')]"
        ".every((d) => d.getAttribute('data-sidebar-widget-state') === 'ready')",
        timeout=30000,
    )
    await tab.wait_for_function(
        "() => [...document.querySelectorAll('[data-sidebar-widget]')].every((d) =>"
        " [...d.shadowRoot.querySelectorAll('img')].every((i) => i.complete && i.naturalWidth > 0))",
        timeout=30000,
    )

    for name in WIDGETS:
        report = await tab.eval_on_selector(f'[data-sidebar-widget="{name}"]', SHADOW_REPORT)
        for text in EXPECTED_TEXT[name]:
            assert text in report["text"], (name, text)
        # The host's hostile CSS stops at the shadow boundary.
        assert report["color"] != "rgb(255, 0, 0)" and report["innerColor"] != "rgb(255, 0, 0)", name
        assert report["fontSize"] == "14px" and report["innerFontSize"] != "40px", name
        # Nothing wider than the 300 px column.
        assert report["hostWidth"] <= 300 and report["widest"] <= 301 and report["overflow"] <= 0, (
            name,
            report,
        )
        if name == "satellite":
            assert report["images"] == [1020]
        # A Latin name in a Persian credit ("Open-Meteo.com (CC BY 4.0)") is never cut across lines.
        assert all(lines == 1 for lines in report["latinLines"]), (name, report["latinLines"])
        if name == "weather":
            assert report["latinLines"], "the weather credit names its source in Latin letters"

        frame = tab.frame_locator(f"#frame-{name}")
        await frame.locator(".sw-widget").wait_for(timeout=30000)
        frame_report = await frame.locator("html").evaluate(FRAME_REPORT)
        for text in EXPECTED_TEXT[name]:
            assert text in frame_report["text"], (name, "iframe", text)
        assert frame_report["width"] <= 300 and frame_report["widest"] <= 301, (name, frame_report)
        assert frame_report["color"] != "rgb(255, 0, 0)"

    await tab.screenshot(path=str(tmp_path / "embed-light.png"), full_page=True)
    await tab.emulate_media(color_scheme="dark")
    dark = await tab.eval_on_selector('[data-sidebar-widget="prices"]', SHADOW_REPORT)
    assert dark["background"] == "rgb(13, 17, 23)"  # theme=auto follows prefers-color-scheme
    await tab.screenshot(path=str(tmp_path / "embed-dark.png"), full_page=True)
    assert (tmp_path / "embed-light.png").stat().st_size > 0 and (
        tmp_path / "embed-dark.png"
    ).stat().st_size > 0
    print(f"screenshots: {tmp_path}")

    assert errors == []


SCRIPT_HOST_PAGE = """<!DOCTYPE html>
<html lang="fa" dir="rtl"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>خبرگزاری</title>
<style>
body {{ margin: 0; font-family: sans-serif; background: #fff; color: #1f2328; }}
@media (prefers-color-scheme: dark) {{ body {{ background: #010409; color: #e6edf3; }} }}
aside {{ width: 300px; }}
</style></head>
<body><main><h1>خبرگزاری</h1>
<aside><h2>ستون کناری</h2>
{scripts}
</aside></main>
<script async src="{service}/embed.js"></script>
</body></html>
"""

#: axe-core's WCAG 2.1 A and AA rules over the document, open shadow roots included.
AXE_RUN = """
async (tags) => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: tags}, iframes: false, resultTypes: ["violations"],
  });
  return result.violations.flatMap((v) => v.nodes.map((node) =>
    `${v.id} (${v.impact}): ${v.help}: ${JSON.stringify(node.target)} ${node.failureSummary}`));
}
"""

WIDGETS_READY = (
    "() => [...document.querySelectorAll('[data-sidebar-widget]')]"
    ".every((d) => d.getAttribute('data-sidebar-widget-state') === 'ready')"
)


@pytest_asyncio.fixture(loop_scope="session")
async def script_host_url(service_url) -> AsyncIterator[str]:
    """A plain news page (its own colours pass) with every widget embedded by script."""
    scripts = "\n".join(
        f'<div data-sidebar-widget="{name}" data-theme="auto" data-heading="3">{name}</div>'
        for name in WIDGETS
    )
    page = SCRIPT_HOST_PAGE.format(scripts=scripts, service=service_url)

    server = await start_host_page(page)
    yield str(server.make_url("/"))
    await server.close()


@pytest_asyncio.fixture(loop_scope="session")
async def axe_url() -> AsyncIterator[str]:
    """axe-core's script from a local server, kept by the browser's cache: loaded into page after
    page, it is sent and compiled once per context, not once per page."""
    axe = axe_source()

    async def script(request: web.Request) -> web.Response:
        return web.Response(
            text=axe, content_type="text/javascript", headers={"Cache-Control": "max-age=3600"}
        )

    app = web.Application()
    app.router.add_get("/axe.min.js", script)
    server = TestServer(app, host="localhost", port=free_port())
    await server.start_server()
    yield str(server.make_url("/axe.min.js"))
    await server.close()


async def test_the_gallery_embed_pages_and_script_embeds_meet_wcag_21_aa_light_and_dark(
    service_url, script_host_url, axe_url, browser
):
    pages = [
        f"{service_url}/",
        *(f"{service_url}/embed/{name}" for name in WIDGETS),
        f"{service_url}/embed/satellite/map",  # Leaflet is served by the service itself
    ]
    violations: list[str] = []
    console: list[str] = []
    failed: list[str] = []
    checked: list[str] = []

    async def check(tab: Page, label: str) -> None:
        await tab.add_script_tag(url=axe_url)
        violations.extend(f"{label}: {found}" for found in await tab.evaluate(AXE_RUN, WCAG21AA))
        checked.append(label)

    async def check_all(scheme: str) -> None:
        # axe is the test's own script: the pages' policy (scripts from the service only) would block it.
        context = await browser.new_context(
            color_scheme=scheme, viewport={"width": 1000, "height": 900}, bypass_csp=True
        )
        tab = await context.new_page()
        tab.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        tab.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        for url in pages:
            await tab.goto(f"{url}?theme={scheme}", wait_until="load")
            await check(tab, f"{url}?theme={scheme}")
        await tab.goto(script_host_url, wait_until="load")
        await tab.wait_for_function(WIDGETS_READY, timeout=30000)
        await check(tab, f"script embeds, {scheme}")
        await context.close()

    # Light and dark in two contexts of their own, side by side.
    async with asyncio.TaskGroup() as both:
        both.create_task(check_all("light"))
        both.create_task(check_all("dark"))

    assert len(checked) == 2 * (len(pages) + 1)
    assert violations == [], "\n".join(violations)
    assert failed == [] and console == []


async def test_axe_reports_what_it_should(service_url, browser):
    """The check above can fail: low-contrast text on a page is reported."""
    tab = await browser.new_page()
    await tab.set_content(
        '<!DOCTYPE html><html lang="fa"><head><title>t</title></head><body><main><h1>t</h1>'
        '<p style="color:#777;background:#888">کم‌رنگ</p></main></body></html>'
    )
    await tab.add_script_tag(content=axe_source())
    found = await tab.evaluate(AXE_RUN, WCAG21AA)
    await tab.context.close()

    assert [line.split(" ")[0] for line in found] == ["color-contrast"]


#: Counted in the page: calls of ``fetch``, those that failed (once embed.js has handled the
#: failure too: counted a task later), and widgets shown (each answer sets the state "ready").
PAGE_COUNTERS = """
window.fetches = 0; window.failures = 0; window.shown = 0;
const realFetch = window.fetch;
window.fetch = (...args) => {
  window.fetches++;
  const answer = realFetch(...args);
  answer.catch(() => setTimeout(() => { window.failures++; }, 0));
  return answer;
};
new MutationObserver((records) => {
  window.shown += records.filter(
    (r) => r.target.getAttribute("data-sidebar-widget-state") === "ready").length;
}).observe(document, {subtree: true, attributeFilter: ["data-sidebar-widget-state"]});
"""


async def test_fallback_content_stays_when_the_service_is_unreachable(browser):
    dead = f"http://127.0.0.1:{free_port()}"
    page_html = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>'
        '<div data-sidebar-widget="prices" id="w"><a href="https://tgju.org">قیمت‌ها در tgju</a></div>'
        f'<script src="{dead}/embed.js"></script><script>'
        # The script could not load either; load it inline from the service file to test the fetch path.
        "</script></body></html>"
    )

    script = (
        files("service")
        .joinpath("static/embed.js")
        .read_text()
        .replace(
            "var base = script && script.src ? new URL(script.src, location.href).origin : location.origin;",
            f'var base = "{dead}";',
        )
    )
    tab = await browser.new_page()
    await tab.set_content(page_html)
    await tab.evaluate(PAGE_COUNTERS)
    await tab.add_script_tag(content=script)
    # Until embed.js's fetch has failed, and embed.js has handled it.
    await tab.wait_for_function("() => window.failures >= 1", timeout=30000)
    assert await tab.inner_text("#w") == "قیمت‌ها در tgju"
    assert await tab.eval_on_selector("#w", "(d) => d.shadowRoot === null")
    await tab.context.close()


async def test_embed_js_refreshes_on_max_age_and_keeps_content_when_a_refresh_fails(
    upstream, probe_settings, clock, browser
):
    upstream.json("/probe", {"value": 1, "label": "نسخهٔ یکم"})
    port = free_port()
    # The service on the fake clock: its data turns stale when the test moves it, not after a wait.
    server = TestServer(
        create_app(probe_settings(refresh_seconds=1), clock=clock), host="127.0.0.1", port=port
    )
    await server.start_server()
    service = f"http://127.0.0.1:{port}"
    html = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>'
        '<div data-sidebar-widget="probe" id="w">fallback</div>'
        f'<script src="{service}/embed.js"></script></body></html>'
    )

    host_server = await start_host_page(html)
    shadow_text = "() => document.getElementById('w').shadowRoot?.textContent || ''"
    try:
        context = await browser.new_context()
        # Routed requests skip the browser's HTTP cache: every refetch reaches the service, so
        # each answer is the service's own, and the failing refresh below really fails.
        await context.route("**/*", lambda route: route.continue_())
        tab = await context.new_page()
        await tab.clock.install()
        await tab.add_init_script(PAGE_COUNTERS)
        await tab.goto(str(host_server.make_url("/")))
        await tab.wait_for_function(f"() => ({shadow_text})().includes('نسخهٔ یکم')")

        # No refetch before the answer's max-age (at least 30 s, however small the widget's).
        await tab.clock.run_for(20_000)
        assert await tab.evaluate("() => window.fetches") == 1
        assert server.app[METRICS].http_requests_for("/widgets/{name}.html") == 1

        upstream.json("/probe", {"value": 2, "label": "نسخهٔ دوم"})
        await clock.advance(1.2)  # the service's data turns stale
        for _ in range(5):  # a refetch finds stale data and starts a refresh; a later one, new data
            shown = await tab.evaluate("() => window.shown")
            await tab.clock.run_for(31_000)
            await tab.wait_for_function("(n) => window.shown > n", arg=shown, timeout=30000)
            if "نسخهٔ دوم" in await tab.evaluate(shadow_text):
                break
        assert "نسخهٔ دوم" in await tab.evaluate(shadow_text)
        assert server.app[METRICS].http_requests_for("/widgets/{name}.html") >= 2

        await server.close()  # the service goes away: what is shown stays
        failures = await tab.evaluate("() => window.failures")
        await tab.clock.run_for(120_000)
        await tab.wait_for_function("(n) => window.failures > n", arg=failures, timeout=30000)
        assert "نسخهٔ دوم" in await tab.evaluate(shadow_text)
        await context.close()
    finally:
        await host_server.close()
        await server.close()


async def test_a_script_embed_carries_the_fragment_options_an_iframe_takes(service_url, browser):
    divs = (
        '<div data-sidebar-widget="prices" id="ticker" data-layout="ticker" data-items="sekee"></div>'
        '<div data-sidebar-widget="prices" id="columns" data-columns="low,high" data-chart="sparkline"'
        ' data-items="sekee"></div>'
    )
    page_html = HOST_PAGE.format(scripts=divs, frames="", service=service_url)

    server = await start_host_page(page_html)
    tab = await browser.new_page()
    requested: list[str] = []
    tab.on("request", lambda request: requested.append(request.url))
    await tab.goto(str(server.make_url("/")))
    await tab.wait_for_function(
        "() => [...document.querySelectorAll('[data-sidebar-widget]')]"
        ".every((d) => d.getAttribute('data-sidebar-widget-state') === 'ready')",
        timeout=30000,
    )
    ticker = await tab.eval_on_selector("#ticker", "(d) => d.shadowRoot.innerHTML")
    columns = await tab.eval_on_selector("#columns", "(d) => d.shadowRoot.innerHTML")
    await tab.context.close()
    await server.close()

    assert 'class="sw-ticker"' in ticker and "<table" not in ticker
    assert 'data-column="low"' in columns and 'data-column="high"' in columns
    assert any("chart=sparkline" in url for url in requested), requested


async def test_a_max_age_beyond_what_a_timer_can_hold_never_makes_embed_js_refetch_in_a_loop(browser):
    # A CDN may stamp a month on the fragment: 2.6e9 ms overflows setTimeout's 32 bits, which then
    # fires at once, and every reader's page would refetch without pause.
    asked: list[str] = []

    async def embed_js(request: web.Request) -> web.Response:
        return web.Response(
            body=files("service").joinpath("static/embed.js").read_bytes(), content_type="text/javascript"
        )

    async def fragment(request: web.Request) -> web.Response:
        asked.append(request.path)
        headers = {"Cache-Control": "public, max-age=2592000", "Access-Control-Allow-Origin": "*"}
        return web.Response(text="<p>widget</p>", content_type="text/html", headers=headers)

    service_app = web.Application()
    service_app.router.add_get("/embed.js", embed_js)
    service_app.router.add_get("/widgets/probe.html", fragment)
    service = TestServer(service_app, host="127.0.0.1", port=free_port())
    await service.start_server()
    html = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>'
        '<div data-sidebar-widget="probe" id="w">fallback</div>'
        f'<script src="{service.make_url("/embed.js")}"></script></body></html>'
    )

    host_server = await start_host_page(html)
    try:
        tab = await browser.new_page()
        # Counted in the page: the browser's HTTP cache answers a refetch with that max-age.
        await tab.add_init_script(
            "window.fetches = 0; const f = window.fetch;"
            "window.fetch = (...a) => { window.fetches++; return f(...a); };"
        )
        # The browser's own timers: Playwright's fake clock does not overflow as they do.
        await tab.goto(str(host_server.make_url("/")))
        await tab.wait_for_function("() => document.getElementById('w').shadowRoot?.textContent")
        await tab.wait_for_timeout(500)
        fetches = await tab.evaluate("() => window.fetches")
        await tab.context.close()
    finally:
        await host_server.close()
        await service.close()

    assert asked == ["/widgets/probe.html"]
    assert fetches == 1
