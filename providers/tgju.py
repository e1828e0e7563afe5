"""tgju.org market pages (``/currency``, ``/gold-chart``, ``/coin``), scraped with BeautifulSoup.

Rows are keyed by ``data-market-nameslug``; columns are found from the ``<thead>`` captions, never
by position or cell class (coin rows use ``<td class="">``, currency rows ``<td class="nf">``).
Prices are Rial; the ounce is US dollars. Direction lives only in the change span's class.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import jdatetime
from bs4 import BeautifulSoup, Tag
from pydantic import ValidationError

from providers.base import Provider
from providers.http import NotModified, UpstreamError
from providers.redaction import printable
from providers.text import ascii_digits, clean_title, parse_decimal
from service.persian import TEHRAN
from service.widgets.prices import (
    TITLES,
    USD_ITEMS,
    Direction,
    PriceItem,
    PricesData,
    Unit,
    configured_items,
)

if TYPE_CHECKING:
    from providers.http import UpstreamSession

#: The market pages, then the home page: its info bar carries what no market page does (the
#: ounce, Brent, Tether in Rial). A market page's row wins over the info bar's (it has low, high
#: and a time; the bar has only price and change).
PAGES = ("currency", "gold-chart", "coin", "")
#: Cloudflare in front of tgju turns non-browser clients away.
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36"
)
#: Column captions as tgju writes them in each table's <thead>.
CAPTIONS = {"price": "قیمت زنده", "change": "تغییر", "low": "کمترین", "high": "بیشترین", "time": "زمان"}
_CHANGE = re.compile(r"\(\s*(-?[\d.,]+)\s*%\s*\)\s*(-?[\d.,]+)")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
#: A row not traded today shows its last day instead of a time: ``۲۴ مرداد`` (no year).
_JALALI_DAY = re.compile(r"^(\d{1,2}) (\S+)$")
JALALI_MONTHS = {name: number for number, name in enumerate(jdatetime.date.j_months_fa, start=1)}
#: 30 Esfand exists one Jalali year in four (or five): how far back a day-only cell is looked for.
_LEAP_CYCLE_YEARS = 5


class TgjuProvider(Provider):
    id = "tgju"
    widget = "prices"
    attribution = "منبع: tgju.org"
    default_url = "https://www.tgju.org"
    default_timeout_seconds = 15.0

    async def fetch(self, http: UpstreamSession) -> PricesData:
        wanted = configured_items(self.config.widget_options)
        pages = await asyncio.gather(
            *(self._page(http, page, wanted) for page in PAGES), return_exceptions=True
        )
        unchanged = [i for i, result in enumerate(pages) if isinstance(result, NotModified)]
        if unchanged and len(unchanged) < len(PAGES):
            # Another page changed, so this fetch makes a new snapshot, and the engine keeps no
            # items per page: an unchanged page's rows must be read again, or its prices would be
            # shown as left over from an earlier fetch (stale) and drop out of the history.
            again = await asyncio.gather(
                *(self._page(http, PAGES[i], wanted, conditional=False) for i in unchanged),
                return_exceptions=True,
            )
            for i, result in zip(unchanged, again, strict=True):
                pages[i] = result
        items: dict[str, PriceItem] = {}
        problems: list[str] = []
        failures: list[UpstreamError] = []
        for page, result in zip(PAGES, pages, strict=True):
            if isinstance(result, UpstreamError):
                failures.append(result)
                problems.append(f"/{page}: {result.reason}: {result}")
            elif isinstance(result, NotModified):
                problems.append(f"/{page}: not modified")
            elif isinstance(result, BaseException):
                raise result
            else:
                found, page_problems = result
                for key, item in found.items():
                    # A row a market page rejected stays rejected (its last good value is kept
                    # and the rejection reported): the info bar is no second opinion on it.
                    if page != "" or not any(p.startswith(f"{key}: ") for p in problems):
                        items.setdefault(key, item)
                problems.extend(page_problems)
        if not items:
            if failures:
                raise _most_telling(failures)
            if all(isinstance(result, NotModified) for result in pages):
                # Every page unchanged since the last fetch (a quiet market): the prices held are
                # confirmed current, a renewal, not a page whose table is gone.
                raise NotModified()
            rejected = [p for p in problems if not p.startswith("/")]
            if rejected:
                # The rows are there but every one failed its checks (absurd numbers, say): a
                # validation failure, not a layout change that would stop retries for a while.
                shown = "; ".join(p[:120] for p in rejected[:3])
                raise UpstreamError("validation", f"tgju: every item rejected ({shown})")
            raise UpstreamError("changed", f"tgju: none of {len(wanted)} configured items found")
        return PricesData(items=list(items.values()), problems=problems)

    async def _page(
        self, http: UpstreamSession, page: str, wanted: set[str], *, conditional: bool = True
    ) -> tuple[dict[str, PriceItem], list[str]]:
        response = await http.get(
            f"{(self.config.url or '').rstrip('/')}/{page}",
            conditional=conditional,
            headers={
                "User-Agent": self.config.user_agent or BROWSER_USER_AGENT,
                "Accept": "text/html,application/xhtml+xml",
                "Accept-Language": "fa-IR,fa;q=0.9,en;q=0.5",
            },
        )
        # A market page is megabytes of HTML and its soup millions of objects: parsed in this
        # process, even in a thread, the garbage collector's passes over them would stall every
        # request served meanwhile. The parsing process sends back only the items.
        now = datetime.fromtimestamp(http.now(), TEHRAN)
        return await http.parse(read_page, response.body, response.text_charset, wanted, page, now)


def read_page(
    body: bytes, charset: str, wanted: set[str], page: str, now: datetime
) -> tuple[dict[str, PriceItem], list[str]]:
    """Decode and parse one market page (blocking and picklable: runs in a parsing process)."""
    text = body.decode(charset, errors="replace")
    if page == "":
        if "info-bar" not in text:
            raise UpstreamError("changed", "tgju /: no info bar in the home page")
        return parse_info_bar(text, wanted)
    if "market-table" not in text:
        raise UpstreamError("changed", f"tgju /{page}: no market table in the page")
    return parse_page(text, wanted, page=page, now=now)


def parse_info_bar(html: str, wanted: set[str]) -> tuple[dict[str, PriceItem], list[str]]:
    """Items of the home page's info bar: ``<li id="l-KEY" class="high|low">`` with a price and a
    change ``(0.19%) 7.99``; no day's low, high or time."""
    soup = BeautifulSoup(html, "html.parser")
    bar = soup.select_one("ul.info-bar")
    if bar is None:
        raise UpstreamError("changed", "tgju /: no info bar in the home page")
    items: dict[str, PriceItem] = {}
    problems: list[str] = []
    for entry in bar.select("li[id]"):
        key = str(entry.get("id", "")).strip().removeprefix("l-")
        if key not in wanted or key in items:
            continue
        try:
            items[key] = _bar_item(key, entry)
        except (ValueError, ArithmeticError, ValidationError) as exc:
            problems.append(printable(f"{key}: {_short(exc)}"))
    return items, problems


