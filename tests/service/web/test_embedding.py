"""Embedding surfaces: the headers that decide who may frame and read, embed.js, the gallery."""

from __future__ import annotations

import html
import re

import pytest

from service.settings import EmbedSettings, Settings
from service.web.app import create_app
from service.web.embedding import IFRAME_HEIGHTS, snippets
from service.widgets import BUILTIN_WIDGETS

ONLY_LINKS = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "links"}


def directives(policy: str) -> dict[str, str]:
    """A Content-Security-Policy header as {directive: its sources}."""
    return dict((part.strip().split(" ", 1) + [""])[:2] for part in policy.split(";") if part.strip())


def links_app(allowed: list[str] | None = None, **settings):
    embed = EmbedSettings(allowed_origins=allowed) if allowed else EmbedSettings()
    return create_app(Settings(engine={"background": False}, widgets=ONLY_LINKS, embed=embed, **settings))


async def test_only_embed_pages_may_be_framed(aiohttp_client):
    client = await aiohttp_client(links_app(["https://avayefamenin.ir", "https://www.avayefamenin.ir"]))

    embed = await client.get("/embed/links")
    assert directives(embed.headers["Content-Security-Policy"])["frame-ancestors"] == (
        "https://avayefamenin.ir https://www.avayefamenin.ir"
    )
    for path in (
        "/widgets/links.html",
        "/widgets/links.json",
        "/widgets",
        "/health",
        "/livez",
        "/readyz",
        "/metrics",
        "/",
        "/embed.js",
        "/nope",
        "/widgets/nope.json",
        "/embed/nope",
    ):
        response = await client.get(path)
        assert directives(response.headers["Content-Security-Policy"])["frame-ancestors"] == "'none'", path


async def test_any_origin_by_default(aiohttp_client):
    client = await aiohttp_client(links_app())
    embed = await client.get("/embed/links")
    assert directives(embed.headers["Content-Security-Policy"])["frame-ancestors"] == "*"
    for path in ("/widgets/links.json", "/widgets/links.html"):
        response = await client.get(path, headers={"Origin": "https://anyone.example"})
        assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("origins", [["*"], ["https://avayefamenin.ir"]])
