"""Embedding: iframe pages, the one-line script, and the gallery webmasters see first."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from aiohttp import web
from markupsafe import Markup, escape
from yarl import URL

from service.satellite.budget import from_trusted_proxy
from service.web.cors import FRAME_NONE
from service.web.errors import RequestError, endpoint
from service.web.http_caching import etag_matches, not_modified
from service.web.keys import EMBED, ENGINE, REPRESENTATIONS, SETTINGS
from service.web.rendering import Renderer
from service.web.routes import THEMES, fragment, fragment_answer, widget_view

routes = web.RouteTableDef()

EMBED_JS = files("service").joinpath("static/embed.js").read_bytes()
EMBED_JS_ETAG = f'"{hashlib.sha256(EMBED_JS).hexdigest()[:20]}"'
#: A day fresh, then a week of serving the old copy while revalidating: embed.js rarely changes.
EMBED_JS_CACHE_CONTROL = "public, max-age=86400, stale-while-revalidate=604800"
#: What the pages of this module may run: only scripts from the service itself (no inline script,
#: no plugin, no <base> pointing elsewhere). Whoever may frame a page is said per page.
SCRIPTS_FROM_SELF = "script-src 'self'; object-src 'none'; base-uri 'none'"
#: iframe snippet heights, for host pages without embed.js: each widget's tallest height at 300 px
#: wide with the default options and the test fixtures' data, light or dark, over a year of days
#: and hours (the date with a holiday line, prayer times with the next call), plus 16 px. With
#: embed.js on the host page, the frame's page reports its real height instead (static/frame.js).
IFRAME_HEIGHTS = {
    "weather": 462,
    "air": 341,
    "prices": 552,
    "satellite": 340,
    "prayer": 333,
    "date": 199,
    "links": 245,
    "news": 614,
}
DEFAULT_IFRAME_HEIGHT = 320


@dataclass(frozen=True)
class StaticScript:
    """A script of the service's own pages, at a URL that names its version."""

    body: bytes
    etag: str

    @classmethod
    def load(cls, name: str) -> StaticScript:
        body = files("service").joinpath(f"static/{name}.js").read_bytes()
        return cls(body, f'"{hashlib.sha256(body).hexdigest()[:20]}"')

    @property
    def version(self) -> str:
        return self.etag.strip('"')


#: Served at /static/{name}.js; pages link them with ?v= their version, so each change is a new URL.
STATIC_SCRIPTS = {name: StaticScript.load(name) for name in ("frame", "gallery")}
#: A versioned URL never changes: kept a year. Any other ?v (or none) is revalidated every time.
IMMUTABLE = "public, max-age=31536000, immutable"


def static_script_url(name: str) -> str:
    return f"/static/{name}.js?v={STATIC_SCRIPTS[name].version}"


@dataclass(frozen=True)
class Snippet:
    title: str
    code: str
    note: str = ""


def _script_tag(base: str) -> str:
    return f'<script async src="{base}/embed.js"></script>'


def _box(base: str, name: str, title: str) -> str:
    """A script embed's box; its link is what readers get where the script cannot run."""
    return f'<div data-sidebar-widget="{name}"><a href="{base}/embed/{name}">{escape(title)}</a></div>'


def snippets(base: str, name: str, title: str) -> list[Snippet]:
    height = IFRAME_HEIGHTS.get(name, DEFAULT_IFRAME_HEIGHT)
    return [
        Snippet(
            "درج سمت سرور (PHP یا SSI)",
            f'<?php echo file_get_contents("{base}/widgets/{name}.html"); ?>',
        ),
        Snippet(
            "iframe",
            # Block, not inline: no line-box gap under the frame; frames pasted one after another
            # stand 16 px apart, as script boxes do.
            f'<iframe src="{base}/embed/{name}" title="{escape(title)}" width="300" height="{height}" '
            f'style="display:block;border:0;max-width:100%;margin:0 0 16px" loading="lazy"></iframe>\n'
            + _script_tag(base),
            "خط اسکریپت ارتفاع قاب را با محتوای هر روز یکی می‌کند؛ جایی که اسکریپت مجاز نیست، "
            "بدون آن هم قاب با ارتفاع پیش‌فرض کار می‌کند.",
        ),
        Snippet("اسکریپت", _box(base, name, title) + "\n" + _script_tag(base)),
    ]


def all_boxes_snippet(base: str, widgets: list[tuple[str, str]]) -> Snippet:
    """Every box, one after another, and embed.js once: a div per box keeps each box's own fallback
    link and options (data-items, data-theme…), and a box is dropped or moved by its line alone."""
    boxes = "\n".join(_box(base, name, title) for name, title in widgets)
    return Snippet("اسکریپت برای همهٔ جعبه‌ها", boxes + "\n" + _script_tag(base))


#: A Host header worth echoing into snippets: a DNS name or bracketed IPv6 address, maybe a port.
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"|\[(?P<ipv6>[0-9A-Fa-f:.]{2,45})\])(?::(?P<port>[0-9]{1,5}))?"
)


def _base_url(request: web.Request) -> str:
    """Where snippets point: ``public_url``, else the Host the browser used, else root-relative.

    The Host header is the client's to write: an empty, malformed or hostile one (``:::``,
    ``host:99999``, raw bytes) must not make the gallery fail, nor be pasted into its snippets.
    """
    public_url = request.app[SETTINGS].public_url
    if public_url:
        return public_url
    host = request.headers.get("Host", "")
    match = _HOST.fullmatch(host) if len(host) <= 255 else None
    if match is None or not _usable(match):
        return ""
    try:
        return str(URL.build(scheme=_scheme(request), authority=host).origin())
    except ValueError:
        return ""


