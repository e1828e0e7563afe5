"""BrsApi.ir ``Api/Market/Gold_Currency.php``: JSON lists quoted in Toman (the ounce in dollars)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from providers.base import Provider
from providers.http import UpstreamError
from providers.keyed_prices import epoch_seconds, get_keyed_json, to_rial, updated_at
from providers.redaction import printable
from providers.text import clean_title, parse_decimal
from service.widgets.prices import TITLES, PriceItem, PricesData, Unit, configured_items

if TYPE_CHECKING:
    from providers.http import UpstreamSession

#: BrsApi symbol → our (tgju) key.
SYMBOLS = {
    "USD": "price_dollar_rl",
    "EUR": "price_eur",
    "GBP": "price_gbp",
    "AED": "price_aed",
    "TRY": "price_try",
    "IR_COIN_EMAMI": "sekee",
    "IR_COIN_BAHAR": "sekeb",
    "IR_COIN_HALF": "nim",
    "IR_COIN_QUARTER": "rob",
    "IR_COIN_1G": "gerami",
    "IR_GOLD_18K": "geram18",
    "IR_GOLD_24K": "geram24",
    "IR_GOLD_MELTED": "mesghal",  # the mesghal of melted gold, as tgju's "mesghal"
    "XAUUSD": "ons",
}
#: The ``unit`` field as BrsApi writes it → (our unit, Rial per upstream unit).
UNITS: dict[str, tuple[Unit, int]] = {"تومان": ("IRR", 10), "ریال": ("IRR", 1), "دلار": ("USD", 1)}


class BrsApiProvider(Provider):
    id = "brsapi"
    widget = "prices"
    attribution = "منبع: BrsApi.ir"
    default_url = "https://BrsApi.ir"
    requires_api_key = True

    async def fetch(self, http: UpstreamSession) -> PricesData:
        payload = await get_keyed_json(http, self, "/Api/Market/Gold_Currency.php", "key")
        lists = ("gold", "currency")
        if not isinstance(payload, dict) or not any(isinstance(payload.get(k), list) for k in lists):
            raise UpstreamError("changed", "brsapi: no 'gold' or 'currency' list in the answer")
        wanted = configured_items(self.config.widget_options)
        items: list[PriceItem] = []
        problems: list[str] = []
        for entry in [*payload.get("gold", []), *payload.get("currency", [])]:
            key = SYMBOLS.get(str(entry.get("symbol"))) if isinstance(entry, dict) else None
            if key is None or key not in wanted:
                continue
            try:
                items.append(_item(key, entry, http.now()))
            except (ValueError, TypeError, KeyError, ArithmeticError, ValidationError) as exc:
                # Logged by the engine: upstream text, so one escaped line.
                problems.append(printable(f"{key}: {exc}"))
        if not items and not problems:
            raise UpstreamError("changed", "brsapi: none of the configured items in the answer")
        if not items:
            raise UpstreamError("validation", f"brsapi: every item rejected ({_joined(problems)})")
        return PricesData(items=items, problems=problems)


def _item(key: str, entry: dict[str, Any], now: float) -> PriceItem:
    unit_name = clean_title(str(entry.get("unit", "")))
    if unit_name not in UNITS:
        raise ValueError(f"unknown unit {unit_name!r}")
    unit, rial_per_unit = UNITS[unit_name]
    if (unit == "USD") != (key == "ons"):
        raise ValueError(f"unexpected unit {unit_name!r}")
    change = _amount(entry.get("change_value", 0), unit, rial_per_unit)
    percent = float(parse_decimal(str(entry.get("change_percent", 0))))
    return PriceItem(
        key=key,
        title=TITLES.get(key) or clean_title(str(entry.get("name", key))),
        price=_amount(entry["price"], unit, rial_per_unit),
        unit=unit,
        change=change,
        change_percent=percent,
        direction="up" if change > 0 else "down" if change < 0 else "flat",
        updated_at=updated_at(epoch_seconds(entry["time_unix"]), now),
    )


def _amount(value: Any, unit: Unit, rial_per_unit: int) -> int | float:
    """Toman (or Rial) as whole Rial; dollars keep their cents."""
    amount = parse_decimal(str(value))
    return float(round(amount, 2)) if unit == "USD" else to_rial(amount, rial_per_unit)


def _joined(problems: list[str]) -> str:
    """Problems for an error message: the first few, each cut short (they quote upstream text)."""
    shown = [problem[:120] for problem in problems[:3]]
    return "; ".join(shown) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