async def test_a_page_on_another_origin_can_read_what_it_needs_to_date_the_data(aiohttp_client, origins):
    """The envelope has no age counter: a script not trusting its own clock takes the age from
    ``Date`` and a cache's ``Age``, which are not CORS-safelisted and must be exposed with ETag."""
    client = await aiohttp_client(links_app(origins))
    response = await client.get("/widgets/links.json", headers={"Origin": "https://avayefamenin.ir"})
    exposed = {name.strip() for name in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert exposed == {"ETag", "Date", "Age"}


async def test_listed_origins_get_cors_and_others_do_not(aiohttp_client):
    client = await aiohttp_client(links_app(["https://avayefamenin.ir"]))

    allowed = await client.get("/widgets/links.html", headers={"Origin": "https://avayefamenin.ir"})
    other = await client.get("/widgets/links.html", headers={"Origin": "https://elsewhere.example"})
    revalidated = await client.get(
        "/widgets/links.json",
        headers={
            "Origin": "https://avayefamenin.ir",
            "If-None-Match": allowed.headers["ETag"].replace("-h", ""),
        },
    )

    assert allowed.headers["Access-Control-Allow-Origin"] == "https://avayefamenin.ir"
    assert allowed.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Origin" not in other.headers and other.headers["Vary"] == "Origin"
    assert revalidated.headers["Vary"] == "Origin"


async def test_preflight(aiohttp_client):
    client = await aiohttp_client(links_app(["https://avayefamenin.ir"]))
    response = await client.options(
        "/widgets/links.html",
        headers={"Origin": "https://avayefamenin.ir", "Access-Control-Request-Method": "GET"},
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://avayefamenin.ir"
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    assert "If-None-Match" in response.headers["Access-Control-Allow-Headers"]


async def test_embed_js_is_served_for_long_caching(aiohttp_client):
    client = await aiohttp_client(links_app())

    response = await client.get("/embed.js")
    script = await response.text()

    assert response.status == 200 and response.content_type == "text/javascript"
    assert "max-age=86400" in response.headers["Cache-Control"]
    assert "data-sidebar-widget" in script and "attachShadow" in script
    assert len(script.encode()) < 8 * 1024  # small, no framework
    again = await client.get("/embed.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304


async def test_embed_page_is_a_whole_persian_rtl_page_around_the_fragment(aiohttp_client):
    client = await aiohttp_client(links_app())

    page = await (await client.get("/embed/links?theme=dark")).text()

    assert page.startswith("<!DOCTYPE html>")
    assert '<html lang="fa" dir="rtl">' in page
    assert 'class="sw-widget sw-links sw-theme-dark"' in page
    assert (await client.get("/embed/links?theme=neon")).status == 400


@pytest.mark.parametrize("path", ["/embed/links", "/"])
async def test_the_embed_page_and_the_gallery_run_only_scripts_served_by_the_service(aiohttp_client, path):
    client = await aiohttp_client(links_app())

    response = await client.get(path)
    page = await response.text()
    policy = directives(response.headers["Content-Security-Policy"])
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)

    assert policy["script-src"] == "'self'" and policy["object-src"] == "'none'"
    assert scripts and all(re.search(r' src="/static/[a-z]+\.js\?v=\w+"', tag) for tag, _ in scripts)
    assert all(body.strip() == "" for _, body in scripts)  # nothing inline, which the policy would block


async def test_the_embed_page_loads_the_script_that_reports_its_height(aiohttp_client):
    client = await aiohttp_client(links_app())

    page = await (await client.get("/embed/links")).text()
    src = re.search(r'<script src="([^"]+)" data-widget="links">', page)
    assert src is not None
    script = await client.get(html.unescape(src.group(1)))

    assert script.status == 200 and script.content_type == "text/javascript"
    assert "postMessage" in await script.text()
    # The URL names its version: kept a year.
    assert script.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    again = await client.get(html.unescape(src.group(1)), headers={"If-None-Match": script.headers["ETag"]})
    assert again.status == 304


async def test_a_static_script_asked_for_by_another_version_or_none_is_revalidated(aiohttp_client):
    client = await aiohttp_client(links_app())

    for path in ("/static/frame.js", "/static/frame.js?v=old", "/static/gallery.js"):
        response = await client.get(path)
        assert response.status == 200 and response.headers["Cache-Control"] == "no-cache", path
    missing = await client.get("/static/nope.js")
    assert missing.status == 404 and (await missing.json()) == {"error": "no such script"}


@pytest.mark.parametrize("theme", ["light", "dark", "auto"])
async def test_every_fragment_takes_a_theme(aiohttp_client, theme):
    client = await aiohttp_client(links_app())
    html = await (await client.get(f"/widgets/links.html?theme={theme}")).text()
    assert f"sw-theme-{theme}" in html
    assert "--_fg:var(--sw-fg," in html  # a site can override colours with --sw-* properties
    assert "prefers-color-scheme:dark" in html


async def test_gallery_shows_every_enabled_widget_with_three_snippets(aiohttp_client):
    settings = Settings(
        engine={"background": False},
        widgets={
            "prices": {"enabled": False},
            "weather": {"enabled": False},
            "air": {"enabled": False},
            "satellite": {"enabled": False},
        },
        public_url="https://widgets.example.org",
    )
    client = await aiohttp_client(create_app(settings))

    page = await (await client.get("/")).text()

    assert '<html lang="fa" dir="rtl">' in page
    assert page.count('<section class="gl-widget"') == 3  # links, prayer times and the date
    assert "پایگاه اطلاع‌رسانی تأمین اجتماعی" in page  # rendered live
    assert "اوقات شرعی به افق فامنین" in page and "اذان مغرب" in page
    assert 'class="sw-jalali"' in page
    assert "file_get_contents(&#34;https://widgets.example.org/widgets/links.html&#34;)" in page
    assert "&lt;iframe src=&#34;https://widgets.example.org/embed/links&#34;" in page
    assert "&lt;script async src=&#34;https://widgets.example.org/embed.js&#34;&gt;" in page
    assert 'href="/health"' in page and 'href="/widgets/links.json"' in page
    assert 'href="?theme=dark"' in page  # the dark gallery is a page of its own


def gallery_codes(page: str) -> list[str]:
    return [html.unescape(code) for code in re.findall(r"<pre><code>(.*?)</code></pre>", page, re.S)]


async def test_the_gallery_offers_every_box_with_one_script(aiohttp_client):
    client = await aiohttp_client(
        create_app(
            Settings(
                engine={"background": False},
                widgets={name: {"enabled": False} for name in ("prices", "weather", "air", "satellite")},
                public_url="https://widgets.example.org",
            )
        )
    )

    page = await (await client.get("/")).text()
    all_boxes = gallery_codes(page.split('id="all-widgets"', 1)[1].split("</section>", 1)[0])

    assert all_boxes == [
        '<div data-sidebar-widget="prayer"><a href="https://widgets.example.org/embed/prayer">'
        "اوقات شرعی</a></div>\n"
        '<div data-sidebar-widget="date"><a href="https://widgets.example.org/embed/date">امروز</a></div>\n'
        '<div data-sidebar-widget="links"><a href="https://widgets.example.org/embed/links">'
        "پیوندهای مفید</a></div>\n"
        '<script async src="https://widgets.example.org/embed.js"></script>'
    ]


async def test_a_gallery_of_one_widget_has_no_all_boxes_snippet(aiohttp_client):
    client = await aiohttp_client(links_app())
    page = await (await client.get("/")).text()
    assert 'id="all-widgets"' not in page and len(gallery_codes(page)) == 3


async def test_an_iframe_snippet_is_a_block_frame_with_a_default_height_and_the_script_that_sizes_it(
    aiohttp_client,
):
    client = await aiohttp_client(links_app(public_url="https://widgets.example.org"))

    _, iframe, _ = gallery_codes(await (await client.get("/")).text())
    frame, script = iframe.split("\n")

    assert frame.startswith('<iframe src="https://widgets.example.org/embed/links" title="پیوندهای مفید"')
    assert f'height="{IFRAME_HEIGHTS["links"]}"' in frame and "display:block" in frame
    assert script == '<script async src="https://widgets.example.org/embed.js"></script>'


def test_a_title_is_escaped_where_a_snippet_quotes_it():
    iframe, script = snippets("https://w.example", "links", 'a "b" <c>')[1:]
    assert 'title="a &#34;b&#34; &lt;c&gt;"' in iframe.code
    assert ">a &#34;b&#34; &lt;c&gt;</a>" in script.code


@pytest.mark.parametrize("host", ["[....]", "[1.2.3.4]", "widgets.example.org:0"])
async def test_a_host_that_is_not_a_usable_origin_is_not_pasted_into_the_snippets(aiohttp_client, host):
    client = await aiohttp_client(links_app())

    page = await (await client.get("/", headers={"Host": host})).text()

    assert "&lt;script async src=&#34;/embed.js&#34;&gt;" in page  # root-relative instead


async def test_behind_a_trusted_tls_proxy_the_snippets_use_the_https_origin_the_reader_used(aiohttp_client):
    proxied = await aiohttp_client(links_app(trusted_proxies=["127.0.0.1"]))
    direct = await aiohttp_client(links_app())
    headers = {"Host": "widgets.example.org", "X-Forwarded-Proto": "https"}

    behind_proxy = await (await proxied.get("/", headers=headers)).text()
    # From a peer that is not a trusted proxy the header is the client's own invention.
    not_trusted = await (await direct.get("/", headers=headers)).text()

    assert "&lt;script async src=&#34;https://widgets.example.org/embed.js&#34;&gt;" in behind_proxy
    assert "&lt;script async src=&#34;http://widgets.example.org/embed.js&#34;&gt;" in not_trusted
