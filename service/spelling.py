"""Suggestions ("did you mean …?") for names an operator typed: configuration keys, price item keys."""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches

#: How alike (difflib's ratio) a known name must be to be offered: ``sekke`` → ``sekee`` (0.8) and
#: ``itemss`` → ``items`` are offered, while ``colour`` is not "corrected" into ``items``.
CLOSE_ENOUGH = 0.7


def closest(word: str, known: Iterable[str], *, cutoff: float = CLOSE_ENOUGH) -> str | None:
    """The known name most like ``word``, or None when none is close."""
    choices = list(known)
    matches = get_close_matches(word, choices, n=1, cutoff=cutoff)
    if matches:
        return matches[0]
    # A name cut short (``refresh`` for ``refresh_seconds``) is far by ratio but plain to a reader.
    longer = [choice for choice in choices if choice.startswith(word)]
    return longer[0] if len(word) >= 3 and len(longer) == 1 else None