def _bar_item(key: str, entry: Tag) -> PriceItem:
    unit: Unit = "USD" if key in USD_ITEMS else "IRR"
    price_cell = entry.select_one(".info-price")
    if price_cell is None:
        raise ValueError("no price in the info bar entry")
    classes = list(entry.get("class") or [])
    direction: Direction = "down" if "low" in classes else "up" if "high" in classes else "flat"
    change, percent = _signed_change(entry.select_one(".info-change"), unit, direction)
    heading = entry.find("h3")
    title = TITLES.get(key) or (clean_title(heading.get_text(" ")) if heading else "") or key
    return PriceItem(
        key=key,
        title=title,
        price=_amount(price_cell.get_text(), unit),
        unit=unit,
        change=change,
        change_percent=percent,
        direction=direction if change or percent else "flat",
    )


def _most_telling(failures: list[UpstreamError]) -> UpstreamError:
    """When every page failed, report a transient cause (timeouts, 5xx) before a layout change."""
    transient = [f for f in failures if f.reason != "changed"]
    return transient[0] if transient else failures[0]


def parse_page(
    html: str, wanted: set[str], *, page: str, now: datetime
) -> tuple[dict[str, PriceItem], list[str]]:
    """Items of one market page; rows that fail their checks become problems, not items."""
    soup = BeautifulSoup(html, "html.parser")
    tables = soup.select("table.market-table")
    if not tables:
        raise UpstreamError("changed", f"tgju /{page}: no market table in the page")
    items: dict[str, PriceItem] = {}
    problems: list[str] = []
    for table in tables:
        columns = _columns(table)
        if "price" not in columns:
            problems.append(f"/{page}: a table without a 'قیمت زنده' column was skipped")
            continue
        for row in table.select("tr[data-market-nameslug]"):
            key = str(row.get("data-market-nameslug", "")).strip()
            if key not in wanted or key in items:
                continue
            try:
                items[key] = _item(key, row, columns, now)
            except (ValueError, ArithmeticError, ValidationError) as exc:
                # Logged by the engine: upstream text, so one escaped line.
                problems.append(printable(f"{key}: {_short(exc)}"))
    return items, problems


def _columns(table: Tag) -> dict[str, int]:
    head = table.find("thead")
    if head is None:
        return {}
    captions = [clean_title(cell.get_text(" ")) for cell in head.find_all(["th", "td"])]
    columns: dict[str, int] = {}
    for name, caption in CAPTIONS.items():
        for index, text in enumerate(captions):
            if text.startswith(caption):
                columns[name] = index
                break
    return columns


def _cell(cells: list[Tag], columns: dict[str, int], name: str) -> Tag | None:
    index = columns.get(name)
    return cells[index] if index is not None and index < len(cells) else None


