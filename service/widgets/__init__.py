"""Widget definitions: what each widget's data looks like, its options and its defaults."""

from service.widgets.air import AIR
from service.widgets.base import NoOptions, WidgetSpec
from service.widgets.date import DATE
from service.widgets.links import LINKS
from service.widgets.news import NEWS
from service.widgets.prayer import PRAYER
from service.widgets.prices import PRICES
from service.widgets.satellite import SATELLITE
from service.widgets.weather import WEATHER

BUILTIN_WIDGETS: tuple[WidgetSpec, ...] = (WEATHER, AIR, SATELLITE, PRICES, PRAYER, DATE, LINKS, NEWS)

__all__ = ["BUILTIN_WIDGETS", "NoOptions", "WidgetSpec"]
