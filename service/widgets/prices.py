"""The prices box: gold, coin and currency prices, held in integer Rial whatever the source's unit.

Item ids are tgju's keys; other providers map their symbols onto them. Sanity checks that need the
last good snapshot (absurd jumps, items a partial fetch did not bring) live in ``reconcile``, which
the engine calls before a snapshot is accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import jdatetime
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from service.persian import TEHRAN
from service.spelling import closest
from service.widgets.base import QueryError, WidgetSpec
from service.widgets.local_day import local_today

#: Persian titles of the keys a local news box shows, in the order it shows them.
TITLES: dict[str, str] = {
    "price_dollar_rl": "دلار آمریکا",
    "price_eur": "یورو",
    "price_gbp": "پوند انگلیس",
    "price_aed": "درهم امارات",
    "price_try": "لیر ترکیه",
    "sekee": "سکه امامی",
    "sekeb": "سکه بهار آزادی",
    "nim": "نیم سکه",
    "rob": "ربع سکه",
    "gerami": "سکه گرمی",
    "geram18": "طلای ۱۸ عیار (گرم)",
    "geram24": "طلای ۲۴ عیار (گرم)",
    "mesghal": "مثقال طلا",
    "ons": "انس طلا",
}
DEFAULT_ITEMS: tuple[str, ...] = tuple(TITLES)
#: Offered, not shown by default (add them to ``[widgets.prices] items``): what tgju's pages also
#: carry that readers of an Iranian news site look for. Keys as tgju writes them.
OPTIONAL_TITLES: dict[str, str] = {
    "oil_brent": "نفت برنت (بشکه)",
    "crypto-tether-irr": "تتر",
    "crypto-bitcoin": "بیت‌کوین",
    "silver_925": "نقره ۹۲۵ (گرم)",
    "silver_999": "نقره ۹۹۹ (گرم)",
}
TITLES.update(OPTIONAL_TITLES)
#: What a row of a 300 px box calls an item: one line at 13 px, the way Iranian news sidebars and
#: tgju's own info bar name them. The full title stays in the JSON (``title``) and in the row's
#: ``title`` attribute; a key without a short name shows its title.
SHORT_TITLES: dict[str, str] = {
    "price_dollar_rl": "دلار",
    "price_eur": "یورو",
    "price_gbp": "پوند",
    "price_aed": "درهم",
    "price_try": "لیر",
    "sekee": "سکه امامی",
    "sekeb": "بهار آزادی",
    "nim": "نیم سکه",
    "rob": "ربع سکه",
    "gerami": "سکه گرمی",
    "geram18": "طلای ۱۸ عیار",
    "geram24": "طلای ۲۴ عیار",
    "mesghal": "مثقال طلا",
    "ons": "انس طلا",
    "oil_brent": "نفت برنت",
    "crypto-tether-irr": "تتر",
    "crypto-bitcoin": "بیت‌کوین",
    "silver_925": "نقره ۹۲۵",
    "silver_999": "نقره ۹۹۹",
}
#: Quoted in US dollars upstream (with cents); everything else is Iranian Rial.
USD_ITEMS = frozenset({"ons", "oil_brent", "crypto-bitcoin"})
#: Most items moving by one factor (within this share) at once is a unit change, not a market.
FACTOR_TOLERANCE = 0.05
#: ... judged only when at least this many items can be compared with their last good values.
MIN_ITEMS_FOR_A_FACTOR = 3
#: A price more than this many times (or less than 1/this of) the last good one is held back
#: until it is confirmed.
MAX_JUMP = 3.0
#: A held-back price is confirmed by later fetches that repeat it within this fraction.
CONFIRM_TOLERANCE = 0.01
#: Exclusive bound on every Rial amount (price, change, low, high). A coin is ~1e9 Rial today;
#: a thousand-fold more is still accepted, while a layout change that glues cells together (or an
#: upstream writing 1e400) is refused before it can reach a snapshot, JSON or the fragment.
MAX_RIAL = 10**15
#: Exclusive bound on US-dollar amounts (the ounce is ~4,000 dollars).
MAX_USD = 10**7
#: A day's change beyond ±1000 % is not a market move; it is a parsing or upstream error.
MAX_CHANGE_PERCENT = 1000.0

Unit = Literal["IRR", "USD"]
Direction = Literal["up", "down", "flat"]


#: Rial amounts are integers; US-dollar amounts keep their cents (the ounce is 4,197.25 dollars).
Amount = int | float
_AMOUNTS = ("price", "change", "low", "high")


class PriceItem(BaseModel):
    # Every number here is shown to readers: finite and in a sane range, or the item is refused.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    key: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=100)
    price: Amount = Field(gt=0, lt=MAX_RIAL)
    unit: Unit
    change: Amount = Field(gt=-MAX_RIAL, lt=MAX_RIAL)
    change_percent: float = Field(ge=-MAX_CHANGE_PERCENT, le=MAX_CHANGE_PERCENT)
    direction: Direction
    low: Amount | None = Field(default=None, gt=0, lt=MAX_RIAL)
    high: Amount | None = Field(default=None, gt=0, lt=MAX_RIAL)
    #: The last trade, in Tehran time (the fragment prints its wall-clock time and compares its
    #: date with the reader's day there).
    updated_at: datetime | None = None
    #: The last trade's day when the upstream gives only a day (tgju's «۲۴ مرداد» for a row not
    #: traded today): a Jalali date, ``YYYY-MM-DD``. Left out of the JSON when absent, so items
    #: without it read exactly as before (and releases that do not know it still read them).
    updated_on_jalali: str | None = Field(default=None, pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    #: What a narrow row calls the item («دلار» for «دلار آمریکا»): added to every answer by
    #: ``select`` from ``SHORT_TITLES``, never stored, so snapshots read exactly as before.
    short_title: str | None = Field(default=None, min_length=1, max_length=100)
    #: The provider this item came from (the chain fills items the first provider lacks).
    source: str | None = Field(default=None, max_length=64)
    #: When this item's price was last fetched; older than its snapshot when it is ``stale``.
    fetched_at: datetime | None = None
    #: Shown from an earlier fetch: held back awaiting confirmation, or gone from every upstream
    #: (dropped after ``item_max_age_seconds``).
    stale: bool = False

    @model_validator(mode="after")
    def _amounts_in_the_units_precision(self) -> PriceItem:
        # Rial has no fraction worth showing; dollars keep two decimals and never more.
        for name in _AMOUNTS:
            amount = getattr(self, name)
            if amount is None:
                continue
            if self.unit == "IRR":
                if isinstance(amount, float):
                    if not amount.is_integer():
                        raise ValueError(f"{self.key}: a Rial {name} with a fraction: {amount}")
                    setattr_plain(self, name, int(amount))
            elif isinstance(amount, float):
                setattr_plain(self, name, round(amount, 2))
        return self

    @field_validator("change_percent")
    @classmethod
    def _no_negative_zero(cls, value: float) -> float:
        # "-0" upstream would otherwise be shown as "−۰٫۰۰٪".
        return value + 0.0

    @model_validator(mode="after")
    def _within_the_units_range(self) -> PriceItem:
        if self.unit == "USD":
            for name in ("price", "change", "low", "high"):
                amount = getattr(self, name)
                if amount is not None and abs(amount) >= MAX_USD:
                    raise ValueError(f"{self.key}: {name} {amount} dollars is out of range")
        return self

    @model_validator(mode="after")
    def _within_the_days_range(self) -> PriceItem:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"{self.key}: low {self.low} above high {self.high}")
        if self.low is not None and self.price < self.low:
            raise ValueError(f"{self.key}: price {self.price} below the day's low {self.low}")
        if self.high is not None and self.price > self.high:
            raise ValueError(f"{self.key}: price {self.price} above the day's high {self.high}")
        return self

    @field_validator("updated_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("updated_at needs a time zone")
        return value.astimezone(TEHRAN)

    @field_validator("updated_on_jalali")
    @classmethod
    def _a_real_jalali_day(cls, value: str | None) -> str | None:
        # The fragment names its month: month 13 or day 32 (a hostile snapshot) must not get there.
        if value is not None:
            year, month, day = (int(part) for part in value.split("-"))
            jdatetime.date(year, month, day)  # ValueError for a day the calendar does not have
        return value

    @model_serializer(mode="wrap")
    def _without_absent_optional_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        for name in ("updated_on_jalali", "short_title"):
            if dumped.get(name) is None:
                dumped.pop(name, None)
        return dumped


def setattr_plain(model: BaseModel, name: str, value: object) -> None:
    """Set a field from inside an "after" validator without validating again (no recursion)."""
    model.__dict__[name] = value


class PendingPrice(BaseModel):
    """A move beyond the guard, seen but not yet shown: shown once it repeats."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    price: Amount = Field(gt=0, lt=MAX_RIAL)
    #: Held as part of a move of most items by one factor: repeating it confirms nothing.
    unit_change: bool = False
    #: How many later fetches repeated it (within ``CONFIRM_TOLERANCE``).
    repeats: int = Field(ge=0, le=1000)


