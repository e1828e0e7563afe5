"""HTTP caching: validators (weak ETags, Last-Modified), conditional requests, and Cache-Control.

A widget answer is a pure function of its validator: the ETag covers the snapshot's data *and*
its ``fetched_at``, the status and the view, so a cache holding a body for a validator holds
exactly what the service would send now for that validator. Nothing in a cacheable body changes
with the passing seconds (the envelope has no age counter; readers take the age from
``fetched_at``, or from ``Date`` + ``Age`` when their own clock is not to be trusted).
"""

from __future__ import annotations

import math
from datetime import datetime
from email.utils import formatdate
from functools import lru_cache

from aiohttp import web


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match requires."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


def unmodified_since(if_modified_since: datetime | None, last_modified: float, now: float) -> bool:
    """RFC 9110 §13.1.3: true when the client's copy dated ``if_modified_since`` is current.

    Only consulted without If-None-Match. A date in the future is not a date the client got from
    us (it may be a clock that is off): it is ignored, and so is an unparseable one (None).
    """
    if if_modified_since is None:
        return False
    since = if_modified_since.timestamp()
    return since <= now and int(last_modified) <= since


def not_modified(request: web.Request, etag: str, last_modified: float, now: float) -> bool:
    """Whether ``request`` may be answered 304: If-None-Match decides when sent, else If-Modified-Since."""
    headers = request.headers
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    if "If-Modified-Since" not in headers:
        return False
    return unmodified_since(request.if_modified_since, last_modified, now)


def http_date(epoch: float) -> str:
    """An IMF-fixdate (``Thu, 26 Nov 2026 12:55:00 GMT``), whole seconds as HTTP-date has them."""
    return formatdate(int(epoch), usegmt=True)


def cache_control(seconds_until_refresh: float, *, stale_while_revalidate: int, stale_if_error: int) -> str:
    """``max-age`` is exactly the time until new data can exist; s-maxage lets a CDN share it."""
    return _cache_control(max(0, math.ceil(seconds_until_refresh)), stale_while_revalidate, stale_if_error)


@lru_cache(maxsize=4096)  # the same few thousand strings, asked for on every request
def _cache_control(max_age: int, stale_while_revalidate: int, stale_if_error: int) -> str:
    return (
        f"public, max-age={max_age}, s-maxage={max_age}, "
        f"stale-while-revalidate={stale_while_revalidate}, stale-if-error={stale_if_error}"
    )


NO_STORE = "no-store"
