"""Built-in providers, registered explicitly (third-party ones come through entry points)."""

from providers.base import Provider
from providers.brsapi import BrsApiProvider
from providers.calendar import CalendarProvider
from providers.feed import FeedProvider
from providers.links import LinksProvider
from providers.metno import MetNoProvider
from providers.navasan import NavasanProvider
from providers.openmeteo import OpenMeteoProvider
from providers.openmeteo_air import OpenMeteoAirProvider
from providers.prayer import PrayerTimesProvider
from providers.tgju import TgjuProvider
from providers.tiles import XyzTileProvider

BUILTIN_PROVIDERS: tuple[type[Provider], ...] = (
    LinksProvider,
    TgjuProvider,
    BrsApiProvider,
    NavasanProvider,
    OpenMeteoProvider,
    MetNoProvider,
    OpenMeteoAirProvider,
    XyzTileProvider,
    PrayerTimesProvider,
    CalendarProvider,
    FeedProvider,
)
