"""Web-Mercator arithmetic for a bounding box: which tiles cover it, and where it lies in pixels."""

from __future__ import annotations

import math

import mercantile

TILE_SIZE = 256
BBox = tuple[float, float, float, float]


def tile_range(bbox: BBox, zoom: int) -> tuple[int, int, int, int]:
    """``(x_min, y_min, x_max, y_max)`` of the tiles covering ``bbox`` at ``zoom`` (inclusive)."""
    west, south, east, north = bbox
    top_left = mercantile.tile(west, north, zoom)
    bottom_right = mercantile.tile(east, south, zoom)
    return top_left.x, top_left.y, bottom_right.x, bottom_right.y


def covers(bbox: BBox, z: int, x: int, y: int) -> bool:
    x_min, y_min, x_max, y_max = tile_range(bbox, z)
    return x_min <= x <= x_max and y_min <= y <= y_max


def world_pixel(lon: float, lat: float, zoom: int) -> tuple[float, float]:
    """Position in the whole world's pixel grid at ``zoom``."""
    scale = TILE_SIZE * 2**zoom
    x = (lon + 180.0) / 360.0 * scale
    sin = math.sin(math.radians(lat))
    y = (0.5 - math.log((1 + sin) / (1 - sin)) / (4 * math.pi)) * scale
    return x, y


def pixel_box(bbox: BBox, zoom: int) -> tuple[int, int, int, int]:
    """``bbox`` in world pixels: left, top, right, bottom (right/bottom exclusive)."""
    west, south, east, north = bbox
    left, top = world_pixel(west, north, zoom)
    right, bottom = world_pixel(east, south, zoom)
    return math.floor(left), math.floor(top), math.ceil(right), math.ceil(bottom)


def composite_size(bbox: BBox, zoom: int) -> tuple[int, int]:
    left, top, right, bottom = pixel_box(bbox, zoom)
    return right - left, bottom - top
