"""Satellite serving: the tile endpoint (never an open proxy), the static picture and the map page."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass, field

import xstatic.pkg.leaflet
from aiohttp import web
from markupsafe import Markup

from cache.base import Cache
from providers.http import UpstreamClient, UpstreamError
from providers.tiles import XyzTileProvider
from service.engine.clock import Clock, SystemClock
from service.engine.tasks import Tasks
from service.metrics import Metrics
from service.satellite.budget import Network, OverBudget, TileBudget, client_id
from service.satellite.composite import Composites, Drawing, Picture
from service.satellite.tile_cache import TileCache, TileUnavailable
from service.satellite.tile_math import tile_range
from service.settings import ConfigError
from service.web.cors import FRAME_NONE
from service.web.errors import RequestError, endpoint, json_error
from service.web.http_caching import cache_control, etag_matches
from service.web.keys import EMBED, ENGINE
from service.web.rendering import Renderer
from service.widget_config import ConfiguredWidget
from service.widgets.satellite import SatelliteOptions

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

#: Browsers and CDNs may keep a tile for a day (a CDN a week); expired copies only a minute.
TILE_CACHE_CONTROL = "public, max-age=86400, s-maxage=604800, stale-if-error=604800"
STALE_TILE_CACHE_CONTROL = "public, max-age=60, s-maxage=60"

#: Leaflet served by this service, from the xstatic-leaflet package: readers whose network filters
#: foreign CDNs still get the map. The version is in the path, so the files never change.
LEAFLET_VERSION = xstatic.pkg.leaflet.VERSION
LEAFLET_PATH = f"/static/leaflet/{LEAFLET_VERSION}"
LEAFLET_FILES = (
    "leaflet.js",
    "leaflet.css",
    *(
        f"images/{name}"
        for name in (
            "layers.png",
            "layers-2x.png",
            "marker-icon.png",
            "marker-icon-2x.png",
            "marker-shadow.png",
        )
    ),
)
IMMUTABLE = "public, max-age=31536000, immutable"
#: Shown before the tile source's credit, in place of Leaflet's default (a link with a flag).
ATTRIBUTION_PREFIX = Markup('<a href="https://leafletjs.com" lang="en">Leaflet</a>')


@dataclass
class Satellite:
    options: SatelliteOptions
    tiles: TileCache
    composites: Composites
    renderer: Renderer
    tasks: Tasks
    #: The picture's own process (stopped by ``close``).
    drawing: Drawing
    #: Proxies whose ``X-Forwarded-For`` names the client a tile miss counts against.
    trusted_proxies: Sequence[Network] = ()
    #: Tile ranges per served zoom, computed once: the region check costs a dict lookup.
    ranges: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for zoom in range(self.options.min_zoom, self.options.served_max_zoom + 1):
            self.ranges[zoom] = tile_range(self.options.bbox, zoom)

    def serves(self, z: int, x: int, y: int) -> bool:
        bounds = self.ranges.get(z)
        return bounds is not None and bounds[0] <= x <= bounds[2] and bounds[1] <= y <= bounds[3]

    def on_snapshot(self, app: web.Application, widget: str) -> None:
        """A new satellite snapshot landed: have its picture ready before anyone asks."""
        if widget != "satellite":
            return
        refresher = app[ENGINE].refreshers.get("satellite")
        snapshot = refresher.store.local("satellite") if refresher is not None else None
        if snapshot is None or self.composites.current(snapshot) is not None:
            return
        if self.tasks.closed:
            return
        task = self.tasks.spawn(self.composites.get(snapshot), name="satellite picture")
        task.add_done_callback(self._built)

    def _built(self, task: asyncio.Task[Picture | None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.warning("satellite picture failed to build: %s", task.exception())

    async def close(self) -> None:
        """Stop the drawing process (a picture being drawn is abandoned)."""
        await self.drawing.close()


SATELLITE = web.AppKey("satellite", Satellite)


def tile_source(widget: ConfiguredWidget | None) -> XyzTileProvider | None:
    """The satellite widget's tile source, or None when the widget is off (checked at start-up)."""
    if widget is None or not widget.enabled:
        return None
    source = next((p for p in widget.providers if isinstance(p, XyzTileProvider)), None)
    if source is None:
        raise ConfigError("widgets.satellite.providers: needs a tile source provider (e.g. 'tiles')")
    return source


def create_satellite(
    source: XyzTileProvider,
    cache: Cache,
    upstream: UpstreamClient,
    metrics: Metrics,
    renderer: Renderer,
    tasks: Tasks,
    clock: Clock | None = None,
    trusted_proxies: Sequence[Network] = (),
) -> Satellite:
    """The tile cache and picture builder for the satellite widget."""
    options = source.options
    budget = TileBudget(
        cache,
        clock or SystemClock(),
        per_minute=options.upstream_tiles_per_minute,
        per_client_per_minute=options.client_misses_per_minute,
    )
    tiles = TileCache(
        source,
        cache,
        upstream,
        metrics,
        ttl_seconds=options.tile_ttl_seconds,
        local_bytes=options.local_tile_bytes,
        tasks=tasks,
        clock=clock,
        budget=budget,
    )
    drawing = Drawing(upstream.settings.parse_workers)
    composites = Composites(tiles, cache, options, tasks, parse=drawing.run)
    return Satellite(options, tiles, composites, renderer, tasks, drawing, trusted_proxies)


