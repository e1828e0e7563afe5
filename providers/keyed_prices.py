"""What the keyed price APIs (BrsApi, navasan) share: Toman in, Rial out, stale keys out."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from providers.base import Provider
from providers.http import UpstreamError
from providers.text import parse_decimal
from service.persian import TEHRAN

if TYPE_CHECKING:
    from providers.http import UpstreamSession

#: An item whose upstream timestamp is older than this is a dead key, not today's price.
MAX_ITEM_AGE_SECONDS = 7 * 86400


async def get_keyed_json(http: UpstreamSession, provider: Provider, path: str, key_param: str) -> Any:
    """GET ``{url}{path}?{key_param}={api_key}`` as JSON.

    These APIs answer a missing or wrong key with an HTML page, not an error status: that becomes
    an ``api_key`` error naming the setting to fix.
    """
    url = f"{(provider.config.url or '').rstrip('/')}{path}"
    try:
        return await http.get_json(url, params={key_param: provider.config.api_key or ""})
    except UpstreamError as exc:
        if exc.reason != "content_type":
            raise
        raise UpstreamError(
            "api_key",
            f"{provider.id}: answered with an HTML page instead of JSON; "
            f"check [providers.{provider.id}] api_key",
        ) from None


def to_rial(amount: Decimal, rial_per_unit: int) -> int:
    return int((amount * rial_per_unit).to_integral_value())


def epoch_seconds(value: Any) -> float:
    """An upstream timestamp (number or numeric string) as seconds; ``ValueError`` when it is none.

    Read through ``parse_decimal`` so garbage, NaN and ``1e400`` are one item's ``ValueError``,
    not a ``decimal.InvalidOperation`` or an ``OverflowError`` that would sink the whole fetch.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"timestamp is not a number: {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("timestamp is not a finite number")
    return float(parse_decimal(str(value)))


def updated_at(epoch_seconds: float, now: float) -> datetime:
    """Tehran time of an upstream timestamp; raises for dead keys (years-old or garbage stamps)."""
    if not math.isfinite(epoch_seconds):
        raise ValueError("timestamp is not a finite number")
    if not now - MAX_ITEM_AGE_SECONDS <= epoch_seconds <= now + 3600:
        if not 0 <= epoch_seconds < 253402300800:  # datetime cannot show it: past year 9999
            raise ValueError("stale: impossible timestamp")
        stamp = datetime.fromtimestamp(epoch_seconds, tz=UTC).date().isoformat()
        raise ValueError(f"stale: last updated {stamp}")
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).astimezone(TEHRAN)
