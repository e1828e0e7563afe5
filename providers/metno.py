"""MET Norway Locationforecast 2.0 ``compact``: a GeoJSON timeseries in UTC, ``symbol_code``s.

MET's terms: an identifying User-Agent with a contact, at most four decimals in coordinates, and
no request before ``Expires`` (then ``If-Modified-Since``). Symbols are mapped onto WMO codes so
the widget sees one vocabulary whichever provider answered.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

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
    from zoneinfo import ZoneInfo

    from providers.http import UpstreamResponse, UpstreamSession

#: symbol_code (without _day/_night/_polartwilight) → WMO weather code.
SYMBOLS: dict[str, int] = {
    "clearsky": 0,
    "fair": 1,
    "partlycloudy": 2,
    "cloudy": 3,
    "fog": 45,
    "lightrain": 61,
    "rain": 63,
    "heavyrain": 65,
    "lightsleet": 68,
    "sleet": 69,
    "heavysleet": 69,
    "lightsnow": 71,
    "snow": 73,
    "heavysnow": 75,
    "lightrainshowers": 80,
    "rainshowers": 81,
    "heavyrainshowers": 82,
    "lightsleetshowers": 83,
    "sleetshowers": 84,
    "heavysleetshowers": 84,
    "lightsnowshowers": 85,
    "snowshowers": 85,
    "heavysnowshowers": 86,
}
THUNDER = 95
#: A local day whose first sample is later than this, or last earlier than the next, is partial
#: (six-hourly days, 03:30 … 21:30 in Tehran, are whole).
PARTIAL_FIRST_HOUR = 6
PARTIAL_LAST_HOUR = 18
KMH_PER_MS = 3.6


class MetNoProvider(Provider):
    id = "metno"
    widget = "weather"
    attribution = "داده‌های هواشناسی: MET Norway (CC BY 4.0)"
    default_url = "https://api.met.no"

    def config_error(self) -> str | None:
        agent = self._user_agent().strip()
        if not agent:
            return "MET Norway needs an identifying user_agent with a contact (a site or an e-mail)"
        if "@" not in agent and "http" not in agent and "." not in agent.split("(")[-1]:
            return f"user_agent {agent!r} names no contact (add a site or an e-mail)"
        return None

    def _user_agent(self) -> str:
        return self.config.user_agent if self.config.user_agent is not None else self.config.http_user_agent

    async def fetch(self, http: UpstreamSession) -> WeatherData:
        options = self.config.widget_options
        assert isinstance(options, WeatherOptions)
        response = await http.get(
            f"{(self.config.url or '').rstrip('/')}/weatherapi/locationforecast/2.0/compact",
            params={
                "lat": f"{round(options.latitude, 4):.4f}".rstrip("0").rstrip("."),
                "lon": f"{round(options.longitude, 4):.4f}".rstrip("0").rstrip("."),
                "altitude": f"{options.elevation:.0f}",
            },
            headers={"User-Agent": self._user_agent(), "Accept": "application/json"},
            honour_expires=True,
        )
        # Decoding and walking a week of timeseries is CPU work: off the event loop.
        return await asyncio.to_thread(
            read_compact, response, options, datetime.fromtimestamp(http.now(), UTC)
        )


def read_compact(response: UpstreamResponse, options: WeatherOptions, now: datetime) -> WeatherData:
    """Decode and parse MET's answer (blocking: run it in a worker thread)."""
    try:
        return parse_compact(response.json(), options, now=now)
    except OverflowError:
        raise UpstreamError("validation", "metno: a number out of range in the answer") from None
    except (KeyError, TypeError, IndexError) as exc:
        raise UpstreamError("changed", f"metno: unexpected answer ({type(exc).__name__}: {exc})") from None


def wmo_code(symbol: str | None) -> int | None:
    if not symbol:
        return None
    base = symbol.split("_")[0]
    if "thunder" in base:
        return THUNDER
    return SYMBOLS.get(base)


def parse_compact(payload: dict[str, Any], options: WeatherOptions, *, now: datetime) -> WeatherData:
    zone = options.zone
    lon, lat = payload["geometry"]["coordinates"][:2]
    check_place("metno", float(lat), float(lon), options)
    series = [
        (datetime.fromisoformat(step["time"].replace("Z", "+00:00")), step["data"])
        for step in payload["properties"]["timeseries"]
    ]
    if not series:
        raise UpstreamError("changed", "metno: empty timeseries")
    return WeatherData(
        location=Location(name=options.name, latitude=options.latitude, longitude=options.longitude),
        current=_current(series, now, zone),
        daily=_daily(series, now, zone),
    )


