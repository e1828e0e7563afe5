"""Open-Meteo ``/v1/forecast``: parallel arrays, WMO codes, local times without an offset.

Both the current field names (``current=…``, ``weather_code``) and the legacy ones
(``current_weather``, ``weathercode``, unixtime) are understood. With ``api_key`` set the
customer endpoint is used (the free tier is for non-commercial use only).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from providers.base import Provider
from providers.http import UpstreamError
from providers.place import check_place
from service.widgets.weather import (
    MAX_DAYS,
    Current,
    Location,
    WeatherData,
    WeatherOptions,
    condition,
    day,
)

if TYPE_CHECKING:
    from providers.http import UpstreamSession

FREE_URL = "https://api.open-meteo.com"
CUSTOMER_URL = "https://customer-api.open-meteo.com"
#: Exactly the variables the widget shows.
CURRENT = ",".join(
    (
        "temperature_2m",
        "apparent_temperature",
        "relative_humidity_2m",
        "wind_speed_10m",
        "wind_direction_10m",
        "weather_code",
        "is_day",
    )
)
DAILY = "weather_code,temperature_2m_max,temperature_2m_min,precipitation_probability_max"


class OpenMeteoProvider(Provider):
    id = "openmeteo"
    widget = "weather"
    attribution = "داده‌های هواشناسی: Open-Meteo.com (CC BY 4.0)"
    default_url = FREE_URL

    async def fetch(self, http: UpstreamSession) -> WeatherData:
        options = self.config.widget_options
        assert isinstance(options, WeatherOptions)
        base = self.config.url or FREE_URL
        params = {
            "latitude": f"{options.latitude:.4f}",
            "longitude": f"{options.longitude:.4f}",
            "elevation": f"{options.elevation:.0f}",
            "current": CURRENT,
            "daily": DAILY,
            "timezone": options.timezone,
            "forecast_days": str(MAX_DAYS),
            "wind_speed_unit": "kmh",
        }
        if self.config.api_key:
            if base.rstrip("/") == FREE_URL:
                base = CUSTOMER_URL
            params["apikey"] = self.config.api_key
        try:
            payload = await http.get_json(f"{base.rstrip('/')}/v1/forecast", params=params)
        except UpstreamError as exc:
            raise explained(exc, self.config.api_key) from None
        if isinstance(payload, dict) and payload.get("error"):
            raise UpstreamError("upstream", f"openmeteo: {payload.get('reason', 'error')}")
        try:
            # The JSON was decoded in a worker thread by get_json; the arrays are walked there too.
            now = datetime.fromtimestamp(http.now(), UTC)
            return await asyncio.to_thread(parse_forecast, payload, options, now)
        except OverflowError:
            # A time or number beyond what a datetime or float holds (1e400, say): absurd data.
            raise UpstreamError("validation", "openmeteo: a number out of range in the answer") from None
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise UpstreamError(
                "changed", f"openmeteo: unexpected answer ({type(exc).__name__}: {exc})"
            ) from None


def explained(exc: UpstreamError, api_key: str | None = None) -> UpstreamError:
    """Open-Meteo says what was wrong in ``{"error": true, "reason": "…"}`` (HTTP 400).

    The reason is the upstream's free text: ``UpstreamError`` escapes it and redacts the key.
    """
    try:
        reason = json.loads(exc.body).get("reason") if exc.body else None
    except (ValueError, AttributeError):
        reason = None
    if reason:
        return UpstreamError(
            exc.reason,
            f"openmeteo: HTTP {exc.status}: {reason}",
            retry_after=exc.retry_after,
            secrets=(api_key or "",),
        )
    return exc


def parse_forecast(payload: dict[str, Any], options: WeatherOptions, now: datetime) -> WeatherData:
    """``now`` is the engine's clock: the answer's UTC offset must be the zone's around it."""
    zone = options.zone
    lat, lon = float(payload["latitude"]), float(payload["longitude"])
    check_place("openmeteo", lat, lon, options)
    check_zone(payload, options, now)
    return WeatherData(
        location=Location(name=options.name, latitude=options.latitude, longitude=options.longitude),
        current=_current(payload, zone),
        daily=_daily(payload.get("daily") or {}, payload.get("daily_units") or {}, zone),
    )


