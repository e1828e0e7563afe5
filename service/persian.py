"""Persian presentation: digits, separators, Jalali dates in Tehran time, ages in words."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import jdatetime

TEHRAN = ZoneInfo("Asia/Tehran")
_DIGITS = str.maketrans("0123456789.,-", "۰۱۲۳۴۵۶۷۸۹٫٬−")


def digits(value: object) -> str:
    """ASCII digits, `.`, `,` and `-` in Persian form (٫ decimal, ٬ thousands, − minus)."""
    return str(value).translate(_DIGITS)


def number(value: int | float, decimals: int = 0) -> str:
    """``1234567`` → ``۱٬۲۳۴٬۵۶۷``."""
    return digits(f"{value:,.{decimals}f}")


def signed(value: int | float, decimals: int = 0) -> str:
    """A change with its sign always shown: ``+۶٬۰۵۰``, ``−۰٫۳۲``."""
    sign = "+" if value > 0 else ""
    return sign + number(value, decimals)


def degrees(value: float | None) -> str:
    """A temperature as readers write it: ``−۵°``; a dash when unknown."""
    if value is None:
        return "—"
    rounded = round(value) + 0  # "+ 0" turns -0 into 0
    return f"{digits(rounded)}°"


_COMPASS = ("شمال", "شمال‌شرق", "شرق", "جنوب‌شرق", "جنوب", "جنوب‌غرب", "غرب", "شمال‌غرب")


def compass(degrees_from_north: float | None) -> str:
    """Eight-point compass in Persian for a direction in degrees."""
    if degrees_from_north is None:
        return "—"
    return _COMPASS[round(degrees_from_north / 45) % 8]


def jalali_day_month(jalali_date: str) -> str:
    """``1405-09-05`` → ``۵ آذر``."""
    _, month, day = (int(part) for part in jalali_date.split("-"))
    return f"{digits(day)} {jdatetime.date.j_months_fa[month - 1]}"


def gregorian_day_month(iso_date: str) -> str:
    """A Gregorian ``2026-11-23`` (or the date part of an ISO instant) as its Jalali ``۲ آذر``."""
    jalali = jdatetime.date.fromgregorian(date=date.fromisoformat(iso_date[:10]))
    return f"{digits(jalali.day)} {jdatetime.date.j_months_fa[jalali.month - 1]}"


def jalali_datetime(epoch_seconds: float, tz: ZoneInfo = TEHRAN) -> str:
    """``۵ آذر ۱۴۰۵، ساعت ۱۰:۲۰`` in the given zone (Tehran by default)."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC).astimezone(tz)
    jalali = jdatetime.datetime.fromgregorian(datetime=moment)
    month = jdatetime.date.j_months_fa[jalali.month - 1]
    return f"{digits(jalali.day)} {month} {digits(jalali.year)}، ساعت {digits(moment.strftime('%H:%M'))}"


def clock_time(iso: str) -> str:
    """An ISO 8601 instant as its wall-clock time, rounded to the minute: ``۱۷:۱۲``.

    Rounded, not truncated, as published prayer tables do (17:11:57 is printed 17:12).
    """
    moment = datetime.fromisoformat(iso)
    rounded = moment + timedelta(seconds=30)
    return digits(f"{rounded.hour:02d}:{rounded.minute:02d}")


def epoch(iso: str) -> float:
    """An aware ISO 8601 instant in epoch seconds (to compare with the clock in templates)."""
    return datetime.fromisoformat(iso).timestamp()


def shown_minute(iso: str) -> float:
    """The minute an instant is printed as (rounded, like ``clock_time``), in epoch seconds."""
    return (epoch(iso) + 30) // 60 * 60


def age_phrase(seconds: float) -> str:
    """How old data is, in words a reader understands: ``۵ دقیقه پیش``."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "لحظاتی پیش"
    if minutes < 60:
        return f"{digits(minutes)} دقیقه پیش"
    hours = minutes // 60
    if hours < 24:
        return f"{digits(hours)} ساعت پیش"
    return f"{digits(hours // 24)} روز پیش"


#: Letters of the Arabic script (Persian's): their presence marks a string as Persian.
_ARABIC_SCRIPT = re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")
_LATIN_LETTER = re.compile(r"[A-Za-z]")


#: A name, address or licence in Latin letters inside Persian text ("Open-Meteo.com (CC BY 4.0)"):
#: it starts at a letter (or the parenthesis before one) and runs through what such names carry.
_LATIN_RUN = re.compile(r"\(?[A-Za-z][A-Za-z0-9 .,:/&()\-]*[A-Za-z0-9)]|\(?[A-Za-z]")


def latin_runs(text: str) -> list[tuple[str, bool]]:
    """``text`` cut into (piece, is_latin) in reading order.

    Each Latin run is laid out left to right and kept on one line: in a right-to-left line the
    bidi algorithm and a 300 px width otherwise break "(CC BY 4.0)" apart and mirror its brackets.
    """
    pieces: list[tuple[str, bool]] = []
    at = 0
    for match in _LATIN_RUN.finditer(text):
        if match.start() > at:
            pieces.append((text[at : match.start()], False))
        pieces.append((match.group(), True))
        at = match.end()
    if at < len(text):
        pieces.append((text[at:], False))
    return pieces


def language(text: str) -> str:
    """``en`` for text in Latin letters only (an upstream's own attribution), else ``fa``.

    Screen readers pick their voice from ``lang`` (WCAG 3.1.2): Persian words with a Latin name
    inside stay Persian, a wholly English string is marked as English.
    """
    if _LATIN_LETTER.search(text) and not _ARABIC_SCRIPT.search(text):
        return "en"
    return "fa"