def _current(series: list[tuple[datetime, dict[str, Any]]], now: datetime, zone: ZoneInfo) -> Current:
    # The latest step not in the future is "now"; before the first step, the first one.
    past = [item for item in series if item[0] <= now]
    when, data = past[-1] if past else series[0]
    details = data["instant"]["details"]
    symbol = _symbol(data, "next_1_hours") or _symbol(data, "next_6_hours")
    temperature = _number(details, "air_temperature")
    humidity = _number(details, "relative_humidity")
    wind_ms = _number(details, "wind_speed")
    code = wmo_code(symbol)
    return Current(
        temperature_c=temperature,
        apparent_temperature_c=apparent_temperature(temperature, humidity, wind_ms),
        humidity_percent=humidity,
        wind_kmh=None if wind_ms is None else round(wind_ms * KMH_PER_MS, 1),
        wind_direction_deg=_number(details, "wind_from_direction"),
        condition_code=code,
        condition=condition(code),
        is_day=_is_day(symbol, when.astimezone(zone)),
        observed_at=when.astimezone(zone),
    )


def _daily(series: list[tuple[datetime, dict[str, Any]]], now: datetime, zone: ZoneInfo) -> list[Any]:
    """Local-day min/max from the instants; the day's condition is its worst daytime symbol."""
    temperatures: dict[date, list[float]] = defaultdict(list)
    hours: dict[date, list[int]] = defaultdict(list)
    daytime_codes: dict[date, list[int]] = defaultdict(list)
    any_codes: dict[date, list[int]] = defaultdict(list)
    for when, data in series:
        local = when.astimezone(zone)
        temperature = _number(data["instant"]["details"], "air_temperature")
        if temperature is not None:
            temperatures[local.date()].append(temperature)
            hours[local.date()].append(local.hour)
        code = wmo_code(_symbol(data, "next_6_hours") or _symbol(data, "next_1_hours"))
        if code is not None:
            any_codes[local.date()].append(code)
            if 6 <= local.hour < 18:
                daytime_codes[local.date()].append(code)
    today = now.astimezone(zone).date()
    days = sorted(d for d in temperatures if d >= today)[:MAX_DAYS]
    result = []
    for on in days:
        codes = daytime_codes.get(on) or any_codes.get(on) or []
        result.append(
            day(
                on,
                min_c=min(temperatures[on]),
                max_c=max(temperatures[on]),
                code=max(codes) if codes else None,
                rain=None,  # compact gives amounts, not probabilities
                # The night's low and the afternoon's high need the day's start and end.
                partial=min(hours[on]) > PARTIAL_FIRST_HOUR or max(hours[on]) < PARTIAL_LAST_HOUR,
            )
        )
    return result


def _number(details: dict[str, Any], name: str) -> float | None:
    """A measurement as a finite number, or None when absent.

    NaN must be refused here rather than left to the model: ``min`` and ``max`` over the day's
    temperatures would silently skip it, and arithmetic on it would hide where it came from.
    """
    value = details.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UpstreamError("validation", f"metno: {name} is not a finite number")
    return float(value)


def _symbol(data: dict[str, Any], period: str) -> str | None:
    summary = (data.get(period) or {}).get("summary") or {}
    value = summary.get("symbol_code")
    return str(value) if value else None


def _is_day(symbol: str | None, local: datetime) -> bool:
    if symbol and symbol.endswith("_night"):
        return False
    if symbol and (symbol.endswith("_day") or symbol.endswith("_polartwilight")):
        return True
    return 6 <= local.hour < 18


def apparent_temperature(
    temperature: float | None, humidity: float | None, wind_ms: float | None
) -> float | None:
    """Steadman's apparent temperature as the Australian BoM gives it (Open-Meteo uses it too)."""
    if temperature is None or humidity is None or wind_ms is None:
        return None
    if not (-100 < temperature < 100 and 0 <= humidity <= 100 and 0 <= wind_ms < 200):
        # Out of any weather's range: the model refuses the inputs themselves; computing on them
        # could overflow math.exp (a temperature near -237.7 °C divides by almost zero).
        return None
    vapour_hpa = humidity / 100 * 6.105 * math.exp(17.27 * temperature / (237.7 + temperature))
    return round(temperature + 0.33 * vapour_hpa - 0.70 * wind_ms - 4.00, 1)