class PricesData(BaseModel):
    # May be empty: when every item is held back past item_max_age_seconds, the box honestly has
    # no price (all listed under ``missing``) instead of refusing every later fetch.
    items: list[PriceItem] = Field(default_factory=list, max_length=1000)
    #: Moves beyond the guard awaiting confirmation, by key (kept in the snapshot so every replica
    #: and the next fetch see them).
    pending: dict[str, PendingPrice] = Field(default_factory=dict, max_length=1000)
    #: Configured keys no provider of the chain supplied (and no last good value covers).
    missing: list[str] = Field(default_factory=list, max_length=1000)
    #: The ``unit_change_factor`` already applied: a declared change is applied once, so a later
    #: shift by the same factor (shifted columns) is held like any other.
    unit_change_applied: float | None = None
    #: Item-level rejections found while parsing; the engine reports them and does not store them.
    problems: list[str] = Field(default_factory=list)


class PricesOptions(BaseModel):
    """``[widgets.prices] items = [...]``, ``display_unit = "toman" | "rial"``."""

    model_config = ConfigDict(extra="forbid")

    items: list[str] = Field(default_factory=lambda: list(DEFAULT_ITEMS), min_length=1)
    display_unit: Literal["toman", "rial"] = "toman"
    #: A move beyond the guard is shown once this many later fetches repeat it (within 1 %).
    confirm_fetches: int = Field(default=2, ge=1, le=100)
    #: An item no fetch has brought (or confirmed) for this long is dropped, not shown as current.
    item_max_age_seconds: float = Field(default=86400, gt=0)
    #: Set when an upstream really changed its unit (e.g. 0.1 for Rial to Toman): a move of most
    #: items by this factor at once is then accepted instead of held back.
    unit_change_factor: float | None = Field(default=None, gt=0, lt=1e6)

    @field_validator("items")
    @classmethod
    def _no_duplicates(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("items must not repeat a key")
        return value

    @field_validator("items")
    @classmethod
    def _known_keys(cls, value: list[str]) -> list[str]:
        # A misspelt key would start fine and then only ever show as missing (in /health), while
        # ``?items=`` with it is a 400: refused here too, so start-up names it at once.
        unknown = [key for key in value if key not in TITLES]
        if unknown:
            raise ValueError(describe_unknown_items(unknown))
        return value


def describe_unknown_items(unknown: list[str]) -> str:
    """``unknown item key(s): sekke (did you mean sekee?), …``; all offered keys when none is close."""
    named = []
    for key in unknown:
        near = closest(key, TITLES)
        named.append(f"{key} (did you mean {near}?)" if near else key)
    text = f"unknown item key(s): {', '.join(named)}"
    if len(named) > sum(" (did you mean " in name for name in named):
        text += f" (offered: {', '.join(TITLES)})"
    return text


def configured_items(options: BaseModel | None) -> set[str]:
    """The keys a provider should bring: the widget's configured items."""
    return set(options.items if isinstance(options, PricesOptions) else DEFAULT_ITEMS)


def parse_query(query: Mapping[str, str], options: BaseModel) -> dict[str, Any]:
    assert isinstance(options, PricesOptions)
    view: dict[str, Any] = {}
    if "items" in query:
        # A key asked twice is shown once (and the view, the cache key, is the same as without).
        wanted = list(dict.fromkeys(key.strip() for key in query["items"].split(",") if key.strip()))
        unknown = [key for key in wanted if key not in options.items]
        if not wanted or unknown:
            # Name a few unknown keys, each cut short: the reason must stay short whatever was sent.
            named = ", ".join(key[:40] for key in unknown[:3]) + (" …" if len(unknown) > 3 else "")
            valid = ", ".join(options.items)
            raise QueryError(f"items: unknown key(s) {named or '(none given)'}; valid: {valid}")
        view["items"] = wanted
    if "unit" in query:
        if query["unit"] not in ("toman", "rial"):
            raise QueryError("unit: must be toman or rial")
        view["unit"] = query["unit"]
    if "columns" in query:
        view["columns"] = _columns(query["columns"])
    for name, allowed in FRAGMENT_CHOICES.items():
        if name in query:
            if query[name] not in allowed:
                raise QueryError(f"{name}: must be {' or '.join(allowed)}")
            if query[name] != allowed[0]:
                view[name] = query[name]
    return view


#: Fragment options beyond the columns, each with its default first: ``chart=sparkline`` draws the
#: last 24 hours beside each price (with the change over them), ``layout=ticker`` is one scrolling
#: line for a site's header.
FRAGMENT_CHOICES: dict[str, tuple[str, ...]] = {"chart": ("none", "sparkline"), "layout": ("table", "ticker")}


#: The columns a prices fragment may show beside each price, as tgju's own widget offers them.
COLUMNS = ("change", "percent", "low", "high", "time")


def _columns(raw: str) -> list[str]:
    """``columns=change,low,high``: which columns, in the fixed order of a price row; empty = none."""
    wanted = {name.strip() for name in raw.split(",") if name.strip()}
    unknown = sorted(wanted - set(COLUMNS))
    if unknown:
        named = ", ".join(name[:20] for name in unknown[:3])
        raise QueryError(f"columns: unknown {named}; any of {', '.join(COLUMNS)}")
    return [name for name in COLUMNS if name in wanted]


def select(data: dict[str, Any], view: dict[str, Any], options: BaseModel) -> dict[str, Any]:
    """``items=`` picks a subset in the asked order; ``unit=toman`` re-expresses Rial as Toman; every
    item gets its ``short_title``."""
    items = data["items"]
    if "items" in view:
        by_key = {item["key"]: item for item in items}
        items = [by_key[key] for key in view["items"] if key in by_key]
        missing = set(data.get("missing", []))
        data = {**data, "missing": [key for key in view["items"] if key in missing]}
    if view.get("unit") == "toman":
        items = [_in_toman(item) if item["unit"] == "IRR" else item for item in items]
    return {**data, "items": with_short_titles(items)}


def with_short_titles(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item with its ``short_title``, what a narrow row shows (derived, never stored: a
    snapshot written by any release gets it)."""
    return [{**item, "short_title": SHORT_TITLES.get(item["key"], item["title"])} for item in items]


def _in_toman(item: dict[str, Any]) -> dict[str, Any]:
    def toman(rial: int | None) -> int | None:
        return None if rial is None else round(rial / 10)

    return {
        **item,
        "unit": "IRT",
        "price": toman(item["price"]),
        "change": toman(item["change"]),
        "low": toman(item["low"]),
        "high": toman(item["high"]),
    }


def reconcile(
    new: dict[str, Any], previous: dict[str, Any] | None, options: BaseModel, now: float | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Guard against absurd jumps and keep last good values for items this fetch lacks.

    Every item carries its own ``fetched_at``; one kept from earlier data is ``stale`` and is
    dropped once older than ``item_max_age_seconds``.
    """
    assert isinstance(options, PricesOptions)
    # To the second, like the envelope's own fetched_at.
    stamp = None if now is None else datetime.fromtimestamp(int(now), tz=UTC).isoformat()
    new = {**new, "items": [{**item, "fetched_at": stamp, "stale": False} for item in new["items"]]}
    problems = list(new.get("problems", []))
    old_items = {item["key"]: item for item in (previous or {}).get("items", [])}
    old_pending: dict[str, Any] = (previous or {}).get("pending", {})
    pending: dict[str, dict[str, Any]] = {}
    accepted: dict[str, dict[str, Any]] = {}
    factor = _common_factor(new["items"], old_items)
    applied = (previous or {}).get("unit_change_applied")
    unit_changed = factor is not None and _declared(factor, options) and applied != options.unit_change_factor
    if factor is not None:
        problems.append(
            f"most items moved ×{factor:.3g} at once: "
            + (
                "the configured unit_change_factor, accepted"
                if unit_changed
                else "a unit change or shifted columns, not a market; held back unless another "
                "provider of the chain agrees or [widgets.prices] unit_change_factor says so"
            )
        )
    for item in new["items"]:
        key = item["key"]
        old = old_items.get(key)
        seen_before = old_pending.get(key)
        if old is None and seen_before is not None:
            # Its last good value is gone (too old), but its move was never confirmed: still held.
            opinion = new.get("second_opinions", {}).get(key)
            confirmed_by_another = opinion is not None and _close(item["price"], opinion["price"])
            repeats = seen_before["repeats"] + 1 if _close(item["price"], seen_before["price"]) else 0
            held_as_unit_change = bool(seen_before.get("unit_change"))
            if confirmed_by_another or (not held_as_unit_change and repeats >= options.confirm_fetches):
                accepted[key] = item
            else:
                pending[key] = {**seen_before, "price": item["price"], "repeats": repeats}
            continue
        if old is not None and old["unit"] == item["unit"]:
            ratio = item["price"] / old["price"]
            if unit_changed and factor is not None and abs(ratio / factor - 1) <= FACTOR_TOLERANCE:
                accepted[key] = item  # moved by the declared unit change; others still guarded
                continue
            opinion = new.get("second_opinions", {}).get(key)
            if opinion is not None and _close(item["price"], opinion["price"]):
                accepted[key] = item  # another provider of the chain sees the same: a real move
                continue
            if ratio > MAX_JUMP or ratio < 1 / MAX_JUMP:
                # Compared with the last good value alone, a real jump (or a bad first value)
                # would be refused for ever: it is held back and shown once it repeats. Not when
                # most items moved together: repeating a unit change proves nothing.
                seen = old_pending.get(key)
                repeats = seen["repeats"] + 1 if seen and _close(item["price"], seen["price"]) else 0
                if factor is None and repeats >= options.confirm_fetches:
                    accepted[key] = item
                    continue
                pending[key] = (
                    {"price": item["price"], "repeats": 0, "unit_change": True}
                    if factor is not None
                    else {"price": item["price"], "repeats": repeats}
                )
                problems.append(
                    f"{key}: {item['price']} is {ratio:.2f}× the last good {old['price']}; held back "
                    f"until confirmed ({repeats} of {options.confirm_fetches} repeats)"
                )
                if not _too_old(old, now, options):
                    accepted[key] = {**old, "stale": True}
                continue
        accepted[key] = item
    for key, old in old_items.items():
        if key not in accepted and not _too_old(old, now, options):
            accepted[key] = {**old, "stale": True}
    fetched = {item["key"] for item in new["items"]}
    for key, seen in old_pending.items():
        # A fetch that lacks the item does not restart its confirmation.
        if key not in fetched and key not in pending and key in options.items:
            pending[key] = seen
    stored = {
        "items": [accepted[key] for key in options.items if key in accepted],
        # Said in the data, not only in a log: a reader's box lacks these and should say so.
        "missing": [key for key in options.items if key not in accepted],
        "pending": pending,
    }
    if unit_changed or applied is not None:
        stored["unit_change_applied"] = options.unit_change_factor if unit_changed else applied
    return stored, problems


def _common_factor(items: list[dict[str, Any]], old_items: dict[str, dict[str, Any]]) -> float | None:
    """The factor most items moved by together beyond the guard, if they did (else None).

    A market does not move a dozen currencies and coins by one factor between two fetches; a
    changed unit (Rial to Toman) or shifted columns does.
    """
    ratios = sorted(
        item["price"] / old_items[item["key"]]["price"]
        for item in items
        if item["key"] in old_items and old_items[item["key"]]["unit"] == item["unit"]
    )
    if len(ratios) < MIN_ITEMS_FOR_A_FACTOR:
        return None
    median = ratios[len(ratios) // 2]
    if MAX_JUMP**-1 <= median <= MAX_JUMP:
        return None
    together = [r for r in ratios if abs(r / median - 1) <= FACTOR_TOLERANCE]
    return median if len(together) * 2 > len(ratios) else None


def _declared(factor: float, options: PricesOptions) -> bool:
    declared = options.unit_change_factor
    return declared is not None and abs(factor / declared - 1) <= FACTOR_TOLERANCE


def _too_old(item: dict[str, Any], now: float | None, options: PricesOptions) -> bool:
    fetched_at = item.get("fetched_at")
    if now is None or not fetched_at:
        return False
    return now - datetime.fromisoformat(fetched_at).timestamp() > options.item_max_age_seconds


def _close(price: float, other: float) -> bool:
    return abs(price - other) <= CONFIRM_TOLERANCE * other


def missing_items(data: dict[str, Any], previous: dict[str, Any] | None, options: BaseModel) -> list[str]:
    """What the next providers of the chain are asked for: configured keys this fetch lacks, and
    keys whose move beyond the guard a second provider could confirm at once."""
    assert isinstance(options, PricesOptions)
    have = {item["key"]: item for item in data["items"]}
    old_items = {item["key"]: item for item in (previous or {}).get("items", [])}
    opinions = data.get("second_opinions", {})
    wanted = [key for key in options.items if key not in have]
    for key, item in have.items():
        old = old_items.get(key)
        if old is not None and old["unit"] == item["unit"] and key not in opinions:
            ratio = item["price"] / old["price"]
            if ratio > MAX_JUMP or ratio < 1 / MAX_JUMP:
                wanted.append(key)
    return wanted


def combine(parts: list[tuple[str, dict[str, Any]]], options: BaseModel) -> dict[str, Any]:
    """The first provider's items, then only what it lacked from the next; each item names its source."""
    items: dict[str, dict[str, Any]] = {}
    # What a later provider says of an item an earlier one already gave: never shown, only used
    # to confirm a move beyond the guard at once (reconcile).
    opinions: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for provider_id, data in parts:
        for item in data["items"]:
            key = item["key"]
            if key not in items:
                items[key] = {**item, "source": provider_id}
            elif key not in opinions and item["unit"] == items[key]["unit"]:
                opinions[key] = {"price": item["price"], "source": provider_id}
        problems.extend(data.get("problems", []))
    return {"items": list(items.values()), "problems": problems, "second_opinions": opinions}


def today(now: float, options: BaseModel) -> str:
    """Tehran's date at ``now``: the fragment prints a trade of an earlier day with its day
    («دیروز ۱۱:۴۹»), so its answers (cache key, ETag) must turn at Tehran's midnight."""
    return local_today(now, TEHRAN).isoformat()


PRICES = WidgetSpec(
    name="prices",
    title="قیمت روز طلا، سکه و ارز",
    data_model=PricesData,
    default_providers=("tgju", "brsapi", "navasan"),
    default_refresh_seconds=300,
    options_model=PricesOptions,
    template="widgets/prices.html",
    parse_query=parse_query,
    select=select,
    reconcile=reconcile,
    missing=missing_items,
    combine=combine,
    today=today,
)
