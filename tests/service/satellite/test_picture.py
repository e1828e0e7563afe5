"""The picture reads well in a 300 px column: its attribution band and its town marker."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageFont

from service.satellite.composite import FONT_PATH, TEXT_PIXELS, band_lines, compose, drawable, font_glyphs
from service.satellite.tile_math import pixel_box, tile_range, world_pixel
from service.widgets.satellite import BUILTIN_SOURCES, SatelliteOptions
from tests.support.tiles import jpeg

COLUMN = 300
GREY = (90, 110, 90)


def picture(options: SatelliteOptions, attribution: str) -> Image.Image:
    x_min, y_min, x_max, y_max = tile_range(options.bbox, options.zoom)
    placed = [(x, y, jpeg(GREY)) for y in range(y_min, y_max + 1) for x in range(x_min, x_max + 1)]
    return Image.open(io.BytesIO(compose(placed, options, attribution))).convert("RGB")


def in_the_column(image: Image.Image) -> Image.Image:
    return image.resize((COLUMN, round(COLUMN * image.height / image.width)), Image.Resampling.LANCZOS)


def text_rows(image: Image.Image, top: int) -> list[int]:
    """Rows below ``top`` with a bright (text) pixel on them."""
    return [
        y
        for y in range(top, image.height)
        if any(min(image.getpixel((x, y))) > 170 for x in range(image.width))
    ]


@pytest.mark.parametrize("source", sorted(BUILTIN_SOURCES))
def test_the_font_has_every_glyph_of_each_built_in_attribution(source):
    attribution = BUILTIN_SOURCES[source].attribution
    assert [ch for ch in attribution if ord(ch) not in font_glyphs()] == []
    assert drawable(attribution) == attribution


def test_characters_the_font_lacks_are_left_out_never_drawn_as_boxes():
    # Persian would need shaping and right-to-left order: it is not drawn at all.
    assert drawable("Tiles © Esri — عکس فامنین ☃ 2024") == "Tiles © Esri — 2024"


@pytest.mark.parametrize("source", sorted(BUILTIN_SOURCES))
def test_the_attribution_is_whole_and_legible_in_a_300_px_column(source):
    options = SatelliteOptions(source=source, zoom=11, marker=None)
    attribution = BUILTIN_SOURCES[source].attribution
    image = picture(options, attribution)
    shown = in_the_column(image)

    rows = text_rows(shown, top=shown.height // 2)
    first_line = [y for y in rows if y <= rows[0] + 14]
    lines = band_lines(attribution, _font_for(image.width), image.width - 2 * 14)

    assert " ".join(lines) == attribution  # wrapped, not cut
    # Capitals and descenders of an 11 px font: at least 8 column pixels from top to bottom.
    assert max(first_line) - min(first_line) + 1 >= 8
    assert rows[-1] < shown.height - 1  # the band's padding keeps text off the edge


def _font_for(width: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT_PATH, size=round(TEXT_PIXELS * width / COLUMN))


def test_the_town_marker_is_visible_in_a_300_px_column():
    options = SatelliteOptions()
    assert options.marker is not None
    shown = in_the_column(picture(options, "Tiles © Esri"))

    left, top, right, _ = pixel_box(options.bbox, options.zoom)
    scale = COLUMN / (right - left)
    px, py = world_pixel(options.marker[0], options.marker[1], options.zoom)
    cx, cy = round((px - left) * scale), round((py - top) * scale)
    red = [
        (x, y)
        for x in range(cx - 8, cx + 9)
        for y in range(cy - 8, cy + 9)
        if (lambda p: p[0] > 170 and p[1] < 90 and p[2] < 90)(shown.getpixel((x, y)))
    ]
    white = [
        (x, y)
        for x in range(cx - 8, cx + 9)
        for y in range(cy - 8, cy + 9)
        if min(shown.getpixel((x, y))) > 190
    ]
    assert len(red) >= 12  # a dot about 8 px across, not a speck
    assert white  # with a white ring, to stand out on dark and red imagery alike