def _item(key: str, row: Tag, columns: dict[str, int], now: datetime) -> PriceItem:
    cells = row.find_all(["th", "td"], recursive=False)
    unit: Unit = "USD" if key in USD_ITEMS else "IRR"
    price_cell = _cell(cells, columns, "price")
    if price_cell is None:
        raise ValueError("no price cell")
    price = _amount(price_cell.get_text(), unit)
    change, percent, direction = _change(_cell(cells, columns, "change"), unit)
    low, high = (
        _optional_amount(_cell(cells, columns, "low"), unit),
        _optional_amount(_cell(cells, columns, "high"), unit),
    )
    # Our own titles for the keys we know, so every provider reads alike; tgju's for the rest.
    title = TITLES.get(key) or (clean_title(cells[0].get_text(" ")) if cells else "") or key
    updated_at, updated_on = _when(_cell(cells, columns, "time"), now)
    return PriceItem(
        key=key,
        title=title,
        price=price,
        unit=unit,
        change=change,
        change_percent=percent,
        direction=direction,
        low=low,
        high=high,
        updated_at=updated_at,
        updated_on_jalali=updated_on,
    )


def _optional_amount(cell: Tag | None, unit: Unit) -> int | float | None:
    return _amount(cell.get_text(), unit) if cell is not None and cell.get_text(strip=True) else None


def _amount(text: str, unit: Unit) -> int | float:
    value = parse_decimal(text)
    # Dollars keep their cents (the ounce at 4,197.25 is not 4,197); Rial are whole.
    return float(round(value, 2)) if unit == "USD" else _exact_int(value)


def _exact_int(value: Decimal) -> int:
    if value != value.to_integral_value():
        raise ValueError(f"a Rial price with a fraction: {value}")
    return int(value)


def _change(cell: Tag | None, unit: Unit) -> tuple[int | float, float, Direction]:
    if cell is None:
        return 0, 0.0, "flat"
    span = cell.find("span")
    classes: list[str] = list(span.get("class") or []) if isinstance(span, Tag) else []
    direction: Direction = "down" if "low" in classes else "up" if "high" in classes else "flat"
    change, percent = _signed_change(cell, unit, direction)
    if direction == "flat" and change:
        direction = "up" if change > 0 else "down"
    return change, percent, direction


def _signed_change(cell: Tag | None, unit: Unit, direction: Direction) -> tuple[int | float, float]:
    """``(0.32%) 6,050`` with the sign the direction class gives (the text has none)."""
    if cell is None:
        return 0, 0.0
    text = ascii_digits(cell.get_text(" "))
    match = _CHANGE.search(text)
    if match is None:
        if not text.strip():
            return 0, 0.0
        raise ValueError(f"unreadable change {text.strip()!r}")
    percent = abs(float(parse_decimal(match.group(1))))
    amount = abs(_amount(match.group(2), unit))
    sign = -1 if direction == "down" else 1 if direction == "up" else 0
    if sign == 0 and amount:
        sign = 1 if float(parse_decimal(match.group(1))) >= 0 else -1
    return sign * amount, sign * percent


def _when(cell: Tag | None, now: datetime) -> tuple[datetime | None, str | None]:
    """The last trade: a clock time is today in Tehran (yesterday if it is ahead of now); a Jalali
    day (``۲۴ مرداد``) is that day's date, ``YYYY-MM-DD`` in the Jalali calendar, so the box can
    show that the price is not today's. Anything else is unknown (None, None)."""
    if cell is None:
        return None, None
    text = clean_title(ascii_digits(cell.get_text()))
    clock = _CLOCK.match(text)
    if clock is not None:
        return _clock_time(clock, now), None
    day = _JALALI_DAY.match(text)
    if day is not None and day.group(2) in JALALI_MONTHS:
        return None, _latest_jalali_day(int(day.group(1)), JALALI_MONTHS[day.group(2)], now)
    return None, None


def _clock_time(match: re.Match[str], now: datetime) -> datetime:
    hour, minute, second = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"impossible time {match.group(0)!r}")
    moment = now.replace(hour=hour, minute=minute, second=second, microsecond=0)
    if moment > now + timedelta(minutes=10):
        moment -= timedelta(days=1)
    return moment


def _latest_jalali_day(day: int, month: int, now: datetime) -> str:
    """The day tgju names without a year: the latest one not after today (a last trade is past)."""
    today = jdatetime.date.fromgregorian(date=now.date())
    for year in range(today.year, today.year - _LEAP_CYCLE_YEARS, -1):
        try:
            candidate = jdatetime.date(year, month, day)
        except ValueError:  # 30 Esfand of a common year; a 32nd day of any year
            continue
        if candidate <= today:
            return f"{year:04d}-{month:02d}-{day:02d}"
    raise ValueError(f"impossible day {day} {jdatetime.date.j_months_fa[month - 1]}")


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
    return str(exc)
