"""The static satellite picture: tiles stitched with Pillow, cropped to the bbox, attributed.

Built once per satellite snapshot (the widget refreshes daily), in the background when a new
snapshot lands and on demand otherwise; ``SingleFlight`` makes sure no two requests or processes
stitch the same picture. A tile that cannot be had becomes a neutral patch, never a failed image.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import ttf_opensans
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

from cache.base import Cache, CacheUnavailable
from providers.http import UpstreamError
from providers.parsing import ParseCall, ParsePool, WorkerDied
from service.engine.single_flight import SingleFlight
from service.engine.snapshot import Snapshot
from service.engine.tasks import Tasks
from service.satellite.budget import OverBudget
from service.satellite.tile_cache import TileCache, TileUnavailable
from service.satellite.tile_math import TILE_SIZE, pixel_box, tile_range, world_pixel
from service.widgets.satellite import SatelliteOptions

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

NEUTRAL = (120, 124, 118)
#: The picture is shown in a column this wide: text and marker are sized to read well there.
COLUMN_PIXELS = 300
#: Sizes as seen in that column, in its pixels.
TEXT_PIXELS = 11
MARKER_RADIUS_PIXELS = 5
MAX_BAND_LINES = 3
#: Open Sans (bundled by a PyPI package, so every install draws the same): Latin, ©, — and …
#: all have glyphs. The Arabic script has none, and drawing Persian would also need shaping and
#: bidi, so the picture carries no Persian text; the page around it does.
FONT_PATH = str(ttf_opensans.OPENSANS_SEMIBOLD.path)


@dataclass(frozen=True)
class Picture:
    data: bytes
    etag: str
    #: The snapshot it was built for (its ``fetched_at``), to know when it is out of date.
    built_for: float


async def stitch(
    tiles: TileCache, options: SatelliteOptions, attribution: str, *, parse: ParseCall | None = None
) -> bytes:
    """Gather the tiles (I/O, on the loop), then decode and draw in another process.

    Decoding a few dozen JPEGs, cropping and re-encoding takes far longer than a request may
    wait, so none of it runs on the event loop; nor in one of its threads, where the GIL it
    takes between Pillow's calls and the garbage it leaves still delayed requests. ``parse`` is
    the picture's own process (``Drawing.run``); without one, a thread.
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
    """The picture from its tiles' bytes (blocking and picklable: runs in the drawing process)."""
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


def _scale(picture: Image.Image) -> float:
    """Picture pixels per pixel of the column it is shown in."""
    return max(1.0, picture.width / COLUMN_PIXELS)


def _marker(picture: Image.Image, options: SatelliteOptions, left: int, top: int) -> None:
    assert options.marker is not None
    px, py = world_pixel(options.marker[0], options.marker[1], options.zoom)
    x, y = px - left, py - top
    radius = MARKER_RADIUS_PIXELS * _scale(picture)
    outline = max(2, round(radius / 3))
    draw = ImageDraw.Draw(picture)
    box = (x - radius, y - radius, x + radius, y + radius)
    draw.ellipse(box, fill=(220, 38, 38), outline=(255, 255, 255), width=outline)


@functools.lru_cache(maxsize=1)
def font_glyphs() -> frozenset[int]:
    """The code points the band's font has a glyph for."""
    with TTFont(FONT_PATH, lazy=True) as font:
        return frozenset(font.getBestCmap())


def drawable(text: str) -> str:
    """``text`` without the characters the font has no glyph for (no box ever stands in)."""
    glyphs = font_glyphs()
    kept = "".join(ch if ord(ch) in glyphs else " " for ch in text)
    return " ".join(kept.split())


def band_lines(text: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """``text`` wrapped at spaces into lines at most ``width`` wide; the last cut with "…"."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    if len(lines) > MAX_BAND_LINES:
        lines = lines[: MAX_BAND_LINES - 1] + [" ".join(lines[MAX_BAND_LINES - 1 :])]
    last = lines[-1] if lines else ""
    while font.getlength(last) > width and len(last) > 1:
        last = last[:-2].rstrip() + "…"
    return [*lines[:-1], last] if lines else []


def _attribution_band(picture: Image.Image, text: str) -> None:
    """A dark band along the bottom edge with the source's attribution (its terms require it).

    Sized for the column the picture is shown in: about 11 px text there, whatever the
    picture's own size.
    """
    width, height = picture.size
    scale = _scale(picture)
    font = ImageFont.truetype(FONT_PATH, size=round(TEXT_PIXELS * scale))
    padding = round(4 * scale)
    line_height = round(TEXT_PIXELS * 1.3 * scale)
    lines = band_lines(drawable(text), font, width - 2 * padding)
    band_height = min(height, len(lines) * line_height + 2 * padding)
    band = Image.new("RGB", (width, band_height), (20, 20, 20))
    picture.paste(
        Image.blend(picture.crop((0, height - band_height, width, height)), band, 0.8),
        (0, height - band_height),
    )
    draw = ImageDraw.Draw(picture)
    for number, line in enumerate(lines):
        top = height - band_height + padding + number * line_height
        draw.text((padding, top), line, fill=(255, 255, 255), font=font)


class Drawing:
    """The picture's own process, apart from the parsing processes.

    In those it queued behind tgju's megabyte pages (seconds each), and a tgju refresh queued
    behind it. Started on the first picture and kept: it costs a forked process that sleeps
    between the (daily) pictures. ``workers`` 0 (``[http] parse_workers = 0``) draws in a
    thread instead, like parsing.
    """

    def __init__(self, workers: int) -> None:
        self.pool = ParsePool(min(workers, 1))

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await self.pool.run(fn, *args, **kwargs)
        except WorkerDied as exc:
            # What the picture route and the background build already handle as "not now".
            raise UpstreamError("parse", f"{exc} (a new one starts with the next picture)") from None

    async def close(self) -> None:
        await self.pool.close()


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
        # The snapshot names the source but not its URL: the tiles' identity keeps a picture
        # stitched from another source or mirror from being served after a switch.
        key = f"composite:{self._tiles.identity}:{snapshot.digest}:{snapshot.fetched_at!r}"
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
