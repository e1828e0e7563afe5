"""Embedding surfaces: the headers that decide who may frame and read, embed.js, the gallery."""

from __future__ import annotations

import pytest

from service.settings import EmbedSettings, Settings
from service.web.app import create_app
from service.widgets import BUILTIN_WIDGETS

ONLY_LINKS = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "links"}


def links_app(allowed: list[str] | None = None, **settings):
    embed = EmbedSettings(allowed_origins=allowed) if allowed else EmbedSettings()
    return create_app(Settings(engine={"background": False}, widgets=ONLY_LINKS, embed=embed, **settings))


async def test_only_embed_pages_may_be_framed(aiohttp_client):
    client = await aiohttp_client(links_app(["https://avayefamenin.ir", "https://www.avayefamenin.ir"]))

    embed = await client.get("/embed/links")
    assert embed.headers["Content-Security-Policy"] == (
        "frame-ancestors https://avayefamenin.ir https://www.avayefamenin.ir"
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
        assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'", path


async def test_any_origin_by_default(aiohttp_client):
    client = await aiohttp_client(links_app())
    assert (await client.get("/embed/links")).headers["Content-Security-Policy"] == "frame-ancestors *"
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
    assert "postMessage" in page  # reports its height so the embedding page can size the iframe
    assert (await client.get("/embed/links?theme=neon")).status == 400


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
