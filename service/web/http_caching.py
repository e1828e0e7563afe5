"""HTTP caching headers: weak ETags, If-None-Match, and Cache-Control from refresh timing."""

from __future__ import annotations

import math
from functools import lru_cache


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match requires."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


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
