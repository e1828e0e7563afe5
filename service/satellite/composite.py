"""The static satellite picture: tiles stitched with Pillow, cropped to the bbox, attributed.

Built once per satellite snapshot (the widget refreshes daily), in the background when a new
snapshot lands and on demand otherwise; ``SingleFlight`` makes sure no two requests or processes
stitch the same picture. A tile that cannot be had becomes a neutral patch, never a failed image.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import warnings
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from cache.base import Cache, CacheUnavailable
from providers.parsing import ParseCall
from service.engine.single_flight import SingleFlight
from service.engine.snapshot import Snapshot
from service.engine.tasks import Tasks
from service.satellite.budget import OverBudget
from service.satellite.tile_cache import TileCache, TileUnavailable
from service.satellite.tile_math import TILE_SIZE, pixel_box, tile_range, world_pixel
from service.widgets.satellite import SatelliteOptions

log = logging.getLogger(__name__)

NEUTRAL = (120, 124, 118)
BAND_HEIGHT = 20


@dataclass(frozen=True)
class Picture:
    data: bytes
    etag: str
    #: The snapshot it was built for (its ``fetched_at``), to know when it is out of date.
    built_for: float


async def stitch(
    tiles: TileCache, options: SatelliteOptions, attribution: str, *, parse: ParseCall | None = None
) -> bytes:
    """Gather the tiles (I/O, on the loop), then decode and draw in a parsing process.

    Decoding a few dozen JPEGs, cropping and re-encoding takes far longer than a request may
    wait, so none of it runs on the event loop; nor in one of its threads, where the GIL it
    takes between Pillow's calls and the garbage it leaves still delayed requests. ``parse`` is
    the upstream client's pool (``UpstreamClient.parse``); without one, a thread.
    """
    zoom = options.zoom
    x_min, y_min, x_max, y_max = tile_range(options.bbox, zoom)
    coordinates = [(x, y) for y in range(y_min, y_max + 1) for x in range(x_min, x_max + 1)]
    results = await asyncio.gather(*(tiles.get(zoom, x, y) for x, y in coordinates), return_exceptions=True)
    placed: list[tuple[int, int, bytes | None]] = []
    for (x, y), tile in zip(coordinates, results, strict=True):
        if isinstance(tile, TileUnavailable) or tile is None:
            placed.append((x, y, None))
            continue
        if isinstance(tile, OverBudget):
            # Not a patch: the picture is kept for days, so it waits until the budget allows.
            raise TileUnavailable(f"the picture waits for the tile budget: {tile}")
        if isinstance(tile, BaseException):
            raise tile
        placed.append((x, y, tile.data))
    if parse is None:
        return await asyncio.to_thread(compose, placed, options, attribution)
    return await parse(compose, placed, options, attribution)


def tile_image(data: bytes) -> Image.Image | None:
    """The decoded tile, or None when it is not a tile-sized JPEG or PNG.

    The size is read from the header, before any pixel is decoded: a decompression bomb (a few
    kilobytes on the wire, gigapixels decoded) or a tile of the wrong size is refused, not
    decoded. Pillow's own ``MAX_IMAGE_PIXELS`` only warns below twice its limit, so it is not
    relied on.
    """
    try:
        with warnings.catch_warnings():
            # Pillow warns about large images while opening; the size check below decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=("JPEG", "PNG"))
        with image:
            if image.size != (TILE_SIZE, TILE_SIZE):
                log.warning("satellite tile refused: %dx%d pixels, not %d", *image.size, TILE_SIZE)
                return None
            return image.convert("RGB")
    except (OSError, Image.DecompressionBombError, SyntaxError, ValueError):
        return None


def compose(
    placed: list[tuple[int, int, bytes | None]], options: SatelliteOptions, attribution: str
) -> bytes:
    """The picture from its tiles' bytes (blocking and picklable: runs in a parsing process)."""
    zoom = options.zoom
    x_min, y_min, x_max, y_max = tile_range(options.bbox, zoom)
    canvas = Image.new("RGB", ((x_max - x_min + 1) * TILE_SIZE, (y_max - y_min + 1) * TILE_SIZE), NEUTRAL)
    missing = 0
    for x, y, data in placed:
        image = tile_image(data) if data is not None else None
        if image is None:
            missing += 1
            continue
        canvas.paste(image, ((x - x_min) * TILE_SIZE, (y - y_min) * TILE_SIZE))
    if missing == len(placed):
        raise TileUnavailable("no tile of the picture could be had")
    if missing:
        log.info("satellite picture built with %d of %d tiles missing", missing, len(placed))
    left, top, right, bottom = pixel_box(options.bbox, zoom)
    origin_x, origin_y = x_min * TILE_SIZE, y_min * TILE_SIZE
    picture = canvas.crop((left - origin_x, top - origin_y, right - origin_x, bottom - origin_y))
    if options.marker is not None:
        _marker(picture, options, left, top)
    _attribution_band(picture, attribution)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()