def _satellite(request: web.Request) -> Satellite:
    satellite = request.app.get(SATELLITE)
    if satellite is None:
        raise RequestError(404, "the satellite widget is not enabled")
    return satellite


@routes.get(r"/tiles/{z:\d{1,2}}/{x:\d{1,8}}/{y:\d{1,8}}.jpg")
@endpoint("/tiles/{z}/{x}/{y}.jpg")
async def tile(request: web.Request) -> web.Response:
    satellite = _satellite(request)
    match = request.match_info
    z, x, y = int(match["z"]), int(match["x"]), int(match["y"])
    # Checked before any upstream call: only the configured region and zooms, never an open proxy.
    if not satellite.serves(z, x, y):
        raise RequestError(404, "tile outside the served region or zoom range")
    found = satellite.tiles.peek(z, x, y)
    if found is None:
        # Every X-Forwarded-For line, in order: a proxy may add its hop as a header of its own.
        forwarded_for = ",".join(request.headers.getall("X-Forwarded-For", ()))
        client = client_id(request.remote, forwarded_for, satellite.trusted_proxies)
        try:
            found = await satellite.tiles.get(z, x, y, client)
        except OverBudget as exc:
            response = json_error(429, f"too many new tiles: {exc}")
            response.headers["Retry-After"] = str(math.ceil(exc.retry_after))
            return response
        except TileUnavailable as exc:
            response = json_error(502, f"tile source unavailable: {exc}")
            if exc.retry_after is not None:
                response.headers["Retry-After"] = str(math.ceil(exc.retry_after))
            return response
        if found is None:
            raise RequestError(404, "the source has no imagery for this tile")
    etag = f'"{found.etag}"'
    cache_control = STALE_TILE_CACHE_CONTROL if found.stale else TILE_CACHE_CONTROL
    # The CSP is set here rather than by the endpoint guard: this is the hottest route.
    headers = {"ETag": etag, "Cache-Control": cache_control, "Content-Security-Policy": FRAME_NONE}
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and etag_matches(if_none_match, etag):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = found.content_type
    return web.Response(body=found.data, headers=headers)


@routes.get("/widgets/satellite.jpg")
@endpoint("/widgets/satellite.jpg")
async def picture(request: web.Request) -> web.Response:
    satellite = _satellite(request)
    refresher = request.app[ENGINE].refreshers["satellite"]
    snapshot = refresher.serve_now() or await refresher.current()
    if snapshot is None:
        return json_error(503, refresher.state.last_error or "no picture yet")
    try:
        built = await satellite.composites.get(snapshot)
    except (UpstreamError, TileUnavailable) as exc:
        # No tile could be had, or the drawing process died: the next request builds it again.
        return json_error(503, f"the picture cannot be built now: {exc}")
    if built is None:
        return json_error(503, "the picture is being built; try again shortly")
    headers = {
        "ETag": built.etag,
        "Cache-Control": cache_control(
            refresher.max_age(snapshot, refresher.now()),
            stale_while_revalidate=refresher.settings.stale_while_revalidate_seconds,
            stale_if_error=refresher.settings.stale_if_error_seconds,
        ),
    }
    if etag_matches(request.headers.get("If-None-Match"), built.etag):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = "image/jpeg"
    return web.Response(body=built.data, headers=headers)


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def _leaflet_files() -> dict[str, StaticFile]:
    found = {}
    for name in LEAFLET_FILES:
        with open(f"{xstatic.pkg.leaflet.BASE_DIR}/{name}", "rb") as file:
            body = file.read()
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        found[name] = StaticFile(body, content_type, f'"{hashlib.sha256(body).hexdigest()[:20]}"')
    return found


LEAFLET = _leaflet_files()


@routes.get(LEAFLET_PATH + "/{name:.+}")
@endpoint(LEAFLET_PATH + "/{name}")
async def leaflet(request: web.Request) -> web.Response:
    found = LEAFLET.get(request.match_info["name"])
    if found is None:
        raise RequestError(404, "no such file")
    headers = {"ETag": found.etag, "Cache-Control": IMMUTABLE}
    if etag_matches(request.headers.get("If-None-Match"), found.etag):
        return web.Response(status=304, headers=headers)
    charset = "utf-8" if found.content_type.startswith("text/") else None
    return web.Response(body=found.body, content_type=found.content_type, charset=charset, headers=headers)


@routes.get("/embed/satellite/map")
@endpoint("/embed/satellite/map")
async def map_page(request: web.Request) -> web.Response:
    satellite = _satellite(request)
    options = satellite.options
    page = satellite.renderer.env.get_template("embed/satellite_map.html").render(
        options=options,
        attribution=options.tile_source.attribution,
        attribution_prefix=ATTRIBUTION_PREFIX,
        max_zoom=options.served_max_zoom,
        tiles_url=satellite.tiles.source.tiles_url,
        leaflet_js=options.leaflet_js_url or f"{LEAFLET_PATH}/leaflet.js",
        leaflet_css=options.leaflet_css_url or f"{LEAFLET_PATH}/leaflet.css",
    )
    return web.Response(
        text=page,
        content_type="text/html",
        charset="utf-8",
        # An /embed/ page: framed by the sites allowed to embed, like the others.
        headers={
            "Cache-Control": "public, max-age=3600",
            "Content-Security-Policy": request.app[EMBED].frame_ancestors,
        },
    )