def check_zone(payload: dict[str, Any], options: WeatherOptions, now: datetime) -> None:
    """The answer must be in the zone we asked for: its days and hours are cut in that zone.

    An answer in another zone (a mirror that ignores ``timezone``, a cached answer for another
    request) would put readers' days on the wrong dates: it is refused, and the chain moves on.
    """
    answered = payload.get("timezone")
    if answered != options.timezone and not _same_zone(answered, options.zone):
        raise UpstreamError(
            "validation", f"openmeteo: answer is in zone {str(answered)[:40]!r}, not {options.timezone}"
        )
    offset = payload.get("utc_offset_seconds")
    # The offset of the moment it answered: around a clock change either side is right.
    expected = {
        (now + shift).astimezone(options.zone).utcoffset()
        for shift in (-timedelta(days=1), timedelta(0), timedelta(days=1))
    }
    if not isinstance(offset, int | float) or timedelta(seconds=offset) not in expected:
        raise UpstreamError(
            "validation", f"openmeteo: UTC offset {str(offset)[:20]} is not {options.timezone}'s"
        )


def _same_zone(name: Any, zone: ZoneInfo) -> bool:
    """An alias of the configured zone (``Iran`` for ``Asia/Tehran``): the same offsets all year."""
    try:
        answered = ZoneInfo(str(name)[:64])
    except (ValueError, KeyError, OSError):
        return False
    moments = [datetime(2026, month, 1, tzinfo=UTC) for month in (1, 4, 7, 10)]
    return all(m.astimezone(answered).utcoffset() == m.astimezone(zone).utcoffset() for m in moments)


def _current(payload: dict[str, Any], zone: ZoneInfo) -> Current:
    if "current" in payload:
        now, units = payload["current"], payload.get("current_units") or {}
        code = _first(now, "weather_code", "weathercode")
        return Current(
            temperature_c=_first(now, "temperature_2m", "temperature"),
            apparent_temperature_c=now.get("apparent_temperature"),
            humidity_percent=_first(now, "relative_humidity_2m", "relativehumidity_2m"),
            wind_kmh=_first(now, "wind_speed_10m", "windspeed_10m"),
            wind_direction_deg=_first(now, "wind_direction_10m", "winddirection_10m"),
            condition_code=code,
            condition=condition(code),
            is_day=None if now.get("is_day") is None else bool(now["is_day"]),
            observed_at=moment(now["time"], units.get("time"), zone),
        )
    legacy, units = payload["current_weather"], payload.get("current_weather_units") or {}
    code = _first(legacy, "weathercode", "weather_code")
    return Current(
        temperature_c=legacy.get("temperature"),
        wind_kmh=_first(legacy, "windspeed", "wind_speed"),
        wind_direction_deg=_first(legacy, "winddirection", "wind_direction"),
        condition_code=code,
        condition=condition(code),
        is_day=None if legacy.get("is_day") is None else bool(legacy["is_day"]),
        observed_at=moment(legacy["time"], units.get("time"), zone),
    )


def _daily(daily: dict[str, Any], units: dict[str, Any], zone: ZoneInfo) -> list[Any]:
    dates = [_day_of(value, units.get("time"), zone) for value in daily["time"]]
    codes = _column(daily, len(dates), "weather_code", "weathercode")
    highs = _column(daily, len(dates), "temperature_2m_max")
    lows = _column(daily, len(dates), "temperature_2m_min")
    rain = _column(daily, len(dates), "precipitation_probability_max")
    return [day(on, min_c=lows[i], max_c=highs[i], code=codes[i], rain=rain[i]) for i, on in enumerate(dates)]


def _first(values: dict[str, Any], *names: str) -> Any:
    for name in names:
        if values.get(name) is not None:
            return values[name]
    return None


def _column(values: dict[str, Any], length: int, *names: str) -> list[Any]:
    for name in names:
        column = values.get(name)
        if isinstance(column, list):
            if len(column) != length:
                raise ValueError(f"daily.{name} has {len(column)} values for {length} days")
            return column
    return [None] * length


def moment(value: Any, unit: str | None, zone: ZoneInfo) -> datetime:
    """Open-Meteo times are local to the requested zone with no offset, or unixtime."""
    if unit == "unixtime" or isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC).astimezone(zone)
    return datetime.fromisoformat(str(value)).replace(tzinfo=zone)


def _day_of(value: Any, unit: str | None, zone: ZoneInfo) -> date:
    if unit == "unixtime" or isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC).astimezone(zone).date()
    return date.fromisoformat(str(value))
