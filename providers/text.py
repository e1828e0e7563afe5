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
#: The same, minus the zero-width non-joiner, which Persian words need (نیم‌سکه).
_INVISIBLE_IN_WORDS = re.compile("[\u200b\u200d\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def ascii_digits(text: str) -> str:
    """Digits, decimal point and thousands separator in ASCII, invisible marks removed."""
    return _INVISIBLE.sub("", text.translate(_TO_ASCII))


def parse_decimal(text: str) -> Decimal:
    """``"۱٬۸۶۴٬۰۰۰"``, ``"1,864,000"``, ``"4,197.25"``, ``"۰٫۳۲"`` → a Decimal."""
    cleaned = ascii_digits(text).replace(",", "").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a number: {text!r}")
    return value


def clean_title(text: str) -> str:
    """One line of Persian text: Arabic ي/ك made Persian, invisible marks and extra spaces gone."""
    text = _INVISIBLE_IN_WORDS.sub("", text).replace("ي", "ی").replace("ك", "ک")
    return " ".join(text.split())
