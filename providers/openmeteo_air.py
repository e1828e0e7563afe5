"""Open-Meteo ``/v1/air-quality``: CAMS air-quality model data, the US AQI and particles.

The answer is shaped like the forecast API's (``current`` and ``hourly`` blocks, local times
without an offset in the zone asked for), so the forecast provider's checks of the zone and its
reading of times are reused. The place is the weather's (``WidgetSpec.place_of``).
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from providers.base import Provider
from providers.http import UpstreamError
from providers.openmeteo import check_zone, explained, moment
from providers.place import check_place
from service.widgets.air import (
    BLOCK_HOURS,
    MAX_AQI,
    MAX_BLOCKS,
    MAX_PM,
    AirData,
    Block,
    Reading,
    index_fields,
)
from service.widgets.weather import Location, WeatherOptions

if TYPE_CHECKING:
    from providers.http import UpstreamSession

FREE_URL = "https://air-quality-api.open-meteo.com"
PATH = "/v1/air-quality"
CURRENT = "us_aqi,pm2_5,pm10"
#: Hourly data starts at midnight today: two days cover the next 24 hours at any time of day.
FORECAST_DAYS = 2
AQI_UNIT = "USAQI"
#: Open-Meteo writes the Greek mu; the micro sign is the same unit.
PM_UNITS = frozenset({"μg/m³", "µg/m³"})
#: The reading is for the hour (or quarter-hour) that is running: one older than this is a cached
#: or stuck answer, one further ahead a clock gone wrong.
MAX_READING_AGE = timedelta(hours=3)
MAX_READING_AHEAD = timedelta(hours=1)
#: An index above 500 is a dust storm past the scale's end, shown as 500+; one this high could only
#: come from particles beyond ``MAX_PM``.
MAX_RAW_AQI = MAX_PM


class OpenMeteoAirProvider(Provider):
    id = "openmeteo_air"
    widget = "air"
    attribution = "داده‌های کیفیت هوا: Copernicus CAMS، از Open-Meteo.com (CC BY 4.0)"
    default_url = FREE_URL

    async def fetch(self, http: UpstreamSession) -> AirData:
        place = self.config.place
        if not isinstance(place, WeatherOptions):
            place = WeatherOptions()
        params = {
            "latitude": f"{place.latitude:.4f}",
            "longitude": f"{place.longitude:.4f}",
            "current": CURRENT,
            "hourly": "us_aqi",
            "timezone": place.timezone,
            "forecast_days": str(FORECAST_DAYS),
        }
        base = (self.config.url or FREE_URL).rstrip("/")
        try:
            payload = await http.get_json(f"{base}{PATH}", params=params)
        except UpstreamError as exc:
            raise explained(exc) from None
        if isinstance(payload, dict) and payload.get("error"):
            raise UpstreamError("upstream", f"openmeteo_air: {payload.get('reason', 'error')}")
        try:
            now = datetime.fromtimestamp(http.now(), UTC)
            return await asyncio.to_thread(parse_air_quality, payload, place, now)
        except OverflowError:
            raise UpstreamError("validation", "openmeteo_air: a number out of range in the answer") from None
        except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise UpstreamError(
                "changed", f"openmeteo_air: unexpected answer ({type(exc).__name__}: {exc})"
            ) from None


def parse_air_quality(payload: Any, place: WeatherOptions, now: datetime) -> AirData:
    """``now`` is the engine's clock: the reading must be of the hour around it."""
    if not isinstance(payload, dict):
        raise UpstreamError("changed", "openmeteo_air: the answer is not a JSON object")
    check_place("openmeteo_air", float(payload["latitude"]), float(payload["longitude"]), place)
    check_zone(payload, place, now)
    zone = place.zone
    current, units = payload["current"], payload.get("current_units") or {}
    _check_units(units, "current_units")
    observed = moment(current["time"], units.get("time"), zone)
    if not now - MAX_READING_AGE <= observed <= now + MAX_READING_AHEAD:
        raise UpstreamError(
            "validation", f"openmeteo_air: the reading is for {observed.isoformat()}, not the hour now"
        )
    aqi = _index(current.get("us_aqi"), "current.us_aqi")
    if aqi["us_aqi"] is None:
        raise UpstreamError("validation", "openmeteo_air: no current index")
    reading = Reading(
        observed_at=observed,
        pm2_5=_number(current.get("pm2_5"), "current.pm2_5"),
        pm10=_number(current.get("pm10"), "current.pm10"),
        **aqi,
    )
    return AirData(
        location=Location(name=place.name, latitude=place.latitude, longitude=place.longitude),
        current=reading,
        forecast=_blocks(payload.get("hourly") or {}, payload.get("hourly_units") or {}, observed, zone),
    )