def _marker(picture: Image.Image, options: SatelliteOptions, left: int, top: int) -> None:
    assert options.marker is not None
    px, py = world_pixel(options.marker[0], options.marker[1], options.zoom)
    x, y = px - left, py - top
    draw = ImageDraw.Draw(picture)
    draw.ellipse((x - 7, y - 7, x + 7, y + 7), fill=(220, 38, 38), outline=(255, 255, 255), width=2)


def _attribution_band(picture: Image.Image, text: str) -> None:
    """A dark band along the bottom edge with the source's attribution (its terms require it)."""
    width, height = picture.size
    band = Image.new("RGB", (width, BAND_HEIGHT), (20, 20, 20))
    picture.paste(
        Image.blend(picture.crop((0, height - BAND_HEIGHT, width, height)), band, 0.75),
        (0, height - BAND_HEIGHT),
    )
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=12)
    while draw.textlength(text, font=font) > width - 12 and len(text) > 10:
        text = text[:-2].rstrip() + "…"
    draw.text((6, height - BAND_HEIGHT + 3), text, fill=(255, 255, 255), font=font)


class Composites:
    """The current picture per process, shared through the cache, built by one caller at a time."""

    def __init__(
        self,
        tiles: TileCache,
        cache: Cache,
        options: SatelliteOptions,
        tasks: Tasks,
        *,
        parse: ParseCall | None = None,
    ) -> None:
        self._tiles = tiles
        self._parse = parse
        self._cache = cache
        self._options = options
        self._current: Picture | None = None
        self._flight: SingleFlight[Picture] = SingleFlight(cache, tasks, max_wait_seconds=120)
        self.builds = 0

    def current(self, snapshot: Snapshot) -> Picture | None:
        picture = self._current
        return picture if picture is not None and picture.built_for == snapshot.fetched_at else None

    async def get(self, snapshot: Snapshot) -> Picture | None:
        picture = self.current(snapshot)
        if picture is not None:
            return picture
        key = f"composite:{snapshot.digest}:{snapshot.fetched_at!r}"
        picture = await self._flight.run(
            key, lambda: self._build(key, snapshot), read=lambda: self._read(key, snapshot)
        )
        if picture is not None:
            self._current = picture
        return picture

    async def _read(self, key: str, snapshot: Snapshot) -> Picture | None:
        try:
            data = await self._cache.get(key)
        except CacheUnavailable:
            return None
        return None if data is None else self._picture(data, snapshot)

    async def _build(self, key: str, snapshot: Snapshot) -> Picture:
        self.builds += 1
        data = await stitch(
            self._tiles, self._options, str(snapshot.data.get("attribution", "")), parse=self._parse
        )
        try:
            await self._cache.set(key, data, ttl_seconds=7 * 86400)
        except CacheUnavailable:
            pass
        return self._picture(data, snapshot)

    @staticmethod
    def _picture(data: bytes, snapshot: Snapshot) -> Picture:
        return Picture(data, f'"{hashlib.sha256(data).hexdigest()[:20]}"', snapshot.fetched_at)
