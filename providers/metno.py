"""MET Norway Locationforecast 2.0 ``compact``: a GeoJSON timeseries in UTC, ``symbol_code``s.

MET's terms: an identifying User-Agent with a contact, at most four decimals in coordinates, and
no request before ``Expires`` (then ``If-Modified-Since``). Symbols are mapped onto WMO codes so
the widget sees one vocabulary whichever provider answered; their Persian words come from the
symbol itself, which says more than any WMO code does (heavy sleet, light snow showers and thunder).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from providers.base import Provider
from providers.http import UpstreamError
from providers.place import check_place
from service.widgets.weather import (
    MAX_DAYS,
    Current,
    Day,
    Location,
    WeatherData,
    WeatherOptions,
    day,
)

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from providers.http import UpstreamResponse, UpstreamSession

NONE, LIGHT, MODERATE, HEAVY = range(4)


class Symbol(NamedTuple):
    """What one MET symbol means: the WMO code that stands for it, and its Persian words.

    The words come from the symbol itself, not from the code: WMO 4677 has one code for moderate
    and heavy sleet, and none for the kind of precipitation a thunderstorm brings, so words read
    off the code would drop "heavy" or turn "light snow showers and thunder" into bare thunder.
    The code keeps the icon and the JSON's ``condition_code`` in the one vocabulary both
    providers share.
    """

    code: int
    words: str
    #: Orders symbols that share a code (heavy sleet over sleet) when a day's worst is chosen.
    intensity: int = NONE


#: The skies (``_day`` / ``_night`` / ``_polartwilight`` suffixes removed before lookup).
_SKIES: dict[str, Symbol] = {
    "clearsky": Symbol(0, "صاف"),
    "fair": Symbol(1, "عمدتاً صاف"),
    "partlycloudy": Symbol(2, "نیمه‌ابری"),
    "cloudy": Symbol(3, "ابری"),
    "fog": Symbol(45, "مه"),
}
#: Each kind light / moderate / heavy, in the words the WMO codes use where a code means exactly
#: that (so both providers read alike), and the nearest WMO 4677 code: sleet is rain and snow
#: mixed (68/69, showers 83/84), never freezing rain; 69, 84 and 86 are "moderate or heavy".
_PRECIPITATION: dict[str, Symbol] = {
    "lightrain": Symbol(61, "باران سبک", LIGHT),
    "rain": Symbol(63, "باران", MODERATE),
    "heavyrain": Symbol(65, "باران سنگین", HEAVY),
    "lightrainshowers": Symbol(80, "رگبار سبک", LIGHT),
    "rainshowers": Symbol(81, "رگبار", MODERATE),
    "heavyrainshowers": Symbol(82, "رگبار شدید", HEAVY),
    "lightsleet": Symbol(68, "برف و باران سبک", LIGHT),
    "sleet": Symbol(69, "برف و باران", MODERATE),
    "heavysleet": Symbol(69, "برف و باران سنگین", HEAVY),
    "lightsleetshowers": Symbol(83, "رگبار برف و باران سبک", LIGHT),
    "sleetshowers": Symbol(84, "رگبار برف و باران", MODERATE),
    "heavysleetshowers": Symbol(84, "رگبار برف و باران سنگین", HEAVY),
    "lightsnow": Symbol(71, "برف سبک", LIGHT),
    "snow": Symbol(73, "برف", MODERATE),
    "heavysnow": Symbol(75, "برف سنگین", HEAVY),
    "lightsnowshowers": Symbol(85, "رگبار برف سبک", LIGHT),
    "snowshowers": Symbol(86, "رگبار برف", MODERATE),
    "heavysnowshowers": Symbol(86, "رگبار برف سنگین", HEAVY),
}
#: WMO 4677: a slight or moderate thunderstorm with rain and/or snow, and a heavy one.
THUNDER = 95
HEAVY_THUNDER = 97


def _with_thunder(symbol: Symbol) -> Symbol:
    """MET's ``…andthunder``: the same precipitation, intensity kept, with thunder."""
    code = HEAVY_THUNDER if symbol.intensity == HEAVY else THUNDER
    return Symbol(code, f"{symbol.words} با رعد و برق", symbol.intensity)


#: Every symbol of MET's published legend, by its stem.
SYMBOLS: dict[str, Symbol] = {
    **_SKIES,
    **_PRECIPITATION,
    **{f"{stem}andthunder": _with_thunder(symbol) for stem, symbol in _PRECIPITATION.items()},
}
#: MET's legend (and its API) spells these two with a doubled "s"; the correct spelling above is
#: kept too, in case MET ever fixes them.
SYMBOLS["lightssleetshowersandthunder"] = SYMBOLS["lightsleetshowersandthunder"]
SYMBOLS["lightssnowshowersandthunder"] = SYMBOLS["lightsnowshowersandthunder"]
#: A local day whose first sample is later than this, or last earlier than the next, is partial
#: (six-hourly days, 03:30 … 21:30 in Tehran, are whole).
PARTIAL_FIRST_HOUR = 6
PARTIAL_LAST_HOUR = 18
KMH_PER_MS = 3.6
#: ``next_6_hours`` covers the six hours from its step.
SIX_HOURS = timedelta(hours=6)


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


