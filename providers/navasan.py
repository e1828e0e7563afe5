"""navasan.tech ``latest/``: ``{KEY: {value, change, timestamp, date}}``, Toman — coins in thousands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from providers.base import Provider
from providers.http import UpstreamError
from providers.keyed_prices import epoch_seconds, get_keyed_json, to_rial, updated_at
from providers.redaction import printable
from providers.text import parse_decimal
from service.widgets.prices import TITLES, PriceItem, PricesData, configured_items

if TYPE_CHECKING:
    from providers.http import UpstreamSession

TOMAN = 10
THOUSAND_TOMAN = 10_000

#: navasan key → (our key, Rial per navasan unit). Coins and the mesghal are quoted in
#: thousands of Toman (sekkeh 14350 = 14,350,000 Toman), everything else in Toman.
SYMBOLS: dict[str, tuple[str, int]] = {
    "usd": ("price_dollar_rl", TOMAN),
    "eur": ("price_eur", TOMAN),
    "gbp": ("price_gbp", TOMAN),
    "aed": ("price_aed", TOMAN),
    "try": ("price_try", TOMAN),
    "sekkeh": ("sekee", THOUSAND_TOMAN),
    "bahar": ("sekeb", THOUSAND_TOMAN),
    "nim": ("nim", THOUSAND_TOMAN),
    "rob": ("rob", THOUSAND_TOMAN),
    "gerami": ("gerami", THOUSAND_TOMAN),
    "18ayar": ("geram18", TOMAN),
    "abshodeh": ("mesghal", THOUSAND_TOMAN),
}


class NavasanProvider(Provider):
    id = "navasan"
    widget = "prices"
    attribution = "منبع: navasan.tech"
    default_url = "https://api.navasan.tech"
    requires_api_key = True

    async def fetch(self, http: UpstreamSession) -> PricesData:
        payload = await get_keyed_json(http, self, "/latest/", "api_key")
        if not isinstance(payload, dict):
            raise UpstreamError("changed", "navasan: the answer is not a JSON object")
        wanted = configured_items(self.config.widget_options)
        items: list[PriceItem] = []
        problems: list[str] = []
        for symbol, (key, rial_per_unit) in SYMBOLS.items():
            entry = payload.get(symbol)
            if key not in wanted or not isinstance(entry, dict):
                continue
            try:
                items.append(_item(key, entry, rial_per_unit, http.now()))
            except (ValueError, TypeError, KeyError, ArithmeticError, ValidationError) as exc:
                # Logged by the engine: upstream text, so one escaped line.
                problems.append(printable(f"{key}: {exc}"))
        if not items and not problems:
            raise UpstreamError("changed", "navasan: none of the configured items in the answer")
        if not items:
            raise UpstreamError("validation", f"navasan: every item rejected ({'; '.join(problems)})")
        return PricesData(items=items, problems=problems)


def _item(key: str, entry: dict[str, Any], rial_per_unit: int, now: float) -> PriceItem:
    change = to_rial(parse_decimal(str(entry.get("change", 0))), rial_per_unit)
    price = to_rial(parse_decimal(str(entry["value"])), rial_per_unit)
    previous = price - change
    return PriceItem(
        key=key,
        title=TITLES[key],
        price=price,
        unit="IRR",
        change=change,
        change_percent=round(change / previous * 100, 2) if previous > 0 else 0.0,
        direction="up" if change > 0 else "down" if change < 0 else "flat",
        updated_at=updated_at(epoch_seconds(entry["timestamp"]), now),
    )
