"""Where a forecast is for: both weather sources answer with the point they used, and a forecast
for a point far from the one asked for is for the wrong place."""

from __future__ import annotations

import math

from providers.http import UpstreamError
from service.widgets.weather import WeatherOptions

#: A forecast for a point further than this from the one asked for is for the wrong place.
MAX_LOCATION_ERROR_KM = 25.0


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def check_place(source: str, latitude: float, longitude: float, options: WeatherOptions) -> None:
    """A forecast for a point far from the one asked for is for the wrong place: refuse it."""
    # NaN would slip through the distance check (every comparison with NaN is false).
    if not (math.isfinite(latitude) and math.isfinite(longitude)) or not (
        -90 <= latitude <= 90 and -180 <= longitude <= 180
    ):
        raise UpstreamError("validation", f"{source}: forecast coordinates out of range")
    if distance_km(latitude, longitude, options.latitude, options.longitude) > MAX_LOCATION_ERROR_KM:
        raise UpstreamError(
            "validation", f"{source}: forecast is for {latitude}, {longitude}, not the place asked for"
        )