def meaning(symbol: str | None) -> Symbol | None:
    """A ``symbol_code`` (``heavysleetshowers_night``) read without its time-of-day suffix."""
    if not symbol:
        return None
    return SYMBOLS.get(symbol.split("_")[0])


def wmo_code(symbol: str | None) -> int | None:
    """The WMO code a ``symbol_code`` stands for (None when unknown)."""
    found = meaning(symbol)
    return None if found is None else found.code


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
    said = meaning(symbol)
    return Current(
        temperature_c=temperature,
        apparent_temperature_c=apparent_temperature(temperature, humidity, wind_ms),
        humidity_percent=humidity,
        wind_kmh=None if wind_ms is None else round(wind_ms * KMH_PER_MS, 1),
        wind_direction_deg=_number(details, "wind_from_direction"),
        condition_code=None if said is None else said.code,
        condition=None if said is None else said.words,
        is_day=_is_day(symbol, when.astimezone(zone)),
        observed_at=when.astimezone(zone),
    )


@dataclass
class _Seen:
    """What the timeseries says of one local day."""

    lows: list[float] = field(default_factory=list)
    highs: list[float] = field(default_factory=list)
    #: Local hours the day is covered at: its instants, and the ends of six-hour periods in it.
    hours: list[int] = field(default_factory=list)
    daytime: list[Symbol] = field(default_factory=list)
    anytime: list[Symbol] = field(default_factory=list)


def _daily(series: list[tuple[datetime, dict[str, Any]]], now: datetime, zone: ZoneInfo) -> list[Day]:
    """Local-day min/max from the instants and six-hour extremes; the condition is the day's worst
    daytime symbol."""
    seen: dict[date, _Seen] = {}
    for when, data in series:
        local = when.astimezone(zone)
        its_day = seen.setdefault(local.date(), _Seen())
        temperature = _number(data["instant"]["details"], "air_temperature")
        if temperature is not None:
            its_day.lows.append(temperature)
            its_day.highs.append(temperature)
            its_day.hours.append(local.hour)
        _add_six_hours(its_day, when, data, zone)
        said = meaning(_symbol(data, "next_6_hours") or _symbol(data, "next_1_hours"))
        if said is not None:
            its_day.anytime.append(said)
            if 6 <= local.hour < 18:
                its_day.daytime.append(said)
    today = now.astimezone(zone).date()
    days = sorted(d for d, s in seen.items() if d >= today and s.lows and s.highs)[:MAX_DAYS]
    result = []
    for on in days:
        of_day = seen[on]
        worst = max(of_day.daytime or of_day.anytime, key=_severity, default=None)
        result.append(
            day(
                on,
                min_c=min(of_day.lows),
                max_c=max(of_day.highs),
                code=None if worst is None else worst.code,
                words=None if worst is None else worst.words,
                rain=None,  # compact gives amounts, not probabilities
                # The night's low and the afternoon's high need the day's start and end.
                partial=min(of_day.hours) > PARTIAL_FIRST_HOUR or max(of_day.hours) < PARTIAL_LAST_HOUR,
            )
        )
    return result


def _add_six_hours(its_day: _Seen, when: datetime, data: dict[str, Any], zone: ZoneInfo) -> None:
    """The extremes of the six hours from ``when``, where the answer gives them, into its day.

    MET's ``complete`` answer carries ``air_temperature_min``/``_max`` per six hours; ``compact``
    does not (the instants are then all there is). Between instants six hours apart the night's
    low and the afternoon's high fall between steps: the extremes catch them. A period that
    crosses local midnight belongs to neither day, so it is left out.
    """
    details = (data.get("next_6_hours") or {}).get("details") or {}
    low = _number(details, "air_temperature_min")
    high = _number(details, "air_temperature_max")
    if low is None and high is None:
        return
    if low is not None and high is not None and low > high:
        raise UpstreamError("validation", f"metno: six-hour minimum {low} above maximum {high}")
    start = when.astimezone(zone)
    end = (when + SIX_HOURS).astimezone(zone)
    midnight = datetime.combine(start.date() + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    if end > midnight:
        return
    if low is not None:
        its_day.lows.append(low)
    if high is not None:
        its_day.highs.append(high)
    its_day.hours.append(24 if end == midnight else end.hour)


def _severity(symbol: Symbol) -> tuple[int, int]:
    """A day's worst symbol: the highest WMO code, then the heavier of symbols sharing it."""
    return symbol.code, symbol.intensity


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
