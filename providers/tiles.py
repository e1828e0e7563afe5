"""XYZ tile sources: build a tile's URL, fetch it, and refuse anything that is not imagery.

The widget's ``fetch`` describes the picture (bbox, zoom, size); tiles themselves are fetched on
demand through ``fetch_tile`` by the tile cache in ``service/``. Nothing here ever seeds or crawls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mercantile
from PIL import Image

from providers.base import Provider
from providers.http import UpstreamError
from service.satellite.tile_math import TILE_SIZE, composite_size
from service.widgets.satellite import SatelliteData, SatelliteOptions, TileSourceSettings

if TYPE_CHECKING:
    from providers.http import UpstreamSession

_MAGIC = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}

#: Tiles are checked in threads of their own, never in the parsing processes: a check is a
#: millisecond or two of Pillow decoding a 256 px image (which releases the GIL), and in the
#: parsing processes it queued behind whole seconds of tgju pages, long enough for requests
#: waiting on the same tile in other processes to give up. Two threads bound the decodes in
#: flight (and their memory); a burst of misses is bounded by the tile budget anyway.
CHECK_THREADS = 2
_checks: tuple[int, concurrent.futures.ThreadPoolExecutor] | None = None


def _check_threads() -> concurrent.futures.ThreadPoolExecutor:
    """This process's tile-check threads, started on first use (a forked worker starts its own:
    threads do not survive a fork)."""
    global _checks
    if _checks is None or _checks[0] != os.getpid():
        _checks = (os.getpid(), concurrent.futures.ThreadPoolExecutor(CHECK_THREADS, "tile-check"))
    return _checks[1]


async def check_tile(data: bytes) -> str | None:
    """``tile_problem(data)`` in a tile-check thread: off the loop, and never behind a parse."""
    return await asyncio.get_running_loop().run_in_executor(_check_threads(), tile_problem, data)


class NoTile(Exception):
    """The source has no imagery here (its placeholder, or a 404)."""


@dataclass(frozen=True)
class TileImage:
    data: bytes
    content_type: str


class XyzTileProvider(Provider):
    id = "tiles"
    widget = "satellite"
    default_timeout_seconds = 10.0

    @property
    def options(self) -> SatelliteOptions:
        options = self.config.widget_options
        return options if isinstance(options, SatelliteOptions) else SatelliteOptions()

    @property
    def source(self) -> TileSourceSettings:
        source = self.options.tile_source
        # [providers.tiles] url overrides the template, e.g. for a mirror or a local test server.
        return source.model_copy(update={"url": self.config.url}) if self.config.url else source

    @property
    def identity(self) -> str:
        """A digest of the URL template: the imagery's name in cache keys and in tile URLs."""
        return hashlib.sha256(self.source.url.encode()).hexdigest()[:12]

    @property
    def tiles_url(self) -> str:
        """The tile URL template readers use. Browsers keep a tile a day and CDNs a week: naming
        the source in it means a switch of source or mirror is a new URL, not old imagery."""
        return f"/tiles/{{z}}/{{x}}/{{y}}.jpg?source={self.identity}"

    @property
    def source_name(self) -> str:
        return self.options.source

    def attribution_text(self) -> str | None:
        return self.source.attribution

    def tile_url(self, z: int, x: int, y: int) -> str:
        return self.source.url.format(z=z, x=x, y=y, q=mercantile.quadkey(x, y, z))

    async def fetch(self, http: UpstreamSession) -> SatelliteData:
        """Describe the picture, after checking that the source answers with imagery.

        One low-zoom tile over the centre, once per refresh (daily): a source that is down or
        has changed fails the refresh, so the widget keeps its last good state instead of
        advertising a picture that cannot be built.
        """
        options = self.options
        west, south, east, north = options.bbox
        width, height = composite_size(options.bbox, options.zoom)
        center = options.marker or ((west + east) / 2, (south + north) / 2)
        probe = mercantile.tile(center[0], center[1], options.min_zoom)
        try:
            await self.fetch_tile(http, probe.z, probe.x, probe.y)
        except NoTile:
            pass  # the source answers; it has no imagery at that spot
        return SatelliteData(
            bbox=options.bbox,
            zoom=options.zoom,
            center=center,
            image="/widgets/satellite.jpg",
            tiles=self.tiles_url,
            attribution=self.source.attribution,
            width=width,
            height=height,
            source=options.source,
            map="/embed/satellite/map",
        )

    async def fetch_tile(self, http: UpstreamSession, z: int, x: int, y: int) -> TileImage:
        try:
            response = await http.get(self.tile_url(z, x, y), conditional=False)
        except UpstreamError as exc:
            if exc.status == 404:
                raise NoTile() from None
            raise
        for header, placeholders in self.source.no_tile_headers.items():
            if response.headers.get(header) in placeholders:
                raise NoTile()
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if not content_type.startswith("image/"):
            raise UpstreamError(
                "content_type", f"tile {z}/{x}/{y}: {content_type or 'no content type'}, not an image"
            )
        sniffed = next((kind for magic, kind in _MAGIC.items() if response.body.startswith(magic)), None)
        if sniffed is None:
            raise UpstreamError("parse", f"tile {z}/{x}/{y}: the body is not a JPEG or PNG image")
        # Decoded in full, off the event loop: what browsers and the picture will decode later.
        problem = await check_tile(response.body)
        if problem is not None:
            raise UpstreamError("parse", f"tile {z}/{x}/{y}: {problem}")
        return TileImage(response.body, sniffed)


def tile_problem(data: bytes) -> str | None:
    """Why ``data`` is not a usable tile, or None: it must decode to a ``TILE_SIZE`` square.

    The size is read from the header before any pixel is decoded, so a decompression bomb (a
    few kilobytes on the wire, gigapixels decoded) or a 1x1 pixel is refused without the cost;
    then every pixel is decoded, so junk or a truncated body behind a valid magic is refused too.
    Blocking: runs in a tile-check thread (``check_tile``).
    """
    try:
        with warnings.catch_warnings():
            # Pillow warns about large images while opening; the size check below decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=("JPEG", "PNG")) as image:
                if image.size != (TILE_SIZE, TILE_SIZE):
                    return f"{image.size[0]}x{image.size[1]} pixels, not {TILE_SIZE}x{TILE_SIZE}"
                image.load()
    except Image.DecompressionBombError:
        return f"gigapixels declared, not {TILE_SIZE}x{TILE_SIZE}"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"not a decodable {TILE_SIZE}x{TILE_SIZE} image ({type(exc).__name__})"
    return None
