"""Text that came from (or names) an upstream, made safe to show in /health, JSON and log lines.

Two hazards: credentials (the keyed price APIs take their key in the query string, and aiohttp
puts the full request URL into some of its exception texts) and forged log lines (an upstream's
error text with a newline or a bidi override in it). ``redact`` removes the first, ``printable``
the second; ``UpstreamError`` applies both to every message it carries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "***"

#: Words that make a query parameter (or a header-like ``name: value``) a credential. Matched
#: anywhere in the name, so ``x_api_key``, ``AccessToken`` and ``client_secret`` are caught too;
#: redacting the odd harmless value (``design=``) costs nothing.
_CREDENTIAL_WORDS = (
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "sig",
    "signature",
    "auth",
    "credential",
    "session",
)
_NAME = rf"[A-Za-z0-9_.\-\[\]]*(?:{'|'.join(_CREDENTIAL_WORDS)})[A-Za-z0-9_.\-\[\]]*"
#: ``name=value`` (also percent-encoded ``name%3Dvalue`` inside another URL); the value runs to
#: the next separator a URL or a log line would end it with.
_QUERY_VALUE = re.compile(rf"(?i)(?<![A-Za-z0-9])({_NAME})(=|%3D)([^&\s#'\"<>;,)\]]*)")
#: ``Authorization: Bearer …`` / ``X-Api-Key: …`` echoed in an error text.
_HEADER_VALUE = re.compile(r"(?i)\b(authorization|proxy-authorization|x-api-key)(\s*:\s*)(\S+(?: \S+)?)")
#: Secrets shorter than this are not replaced literally: they would shred ordinary text.
_MIN_LITERAL = 4


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without credential-like query values and without any of ``secrets``.

    Literal secrets are replaced in their raw and URL-encoded spellings, longest first, so a key
    that shows up outside a ``key=`` pair (in a path, in an upstream's echo) is removed too.
    """
    spellings: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= _MIN_LITERAL:
            spellings.update((secret, quote(secret, safe=""), quote_plus(secret)))
    for spelling in sorted(spellings, key=len, reverse=True):
        text = text.replace(spelling, REDACTED)
    text = _QUERY_VALUE.sub(_blank, text)
    return _HEADER_VALUE.sub(_blank, text)


def _blank(match: re.Match[str]) -> str:
    """The name and separator kept (so the text still says which credential it was), the value not."""
    return f"{match.group(1)}{match.group(2)}{REDACTED}" if match.group(3) else match.group(0)


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
#: Bidi embeddings/overrides and isolates: they reorder what a reader sees on the rest of the line.
_BIDI = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A))
#: Line and paragraph separators: some log viewers break lines on them.
_SEPARATORS = frozenset({0x2028, 0x2029, 0x85})


def _escape(char: str) -> str:
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"\\x{code:02x}"
    if code in _BIDI or code in _SEPARATORS:
        return f"\\u{code:04x}"
    return char


def printable(text: str, limit: int = 300) -> str:
    """One safe line: control characters, newlines and bidi controls escaped; at most ``limit`` chars.

    Persian text (and its ZWNJ) stays as it is; only what could end a log line early, fake a new
    one, or reorder it on screen is escaped, repr-style. Truncation never splits an escape.
    """
    pieces: list[str] = []
    size = 0
    for char in text:
        piece = _escape(char)
        if size + len(piece) > limit:
            pieces.append("…")
            break
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces)
