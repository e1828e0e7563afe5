"""Embedding: iframe pages, the one-line script, and the gallery webmasters see first."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
from dataclasses import dataclass
from importlib.resources import files

from aiohttp import web
from markupsafe import Markup
from yarl import URL

from service.web.errors import RequestError, endpoint
from service.web.http_caching import etag_matches, not_modified
from service.web.keys import EMBED, ENGINE, REPRESENTATIONS, SETTINGS
from service.web.rendering import Renderer
from service.web.routes import fragment, fragment_answer, widget_view

routes = web.RouteTableDef()

EMBED_JS = files("service").joinpath("static/embed.js").read_bytes()
EMBED_JS_ETAG = f'"{hashlib.sha256(EMBED_JS).hexdigest()[:20]}"'
#: A day fresh, then a week of serving the old copy while revalidating: embed.js rarely changes.
EMBED_JS_CACHE_CONTROL = "public, max-age=86400, stale-while-revalidate=604800"
#: Starting iframe heights; the page reports its real height to embed.js once loaded.
IFRAME_HEIGHTS = {"weather": 430, "satellite": 330, "prices": 650, "links": 270}


@dataclass(frozen=True)
class Snippet:
    title: str
    code: str


def snippets(base: str, name: str, title: str) -> list[Snippet]:
    height = IFRAME_HEIGHTS.get(name, 320)
    return [
        Snippet(
            "درج سمت سرور (PHP یا SSI)",
            f'<?php echo file_get_contents("{base}/widgets/{name}.html"); ?>',
        ),
        Snippet(
            "iframe",
            f'<iframe src="{base}/embed/{name}" title="{title}" width="300" height="{height}" '
            f'style="border:0;max-width:100%" loading="lazy"></iframe>',
        ),
        Snippet(
            "اسکریپت",
            f'<div data-sidebar-widget="{name}"><a href="{base}/embed/{name}">{title}</a></div>\n'
            f'<script async src="{base}/embed.js"></script>',
        ),
    ]


#: A Host header worth echoing into snippets: a DNS name or bracketed IPv6 address, maybe a port.
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]{2,45}\])(?::(?P<port>[0-9]{1,5}))?"
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
    if match is None or int(match.group("port") or 0) > 65535:
        return ""
    try:
        return str(URL.build(scheme=request.scheme, authority=host).origin())
    except ValueError:
        return ""


@functools.lru_cache(maxsize=256)
def _embed_page(renderer: Renderer, name: str, title: str, body: str) -> str:
    """The iframe page around a fragment; fragments are memoised, so is the page around each."""
    template = renderer.env.get_template("embed/page.html")
    return template.render(name=name, title=title, fragment=Markup(body))


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


@routes.get("/embed/{name:[a-z0-9_]+}")
@endpoint("/embed/{name}")
async def embed_page(request: web.Request) -> web.Response:
    """A complete page for an iframe; the only kind of page other sites may frame.

    Cached like the fragment it wraps (its validators, max-age and stale-if-error), so a CDN
    keeps serving the page while the service is away.
    """
    refresher, view = widget_view(request)
    rendered, caching = await fragment_answer(request, refresher, view)
    headers = {**caching, "Content-Security-Policy": request.app[EMBED].frame_ancestors}
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
    refreshers = list(request.app[ENGINE].refreshers.values())
    # Concurrently: a widget still waiting for its first data must not hold the others up.
    fragments = await asyncio.gather(*(fragment(request, refresher, {}) for refresher in refreshers))
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
    page = request.app[REPRESENTATIONS].renderer.env.get_template("embed/gallery.html").render(widgets=shown)
    return web.Response(
        text=page, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-cache"}
    )
