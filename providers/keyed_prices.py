"""What the keyed price APIs (BrsApi, navasan) share: Toman in, Rial out, stale keys out."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

from providers.base import UpstreamError
from service.persian import TEHRAN

#: An item whose upstream timestamp is older than this is a dead key, not today's price.
MAX_ITEM_AGE_SECONDS = 7 * 86400


def html_instead_of_json(provider_id: str, exc: UpstreamError) -> UpstreamError:
    """These APIs answer a missing or wrong key with an HTML page, not an error status."""
    if exc.reason == "content_type":
        return UpstreamError(
            "api_key",
            f"{provider_id}: answered with an HTML page instead of JSON; "
            f"check [providers.{provider_id}] api_key",
        )
    return exc


def to_rial(amount: Decimal, rial_per_unit: int) -> int:
    return int((amount * rial_per_unit).to_integral_value())


def updated_at(epoch_seconds: float, now: float | None = None) -> datetime:
    """Tehran time of an upstream timestamp; raises for dead keys (years-old or garbage stamps)."""
    now = time.time() if now is None else now
    if not now - MAX_ITEM_AGE_SECONDS <= epoch_seconds <= now + 3600:
        stamp = datetime.fromtimestamp(epoch_seconds, tz=UTC).date().isoformat()
        raise ValueError(f"stale: last updated {stamp}")
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).astimezone(TEHRAN)
