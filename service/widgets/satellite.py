"""The satellite box: a picture of the county stitched from cached tiles, and an embeddable map.

Tile sources are data (a URL template, attribution, zoom limit and format): Esri World Imagery
and EOX Sentinel-2 cloudless are built in; an operator adds another in configuration alone.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from service.satellite.tile_math import composite_size, tile_range
from service.widgets.base import WidgetSpec


class TileSourceSettings(BaseModel):
    """One XYZ tile source. ``url`` has ``{z}``, ``{x}``, ``{y}`` (or ``{q}`` for a quadkey)."""

    model_config = ConfigDict(extra="forbid")

    url: str
    attribution: str = Field(min_length=1)
    max_zoom: int = Field(default=19, ge=0, le=24)
    format: Literal["jpeg", "png"] = "jpeg"
    #: Response headers that mark the source's "no imagery here" placeholder, never cached.
    no_tile_headers: dict[str, list[str]] = Field(default_factory=dict)
    #: Shown in the README and logs: some sources forbid commercial use.
    licence_note: str = ""

    @field_validator("url")
    @classmethod
    def _has_coordinates(cls, value: str) -> str:
        if "{q}" not in value and not all(part in value for part in ("{z}", "{x}", "{y}")):
            raise ValueError("url needs {z}, {x} and {y} (or {q})")
        return value


BUILTIN_SOURCES: dict[str, TileSourceSettings] = {
    # Note Esri's z/y/x order. Its terms forbid bulk prefetching: tiles are fetched on demand only.
    "esri": TileSourceSettings(
        url="https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}",
        attribution="Tiles © Esri — Source: Esri, Maxar, Earthstar Geographics, and the GIS User Community",
        max_zoom=19,
        format="jpeg",
        no_tile_headers={"ETag": ['"vvvvvvvvvvvvf"']},
    ),
    "eox": TileSourceSettings(
        url="https://tiles.maps.eox.at/wmts/1.0.0/s2cloudless-2022_3857/default/g/{z}/{y}/{x}.jpg",
        attribution=(
            "Sentinel-2 cloudless - https://s2maps.eu by EOX IT Services GmbH "
            "(Contains modified Copernicus Sentinel data 2022)"
        ),
        max_zoom=14,
        format="jpeg",
        licence_note="CC BY-NC-SA 4.0: non-commercial use only",
    ),
}

#: The county, padded (GUIDE §3): west, south, east, north.
FAMENIN_BBOX = (48.80, 34.85, 49.50, 35.30)


#: Web-Mercator's latitude limit, and the widest picture worth stitching for a sidebar.
MAX_MERCATOR_LATITUDE = 85.0511
MAX_PICTURE_PIXELS = 16384

Longitude = Annotated[float, Field(ge=-180, le=180)]
Latitude = Annotated[float, Field(ge=-MAX_MERCATOR_LATITUDE, le=MAX_MERCATOR_LATITUDE)]


#: Bounds on the stitched picture (a 300 px column needs about a thousand pixels at most).
MAX_COMPOSITE_SIDE = 4096
MAX_COMPOSITE_TILES = 256


class SatelliteOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = "عکس ماهواره‌ای شهرستان فامنین"
    source: str = "esri"
    sources: dict[str, TileSourceSettings] = Field(default_factory=dict)
    bbox: tuple[float, float, float, float] = FAMENIN_BBOX
    min_zoom: int = Field(default=8, ge=0, le=22)
    max_zoom: int = Field(default=16, ge=0, le=22)
    #: Zoom of the static composite image.
    zoom: int = Field(default=11, ge=0, le=18)
    #: Where to draw a marker on the composite (lon, lat); null for none. On the Web-Mercator
    #: world (NaN refused too): it is also the picture's centre, checked again on every refresh.
    marker: tuple[Longitude, Latitude] | None = (48.973, 35.116)
    tile_ttl_seconds: int = Field(default=30 * 86400, gt=0)
    #: In-process tile copies (bytes), in front of the shared cache.
    local_tile_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    #: Upstream tile fetches per minute, all replicas together (the source's terms forbid bulk
    #: fetching); past it a miss gets the expired copy, or 429.
    upstream_tiles_per_minute: int = Field(default=120, ge=1)
    #: Tile misses one client may cause per minute (cached tiles are never counted).
    client_misses_per_minute: int = Field(default=60, ge=1)
    #: Leaflet for the map page. Empty: served by this service itself (readers whose network
    #: filters foreign CDNs still get the map); set both to use a CDN instead.
    leaflet_js_url: str = ""
    leaflet_css_url: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> SatelliteOptions:
        west, south, east, north = self.bbox
        if not (-180 <= west < east <= 180 and -85 <= south < north <= 85):
            raise ValueError("bbox must be [west, south, east, north] with west < east, south < north")
        if self.min_zoom > self.max_zoom:
            raise ValueError("min_zoom is above max_zoom")
        if self.source not in self.all_sources:
            raise ValueError(f"source {self.source!r} is not one of {', '.join(sorted(self.all_sources))}")
        if self.zoom > self.tile_source.max_zoom:
            raise ValueError(f"zoom {self.zoom} is beyond the source's max_zoom {self.tile_source.max_zoom}")
        if bool(self.leaflet_js_url) != bool(self.leaflet_css_url):
            raise ValueError("leaflet_js_url and leaflet_css_url: set both (a CDN) or neither (self-hosted)")
        # The picture is stitched in memory from every tile under the box: a wide box at a deep
        # zoom would be hundreds of upstream fetches and a gigapixel canvas.
        width, height = composite_size(self.bbox, self.zoom)
        x_min, y_min, x_max, y_max = tile_range(self.bbox, self.zoom)
        tiles = (x_max - x_min + 1) * (y_max - y_min + 1)
        if max(width, height) > MAX_COMPOSITE_SIDE or tiles > MAX_COMPOSITE_TILES:
            raise ValueError(
                f"zoom {self.zoom} makes the picture {width}x{height} pixels from {tiles} tiles; at most "
                f"{MAX_COMPOSITE_SIDE} pixels a side and {MAX_COMPOSITE_TILES} tiles (lower zoom or bbox)"
            )
        return self

    @property
    def all_sources(self) -> dict[str, TileSourceSettings]:
        return {**BUILTIN_SOURCES, **self.sources}

    @property
    def tile_source(self) -> TileSourceSettings:
        return self.all_sources[self.source]

    @property
    def served_max_zoom(self) -> int:
        return min(self.max_zoom, self.tile_source.max_zoom)


class SatelliteData(BaseModel):
    # The numbers end up in <img width/height> and the map page: finite and in range, or refused.
    model_config = ConfigDict(allow_inf_nan=False)

    bbox: tuple[Longitude, Latitude, Longitude, Latitude]
    zoom: int = Field(ge=0, le=24)
    center: tuple[Longitude, Latitude]
    image: str
    tiles: str
    attribution: str
    width: int = Field(gt=0, le=MAX_PICTURE_PIXELS)
    height: int = Field(gt=0, le=MAX_PICTURE_PIXELS)
    source: str
    map: str


SATELLITE = WidgetSpec(
    name="satellite",
    title="عکس ماهواره‌ای",
    data_model=SatelliteData,
    default_providers=("tiles",),
    default_refresh_seconds=86400,
    options_model=SatelliteOptions,
    template="widgets/satellite.html",
)