def _check_units(units: Any, where: str) -> None:
    """Another index (``EAQI``) or another mass unit would print wrong numbers under right words."""
    if not isinstance(units, dict):
        raise UpstreamError("changed", f"openmeteo_air: {where} is not an object")
    aqi_unit = units.get("us_aqi")
    if aqi_unit is not None and aqi_unit != AQI_UNIT:
        raise UpstreamError("changed", f"openmeteo_air: {where}.us_aqi is {str(aqi_unit)[:20]!r}")
    for name in ("pm2_5", "pm10"):
        unit = units.get(name)
        if unit is not None and unit not in PM_UNITS:
            raise UpstreamError("changed", f"openmeteo_air: {where}.{name} is {str(unit)[:20]!r}")


def _blocks(hourly: dict[str, Any], units: dict[str, Any], observed: datetime, zone: ZoneInfo) -> list[Block]:
    """The worst index of each three hours from the hour after the reading's, as far as the data goes."""
    _check_units(units, "hourly_units")
    times, values = hourly.get("time") or [], hourly.get("us_aqi") or []
    if len(times) != len(values):
        raise ValueError(f"hourly: {len(times)} times for {len(values)} values")
    hours = [moment(value, units.get("time"), zone) for value in times]
    if any(later < earlier for earlier, later in zip(hours, hours[1:], strict=False)):
        raise ValueError("hourly: times out of order")
    indexes = [_index(value, f"hourly.us_aqi[{i}]") for i, value in enumerate(values)]
    start = observed.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    blocks = []
    for _ in range(MAX_BLOCKS):
        end = start + timedelta(hours=BLOCK_HOURS)
        # Compared as instants: a block is whole only when the data reaches its last hour.
        if not hours or hours[-1] < end - timedelta(hours=1):
            break
        inside = [index for hour, index in zip(hours, indexes, strict=True) if start <= hour < end]
        known = [index for index in inside if index["us_aqi"] is not None]
        worst = max(known, key=lambda index: (index["us_aqi"], index["beyond_index"]), default=None)
        blocks.append(Block(starts_at=start, ends_at=end, **(worst or index_fields(None))))
        start = end
    return blocks


def _number(value: Any, what: str) -> float | None:
    """A JSON number or null; ``true`` or ``"12"`` is a changed format, NaN or 1e400 absurd."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UpstreamError("changed", f"openmeteo_air: {what} is not a number")
    if not math.isfinite(value):
        raise UpstreamError("validation", f"openmeteo_air: {what} is not finite")
    return float(value)


def _index(value: Any, what: str) -> dict[str, Any]:
    """A US AQI as a whole number on the 0–500 scale, above it held at 500 and marked so."""
    number = _number(value, what)
    if number is None:
        return index_fields(None)
    if not 0 <= number <= MAX_RAW_AQI:
        raise UpstreamError("validation", f"openmeteo_air: {what} {number:g} is out of range")
    whole = math.floor(number + 0.5)  # indexes are reported rounded half up
    return index_fields(min(whole, MAX_AQI), beyond=whole > MAX_AQI)