def _scheme(request: web.Request) -> str:
    """The scheme the reader used: a TLS-terminating proxy reaches us over plain HTTP.

    Its ``X-Forwarded-Proto`` is believed only from a trusted proxy; an http:// snippet would be
    blocked as mixed content on every HTTPS page it is pasted into.
    """
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
    if forwarded in ("http", "https") and from_trusted_proxy(
        request.remote, request.app[SETTINGS].trusted_proxies
    ):
        return forwarded
    return request.scheme


def _usable(host: re.Match[str]) -> bool:
    """Whether the Host's brackets hold a real IPv6 address and its port is one a browser can reach.

    The pattern alone lets ``[....]`` or ``[1.2.3.4]`` through, and port 0; pasted into a snippet,
    none of them would ever load.
    """
    port = host.group("port")
    if port is not None and not 0 < int(port) <= 65535:
        return False
    ipv6 = host.group("ipv6")
    if ipv6 is None:
        return True
    try:
        ipaddress.IPv6Address(ipv6)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=256)
def _embed_page(renderer: Renderer, name: str, title: str, body: str) -> str:
    """The iframe page around a fragment; fragments are memoised, so is the page around each."""
    template = renderer.env.get_template("embed/page.html")
    return template.render(
        name=name, title=title, fragment=Markup(body), frame_script=static_script_url("frame")
    )


@routes.get("/embed.js")
@endpoint("/embed.js")
async def embed_js(request: web.Request) -> web.Response:
    headers = {
        "ETag": EMBED_JS_ETAG,
        "Cache-Control": EMBED_JS_CACHE_CONTROL,
        **request.app[EMBED].static_headers,
    }
    if etag_matches(request.headers.get("If-None-Match"), EMBED_JS_ETAG):
        return web.Response(status=304, headers=headers)
    return web.Response(body=EMBED_JS, content_type="text/javascript", charset="utf-8", headers=headers)


@routes.get("/static/{name:[a-z]+}.js")
@endpoint("/static/{name}.js")
async def static_script(request: web.Request) -> web.Response:
    script = STATIC_SCRIPTS.get(request.match_info["name"])
    if script is None:
        raise RequestError(404, "no such script")
    versioned = request.query.get("v") == script.version
    headers = {"ETag": script.etag, "Cache-Control": IMMUTABLE if versioned else "no-cache"}
    if etag_matches(request.headers.get("If-None-Match"), script.etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=script.body, content_type="text/javascript", charset="utf-8", headers=headers)


@routes.get("/embed/{name:[a-z0-9_]+}")
@endpoint("/embed/{name}")
async def embed_page(request: web.Request) -> web.Response:
    """A complete page for an iframe; the only kind of page other sites may frame.

    Cached like the fragment it wraps (its validators, max-age and stale-if-error), so a CDN
    keeps serving the page while the service is away.
    """
    refresher, view = widget_view(request)
    # The page is the widget alone: its title is the page's level-1 heading, whatever ``heading`` says.
    view = {**view, "heading": 1}
    rendered, caching = await fragment_answer(request, refresher, view)
    csp = f"{request.app[EMBED].frame_ancestors}; {SCRIPTS_FROM_SELF}"
    headers = {**caching, "Content-Security-Policy": csp}
    if "ETag" in caching:
        etag = headers["ETag"] = rendered.etag[:-1] + '-p"'
        now = refresher.now()
        if not_modified(request, etag, rendered.last_modified, now):
            return web.Response(status=304, headers=headers)
    page = _embed_page(
        request.app[REPRESENTATIONS].renderer,
        refresher.name,
        refresher.widget.spec.title,
        rendered.body.decode(),
    )
    return web.Response(text=page, content_type="text/html", charset="utf-8", headers=headers)


@routes.get("/")
@endpoint("/")
async def gallery(request: web.Request) -> web.Response:
    base = _base_url(request)
    theme = request.query.get("theme", "light")
    if theme not in THEMES:
        raise RequestError(400, "theme: must be light, dark or auto")
    # The page carries the rules every fragment shares once, in its head; each fragment keeps its own.
    view: dict[str, Any] = {"shared_style": False, "theme": theme}
    refreshers = list(request.app[ENGINE].refreshers.values())
    # Concurrently: a widget still waiting for its first data must not hold the others up.
    fragments = await asyncio.gather(*(fragment(request, refresher, view) for refresher in refreshers))
    shown = [
        {
            "name": refresher.name,
            "title": refresher.widget.spec.title,
            "fragment": Markup(html),
            "snippets": snippets(base, refresher.name, refresher.widget.spec.title),
        }
        for refresher, html in zip(refreshers, fragments, strict=True)
    ]
    if not shown:
        raise RequestError(404, "no widget is enabled")
    boxes = all_boxes_snippet(base, [(r.name, r.widget.spec.title) for r in refreshers])
    page = (
        request.app[REPRESENTATIONS]
        .renderer.env.get_template("embed/gallery.html")
        .render(
            widgets=shown,
            theme=theme,
            all_boxes=boxes if len(shown) > 1 else None,
            gallery_script=static_script_url("gallery"),
        )
    )
    headers = {"Cache-Control": "no-cache", "Content-Security-Policy": f"{FRAME_NONE}; {SCRIPTS_FROM_SELF}"}
    return web.Response(text=page, content_type="text/html", charset="utf-8", headers=headers)
