"""Reading numbers and titles as Persian sites write them.

Persian (۰–۹) and Arabic-Indic (٠–٩) digits, `,` and `٬` thousands separators, `٫` decimal
points, zero-width characters and stray whitespace all occur, often mixed in one page.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_TO_ASCII = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩٫٬−", "01234567890123456789.,-")
#: Zero-width and directional marks that hide inside numbers copied from RTL pages.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\u00a0]")
#: Longest number text read at all: a price with separators is ~20 characters.
MAX_NUMBER_TEXT = 64
#: Numbers at or beyond 10**MAX_MAGNITUDE are refused here: no upstream quantity is that large, and
#: the caller would otherwise turn ``1e400`` into a 401-digit int or an infinite float.
MAX_MAGNITUDE = 18
#: The same, minus the zero-width non-joiner, which Persian words need (نیم‌سکه).
_INVISIBLE_IN_WORDS = re.compile("[\u200b\u200d\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def ascii_digits(text: str) -> str:
    """Digits, decimal point and thousands separator in ASCII, invisible marks removed."""
    return _INVISIBLE.sub("", text.translate(_TO_ASCII))


def parse_decimal(text: str) -> Decimal:
    """``"۱٬۸۶۴٬۰۰۰"``, ``"1,864,000"``, ``"4,197.25"``, ``"۰٫۳۲"`` → a Decimal.

    Raises ``ValueError`` for anything else, including NaN, infinities and absurd magnitudes
    (thousands of digits, ``1e400``), so one bad cell is a clean rejection, never an overflow later.
    """
    cleaned = ascii_digits(text).replace(",", "").strip()
    if len(cleaned) > MAX_NUMBER_TEXT:
        raise ValueError(f"not a number: {len(cleaned)} characters")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not a number: {text.strip()[:40]!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a number: {text.strip()[:40]!r}")
    if value and value.adjusted() >= MAX_MAGNITUDE:
        raise ValueError(f"out of range: {cleaned!r}")
    # Upstream "-0" is zero; a negative zero would be printed as "−۰".
    return value if value else Decimal(0)


def clean_title(text: str) -> str:
    """One line of Persian text: Arabic ي/ك made Persian, invisible marks and extra spaces gone."""
    text = _INVISIBLE_IN_WORDS.sub("", text).replace("ي", "ی").replace("ك", "ک")
    return " ".join(text.split())
